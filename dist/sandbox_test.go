package dist

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/journal"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// probeEnv makes the test binary act as the sandbox probe (see TestMain).
const probeEnv = "MPTCPGOD_SANDBOX_PROBE"

// probeEntrySize is the size of the message the probe logs to the
// journal, too large for a datagram.
const probeEntrySize = 1 << 20

// probeResults and probeReloads are the files the probe writes into its
// state directory.
const (
	probeResults = "probe.json"
	probeReloads = "reloads"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(probeEnv) == "1":
		os.Exit(sandboxProbe())
	case os.Getenv(busNameEnv) != "":
		os.Exit(ownBusName(os.Getenv(busNameEnv)))
	case os.Getenv(pluginEnv) != "":
		os.Exit(plugin(os.Getenv(pluginEnv)))
	}
	os.Exit(daemontest.Main(m))
}

// probeChecks are what the daemon does (or must not be able to do) under
// the unit's sandbox; each returns nil when the sandbox behaves.
func probeChecks() []struct {
	name string
	fn   func() error
} {
	return []struct {
		name string
		fn   func() error
	}{
		{"runs as a non-root user", func() error {
			if os.Getuid() == 0 || os.Geteuid() == 0 {
				return fmt.Errorf("uid %d euid %d", os.Getuid(), os.Geteuid())
			}
			return nil
		}},
		{"has CAP_NET_ADMIN and no other capability", func() error {
			b, err := os.ReadFile("/proc/self/status")
			if err != nil {
				return err
			}
			const netAdmin = "0000000000001000"
			for _, line := range strings.Split(string(b), "\n") {
				k, v, _ := strings.Cut(line, ":")
				switch k {
				case "CapEff", "CapPrm", "CapBnd", "CapAmb":
					if v = strings.TrimSpace(v); v != netAdmin {
						return fmt.Errorf("%s = %s, want %s", k, v, netAdmin)
					}
				}
			}
			return nil
		}},
		{"sets net.mptcp.path_manager", func() error {
			c, err := genl.New(nil)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.SetPathManager(genl.PathManagerUserspace); err != nil {
				return err
			}
			pm, err := c.PathManager()
			if err != nil {
				return err
			}
			if pm != genl.PathManagerUserspace {
				return fmt.Errorf("path manager %q after setting %q", pm, genl.PathManagerUserspace)
			}
			return c.SetPathManager(genl.PathManagerKernel)
		}},
		{"adds and deletes an endpoint, sets limits", func() error {
			c, err := genl.New(nil)
			if err != nil {
				return err
			}
			defer c.Close()
			ep := genl.Endpoint{ID: 100, Addr: netip.MustParseAddr("192.0.2.1"), Flags: genl.FlagSignal}
			if err := c.AddEndpoint(ep); err != nil {
				return err
			}
			subflows := uint32(4)
			if err := c.SetLimits(genl.LimitsUpdate{Subflows: &subflows}); err != nil {
				return err
			}
			return c.DelEndpoint(ep.ID)
		}},
		{"subscribes to path-manager events", func() error {
			c, err := genl.New(nil)
			if err != nil {
				return err
			}
			defer c.Close()
			s, err := c.Subscribe()
			if err != nil {
				return err
			}
			return s.Close()
		}},
		{"dumps connections and subflows with sock_diag", func() error {
			d, err := sockdiag.Dial(nil)
			if err != nil {
				return err
			}
			defer d.Close()
			if err := d.Connections(func(*sockdiag.Connection) error { return nil }); err != nil {
				return err
			}
			return d.Subflows(func(*sockdiag.Subflow) error { return nil })
		}},
		{"dumps links with rtnetlink", func() error {
			links, err := netlink.LinkList()
			if err == nil && len(links) == 0 {
				err = errors.New("no links")
			}
			return err
		}},
		{"listens on the control socket", func() error {
			dir := os.Getenv("RUNTIME_DIRECTORY")
			fi, err := os.Stat(dir)
			if err != nil {
				return err
			}
			if fi.Mode().Perm() != 0o750 {
				return fmt.Errorf("%s has mode %v, want 0750", dir, fi.Mode().Perm())
			}
			sock := filepath.Join(dir, "mptcpgod.sock")
			ln, err := net.Listen("unix", sock)
			if err != nil {
				return err
			}
			defer ln.Close()
			return os.Chmod(sock, 0o660)
		}},
		{"listens on localhost TCP (metrics)", func() error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			return ln.Close()
		}},
		{"writes its state directory", func() error {
			return os.WriteFile(filepath.Join(os.Getenv("STATE_DIRECTORY"), "probe-state"), []byte("ok\n"), 0o600)
		}},
		{"reads its configuration", func() error {
			_, err := os.ReadFile(filepath.Join(os.Getenv("CONFIGURATION_DIRECTORY"), "mptcpgod.toml"))
			return err
		}},
		{"cannot write its configuration", func() error {
			return wantErr(os.WriteFile(filepath.Join(os.Getenv("CONFIGURATION_DIRECTORY"), "probe"), nil, 0o600))
		}},
		{"cannot write other sysctls", func() error {
			// Writable through CAP_NET_ADMIN but for ProtectKernelTunables.
			return wantErr(os.WriteFile("/proc/sys/net/ipv4/tcp_ecn", []byte("1\n"), 0))
		}},
		{"cannot open packet sockets", func() error {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
			if err == nil {
				_ = unix.Close(fd)
				return errors.New("AF_PACKET socket opened")
			}
			if !errors.Is(err, unix.EAFNOSUPPORT) { // RestrictAddressFamilies, not only missing CAP_NET_RAW
				return fmt.Errorf("AF_PACKET: %w, want EAFNOSUPPORT", err)
			}
			return nil
		}},
		{"logs a 1 MiB entry to the journal", func() error {
			// Too large for a datagram: a sealed memfd, which journald
			// takes only sealed (TestUnitSandbox reads it back).
			h, err := journal.NewHandler(&journal.Options{Identifier: "mptcpgod-probe"})
			if err != nil {
				return err
			}
			defer h.Close()
			r := slog.NewRecord(time.Now(), slog.LevelInfo, strings.Repeat("0123456789abcdef", probeEntrySize/16), 0)
			r.AddAttrs(slog.String("probe", "large"))
			return h.Handle(context.Background(), r)
		}},
		{"has the watchdog", func() error {
			d, err := sd.SdWatchdogEnabled(false)
			if err == nil && d == 0 {
				err = errors.New("WATCHDOG_USEC not set")
			}
			return err
		}},
	}
}

// wantErr turns an expected refusal into nil and a success into an error.
func wantErr(err error) error {
	if err == nil {
		return errors.New("allowed")
	}
	return nil
}

// sandboxProbe runs in the container as mptcpgod.service: it records the
// checks in $STATE_DIRECTORY/probe.json, reports READY=1, feeds the
// watchdog, counts SIGHUPs in $STATE_DIRECTORY/reloads and exits on SIGTERM.
func sandboxProbe() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
	results := make(map[string]string)
	for _, c := range probeChecks() {
		results[c.name] = ""
		if err := c.fn(); err != nil {
			results[c.name] = err.Error()
		}
	}
	state := os.Getenv("STATE_DIRECTORY")
	b, err := json.Marshal(results)
	if err == nil {
		err = os.WriteFile(filepath.Join(state, probeResults), b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	if _, err := sd.SdNotify(false, sd.SdNotifyReady); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	interval, _ := sd.SdWatchdogEnabled(false)
	if interval == 0 {
		interval = time.Hour
	}
	tick := time.NewTicker(interval / 3)
	reloads := 0
	for {
		select {
		case <-tick.C:
			_, _ = sd.SdNotify(false, sd.SdNotifyWatchdog)
		case s := <-sigs:
			if s == syscall.SIGTERM {
				return 0
			}
			reloads++
			_ = os.WriteFile(filepath.Join(state, probeReloads), []byte(strconv.Itoa(reloads)), 0o644)
		}
	}
}

// container is a systemd-nspawn container booting the host's /usr with an
// empty /etc and its own network namespace.
type container struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan error
}

// bootContainer boots the host OS in a container in which mptcpgod.service
// is dist/mptcpgod.service with ExecStart replaced by the drop-in, binds
// are "host:container" read-only binds, and state is the host directory
// mounted as /var/lib/mptcpgod.
func bootContainer(t *testing.T, dropIn string, binds []string, state string) *container {
	t.Helper()
	// Not needTool: CI installs systemd-nspawn (systemd-container) only
	// where .ci/run asks for it, and the other tests cover the unit's
	// files without it.
	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil {
		t.Skipf("systemd-nspawn not found (apt-get install systemd-container): %v", err)
	}
	root := repoRoot(t)
	tmp := t.TempDir()
	dropInFile := filepath.Join(tmp, "test.conf")
	if err := os.WriteFile(dropInFile, []byte(dropIn), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(tmp, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	name := "mgt" + strconv.Itoa(os.Getpid()) + strings.ToLower(strings.ReplaceAll(t.Name(), "/", ""))
	args := []string{
		"--quiet", "--directory=/", "--volatile=yes", "--private-network", "--console=pipe", "--machine=" + name,
		"--bind-ro=" + filepath.Join(root, "dist", "mptcpgod.service") + ":/etc/systemd/system/mptcpgod.service",
		"--bind-ro=" + dropInFile + ":/etc/systemd/system/mptcpgod.service.d/test.conf",
		"--bind-ro=" + filepath.Join(root, "dist", "sysusers.d", "mptcpgod.conf") + ":/etc/sysusers.d/mptcpgod.conf",
		"--bind-ro=" + filepath.Join(root, "dist", "mptcpgod.toml") + ":/etc/mptcpgod/mptcpgod.toml",
		"--bind=" + state + ":/var/lib/mptcpgod",
	}
	for _, b := range binds {
		args = append(args, "--bind-ro="+b)
	}
	args = append(args, "--boot", "systemd.wants=mptcpgod.service")
	cmd := exec.Command(nspawn, args...)
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		// No systemd on the host (CI): nothing to register the machine
		// with or to allocate its scope from.
		argv := append([]string{nspawn, "--register=no", "--keep-unit"}, args...)
		cmd = exec.Command("/bin/sh", append([]string{"-c", intoCgroups, "sh"},
			append(append(ownCgroups(t, name), "--"), argv...)...)...)
	}
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &container{t: t, name: name, cmd: cmd, log: log, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(c.stop)
	return c
}

// intoCgroups is a shell script that moves itself into the cgroups its
// arguments name up to "--", then runs the command after it.
const intoCgroups = `while [ "$1" != -- ]; do echo $$ >"$1/cgroup.procs" || exit 1; shift; done; shift; exec "$@"`

// ownCgroups makes a cgroup named after a container in each hierarchy
// systemd tracks units in (the unified one, and name=systemd on a hybrid
// host), under this process's own, and removes them once the test is done.
// systemd-nspawn --keep-unit keeps its container in the "payload" child of
// the cgroup it starts in: two containers started from one cgroup (this
// package's parallel tests, or two test runs at once) would share it, and
// each container's systemd would remove the other's service cgroups there,
// failing a unit with status 219/CGROUP.
func ownCgroups(t *testing.T, name string) []string {
	t.Helper()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var mount string
		switch {
		case f[1] == "name=systemd":
			mount = "/sys/fs/cgroup/systemd"
		case f[0] == "0" && f[1] == "":
			mount = "/sys/fs/cgroup/unified"
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				mount = "/sys/fs/cgroup"
			}
		default:
			continue
		}
		if _, err := os.Stat(mount); err != nil {
			continue
		}
		dir := filepath.Join(mount, f[2], name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("a cgroup for the container: %v", err)
		}
		dirs = append(dirs, dir)
		t.Cleanup(func() { removeCgroup(t, dir) })
	}
	if len(dirs) == 0 {
		t.Fatalf("no cgroup hierarchy systemd tracks units in, in /proc/self/cgroup:\n%s", self)
	}
	return dirs
}

// removeCgroup removes a cgroup and every cgroup below it, deepest first,
// once their processes are gone.
func removeCgroup(t *testing.T, dir string) {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	if err != nil {
		t.Errorf("the container's cgroups: %v", err)
		return
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		// The container's last processes may still be exiting after
		// nspawn has: EBUSY until they are gone.
		deadline := time.Now().Add(runtest.Patience(10 * time.Second))
		err := os.Remove(dirs[i])
		for errors.Is(err, syscall.EBUSY) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			err = os.Remove(dirs[i])
		}
		if err != nil {
			t.Errorf("removing the container's cgroup: %v", err)
		}
	}
}

// stop shuts the container down (systemd-nspawn turns SIGTERM into a clean
// poweroff of the container) and kills it if that takes too long.
func (c *container) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		c.t.Errorf("the container did not shut down within 30s")
	}
	// systemd-nspawn leaves this directory when /run is not a tmpfs.
	_ = os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", c.name))
	if c.t.Failed() {
		b, _ := os.ReadFile(c.log.Name())
		c.t.Logf("container console:\n%s", b)
	}
	_ = c.log.Close()
}

// initPID is the host pid of the container's systemd.
func (c *container) initPID() (int, error) {
	ppid := strconv.Itoa(c.cmd.Process.Pid)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 && f[1] == ppid {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child of systemd-nspawn (pid %s)", ppid)
}

// exec runs a command inside the container and returns its output.
func (c *container) exec(args ...string) (string, error) {
	pid, err := c.initPID()
	if err != nil {
		return "", err
	}
	return runCmd("", []string{"SYSTEMD_COLORS=0", "SYSTEMD_PAGER="}, "nsenter",
		append([]string{"-t", strconv.Itoa(pid), "-m", "-u", "-i", "-n", "-p", "--"}, args...)...)
}

// waitFor polls cond until it holds, the deadline passes or cond returns a
// hopeless error.
func (c *container) waitFor(what string, timeout time.Duration, cond func() (bool, error)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			c.done <- err
			c.t.Fatalf("the container exited while waiting for %s: %v", what, err)
		default:
		}
		ok, err := cond()
		if ok {
			return
		}
		last = err
		if errors.As(err, new(hopeless)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	journal, _ := c.exec("journalctl", "--no-pager", "-u", "mptcpgod.service")
	c.t.Fatalf("waiting (up to %v) for %s: %v\njournal of mptcpgod.service:\n%s", timeout, what, last, journal)
}

// journal returns the container's journal entries that journalctl's
// arguments select, each field's value as journalctl -o json gives it: a
// string, or an array for a field with several values.
func (c *container) journal(args ...string) ([]map[string]any, error) {
	out, err := c.exec(append([]string{"journalctl", "--no-pager", "--all", "--output=json"}, args...)...)
	if err != nil {
		return nil, err
	}
	var entries []map[string]any
	for line := range strings.Lines(out) {
		if strings.TrimSpace(line) == "" || !strings.HasPrefix(line, "{") {
			continue // "-- No entries --"
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("journalctl: %w: %.200s", err, line)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// hopeless is a waitFor condition's error that ends the wait at once.
type hopeless struct{ error }

// unitState returns systemd's view of mptcpgod.service in the container.
func (c *container) unitState() (map[string]string, error) {
	out, err := c.exec("systemctl", "show", "mptcpgod.service",
		"-p", "ActiveState", "-p", "SubState", "-p", "NRestarts", "-p", "User", "-p", "Result")
	if err != nil {
		return nil, err
	}
	st := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		st[k] = v
	}
	return st, nil
}

// waitActive waits until the unit is active and running: for Type=notify,
// after the service sent READY=1.
func (c *container) waitActive(timeout time.Duration) {
	c.t.Helper()
	c.waitFor("mptcpgod.service active (running)", timeout, func() (bool, error) {
		st, err := c.unitState()
		if err != nil {
			return false, err
		}
		if st["ActiveState"] == "failed" || st["NRestarts"] != "0" {
			return false, hopeless{fmt.Errorf("the unit failed: %v", st)}
		}
		return st["ActiveState"] == "active" && st["SubState"] == "running", fmt.Errorf("unit state %v", st)
	})
}

// TestUnitSandbox starts dist/mptcpgod.service under a real systemd (the
// host's OS booted in a systemd-nspawn container with a network namespace
// of its own) with this test binary as the service, which then does what
// the daemon does and records whether the sandbox let it. It checks that
// the service becomes ready, that reload delivers SIGHUP, that every
// probe succeeded, and that the probe's 1 MiB journal entry (a sealed
// memfd) reached journald whole.
func TestUnitSandbox(t *testing.T) {
	t.Parallel()
	needRoot(t)
	needInstallInputs(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	c := bootContainer(t,
		"[Service]\nExecStart=\nExecStart=/opt/mptcpgod-probe\nEnvironment="+probeEnv+"=1\n",
		[]string{exe + ":/opt/mptcpgod-probe"}, state)
	c.waitActive(90 * time.Second)

	b, err := os.ReadFile(filepath.Join(state, probeResults))
	if err != nil {
		t.Fatalf("probe results: %v", err)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("probe results: %v", err)
	}
	want := make(map[string]string)
	for _, c := range probeChecks() {
		want[c.name] = ""
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("probe results in the sandbox, name: error (-want +got):\n%s", diff)
	}

	c.waitFor("the probe's large entry in the journal", 30*time.Second, func() (bool, error) {
		entries, err := c.journal("MPTCPGOD_PROBE=large")
		if err != nil || len(entries) == 0 {
			return false, err
		}
		msg, _ := entries[0]["MESSAGE"].(string)
		if len(msg) != probeEntrySize || entries[0]["_TRANSPORT"] != "journal" {
			return false, hopeless{fmt.Errorf("the entry has a MESSAGE of %d bytes, _TRANSPORT %v; want %d bytes, journal", len(msg), entries[0]["_TRANSPORT"], probeEntrySize)}
		}
		return true, nil
	})

	if out, err := c.exec("systemctl", "reload", "mptcpgod.service"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c.waitFor("the probe counting the SIGHUP of ExecReload=", 10*time.Second, func() (bool, error) {
		b, err := os.ReadFile(filepath.Join(state, probeReloads))
		return err == nil && string(b) == "1", err
	})
	st, err := c.unitState()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{
		"ActiveState": "active", "SubState": "running", "NRestarts": "0", "User": "mptcpgod", "Result": "success",
	}, st); diff != "" {
		t.Errorf("unit state after reload (-want +got):\n%s", diff)
	}
}

// TestUnitRunsDaemon starts the real daemon under the unit in a container
// and waits until systemd reports it ready (READY=1 under the sandbox, with
// the default configuration), reads its "mptcpgod ready" entry back from
// the container's journal with its fields (docs/logging.md), then stops it
// cleanly.
func TestUnitRunsDaemon(t *testing.T) {
	t.Parallel()
	needRoot(t)
	needInstallInputs(t)
	bin := daemontest.Binary(t, "mptcpgod")
	c := bootContainer(t,
		"[Service]\nExecStart=\nExecStart=/opt/mptcpgod --config /etc/mptcpgod/mptcpgod.toml\n",
		[]string{bin + ":/opt/mptcpgod"}, t.TempDir())
	c.waitActive(90 * time.Second)

	// The daemon's structured fields, as journald stored them
	// (docs/logging.md): sent with the native protocol, not as text.
	var ready map[string]any
	c.waitFor("the daemon's \"mptcpgod ready\" entry in the journal", 30*time.Second, func() (bool, error) {
		entries, err := c.journal("-u", "mptcpgod.service", "MESSAGE=mptcpgod ready")
		if len(entries) > 0 {
			ready = entries[0]
		}
		return ready != nil, err
	})
	want := map[string]any{
		"_TRANSPORT": "journal", "SYSLOG_IDENTIFIER": "mptcpgod", "PRIORITY": "6", "MPTCPGOD_MODE": "kernel",
	}
	got := make(map[string]any)
	for k := range want {
		got[k] = ready[k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the \"mptcpgod ready\" entry's fields (-want +got):\n%s", diff)
	}
	if file, _ := ready["CODE_FILE"].(string); !strings.HasSuffix(file, "internal/daemon/daemon.go") {
		t.Errorf("CODE_FILE %q, want internal/daemon/daemon.go", file)
	}
	if fn, _ := ready["CODE_FUNC"].(string); !strings.Contains(fn, "internal/daemon.") {
		t.Errorf("CODE_FUNC %q, want a function of internal/daemon", fn)
	}
	if line, _ := ready["CODE_LINE"].(string); line == "" {
		t.Errorf("no CODE_LINE: %v", ready)
	}

	if out, err := c.exec("systemctl", "stop", "mptcpgod.service"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	st, err := c.unitState()
	if err != nil {
		t.Fatal(err)
	}
	if st["ActiveState"] != "inactive" || st["Result"] != "success" || st["NRestarts"] != "0" {
		journal, _ := c.exec("journalctl", "--no-pager", "-u", "mptcpgod.service")
		t.Errorf("after stop: %v, want inactive, result success, no restarts\n%s", st, journal)
	}
}
