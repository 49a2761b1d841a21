package compat

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestUnitGuestInitramfs: the unit guest boots systemd from the shared
// /usr after loading the 9p and sock_diag modules in order, with the
// shipped unit, drop-in and sysusers entry as they are, and the shipped
// configuration forcing the test service.
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
		"/etc/systemd/system/check.service", "/compat/check.sh",
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
	if conf := etc["/etc/mptcpgod/mptcpgod.toml"]; !strings.Contains(conf, "\n[force]\n") ||
		!strings.Contains(conf, "\nunits = [\"forced.service\"]\n") {
		t.Errorf("the configuration does not force forced.service:\n%s", conf)
	}
}

// TestForceUnits: the [force] section's units are replaced, and a file
// without them is an error.
func TestForceUnits(t *testing.T) {
	t.Parallel()
	conf := "[daemon]\nunits = []\n\n[force]\n# comment\nunits = []\nuids = []\n"
	got, err := forceUnits(conf, "a.service")
	want := "[daemon]\nunits = []\n\n[force]\n# comment\nunits = [\"a.service\"]\nuids = []\n"
	if err != nil || got != want {
		t.Errorf("forceUnits = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"[force]\nunits = []\n", "x = 1\n\n[force]\nunits = [\"b.service\"]\n"} {
		if _, err := forceUnits(bad, "a.service"); err == nil {
			t.Errorf("forceUnits(%q) took it", bad)
		}
	}
}

// TestReadUnitVerdict reads the check's line through the terminal's
// carriage returns, and fails without one.
func TestReadUnitVerdict(t *testing.T) {
	t.Parallel()
	out := "== ss -Mln\r\nLISTEN ...\r\nresult daemon=active first=mptcp restarted=mptcp plain=tcp\r\n"
	v, err := ReadUnitVerdict(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&UnitVerdict{Daemon: "active", First: "mptcp", Restarted: "mptcp", Plain: "tcp"}, v); diff != "" {
		t.Errorf("verdict (-want +got):\n%s", diff)
	}
	if !v.OK() {
		t.Error("not OK")
	}
	for _, bad := range []UnitVerdict{
		{Daemon: "failed", First: "mptcp", Restarted: "mptcp", Plain: "tcp"},
		{Daemon: "active", First: "tcp", Restarted: "mptcp", Plain: "tcp"},
		{Daemon: "active", First: "mptcp", Restarted: "tcp", Plain: "tcp"},
		{Daemon: "active", First: "mptcp", Restarted: "mptcp", Plain: "mptcp"},
	} {
		if bad.OK() {
			t.Errorf("%+v is OK", bad)
		}
	}
	if _, err := ReadUnitVerdict(strings.NewReader("== ss -Mln\n")); err == nil {
		t.Error("no verdict line, no error")
	}
}
