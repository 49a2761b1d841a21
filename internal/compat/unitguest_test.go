package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUnitGuestInitramfs: the unit guest boots systemd from the shared
// /usr after loading the 9p and sock_diag modules in order, with the
// shipped unit, drop-in and sysusers entry as they are, the shipped
// configuration forcing one test service by unit and another by the uid
// it runs as, which the guest's passwd has, and a third test service the
// configuration does not name.
func TestUnitGuestInitramfs(t *testing.T) {
	t.Parallel()
	mods := fakeModules(t,
		"kernel/fs/netfs/netfs.ko.xz:",
		"kernel/net/9p/9pnet.ko.xz: kernel/fs/netfs/netfs.ko.xz",
		"kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz",
		"kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz",
		"kernel/net/ipv4/inet_diag.ko.xz:",
		"kernel/net/ipv4/tcp_diag.ko.xz: kernel/net/ipv4/inet_diag.ko.xz",
		"kernel/net/mptcp/mptcp_diag.ko.xz: kernel/net/ipv4/inet_diag.ko.xz",
	)
	b := fakeBuild(t, nil)
	img := &Image{Kernel: Kernel{Name: "6.12"}, Release: "6.12.118+deb12-amd64", ModDir: mods}
	fsys, shares, err := UnitGuestInitramfs(img, b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]HostShare{{Tag: "usr", Path: "/usr"}}, shares); diff != "" {
		t.Errorf("shares (-want +got):\n%s", diff)
	}
	paths := fsys.Paths()
	for _, p := range []string{"/init", PlanPath, guestDaemon, guestCLI, "/bin", "/lib64", "/etc/os-release",
		"/etc/systemd/system/mptcpgod.service", "/etc/systemd/system/mptcpgod.service.d/bpf.conf",
		"/etc/systemd/system/check.service", "/compat/check.sh", "/etc/systemd/system/forced.service",
		"/etc/systemd/system/plain.service", "/etc/systemd/system/byuid.service", "/etc/systemd/system/runtime.service",
		"/compat/modules/kernel/net/mptcp/mptcp_diag.ko.xz"} {
		if !slices.Contains(paths, p) {
			t.Errorf("the initramfs has no %s", p)
		}
	}

	etc, err := unitEtc(b.ModRoot)
	if err != nil {
		t.Fatal(err)
	}
	for guest, rel := range map[string]string{
		"/etc/systemd/system/mptcpgod.service":            "dist/mptcpgod.service",
		"/etc/systemd/system/mptcpgod.service.d/bpf.conf": "dist/mptcpgod-bpf.conf",
		"/etc/sysusers.d/mptcpgod.conf":                   "dist/sysusers.d/mptcpgod.conf",
	} {
		want, err := os.ReadFile(filepath.Join(b.ModRoot, rel))
		if err != nil {
			t.Fatal(err)
		}
		if etc[guest] != string(want) {
			t.Errorf("%s is not %s as shipped", guest, rel)
		}
	}
	conf := etc["/etc/mptcpgod/mptcpgod.toml"]
	if !strings.Contains(conf, "\n[force]\n") || !strings.Contains(conf, "\nunits = [\"forced.service\"]\n") ||
		!strings.Contains(conf, "\nuids = [1001]\n") {
		t.Errorf("the configuration does not force forced.service and uid 1001:\n%s", conf)
	}
	if strings.Contains(conf, "runtime.service") {
		t.Error("the configuration names runtime.service, which the check forces at run time")
	}
	if !strings.Contains(etc["/etc/systemd/system/byuid.service"], "\nUser=1001\n") ||
		!strings.Contains(etc["/etc/passwd"], "\nbyuid:x:1001:1001:") || !strings.Contains(etc["/etc/group"], "\nbyuid:x:1001:") {
		t.Errorf("byuid.service does not run as uid 1001 of the guest's passwd:\n%s\n%s%s",
			etc["/etc/systemd/system/byuid.service"], etc["/etc/passwd"], etc["/etc/group"])
	}
	check := etc["/compat/check.sh"]
	for _, cmd := range []string{guestCLI + " force unit --mechanism bpf runtime.service", guestCLI + " force unit --off runtime.service"} {
		if !strings.Contains(check, "\n"+cmd+" ") {
			t.Errorf("the check does not run %q", cmd)
		}
	}
}

// TestForceConfig: the [force] section's units and uids are replaced,
// and a file without them there is an error.
func TestForceConfig(t *testing.T) {
	t.Parallel()
	conf := "[daemon]\nunits = []\nuids = []\n\n[force]\n# comment\nunits = []\nuids = []\n\n[policy]\nuids = []\n"
	got, err := forceConfig(conf, "a.service", 1001)
	want := "[daemon]\nunits = []\nuids = []\n\n[force]\n# comment\nunits = [\"a.service\"]\nuids = [1001]\n\n[policy]\nuids = []\n"
	if err != nil || got != want {
		t.Errorf("forceConfig = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{
		"[force]\nunits = []\nuids = []\n",
		"x = 1\n\n[force]\nunits = [\"b.service\"]\nuids = []\n",
		"x = 1\n\n[force]\nunits = []\n\n[policy]\nuids = []\n",
	} {
		if _, err := forceConfig(bad, "a.service", 1001); err == nil {
			t.Errorf("forceConfig(%q) took it", bad)
		}
	}
}

// TestReadUnitVerdict reads the check's line through the terminal's
// carriage returns, and fails without one.
func TestReadUnitVerdict(t *testing.T) {
	t.Parallel()
	out := "== ss -Mln\r\nLISTEN ...\r\n" +
		"result daemon=active first=mptcp restarted=mptcp uid=mptcp runtime=mptcp runtime-off=tcp plain=tcp busy=" + fmt.Sprintf("%d/%d", BusyRestarts, BusyRestarts) + " early=1 early-restarted=0\r\n"
	v, err := ReadUnitVerdict(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	good := UnitVerdict{Daemon: "active", First: "mptcp", Restarted: "mptcp", UID: "mptcp", RunTime: "mptcp", RunTimeOff: "tcp", Plain: "tcp", BusyMPTCP: BusyRestarts, BusyRuns: BusyRestarts, Early: "1", EarlyRestarted: "0"}
	if diff := cmp.Diff(&good, v); diff != "" {
		t.Errorf("verdict (-want +got):\n%s", diff)
	}
	if !v.OK() {
		t.Error("not OK")
	}
	for _, change := range []func(*UnitVerdict){
		func(v *UnitVerdict) { v.Daemon = "failed" },
		func(v *UnitVerdict) { v.First = "tcp" },
		func(v *UnitVerdict) { v.Restarted = "tcp" },
		func(v *UnitVerdict) { v.UID = "tcp" },
		func(v *UnitVerdict) { v.RunTime = "tcp" },
		func(v *UnitVerdict) { v.RunTimeOff = "mptcp" },
		func(v *UnitVerdict) { v.Plain = "mptcp" },
		func(v *UnitVerdict) { v.UID = "" }, // a line without the kind
		func(v *UnitVerdict) { v.BusyMPTCP-- },
		func(v *UnitVerdict) { v.Early = "0" },
		func(v *UnitVerdict) { v.EarlyRestarted = "1" },
		func(v *UnitVerdict) { v.BusyMPTCP, v.BusyRuns = 0, 0 }, // no busy restarts
	} {
		bad := good
		change(&bad)
		if bad.OK() {
			t.Errorf("%+v is OK", bad)
		}
	}
	if _, err := ReadUnitVerdict(strings.NewReader("== ss -Mln\n")); err == nil {
		t.Error("no verdict line, no error")
	}
}
