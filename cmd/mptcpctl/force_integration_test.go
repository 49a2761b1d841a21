package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/ownertest"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

// TestForceUnitBPFKernel: mptcpctl force unit --mechanism bpf against the
// daemon (run in the test process), with systemd's answers from
// fakeSystemd: the compatibility matrix's guests have no systemd. Where
// the kernel allows the BPF program (bpf.Probe), a plain TCP socket opened
// in the unit's cgroup (in system.slice, where the daemon takes it to be
// without systemd's answer) is MPTCP once the unit is forced, force status
// lists the unit as selected by bpf, and after force unit --off the socket
// is TCP again. Where the kernel refuses, force unit fails with the
// daemon's reason and the socket stays TCP.
func TestForceUnitBPFKernel(t *testing.T) {
	// Not parallel: the daemon keeps the forced units in $STATE_DIRECTORY.
	t.Setenv("STATE_DIRECTORY", t.TempDir())
	h := netnstest.NewHost(t, "forcebpf")
	unit := fmt.Sprintf("mgt-forcectl-%d.service", os.Getpid())
	dir := ownertest.SystemSlice(t).New(unit)
	ld := startDaemon(t, h, "kernel")
	s := newFakeSystemd(t)
	s.addUnit(t, unit, webUnit)
	ctl := func(args ...string) result {
		t.Helper()
		return s.run(t, 0, append([]string{"--socket", ld.sock}, args...)...)
	}
	protocol := func(what string, want int) {
		t.Helper()
		if got := ownertest.Protocol(t, h, ownertest.Owner{Cgroup: dir}); got != want {
			t.Errorf("%s: a socket in %s has protocol %d, want %d", what, dir, got, want)
		}
	}

	r := ctl("force", "unit", "--mechanism", "bpf", unit)
	if refusal := bpf.Probe(); refusal != nil {
		var ue *bpf.UnavailableError
		if !errors.As(refusal, &ue) {
			t.Fatalf("bpf.Probe: %v, want an *UnavailableError", refusal)
		}
		if r.code != 1 || !strings.Contains(r.stderr, "the BPF mechanism is unavailable: ") || !strings.Contains(r.stderr, ue.Reason) {
			t.Errorf("force unit --mechanism bpf where the kernel refuses (%v): exit %d, %q", refusal, r.code, r.stderr)
		}
		protocol("refused", unix.IPPROTO_TCP)
		if ue.Step == bpf.StepKernel {
			netnstest.Degraded(t, "force unit --mechanism bpf refused: %v", refusal)
		}
		return
	}
	if r.code != 0 || !strings.Contains(r.stdout, unit+" forced to MPTCP with BPF") {
		t.Fatalf("force unit --mechanism bpf: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	protocol("forced", unix.IPPROTO_MPTCP)

	r = ctl("force", "status", "--json")
	var st forceStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("force status: %v: %s %s", err, r.stdout, r.stderr)
	}
	if !st.Mechanisms.BPF.Available || len(st.Units) != 1 || st.Units[0].Unit != unit ||
		st.Units[0].Mechanism != mechBPF || !st.Units[0].Selected || st.Units[0].Cgroup != dir {
		t.Errorf("force status: %s", r.stdout)
	}

	r = ctl("force", "unit", "--off", unit)
	if r.code != 0 {
		t.Fatalf("force unit --off: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	protocol("unforced", unix.IPPROTO_TCP)
}
