//go:build linux

package soak_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// waitLimit bounds each wait for the daemon or the kernel to settle.
const waitLimit = 30 * time.Second

// build compiles cmd/mptcpgod into a temporary directory, with the race
// detector if race, and returns the binary's path.
func build(t *testing.T, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mptcpgod")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "github.com/mptcpgod/mptcpgod/cmd/mptcpgod")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
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
	cmd  *exec.Cmd
	done chan struct{}
	logs []*syncbuf.Buffer // every run's stderr, the current one last

	// monitor is `ip mptcp monitor` in the namespace, for the kernel's
	// events of a connection the daemon got wrong.
	monitor *syncbuf.Buffer
}

// newDaemon writes the configuration and starts the daemon; it is killed
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
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			d.mu.Lock()
			defer d.mu.Unlock()
			for i, l := range d.logs {
				t.Logf("mptcpgod run %d:\n%s", i+1, l)
			}
		}
	})
	if err := d.start(); err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs the daemon and waits until its control socket says it is
// ready.
func (d *daemon) start() error {
	cmd := d.host.Command(d.bin, "--config", d.config)
	stderr := &syncbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.logs = append(d.logs, stderr)
	d.mu.Unlock()
	deadline := time.Now().Add(waitLimit)
	for {
		select {
		case <-done:
			return fmt.Errorf("mptcpgod exited before it was ready (%v):\n%s", cmd.ProcessState, stderr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		st, err := d.ctl.Status(ctx)
		cancel()
		if err == nil && st.Ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mptcpgod not ready within %v (last: %v):\n%s", waitLimit, err, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// second starts a second daemon with the same configuration beside the
// running one and checks that it exits 1 at once, naming the running
// one's pid, and that the running one still answers, ready. It returns
// what is wrong, or "".
func (d *daemon) second() string {
	cmd := d.host.Command(d.bin, "--config", d.config)
	stderr := &syncBuffer{}
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
func (d *daemon) kill() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// exited reports whether the current run has ended, and how.
func (d *daemon) exited() (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.done:
		return true, fmt.Sprintf("%v:\n%s", d.cmd.ProcessState, d.logs[len(d.logs)-1])
	default:
		return false, ""
	}
}

// races returns the data races the race detector reported in every run
// so far.
func (d *daemon) races() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var races []string
	for i, l := range d.logs {
		for _, r := range strings.Split(l.String(), "WARNING: DATA RACE")[1:] {
			r, _, _ = strings.Cut(r, "==================")
			races = append(races, fmt.Sprintf("run %d: %s", i+1, r))
		}
	}
	return races
}

// pid returns the current run's process id: `ip netns exec` execs the
// daemon in place.
func (d *daemon) pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.Process.Pid
}

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
