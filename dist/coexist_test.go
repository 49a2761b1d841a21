package dist

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/godbus/dbus/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/plugins/exec"
)

// The test binary's other roles in the container (see TestMain).
const (
	// busNameEnv makes it own the D-Bus name it holds on the system bus,
	// as a stand-in for NetworkManager.
	busNameEnv = "MPTCPGOD_SANDBOX_BUSNAME"
	// pluginEnv makes it an exec plugin that passes plans through, after
	// writing what it was given (pluginReport) to the file it holds.
	pluginEnv = "MPTCPGOD_SANDBOX_PLUGIN"
)

// ownBusName owns name on the system bus, tells systemd it is ready and
// waits for SIGTERM.
func ownBusName(name string) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bus:", err)
		return 1
	}
	defer conn.Close()
	if reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		fmt.Fprintln(os.Stderr, "bus: request name:", reply, err)
		return 1
	}
	_, _ = sd.SdNotify(false, sd.SdNotifyReady)
	<-sigs
	return 0
}

// pluginReport is what the plugin role finds it was given.
type pluginReport struct {
	UID   int
	Caps  map[string]string
	NNP   string
	Dir   string
	Env   []string
	Limit string // RLIMIT_NOFILE, soft and hard
	// WX is "allowed" when memory both writable and executable could be
	// mapped, as a JIT compiler maps it, else the error.
	WX string
}

// plugin writes the report to file, then answers the exec protocol with
// the plans it is given.
func plugin(file string) int {
	r := pluginReport{UID: os.Getuid(), Caps: map[string]string{}, Env: os.Environ()}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin:", err)
		return 1
	}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case strings.HasPrefix(k, "Cap"):
			r.Caps[k] = strings.TrimSpace(v)
		case k == "NoNewPrivs":
			r.NNP = strings.TrimSpace(v)
		}
	}
	r.Dir, _ = os.Getwd()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		r.Limit = fmt.Sprintf("%d/%d", lim.Cur, lim.Max)
	}
	r.WX = "allowed"
	if m, err := syscall.Mmap(-1, 0, os.Getpagesize(), syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC,
		syscall.MAP_PRIVATE|syscall.MAP_ANON); err != nil {
		r.WX = err.Error()
	} else {
		_ = syscall.Munmap(m)
	}
	b, _ := json.Marshal(r)
	if err := os.WriteFile(file, b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "plugin:", err)
		return 1
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, exec.MaxLine)
	for in.Scan() {
		var req struct {
			Type string          `json:"type"`
			ID   uint64          `json:"id"`
			Next json.RawMessage `json:"next"`
		}
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			return 2
		}
		var ans any = map[string]any{"type": req.Type, "id": req.ID, "plan": req.Next}
		if req.Type == "hello" {
			ans = map[string]any{"type": "hello", "version": exec.Version, "name": "sandbox-report"}
		}
		b, _ := json.Marshal(ans)
		fmt.Printf("%s\n", b)
	}
	return 0
}

// daemonWithPlugin boots a container running the real daemon under the
// unit, with the drop-in extra added, the chain fullmesh | exec and the
// test binary as the exec plugin (its report lands in state/plugin.json);
// binds are more read-only binds. The plugin's memory is not limited: the
// race detector of a -race test binary maps gigabytes.
func daemonWithPlugin(t *testing.T, extra string, binds ...string) (c *container, state string) {
	t.Helper()
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "mptcpgod")
	mustRun(t, repoRoot(t), nil, "go", "build", "-o", bin, "./cmd/mptcpgod")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(tmp, "test.toml")
	if err := os.WriteFile(config, []byte(`[[policy.chain]]
name = "fullmesh"

[[policy.chain]]
name = "exec"
[policy.chain.config]
command = ["/opt/mptcpgod-probe"]
env = { `+pluginEnv+` = "/var/lib/mptcpgod/plugin.json" }
limits = { open_files = 64, memory = "0" }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	state = t.TempDir()
	c = bootContainer(t, extra+"\n[Service]\nExecStart=\nExecStart=/opt/mptcpgod --config /opt/test.toml\n",
		append([]string{bin + ":/opt/mptcpgod", exe + ":/opt/mptcpgod-probe", config + ":/opt/test.toml"}, binds...), state)
	c.waitActive(90 * time.Second)
	return c, state
}

// report waits for the plugin's report in state.
func (c *container) report(state string) pluginReport {
	c.t.Helper()
	var r pluginReport
	c.waitFor("the plugin's report", 30*time.Second, func() (bool, error) {
		b, err := os.ReadFile(filepath.Join(state, "plugin.json"))
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		return err == nil, err
	})
	return r
}

// TestUnitCoexistence runs the real daemon under the unit in a container
// where mptcpd runs under its own unit (DynamicUser: the daemon's
// ProtectProc=invisible hides its process) and a stand-in NetworkManager
// owns its name on the system bus: the daemon must warn about both all
// the same, from the kernel's state and the bus. Its exec plugin must run
// without a capability but the bounding set the daemon cannot drop, with
// no_new_privs, in /, with the minimal environment and its limits.
func TestUnitCoexistence(t *testing.T) {
	t.Parallel()
	needRoot(t)
	needInstallInputs(t)
	if _, err := os.Stat("/usr/libexec/mptcpd"); err != nil {
		runtest.Unavailable(t, fmt.Sprintf("mptcpd not installed (apt-get install mptcpd): %v", err))
	}
	gc, err := genl.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	group := gc.EventsGroup()
	gc.Close()
	if group == 0 || group > 32 {
		t.Fatalf("mptcp_pm_events is group %d: /proc/net/netlink shows groups 1 to 32 only", group)
	}

	tmp := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nmUnit := write("fake-nm.service", "[Service]\nType=dbus\nBusName=org.freedesktop.NetworkManager\n"+
		"Environment="+busNameEnv+"=org.freedesktop.NetworkManager\nExecStart=/opt/mptcpgod-probe\n")
	nmPolicy := write("fake-nm.conf", `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><policy user="root"><allow own="org.freedesktop.NetworkManager"/></policy></busconfig>
`)
	c, state := daemonWithPlugin(t, "[Unit]\nWants=fake-nm.service\nAfter=fake-nm.service\n",
		nmUnit+":/etc/systemd/system/fake-nm.service", nmPolicy+":/etc/dbus-1/system.d/fake-nm.conf")

	// mptcpd follows the path manager once it has joined the events group.
	if out, err := c.exec("systemctl", "start", "mptcp.service"); err != nil {
		t.Fatalf("start mptcpd: %v\n%s", err, out)
	}
	c.waitFor("mptcpd joined the path manager's events", 60*time.Second, func() (bool, error) {
		out, err := c.exec("cat", "/proc/net/netlink")
		if err != nil {
			return false, err
		}
		for line := range strings.Lines(out) {
			f := strings.Fields(line)
			if len(f) < 4 || f[1] != "16" {
				continue
			}
			groups, err := strconv.ParseUint(f[3], 16, 32)
			if err == nil && groups&(1<<(group-1)) != 0 {
				return true, nil
			}
		}
		return false, fmt.Errorf("no generic netlink socket in group %d:\n%s", group, out)
	})
	if out, err := c.exec("systemctl", "restart", "mptcpgod.service"); err != nil {
		t.Fatalf("restart mptcpgod: %v\n%s", err, out)
	}
	c.waitActive(90 * time.Second)
	c.waitFor("the daemon's warnings", 30*time.Second, func() (bool, error) {
		journal, err := c.exec("journalctl", "--no-pager", "-o", "cat", "-u", "mptcpgod.service")
		if err != nil {
			return false, err
		}
		for _, w := range []string{
			"another program follows the MPTCP path manager's events in this namespace",
			"NetworkManager is running and may add MPTCP endpoints of its own",
		} {
			if !strings.Contains(journal, w) {
				return false, fmt.Errorf("no warning %q", w)
			}
		}
		return true, nil
	})

	r := c.report(state)
	if r.UID == 0 {
		t.Errorf("the plugin runs as root")
	}
	const netAdmin = "0000000000001000"
	want := map[string]string{"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": netAdmin, "CapAmb": "0000000000000000"}
	if diff := cmp.Diff(want, r.Caps); diff != "" {
		t.Errorf("the plugin's capabilities under the unit (-want +got):\n%s", diff)
	}
	if r.NNP != "1" || r.Dir != "/" || r.Limit != "64/64" {
		t.Errorf("the plugin runs with no_new_privs %q in %q with RLIMIT_NOFILE %s, want 1, / and 64/64", r.NNP, r.Dir, r.Limit)
	}
	if r.WX == "allowed" {
		t.Errorf("the plugin mapped writable executable memory under MemoryDenyWriteExecute=yes")
	}
	slices.Sort(r.Env)
	wantEnv := []string{"HOME=/", "LANG=C.UTF-8", pluginEnv + "=/var/lib/mptcpgod/plugin.json", "PATH=" + exec.BaseEnv["PATH"]}
	if diff := cmp.Diff(wantEnv, r.Env); diff != "" {
		t.Errorf("the plugin's environment under the unit (-want +got):\n%s", diff)
	}
}

// TestUnitJITDropIn: the drop-in docs/plugins.md gives for JIT languages
// lets the plugin map memory both writable and executable, as a JIT
// compiler does, which the unit alone refuses (TestUnitCoexistence).
func TestUnitJITDropIn(t *testing.T) {
	t.Parallel()
	needRoot(t)
	needInstallInputs(t)
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "plugins.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(doc), "\n## JIT languages and the systemd unit\n")
	_, block, ok := strings.Cut(section, "```ini\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 || !strings.Contains(block, "MemoryDenyWriteExecute=no") {
		t.Fatalf("docs/plugins.md has no drop-in block for JIT languages")
	}
	c, state := daemonWithPlugin(t, block)
	if r := c.report(state); r.WX != "allowed" {
		t.Errorf("with the JIT drop-in, mapping writable executable memory: %s", r.WX)
	}
}
