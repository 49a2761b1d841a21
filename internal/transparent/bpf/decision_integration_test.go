package bpf

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Users of the tests: a selected uid and one that is not.
const (
	selectedUID   = 4242
	unselectedUID = 4243
)

// allCalls are the socket() calls every case is tried with: each family,
// type (with and without flags) and protocol that the decision tells
// apart, and some it must leave alone.
func allCalls() []call {
	families := []int32{unix.AF_INET, unix.AF_INET6, unix.AF_UNIX, unix.AF_NETLINK, unix.AF_PACKET}
	types := []int32{
		unix.SOCK_STREAM, unix.SOCK_STREAM | unix.SOCK_NONBLOCK, unix.SOCK_STREAM | unix.SOCK_CLOEXEC,
		unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC,
		unix.SOCK_DGRAM, unix.SOCK_DGRAM | unix.SOCK_NONBLOCK, unix.SOCK_RAW, unix.SOCK_SEQPACKET,
	}
	protocols := []int32{0, unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_SCTP, unix.IPPROTO_MPTCP, 255}
	var calls []call
	for _, f := range families {
		for _, ty := range types {
			for _, p := range protocols {
				calls = append(calls, call{f, ty, p})
			}
		}
	}
	return calls
}

// wantProtocol is the specification of the decision: the protocol a
// socket() call gets, for a task that is selected or not.
func wantProtocol(c call, selected bool) int32 {
	inet := c.Family == unix.AF_INET || c.Family == unix.AF_INET6
	stream := c.Type&0xf == unix.SOCK_STREAM
	tcp := c.Protocol == 0 || c.Protocol == unix.IPPROTO_TCP
	if selected && inet && stream && tcp {
		return unix.IPPROTO_MPTCP
	}
	return c.Protocol
}

// TestWantProtocol pins the specification itself on the cases the issue
// names, so that the in-kernel tests compare against the right thing.
func TestWantProtocol(t *testing.T) {
	tests := []struct {
		c        call
		selected bool
		want     int32
	}{
		{call{unix.AF_INET, unix.SOCK_STREAM, 0}, true, 262},
		{call{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK, unix.IPPROTO_TCP}, true, 262},
		{call{unix.AF_INET, unix.SOCK_STREAM, 0}, false, 0},
		{call{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP}, false, 6},
		{call{unix.AF_INET, unix.SOCK_DGRAM, 0}, true, 0},
		{call{unix.AF_UNIX, unix.SOCK_STREAM, 0}, true, 0},
		{call{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP}, true, unix.IPPROTO_SCTP},
		{call{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP}, true, unix.IPPROTO_MPTCP},
		{call{unix.AF_INET, unix.SOCK_SEQPACKET, 0}, true, 0},
	}
	for _, tt := range tests {
		if got := wantProtocol(tt.c, tt.selected); got != tt.want {
			t.Errorf("wantProtocol(%+v, %v) = %d, want %d", tt.c, tt.selected, got, tt.want)
		}
	}
}

// TestDecisionInKernel runs the shipped decision (the instructions of the
// fmod_ret program, loaded as a raw tracepoint program) with
// BPF_PROG_TEST_RUN in child processes placed in cgroups and running as
// uids of the test's choosing, for every call of allCalls: the cgroup of
// a selected unit and its subtree are selected, its parent and siblings
// are not, a selected uid is selected wherever it runs.
func TestDecisionInKernel(t *testing.T) {
	needRoot(t)
	tester, err := NewTester()
	if err != nil {
		t.Fatal(err)
	}
	defer tester.Close()
	cg := newTestCgroups(t)

	calls := allCalls()
	tests := []struct {
		name     string
		cgroups  []string // selected cgroups
		uids     []uint32 // selected uids
		in       string   // the child's cgroup
		uid      uint32   // the child's uid
		selected bool
	}{
		{"nothing selected", nil, nil, cg.unit, unselectedUID, false},
		{"in the selected cgroup", []string{cg.unit}, nil, cg.unit, unselectedUID, true},
		{"below the selected cgroup", []string{cg.unit}, nil, cg.sub, unselectedUID, true},
		{"in a sibling of the selected cgroup", []string{cg.unit}, nil, cg.other, unselectedUID, false},
		{"in the parent of the selected cgroup", []string{cg.unit}, nil, cg.top, unselectedUID, false},
		{"with the selected uid", nil, []uint32{selectedUID}, cg.other, selectedUID, true},
		{"with another uid", nil, []uint32{selectedUID}, cg.other, unselectedUID, false},
		{"selected uid or cgroup: cgroup", []string{cg.unit}, []uint32{selectedUID}, cg.sub, unselectedUID, true},
		{"selected uid or cgroup: uid", []string{cg.unit}, []uint32{selectedUID}, cg.top, selectedUID, true},
		{"selected uid or cgroup: neither", []string{cg.other}, []uint32{selectedUID}, cg.sub, unselectedUID, false},
		{"as root", []string{cg.unit}, []uint32{selectedUID}, cg.top, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.cgroups {
				if err := tester.AddCgroup(cgroupID(t, p)); err != nil {
					t.Fatal(err)
				}
			}
			for _, u := range tt.uids {
				if err := tester.AddUID(u); err != nil {
					t.Fatal(err)
				}
			}
			defer func() {
				for _, p := range tt.cgroups {
					if err := tester.RemoveCgroup(cgroupID(t, p)); err != nil {
						t.Error(err)
					}
				}
				for _, u := range tt.uids {
					if err := tester.RemoveUID(u); err != nil {
						t.Error(err)
					}
				}
			}()
			rep := child{cgroup: tt.in, uid: tt.uid, prog: tester.prog}.run(t, childDecide, calls)
			if len(rep.Outcomes) != len(calls) {
				t.Fatalf("%d outcomes for %d calls", len(rep.Outcomes), len(calls))
			}
			changed := 0
			for i, c := range calls {
				want := wantProtocol(c, tt.selected)
				if got := rep.Outcomes[i].Protocol; got != want {
					t.Errorf("socket(%s): protocol %d, want %d", describe(c), got, want)
				}
				if want != c.Protocol {
					changed++
				}
			}
			t.Logf("%d of %d calls made MPTCP", changed, len(calls))
		})
	}
}

// TestDecisionUpperHalf checks that the decision reads only the low 32
// bits of each argument slot, which a trampoline leaves undefined above
// an int.
func TestDecisionUpperHalf(t *testing.T) {
	needRoot(t)
	tester, err := NewTester()
	if err != nil {
		t.Fatal(err)
	}
	defer tester.Close()
	if err := tester.AddUID(0); err != nil { // the test runs as root
		t.Fatal(err)
	}
	const junk = 0xdead_beef_0000_0000
	tests := []struct {
		ctx  []uint64
		want uint32
	}{
		{[]uint64{junk | unix.AF_INET, junk | unix.SOCK_STREAM, junk}, unix.IPPROTO_MPTCP},
		{[]uint64{junk | unix.AF_INET6, junk | unix.SOCK_STREAM, junk | unix.IPPROTO_TCP}, unix.IPPROTO_MPTCP},
		{[]uint64{junk | unix.AF_INET, junk | unix.SOCK_DGRAM, junk}, 0},
		{[]uint64{junk | unix.AF_INET, junk | unix.SOCK_STREAM, junk | unix.IPPROTO_SCTP}, unix.IPPROTO_SCTP},
	}
	for _, tt := range tests {
		ret, err := tester.prog.Run(&ebpf.RunOptions{Context: tt.ctx})
		if err != nil {
			t.Fatal(err)
		}
		if ret != tt.want {
			t.Errorf("context %#x: %d, want %d", tt.ctx, ret, tt.want)
		}
	}
}

func describe(c call) string {
	fam := map[int32]string{unix.AF_INET: "AF_INET", unix.AF_INET6: "AF_INET6", unix.AF_UNIX: "AF_UNIX",
		unix.AF_NETLINK: "AF_NETLINK", unix.AF_PACKET: "AF_PACKET"}[c.Family]
	ty := map[int32]string{unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM", unix.SOCK_RAW: "SOCK_RAW",
		unix.SOCK_SEQPACKET: "SOCK_SEQPACKET"}[c.Type&0xf]
	if c.Type&unix.SOCK_NONBLOCK != 0 {
		ty += "|SOCK_NONBLOCK"
	}
	if c.Type&unix.SOCK_CLOEXEC != 0 {
		ty += "|SOCK_CLOEXEC"
	}
	return fmt.Sprintf("%s, %s, %d", fam, ty, c.Protocol)
}

// tracingAllowed loads a minimal fentry program on the hook, written
// independently of the package, to learn whether this kernel lets this
// process load tracing programs at all.
func tracingAllowed(t *testing.T) error {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFEntry, AttachTo: Hook,
		License: "GPL", Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		return err
	}
	return p.Close()
}

// TestProbe checks Probe against an independent load: where the kernel
// refuses tracing programs (this one does, with EPERM, under lockdown),
// Probe must say so, at the load step, with the errno and the capabilities
// held; where it allows them, Probe must succeed (and the end-to-end
// tests run through the program, TestForcerEndToEnd).
func TestProbe(t *testing.T) {
	needRoot(t)
	independent := tracingAllowed(t)
	err := Probe()
	t.Logf("independent fentry load: %v; Probe: %v", independent, err)
	if independent == nil {
		if err != nil {
			t.Fatalf("the kernel loads tracing programs, but Probe says %v", err)
		}
		return
	}
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("the kernel refuses tracing programs (%v), but Probe returned %v, want an *UnavailableError", independent, err)
	}
	if errors.Is(independent, unix.EPERM) {
		if ue.Step != StepLoad || !errors.Is(ue, unix.EPERM) {
			t.Errorf("Probe: step %q, err %v; want step %q with EPERM", ue.Step, ue.Err, StepLoad)
		}
		for _, want := range []string{"EPERM", "before the verifier", "CAP_BPF", Hook} {
			if !strings.Contains(ue.Reason, want) {
				t.Errorf("Probe's reason %q does not mention %q", ue.Reason, want)
			}
		}
		if level, lerr := LockdownLevel(); lerr == nil && level != "none" && !strings.Contains(ue.Reason, "locked down ("+level+")") {
			t.Errorf("the kernel is locked down (%s) but Probe's reason does not say so: %q", level, ue.Reason)
		}
	}
}

// TestProbeWithoutCapabilities runs Probe in a child without CAP_BPF,
// CAP_PERFMON or CAP_SYS_ADMIN: it must name the missing capabilities,
// whatever the kernel allows.
func TestProbeWithoutCapabilities(t *testing.T) {
	needRoot(t)
	cg := newTestCgroups(t)
	rep := child{cgroup: cg.other, uid: 65534, drop: true}.run(t, childProbe, nil)
	if rep.ProbeOK || rep.ProbeStep != string(StepCapabilities) ||
		!strings.Contains(rep.ProbeReason, "CAP_BPF and CAP_PERFMON") {
		t.Errorf("Probe as nobody: ok %v, step %q, reason %q; want step %q naming CAP_BPF and CAP_PERFMON",
			rep.ProbeOK, rep.ProbeStep, rep.ProbeReason, StepCapabilities)
	}
}

// TestForcerEndToEnd attaches the fmod_ret program where the kernel
// allows it and checks real sockets of children in and out of a selected
// cgroup; where the kernel refuses, it checks that Attach reports the
// refusal as Probe does (never a silent skip).
func TestForcerEndToEnd(t *testing.T) {
	needRoot(t)
	f, err := Attach()
	if err != nil {
		var ue *UnavailableError
		if !errors.As(err, &ue) {
			t.Fatalf("Attach: %v, want an *UnavailableError", err)
		}
		if perr := Probe(); perr == nil || perr.Error() != err.Error() {
			t.Fatalf("Attach refused (%v) but Probe says %v", err, perr)
		}
		t.Logf("the fmod_ret program is refused here, as Probe reports: %v", err)
		return
	}
	defer f.Close()
	cg := newTestCgroups(t)
	if err := f.AddCgroup(cgroupID(t, cg.unit)); err != nil {
		t.Fatal(err)
	}
	calls := []call{
		{unix.AF_INET, unix.SOCK_STREAM, 0},
		{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, unix.IPPROTO_TCP},
		{unix.AF_INET, unix.SOCK_DGRAM, 0},
		{unix.AF_UNIX, unix.SOCK_STREAM, 0},
	}
	for _, tt := range []struct {
		in       string
		selected bool
	}{{cg.unit, true}, {cg.sub, true}, {cg.other, false}} {
		rep := child{cgroup: tt.in, uid: unselectedUID}.run(t, childSockets, calls)
		var want []outcome
		for _, c := range calls {
			p := wantProtocol(c, tt.selected)
			if p == 0 {
				p = map[int32]int32{unix.SOCK_STREAM: unix.IPPROTO_TCP, unix.SOCK_DGRAM: unix.IPPROTO_UDP}[c.Type&0xf]
				if c.Family == unix.AF_UNIX {
					p = 0
				}
			}
			want = append(want, outcome{Protocol: p})
		}
		if diff := cmp.Diff(want, rep.Outcomes); diff != "" {
			t.Errorf("sockets in %s (-want +got):\n%s", tt.in, diff)
		}
	}
}
