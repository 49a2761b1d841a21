package bpf

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
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

// tracingAllowed loads a minimal fmod_ret program on the hook and
// attaches it, written independently of the package, to learn whether
// this kernel lets this process run the mechanism at all. The program
// returns 0, which lets update_socket_protocol run as if it were not
// there: no socket changes while it is attached.
func tracingAllowed(t *testing.T) error {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachModifyReturn, AttachTo: Hook,
		License: "GPL", Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		return err
	}
	defer p.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachModifyReturn})
	if err != nil {
		return err
	}
	return l.Close()
}

// kernelHasHook tells from /proc/kallsyms, independently of the BTF the
// package reads, whether the kernel has the hook (Linux 6.6 and later).
func kernelHasHook(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		// ADDRESS TYPE NAME [MODULE]
		if f := strings.Fields(line); len(f) >= 3 && f[2] == Hook {
			return true
		}
	}
	return false
}

// mustWork reports why the mechanism must work on this kernel, or "" when
// nothing says it must: the independent fmod_ret program attaches; or
// the kernel has the hook and BTF and is not locked down, as Debian's
// kernels without Secure Boot are.
func mustWork(t *testing.T) string {
	t.Helper()
	if err := tracingAllowed(t); err == nil {
		return "an independent fmod_ret program attaches to " + Hook
	}
	level, err := LockdownLevel()
	if err != nil || level != "none" || !kernelHasHook(t) {
		return ""
	}
	if _, err := os.Stat(vmlinuxBTF); err != nil {
		return ""
	}
	return "the kernel has " + Hook + " and BTF, and is not locked down"
}

// TestProbe checks Probe against independent observations: where the
// kernel has no hook (before Linux 6.6), Probe must say so at the kernel
// step; where the kernel refuses tracing programs (this one does, with
// EPERM, under lockdown), Probe must say so, at the load step, with the
// errno and the capabilities held; where the mechanism must work
// (mustWork), Probe must succeed.
func TestProbe(t *testing.T) {
	needRoot(t)
	independent := tracingAllowed(t)
	err := Probe()
	t.Logf("independent fmod_ret program: %v; Probe: %v", independent, err)
	if why := mustWork(t); why != "" {
		if err != nil {
			t.Fatalf("%s, but Probe says %v", why, err)
		}
		return
	}
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("the kernel refuses fmod_ret programs (%v), but Probe returned %v, want an *UnavailableError", independent, err)
	}
	if !kernelHasHook(t) {
		if ue.Step != StepKernel || !strings.Contains(ue.Reason, "no "+Hook+" hook") || !strings.Contains(ue.Reason, "6.6") {
			t.Errorf("the kernel has no %s (/proc/kallsyms), but Probe says: step %q, reason %q; want step %q naming the hook and Linux 6.6",
				Hook, ue.Step, ue.Reason, StepKernel)
		}
		netnstest.Degraded(t, "no %s hook: Probe reports %q", Hook, ue.Error())
		return
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
// wherever the kernel has the hook (before, the kernel step comes
// first).
func TestProbeWithoutCapabilities(t *testing.T) {
	needRoot(t)
	cg := newTestCgroups(t)
	rep := child{cgroup: cg.other, uid: 65534, drop: true}.run(t, childProbe, nil)
	if !kernelHasHook(t) {
		if rep.ProbeOK || rep.ProbeStep != string(StepKernel) {
			t.Errorf("Probe as nobody on a kernel without %s: ok %v, step %q, reason %q; want step %q",
				Hook, rep.ProbeOK, rep.ProbeStep, rep.ProbeReason, StepKernel)
		}
		netnstest.Degraded(t, "no %s hook: Probe as nobody reports the kernel before the capabilities: %q", Hook, rep.ProbeReason)
		return
	}
	if rep.ProbeOK || rep.ProbeStep != string(StepCapabilities) ||
		!strings.Contains(rep.ProbeReason, "CAP_BPF and CAP_PERFMON") {
		t.Errorf("Probe as nobody: ok %v, step %q, reason %q; want step %q naming CAP_BPF and CAP_PERFMON",
			rep.ProbeOK, rep.ProbeStep, rep.ProbeReason, StepCapabilities)
	}
}

// TestProbeWithDropInCapabilities runs Probe in a child that is not root
// and holds only the capabilities dist/mptcpgod-bpf.conf gives the daemon
// (ambient CAP_NET_ADMIN, CAP_BPF and CAP_PERFMON): where the mechanism
// must work (mustWork), the load and the attach must succeed with them;
// elsewhere Probe must not blame the capabilities.
func TestProbeWithDropInCapabilities(t *testing.T) {
	needRoot(t)
	cg := newTestCgroups(t)
	rep := child{cgroup: cg.other, uid: 65534, caps: []uintptr{unix.CAP_NET_ADMIN, capBPF, capPerfmon}}.run(t, childProbe, nil)
	if why := mustWork(t); why != "" {
		if !rep.ProbeOK {
			t.Fatalf("%s, but Probe with the drop-in's capabilities says: step %q, %s", why, rep.ProbeStep, rep.ProbeReason)
		}
		t.Logf("Probe with CAP_NET_ADMIN, CAP_BPF and CAP_PERFMON as uid 65534: loaded and attached")
		return
	}
	if rep.ProbeOK || rep.ProbeStep == string(StepCapabilities) {
		t.Errorf("Probe with the drop-in's capabilities where the kernel refuses: ok %v, step %q, reason %q; want a refusal that is not about capabilities",
			rep.ProbeOK, rep.ProbeStep, rep.ProbeReason)
	}
	t.Logf("Probe with the drop-in's capabilities: step %q: %s", rep.ProbeStep, rep.ProbeReason)
}

// TestForcerEndToEnd attaches the fmod_ret program where the kernel
// allows it and checks the real sockets of children: in a selected
// cgroup or below it, or with a selected uid, socket(AF_INET,
// SOCK_STREAM, 0) and socket(AF_INET6, SOCK_STREAM|flags, IPPROTO_TCP)
// make MPTCP sockets (SO_PROTOCOL 262) while UDP and Unix sockets stay
// what they are; in a sibling or the parent cgroup, with another uid,
// and in the test itself, TCP stays TCP; once the program is detached,
// the selected children get TCP again. Where the kernel refuses, it
// checks that Attach reports the refusal as Probe does (never a silent
// skip), and fails when the mechanism must work here (mustWork).
func TestForcerEndToEnd(t *testing.T) {
	needRoot(t)
	f, err := Attach()
	if err != nil {
		var ue *UnavailableError
		if !errors.As(err, &ue) {
			t.Fatalf("Attach: %v, want an *UnavailableError", err)
		}
		if why := mustWork(t); why != "" {
			t.Fatalf("%s, but Attach says %v", why, err)
		}
		if perr := Probe(); perr == nil || perr.Error() != err.Error() {
			t.Fatalf("Attach refused (%v) but Probe says %v", err, perr)
		}
		if !kernelHasHook(t) {
			netnstest.Degraded(t, "no %s hook: Attach refused, as Probe reports: %v", Hook, err)
			return
		}
		t.Logf("the fmod_ret program is refused here, as Probe reports: %v", err)
		return
	}
	attached := true
	defer func() {
		if attached {
			_ = f.Close()
		}
	}()
	cg := newTestCgroups(t)
	if err := f.AddCgroup(cgroupID(t, cg.unit)); err != nil {
		t.Fatal(err)
	}
	if err := f.AddUID(selectedUID); err != nil {
		t.Fatal(err)
	}
	calls := []call{
		{unix.AF_INET, unix.SOCK_STREAM, 0},
		{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, unix.IPPROTO_TCP},
		{unix.AF_INET, unix.SOCK_DGRAM, 0},
		{unix.AF_UNIX, unix.SOCK_STREAM, 0},
	}
	check := func(in string, uid uint32, selected bool) {
		t.Helper()
		rep := child{cgroup: in, uid: uid}.run(t, childSockets, calls)
		if diff := cmp.Diff(wantSockets(calls, selected), rep.Outcomes); diff != "" {
			t.Errorf("sockets in %s as uid %d, selected %v (-want +got):\n%s", in, uid, selected, diff)
		}
	}
	check(cg.unit, unselectedUID, true)
	check(cg.sub, unselectedUID, true)
	check(cg.other, unselectedUID, false)
	check(cg.top, unselectedUID, false)
	check(cg.other, selectedUID, true)
	check(cg.top, 0, false)
	var own []outcome
	for _, c := range calls {
		own = append(own, openSocket(c))
	}
	if diff := cmp.Diff(wantSockets(calls, false), own); diff != "" {
		t.Errorf("the test's own sockets (-want +got):\n%s", diff)
	}

	attached = false
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	check(cg.unit, unselectedUID, false)
	check(cg.other, selectedUID, false)
}

// wantSockets is what SO_PROTOCOL says of each call's socket: the
// decision's protocol, with 0 resolved to the family's default.
func wantSockets(calls []call, selected bool) []outcome {
	var want []outcome
	for _, c := range calls {
		p := wantProtocol(c, selected)
		if p == 0 && c.Family != unix.AF_UNIX {
			p = map[int32]int32{unix.SOCK_STREAM: unix.IPPROTO_TCP, unix.SOCK_DGRAM: unix.IPPROTO_UDP}[c.Type&0xf]
		}
		want = append(want, outcome{Protocol: p})
	}
	return want
}
