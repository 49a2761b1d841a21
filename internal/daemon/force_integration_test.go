//go:build linux

package daemon_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/ownertest"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

// Users of TestForceBPF: one [force] uids names, one it does not.
const (
	forcedUID   = 4242
	unforcedUID = 4243
)

// TestForceBPF: the daemon forces with the BPF program what its [force]
// table names, and what is forced over its control socket (the
// call mptcpctl force unit --mechanism bpf makes). Where the kernel allows
// the program (bpf.Probe), a plain socket(AF_INET, SOCK_STREAM, 0) opened
// in the forced unit's cgroup, in a cgroup below it, or as the forced uid
// is MPTCP, and one opened in another unit's cgroup as another uid is
// TCP; a unit forced over the control socket is MPTCP until unforced;
// mptcpctl force status shows both units selected; when the daemon stops,
// every socket is TCP again. Where the kernel refuses, the daemon logs
// and reports the refusal as bpf.Probe does, refuses to force a unit, and
// every socket stays TCP.
//
// The daemon runs in the test process: under `ip netns exec`, as the
// binary runs in tests, it would see a /sys of its own without the cgroup
// v2 mount, and could not follow the units' cgroups. Without systemd (the
// compatibility matrix's guests) the daemon takes a unit to be in
// system.slice, so the units' cgroups are made there, with names of the
// test's own (ownertest.SystemSlice).
func TestForceBPF(t *testing.T) {
	// Not parallel: the daemon keeps the units forced over the control
	// socket in $STATE_DIRECTORY.
	t.Setenv("STATE_DIRECTORY", t.TempDir())
	h := netnstest.NewHost(t, "force")
	cg := ownertest.SystemSlice(t)
	name := fmt.Sprintf("mgt-force-%d", os.Getpid())
	unit, api, other := name+".service", name+"-api.service", name+"-other.service"
	for _, rel := range []string{unit, unit + "/sub", api, other} {
		cg.New(rel)
	}
	cgroup := func(rel string) string { return filepath.Join(cg.Top(), rel) }

	sock := filepath.Join(t.TempDir(), "ctl.sock")
	r := daemontest.Run(t, h, fmt.Sprintf(`mode = "auto"

[control]
socket = %q
group = ""

[links]
include_kinds = ["virtual"]

[force]
units = [%q]
uids = [%d]
`, sock, unit, forcedUID))
	ctl := &ctlapi.Client{Socket: sock}
	protocol := func(in string, uid uint32) int {
		t.Helper()
		return ownertest.Protocol(t, h, ownertest.Owner{UID: uid, GID: uid, Cgroup: in})
	}
	expect := func(what string, got, want int) {
		t.Helper()
		if got != want {
			t.Errorf("%s: protocol %d, want %d", what, got, want)
		}
	}

	refusal := bpf.Probe()
	if refusal != nil {
		var ue *bpf.UnavailableError
		if !errors.As(refusal, &ue) {
			t.Fatalf("bpf.Probe: %v, want an *UnavailableError", refusal)
		}
		if ue.Step == bpf.StepKernel {
			netnstest.Degraded(t, "the daemon cannot force with BPF: %v", refusal)
		} else {
			t.Logf("the kernel refuses the BPF mechanism: %v", refusal)
		}
		enginetest.Poll(t, "the refusal reported", func() string {
			st, err := ctl.Force(t.Context())
			if err != nil {
				return err.Error()
			}
			if !st.BPF.Available && strings.Contains(st.BPF.Reason, ue.Reason) {
				return ""
			}
			return fmt.Sprintf("GET /v1/force: BPF %+v, want unavailable with %q", st.BPF, ue.Reason)
		})
		_, err := ctl.ForceUnit(t.Context(), api, false)
		var se *ctlapi.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || !strings.Contains(se.Message, ue.Reason) {
			t.Errorf("forcing %s: %v, want 503 with %q", api, err, ue.Reason)
		}
		expect("in the forced unit", protocol(cgroup(unit), unforcedUID), unix.IPPROTO_TCP)
		expect("as the forced uid", protocol(cgroup(other), forcedUID), unix.IPPROTO_TCP)
		return
	}

	enginetest.Poll(t, "the configuration's unit selected", func() string {
		st, err := ctl.Force(t.Context())
		if err != nil {
			return err.Error()
		}
		if st.BPF.Available && len(st.Units) == 1 && st.Units[0].Unit == unit && st.Units[0].Selected {
			return ""
		}
		return fmt.Sprintf("%+v", st)
	})
	expect("in the forced unit", protocol(cgroup(unit), unforcedUID), unix.IPPROTO_MPTCP)
	expect("below the forced unit", protocol(cgroup(unit+"/sub"), unforcedUID), unix.IPPROTO_MPTCP)
	expect("as the forced uid", protocol(cgroup(other), forcedUID), unix.IPPROTO_MPTCP)
	expect("in another unit", protocol(cgroup(other), unforcedUID), unix.IPPROTO_TCP)
	expect("in a unit not forced yet", protocol(cgroup(api), unforcedUID), unix.IPPROTO_TCP)

	// The control socket forces and unforces at once: the answer comes
	// after the maps changed.
	if _, err := ctl.ForceUnit(t.Context(), api, false); err != nil {
		t.Fatalf("forcing %s: %v", api, err)
	}
	expect("in the unit forced over the control socket", protocol(cgroup(api), unforcedUID), unix.IPPROTO_MPTCP)
	out, err := h.Command(daemontest.Binary(t, "mptcpctl"), "--socket", sock, "force", "status", "--json").Output()
	if err != nil {
		t.Fatalf("mptcpctl force status: %v", err)
	}
	var status struct {
		Units []struct {
			Unit, Mechanism string
			Selected        bool
		}
		Mechanisms struct{ BPF ctlapi.Mechanism }
	}
	if err := json.Unmarshal(out, &status); err != nil {
		t.Fatalf("mptcpctl force status: %v: %s", err, out)
	}
	selected := map[string]bool{}
	for _, u := range status.Units {
		selected[u.Unit] = u.Mechanism == "bpf" && u.Selected
	}
	if !status.Mechanisms.BPF.Available || !selected[unit] || !selected[api] {
		t.Errorf("mptcpctl force status: %s; want bpf available, %s and %s selected by bpf", out, unit, api)
	}
	if _, err := ctl.ForceUnit(t.Context(), api, true); err != nil {
		t.Fatalf("unforcing %s: %v", api, err)
	}
	expect("in the unit unforced over the control socket", protocol(cgroup(api), unforcedUID), unix.IPPROTO_TCP)

	r.Stop()
	expect("in the forced unit, the daemon stopped", protocol(cgroup(unit), unforcedUID), unix.IPPROTO_TCP)
	expect("as the forced uid, the daemon stopped", protocol(cgroup(other), forcedUID), unix.IPPROTO_TCP)
}
