//go:build linux

package soak_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// waitLimit bounds each wait for the daemon or the kernel to settle.
var waitLimit = netnstest.Patience(30 * time.Second)

func TestMain(m *testing.M) { os.Exit(daemontest.Main(m)) }

// build returns the mptcpgod binary, built with the race detector if race.
func build(t *testing.T, race bool) string {
	t.Helper()
	if !race {
		return daemontest.Binary(t, "mptcpgod")
	}
	return daemontest.Program(t, daemontest.Build{Pkg: "github.com/mptcpgod/mptcpgod/cmd/mptcpgod", Race: true})
}

// config returns the daemon's configuration in mode with its control
// socket at sock, readable by root only, denying the hostile peer's
// prefix; in kernel mode, where the kernel follows announces itself, with
// add_addr_accepted 0, so that the hostile peer leads nowhere.
func config(mode, sock string) string {
	s := fmt.Sprintf("mode = %q\nset_path_manager = true\n\n[control]\nsocket = %q\ngroup = \"\"\n\n[links]\ninclude_kinds = [\"virtual\"]\n\n[peers]\ndeny = [%q]\n",
		mode, sock, evilDeny)
	if mode == "kernel" {
		s += "\n[[policy.chain]]\nname = \"fullmesh\"\nconfig = { limits = { add_addr_accepted = 0 } }\n"
	}
	return s
}

// daemon is the mptcpgod binary in the client namespace, started again
// after each kill.
type daemon struct {
	t      *testing.T
	host   *netnstest.Host
	bin    string
	config string
	ctl    *ctlapi.Client

	mu   sync.Mutex
	runs []*daemontest.Daemon // every run, the current one last

	// monitor is `ip mptcp monitor` in the namespace, for the kernel's
	// events of a connection the daemon got wrong.
	monitor *syncbuf.Buffer
}

// newDaemon writes the configuration and starts the daemon; it is stopped
// when the test ends.
func newDaemon(t *testing.T, h *netnstest.Host, bin, mode string) *daemon {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	path := filepath.Join(dir, "mptcpgod.toml")
	if err := os.WriteFile(path, []byte(config(mode, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, host: h, bin: bin, config: path, ctl: &ctlapi.Client{Socket: sock}, monitor: &syncbuf.Buffer{}}
	mon := h.Command("ip", "mptcp", "monitor")
	mon.Stdout = d.monitor
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = mon.Process.Kill()
		_ = mon.Wait()
	})
	d.start()
	return d
}

// start runs the daemon and waits until it is ready.
func (d *daemon) start() {
	d.t.Helper()
	run := daemontest.StartWith(d.t, d.host, daemontest.Options{ConfigFile: d.config, Binary: d.bin})
	d.mu.Lock()
	d.runs = append(d.runs, run)
	d.mu.Unlock()
}

// current returns the current run.
func (d *daemon) current() *daemontest.Daemon {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runs[len(d.runs)-1]
}

// second starts a second daemon with the same configuration beside the
// running one and checks that it exits 1 at once, naming the running
// one's pid, and that the running one still answers, ready. It returns
// what is wrong, or "".
func (d *daemon) second() string {
	cmd := d.host.Command(d.bin, "--config", d.config)
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Sprintf("start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Sprintf("still running after %v:\n%s", waitLimit, stderr)
	}
	want := fmt.Sprintf("another mptcpgod (pid %d) manages this network namespace", d.pid())
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), want) {
		return fmt.Sprintf("exit status %d, want 1 saying %q:\n%s", code, want, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := d.ctl.Status(ctx); err != nil || !st.Ready {
		return fmt.Sprintf("the running daemon after it: status %v, %v", st, err)
	}
	return ""
}

// kill sends SIGKILL to the daemon and waits for it to die.
func (d *daemon) kill() { d.current().Kill() }

// exited reports whether the current run has ended, and how.
func (d *daemon) exited() (bool, string) {
	cur := d.current()
	select {
	case <-cur.Done():
		return true, fmt.Sprintf("%v:\n%s", cur.Err(), cur.Log())
	default:
		return false, ""
	}
}

// races returns the data races the race detector reported in every run
// so far.
func (d *daemon) races() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var logs []string
	for _, r := range d.runs {
		logs = append(logs, r.Log())
	}
	return races(logs)
}

// races returns the data races reported in the logs of runs, in order,
// each cut at its end.
func races(logs []string) []string {
	var found []string
	for i, l := range logs {
		for _, r := range strings.Split(l, "WARNING: DATA RACE")[1:] {
			r, _, _ = strings.Cut(r, "==================")
			found = append(found, fmt.Sprintf("run %d: %s", i+1, r))
		}
	}
	return found
}

// pid returns the current run's process id.
func (d *daemon) pid() int { return d.current().Pid() }

// rss returns the daemon's resident set size in bytes (VmRSS).
func (d *daemon) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid()))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("soak: VmRSS line %q: want \"N kB\"", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("soak: no VmRSS in /proc/%d/status", d.pid())
}

// goroutines returns the daemon's go_goroutines from GET /metrics; ok is
// false when the daemon does not export it.
func (d *daemon) goroutines() (n int, ok bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := d.ctl.Metrics(ctx)
	if err != nil {
		return 0, false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "go_goroutines "); found {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err == nil, err
		}
	}
	return 0, false, sc.Err()
}

// status returns GET /v1/status.
func (d *daemon) status() (*ctlapi.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.ctl.Status(ctx)
}
