package genl_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"golang.org/x/sys/unix"
)

// TestFeaturesKernel compares the detected family with `genl ctrl get name
// mptcp_pm` and checks that this kernel offers everything mptcpgod uses.
func TestFeaturesKernel(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "features")
	c := newClient(t, h)
	got := c.Features()

	out := h.MustExec("genl", "ctrl", "get", "name", "mptcp_pm")
	oracle := genl.Features{Events: strings.Contains(out, "name: mptcp_pm_events")}
	if m := regexp.MustCompile(`Version: 0x([0-9a-f]+)`).FindStringSubmatch(out); m != nil {
		oracle.Version = uint32(parseHex32(t, m[1]))
	}
	if m := regexp.MustCompile(`ID: 0x([0-9a-f]+)`).FindStringSubmatch(out); m != nil {
		oracle.ID = uint16(parseHex32(t, m[1]))
	}
	cmds, _, _ := strings.Cut(out, "multicast groups")
	for _, m := range regexp.MustCompile(`ID-0x([0-9a-f]+)`).FindAllStringSubmatch(cmds, -1) {
		oracle.Commands = append(oracle.Commands, genl.Command(parseHex32(t, m[1])))
	}
	// The kernel lists the commands in its own order (6.1: get-addr after
	// flush-addrs); Features has them in ascending order.
	slices.Sort(oracle.Commands)
	if diff := cmp.Diff(oracle, got); diff != "" {
		t.Errorf("Features differ from `genl ctrl get name mptcp_pm` (-genl ctrl +Features):\n%s\n%s", diff, out)
	}

	// The family id is the kernel's to choose (0x1c on Debian's 6.1).
	want := genl.Features{ID: got.ID, Version: 1, Events: true}
	if got.ID == 0 {
		t.Error("Features().ID = 0")
	}
	for cmd := genl.CmdAddAddr; cmd <= genl.CmdSubflowDestroy; cmd++ {
		want.Commands = append(want.Commands, cmd)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Features on this kernel (-want +got):\n%s", diff)
	}
	for _, cmd := range want.Commands {
		if !c.Supports(cmd) {
			t.Errorf("Supports(%v) = false, want true", cmd)
		}
	}
	for _, cmd := range []genl.Command{0, genl.CmdSubflowDestroy + 1, 255} {
		if c.Supports(cmd) {
			t.Errorf("Supports(%v) = true for a command the kernel lacks", cmd)
		}
	}

	// Features returns a copy.
	got.Commands[0] = 200
	if !c.Supports(genl.CmdAddAddr) || c.Features().Commands[0] != genl.CmdAddAddr {
		t.Errorf("changing the slice Features returned changed the client")
	}
}

// TestPathManager switches the namespace's path manager back and forth and
// checks each state with sysctl inside the namespace and in another one.
func TestPathManager(t *testing.T) {
	t.Parallel()
	h, other := netnstest.NewHost(t, "pm"), netnstest.NewHost(t, "pm_other")
	c, oc := newClient(t, h), newClient(t, other)
	sysctl := func(h *netnstest.Host, key string) string {
		t.Helper()
		return strings.TrimSpace(h.MustExec("sysctl", "-n", key))
	}
	// Before 6.15 there is only pm_type, which the client reads and sets.
	hasPathManager := netnstest.KernelHas(genl.CapPathManagerSysctl)
	check := func(want genl.PathManager, pmType string) {
		t.Helper()
		if got, err := c.PathManager(); err != nil || got != want {
			t.Errorf("PathManager = %q, %v; want %q", got, err, want)
		}
		if hasPathManager {
			if got := sysctl(h, "net.mptcp.path_manager"); got != string(want) {
				t.Errorf("sysctl net.mptcp.path_manager = %q, want %q", got, want)
			}
		}
		if got := sysctl(h, "net.mptcp.pm_type"); got != pmType {
			t.Errorf("sysctl net.mptcp.pm_type = %q, want %q", got, pmType)
		}
		if got, err := oc.PathManager(); err != nil || got != genl.PathManagerKernel {
			t.Errorf("PathManager of another namespace = %q, %v; want it untouched", got, err)
		}
		if got := sysctl(other, "net.mptcp.pm_type"); got != "0" {
			t.Errorf("sysctl net.mptcp.pm_type of another namespace = %q, want 0", got)
		}
	}
	if !hasPathManager {
		netnstest.Degraded(t, "no net.mptcp.path_manager (Linux %s): checked net.mptcp.pm_type alone", genl.CapPathManagerSysctl.Since)
		if out, err := h.Exec("sysctl", "-n", "net.mptcp.path_manager"); err == nil {
			t.Errorf("sysctl net.mptcp.path_manager = %q on a kernel that has none", out)
		}
	}

	check(genl.PathManagerKernel, "0")
	if err := c.SetPathManager(genl.PathManagerUserspace); err != nil {
		t.Fatalf("SetPathManager(userspace): %v", err)
	}
	check(genl.PathManagerUserspace, "1")
	if err := c.SetPathManager(genl.PathManagerKernel); err != nil {
		t.Fatalf("SetPathManager(kernel): %v", err)
	}
	check(genl.PathManagerKernel, "0")

	// A change made outside the client is what the client reads.
	if hasPathManager {
		h.Sysctl("net.mptcp.path_manager", "userspace")
	} else {
		h.Sysctl("net.mptcp.pm_type", "1")
	}
	check(genl.PathManagerUserspace, "1")

	if err := c.SetPathManager("bpf"); err == nil || !strings.Contains(err.Error(), `"bpf"`) {
		t.Errorf("SetPathManager(bpf) = %v, want an error naming the value", err)
	}
	check(genl.PathManagerUserspace, "1")
}

// TestChecksums sets net.mptcp.checksum_enabled in one namespace and
// reads it back, leaving another namespace's alone.
func TestChecksums(t *testing.T) {
	t.Parallel()
	h, other := netnstest.NewHost(t, "csum"), netnstest.NewHost(t, "csum_other")
	c, oc := newClient(t, h), newClient(t, other)
	check := func(want bool) {
		t.Helper()
		if got, err := c.Checksums(); err != nil || got != want {
			t.Errorf("Checksums = %v, %v; want %v", got, err, want)
		}
		wantSysctl := "0"
		if want {
			wantSysctl = "1"
		}
		if got := strings.TrimSpace(h.MustExec("sysctl", "-n", "net.mptcp.checksum_enabled")); got != wantSysctl {
			t.Errorf("sysctl net.mptcp.checksum_enabled = %q, want %q", got, wantSysctl)
		}
		if got, err := oc.Checksums(); err != nil || got {
			t.Errorf("Checksums of another namespace = %v, %v; want it untouched (false)", got, err)
		}
	}
	check(false)
	if err := c.SetChecksums(true); err != nil {
		t.Fatalf("SetChecksums(true): %v", err)
	}
	check(true)
	if err := c.SetChecksums(false); err != nil {
		t.Fatalf("SetChecksums(false): %v", err)
	}
	check(false)
}

// TestEnabled reads net.mptcp.enabled and checks that CheckEnabled explains
// a namespace where MPTCP is off.
func TestEnabled(t *testing.T) {
	t.Parallel()
	on, off := netnstest.NewHost(t, "enabled"), netnstest.NewHost(t, "disabled")
	off.Sysctl("net.mptcp.enabled", "0")
	if got := strings.TrimSpace(off.MustExec("sysctl", "-n", "net.mptcp.enabled")); got != "0" {
		t.Fatalf("sysctl net.mptcp.enabled = %q after setting 0", got)
	}
	con, coff := newClient(t, on), newClient(t, off)

	if ok, err := con.Enabled(); err != nil || !ok {
		t.Errorf("Enabled = %v, %v; want true", ok, err)
	}
	if err := con.CheckEnabled(); err != nil {
		t.Errorf("CheckEnabled = %v, want nil", err)
	}
	if ok, err := coff.Enabled(); err != nil || ok {
		t.Errorf("Enabled with net.mptcp.enabled=0 = %v, %v; want false", ok, err)
	}
	err := coff.CheckEnabled()
	if !errors.Is(err, genl.ErrUnavailable) {
		t.Errorf("CheckEnabled with net.mptcp.enabled=0 = %v, want an error wrapping ErrUnavailable", err)
	}
	if err == nil || !strings.Contains(err.Error(), "net.mptcp.enabled") {
		t.Errorf("CheckEnabled error %q does not name net.mptcp.enabled", err)
	}
	// The family stays usable for configuration.
	if _, err := coff.Limits(); err != nil {
		t.Errorf("Limits with net.mptcp.enabled=0: %v", err)
	}
}

// TestNetNS checks that a client acts in its own namespace only, whether
// given a namespace fd (which it duplicates) or created on a thread inside
// the namespace.
func TestNetNS(t *testing.T) {
	t.Parallel()
	a, b := netnstest.NewHost(t, "nsa"), netnstest.NewHost(t, "nsb")
	epA := genl.Endpoint{ID: 11, Addr: families[0].docAddr(11), Flags: genl.FlagSignal}
	epB := genl.Endpoint{ID: 12, Addr: families[1].docAddr(12), Flags: genl.FlagSubflow}

	// Config.NetNS: an fd the caller closes right after New.
	fd, err := unix.Open(filepath.Join("/run/netns", a.Name()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open namespace %s: %v", a.Name(), err)
	}
	ca, err := genl.New(&genl.Config{NetNS: fd})
	_ = unix.Close(fd)
	if err != nil {
		t.Fatalf("New in %s: %v", a.Name(), err)
	}
	t.Cleanup(func() { _ = ca.Close() })

	// No Config, created on a thread inside b, used from anywhere.
	var cb *genl.Client
	if err := b.Do(func() error {
		var err error
		cb, err = genl.New(nil)
		return err
	}); err != nil {
		t.Fatalf("New inside %s: %v", b.Name(), err)
	}
	t.Cleanup(func() { _ = cb.Close() })

	if err := ca.AddEndpoint(epA); err != nil {
		t.Fatalf("AddEndpoint through the client of %s: %v", a.Name(), err)
	}
	if err := cb.AddEndpoint(epB); err != nil {
		t.Fatalf("AddEndpoint through the client of %s: %v", b.Name(), err)
	}
	ipN := func(name string) string {
		t.Helper()
		out, err := exec.Command("ip", "-n", name, "mptcp", "endpoint", "show").CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s mptcp endpoint show: %v\n%s", name, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tt := range []struct {
		h     *netnstest.Host
		c     *genl.Client
		want  genl.Endpoint
		flags string
	}{{a, ca, epA, "signal"}, {b, cb, epB, "subflow"}} {
		line := tt.want.Addr.String() + " id " + strconv.Itoa(int(tt.want.ID)) + " " + tt.flags
		if got := ipN(tt.h.Name()); got != line {
			t.Errorf("ip -n %s mptcp endpoint show = %q, want %q", tt.h.Name(), got, line)
		}
		got, err := tt.c.Endpoints()
		if err != nil {
			t.Fatalf("Endpoints in %s: %v", tt.h.Name(), err)
		}
		if diff := cmp.Diff([]genl.Endpoint{tt.want}, got, cmpOpts); diff != "" {
			t.Errorf("Endpoints in %s (-want +got):\n%s", tt.h.Name(), diff)
		}
	}
	// The test process's own namespace is untouched.
	out, err := exec.Command("ip", "mptcp", "endpoint", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip mptcp endpoint show: %v\n%s", err, out)
	}
	for _, ep := range []genl.Endpoint{epA, epB} {
		if strings.Contains(string(out), ep.Addr.String()+" ") {
			t.Errorf("the test's own namespace has the endpoint %v:\n%s", ep.Addr, out)
		}
	}
	// An fd that is no namespace fails cleanly.
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if c, err := genl.New(&genl.Config{NetNS: int(null.Fd())}); err == nil {
		_ = c.Close()
		t.Errorf("New with %s as namespace: got nil error", os.DevNull)
	}
}

// TestKernelCapabilities checks what Kernel detected against the tests'
// own oracles: the kernel's release for every capability, the sysctls
// for those they show, and for the per-connection address dump what the
// kernel answers to one.
func TestKernelCapabilities(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "caps")
	c := newClient(t, h)
	k := c.Kernel()
	if k.Release != netnstest.KernelRelease() {
		t.Errorf("Kernel().Release = %q, want %q", k.Release, netnstest.KernelRelease())
	}
	for _, cp := range genl.Capabilities {
		want := netnstest.KernelHas(cp)
		if got := k.Has(cp); got != want {
			t.Errorf("Kernel().Has(%s) = %v; Linux %s has it since %s", cp.ID, got, k.Release, cp.Since)
		}
		if !want {
			netnstest.Degraded(t, "%s missing (Linux %s): detected; mptcpgod: %s", cp.Name, cp.Since, cp.Without)
		}
	}
	sysctl := func(name string) bool {
		_, err := h.Exec("sysctl", "-n", "net.mptcp."+name)
		return err == nil
	}
	for _, tt := range []struct {
		cp     genl.Capability
		sysctl string
	}{{genl.CapPathManagerSysctl, "path_manager"}, {genl.CapSchedulers, "scheduler"}, {genl.CapUserspacePM, "pm_type"}} {
		if got, want := k.Has(tt.cp), sysctl(tt.sysctl); got != want {
			t.Errorf("Kernel().Has(%s) = %v, but sysctl net.mptcp.%s exists: %v", tt.cp.ID, got, tt.sysctl, want)
		}
	}

	// With an endpoint in the namespace, a kernel without the
	// per-connection dump answers a dump for a token with the endpoint:
	// the client refuses to ask it, naming the release that brings it.
	ep := genl.Endpoint{ID: 1, Addr: families[0].docAddr(1), Flags: genl.FlagSubflow}
	if err := c.AddEndpoint(ep); err != nil {
		t.Fatal(err)
	}
	addrs, err := c.ConnectionAddrs(0x1234)
	if k.Has(genl.CapConnAddrDump) {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ConnectionAddrs(no such token) = %+v, %v; want an error matching os.ErrNotExist", addrs, err)
		}
	} else {
		if !errors.Is(err, genl.ErrUnsupported) || !strings.Contains(err.Error(), "Linux "+genl.CapConnAddrDump.Since) {
			t.Errorf("ConnectionAddrs on Linux %s = %+v, %v; want ErrUnsupported naming Linux %s", k.Release, addrs, err, genl.CapConnAddrDump.Since)
		}
		out := h.MustExec("ip", "mptcp", "endpoint", "show")
		if !strings.Contains(out, ep.Addr.String()) {
			t.Errorf("ip mptcp endpoint show lost the endpoint:\n%s", out)
		}
	}
}
