package dist

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// maxExposure is the highest `systemd-analyze security` exposure the unit
// may have (mptcpd's unit has 6.2).
const maxExposure = 1.5

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9]+(?:\.[0-9]+)?)`)

// exposure runs `systemd-analyze security --offline=yes` on a unit file and
// returns its overall exposure level.
func exposure(t *testing.T, unit string) float64 {
	t.Helper()
	sa := needTool(t, "systemd-analyze")
	out, err := runCmd("", []string{"SYSTEMD_COLORS=0"}, sa, "security", "--offline=yes", "--no-pager", unit)
	if err != nil {
		t.Fatal(err)
	}
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in the output of systemd-analyze security:\n%s", out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestUnitSecurity(t *testing.T) {
	t.Parallel()
	unit := filepath.Join(repoRoot(t), "dist", "mptcpgod.service")
	got := exposure(t, unit)
	t.Logf("systemd-analyze security --offline=yes: %.1f", got)
	if got > maxExposure {
		t.Errorf("exposure of %s is %.1f, want %.1f or lower (systemd-analyze security --offline=yes %[1]s lists the items)", unit, got, maxExposure)
	}
}

// TestUnitContract checks the settings the daemon and the issue rely on;
// the security score alone would not notice a lost watchdog or a unit that
// can no longer write the MPTCP sysctls.
func TestUnitContract(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "dist", "mptcpgod.service"))
	if err != nil {
		t.Fatal(err)
	}
	u, err := parseUnit(b)
	if err != nil {
		t.Fatalf("parse mptcpgod.service: %v", err)
	}
	tests := []struct {
		section, key string
		want         []string // nil: the key must be absent
	}{
		// READY=1 after the first reconcile; the engine loop feeds the watchdog.
		{"Service", "Type", []string{"notify"}},
		{"Service", "NotifyAccess", []string{"main"}},
		{"Service", "WatchdogSec", []string{"30s"}},
		{"Service", "Restart", []string{"on-failure"}},
		{"Service", "RestartPreventExitStatus", []string{"2"}}, // mptcpgod's bad usage or configuration
		{"Service", "ExecStart", []string{"/usr/bin/mptcpgod --config /etc/mptcpgod/mptcpgod.toml"}},
		{"Service", "ExecReload", []string{"/bin/kill -HUP $MAINPID"}},
		// Only CAP_NET_ADMIN, as the unprivileged service user.
		{"Service", "User", []string{"mptcpgod"}},
		{"Service", "Group", []string{"mptcpgod"}},
		{"Service", "AmbientCapabilities", []string{"CAP_NET_ADMIN"}},
		{"Service", "CapabilityBoundingSet", []string{"CAP_NET_ADMIN"}},
		{"Service", "NoNewPrivileges", []string{"yes"}},
		// The control socket's directory, the state, the configuration.
		{"Service", "RuntimeDirectory", []string{"mptcpgod"}},
		{"Service", "RuntimeDirectoryMode", []string{"0750"}},
		{"Service", "StateDirectory", []string{"mptcpgod"}},
		{"Service", "ConfigurationDirectory", []string{"mptcpgod"}},
		// /proc/sys read-only but net.mptcp.path_manager writable.
		{"Service", "ProtectKernelTunables", []string{"yes"}},
		{"Service", "ReadWritePaths", []string{"-/proc/sys/net/mptcp"}},
		{"Service", "RestrictAddressFamilies", []string{"AF_UNIX AF_NETLINK AF_INET AF_INET6"}},
		// The daemon manages the host's namespace: a private network or
		// user namespace would cut it off, and ProcSubset=pid would hide
		// /proc/sys.
		{"Service", "PrivateNetwork", nil},
		{"Service", "PrivateUsers", nil},
		{"Service", "ProcSubset", nil},
		{"Service", "DynamicUser", nil},
		{"Install", "WantedBy", []string{"multi-user.target"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, u[tt.section][tt.key]); diff != "" {
			t.Errorf("[%s] %s (-want +got):\n%s", tt.section, tt.key, diff)
		}
	}

	// The sysusers.d entry creates the user and group the unit runs as.
	b, err = os.ReadFile(filepath.Join(root, "dist", "sysusers.d", "mptcpgod.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "u" {
			users = append(users, f[1])
		}
	}
	if diff := cmp.Diff(u["Service"]["User"], users); diff != "" {
		t.Errorf("sysusers.d users vs the unit's User= (-unit +sysusers):\n%s", diff)
	}
}

// TestNetAdminIsEnough checks the kernel behaviour behind running the daemon
// as a non-root user with CAP_NET_ADMIN only: that capability, not uid 0,
// lets a process write net.mptcp.* sysctls (root-owned 0644 files) and send
// mptcp_pm commands; without it both are refused. Each case runs as nobody
// under setpriv in a namespace of its own.
func TestNetAdminIsEnough(t *testing.T) {
	t.Parallel()
	needRoot(t)
	needTool(t, "setpriv")
	pmSysctl, pmValue := "/proc/sys/net/mptcp/path_manager", "userspace"
	if _, err := os.Stat(pmSysctl); err != nil {
		pmSysctl, pmValue = "/proc/sys/net/mptcp/pm_type", "1" // before Linux 6.15
	}
	pm := []string{"sh", "-c", "echo " + pmValue + " >" + pmSysctl}
	endpoint := []string{"ip", "mptcp", "endpoint", "add", "192.0.2.1", "id", "100", "signal"}
	limits := []string{"ip", "mptcp", "limits", "set", "subflows", "4"}
	tests := []struct {
		name   string
		netAdm bool
		cmd    []string
		ok     bool
		check  []string // run as root afterwards
		effect string   // in check's output exactly when the command succeeded
	}{
		{"sysctl with CAP_NET_ADMIN", true, pm, true, []string{"cat", pmSysctl}, pmValue},
		{"sysctl without capabilities", false, pm, false, []string{"cat", pmSysctl}, pmValue},
		{"endpoint with CAP_NET_ADMIN", true, endpoint, true, []string{"ip", "mptcp", "endpoint", "show"}, "192.0.2.1 id 100 signal"},
		{"endpoint without capabilities", false, endpoint, false, []string{"ip", "mptcp", "endpoint", "show"}, "192.0.2.1"},
		{"limits with CAP_NET_ADMIN", true, limits, true, []string{"ip", "mptcp", "limits"}, "subflows 4"},
		{"limits without capabilities", false, limits, false, []string{"ip", "mptcp", "limits"}, "subflows 4"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := netnstest.NewHost(t, "cap"+strconv.Itoa(i))
			caps := "-all"
			if tt.netAdm {
				caps = "-all,+net_admin"
			}
			args := append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs",
				"--bounding-set=" + caps, "--inh-caps=" + caps, "--ambient-caps=" + caps}, tt.cmd...)
			out, err := h.Command("setpriv", args...).CombinedOutput()
			if got := err == nil; got != tt.ok {
				t.Fatalf("%s as nobody: succeeded %v, want %v (err %v)\n%s", strings.Join(tt.cmd, " "), got, tt.ok, err, out)
			}
			got := h.MustExec(tt.check...)
			if strings.Contains(got, tt.effect) != tt.ok {
				t.Errorf("after %s: %s = %q; contains %q: %v, want %v",
					strings.Join(tt.cmd, " "), strings.Join(tt.check, " "), got, tt.effect, !tt.ok, tt.ok)
			}
		})
	}
}

// TestBPFDropIn checks dist/mptcpgod-bpf.conf: the capabilities the BPF
// mechanism needs beside CAP_NET_ADMIN, the bpf system call, nothing
// else; and that systemd reads the unit with it applied (its exposure is
// logged: the drop-in is what raises it, the default unit stays at most
// maxExposure).
func TestBPFDropIn(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	dropIn, err := os.ReadFile(filepath.Join(root, "dist", "mptcpgod-bpf.conf"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseUnit(dropIn)
	if err != nil {
		t.Fatalf("parse mptcpgod-bpf.conf: %v", err)
	}
	want := unitFile{"Service": {
		"AmbientCapabilities":   {"CAP_NET_ADMIN CAP_BPF CAP_PERFMON"},
		"CapabilityBoundingSet": {"CAP_NET_ADMIN CAP_BPF CAP_PERFMON"},
		"SystemCallFilter":      {"bpf"},
	}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("mptcpgod-bpf.conf (-want +got):\n%s", diff)
	}
	unit, err := os.ReadFile(filepath.Join(root, "dist", "mptcpgod.service"))
	if err != nil {
		t.Fatal(err)
	}
	// The unit with the drop-in applied: its [Service] lines appended,
	// where a later assignment of these keys extends or replaces the
	// unit's as a drop-in's does.
	_, service, _ := strings.Cut(string(dropIn), "[Service]\n")
	merged := strings.Replace(string(unit), "\n[Install]\n", "\n"+service+"\n[Install]\n", 1)
	path := filepath.Join(t.TempDir(), "mptcpgod.service")
	if err := os.WriteFile(path, []byte(merged), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security --offline=yes of the unit with mptcpgod-bpf.conf: %.1f", exposure(t, path))
}
