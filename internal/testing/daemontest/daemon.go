package daemontest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// ReadyTimeout bounds the wait for a started daemon to be ready, and
// StopTimeout the wait for one to exit. Both are long, so that a loaded
// machine does not fail a test that would pass: the waits return on the
// event.
var (
	ReadyTimeout = netnstest.Patience(90 * time.Second)
	StopTimeout  = netnstest.Patience(30 * time.Second)
)

// Options are how Start runs the daemon; the zero value of a field is its
// default.
type Options struct {
	// Config is the configuration text, written to a file of the test's.
	Config string
	// ConfigFile names an existing configuration file to run with
	// instead, which the test may change before a reload (SIGHUP).
	ConfigFile string
	// Binary is the daemon's binary: Binary(t, "mptcpgod") by default.
	Binary string
	// Env is added to the daemon's environment.
	Env []string
}

// Daemon is the mptcpgod binary running in a test host's namespace.
type Daemon struct {
	// ConfigFile is the configuration file it runs with.
	ConfigFile string

	host *netnstest.Host
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan struct{}
	err  error // of Wait, once done is closed
}

// Start runs the binary in h's namespace with the configuration text until
// the test ends, and waits until it is ready.
func Start(t testing.TB, h *netnstest.Host, config string) *Daemon {
	t.Helper()
	return StartWith(t, h, Options{Config: config})
}

// StartWith runs the binary in h's namespace as o says until the test
// ends, and waits until it is ready.
func StartWith(t testing.TB, h *netnstest.Host, o Options) *Daemon {
	t.Helper()
	dir := t.TempDir()
	d := &Daemon{ConfigFile: o.ConfigFile, host: h, log: &syncbuf.Buffer{}, done: make(chan struct{})}
	if d.ConfigFile == "" {
		d.ConfigFile = filepath.Join(dir, "mptcpgod.toml")
		if err := os.WriteFile(d.ConfigFile, []byte(o.Config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := o.Binary
	if bin == "" {
		bin = Binary(t, "mptcpgod")
	}
	notify, err := listenNotify(filepath.Join(dir, "notify"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = h.Command(bin, "--config", d.ConfigFile)
	d.cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="+notify.path), o.Env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		_ = notify.conn.Close()
		t.Fatalf("daemontest: start %s: %v", bin, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = notify.conn.Close()
		d.cleanup(t)
	})
	select {
	case <-notify.ready:
	case <-d.done:
		t.Fatalf("daemontest: mptcpgod in %s exited before it was ready (%v):\n%s", h.Name(), d.err, d.log)
	case <-time.After(ReadyTimeout):
		t.Fatalf("daemontest: mptcpgod in %s not ready within %v:\n%s", h.Name(), ReadyTimeout, d.log)
	}
	return d
}

// cleanup stops the daemon if it runs, fails the test if it does not exit
// cleanly, and logs what it wrote when the test failed.
func (d *Daemon) cleanup(t testing.TB) {
	select {
	case <-d.done:
	default:
		if code := d.Stop(t); code != 0 {
			t.Errorf("daemontest: mptcpgod in %s exited with status %d after SIGTERM", d.host.Name(), code)
		}
	}
	if t.Failed() {
		t.Logf("mptcpgod in %s:\n%s", d.host.Name(), d.log)
	}
}

// Log returns what the daemon wrote to its standard output and error so
// far.
func (d *Daemon) Log() string { return d.log.String() }

// Pid returns the daemon's process id (`ip netns exec` execs it in place).
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Done is closed when the daemon has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Err returns how the daemon exited (exec.Cmd.Wait's error), once Done is
// closed.
func (d *Daemon) Err() error {
	<-d.done
	return d.err
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("daemontest: signal mptcpgod: %v", err)
	}
}

// Wait waits until the daemon exits and returns its exit status (-1 when a
// signal ended it); it fails the test after StopTimeout, killing it.
func (d *Daemon) Wait(t testing.TB) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(StopTimeout):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Fatalf("daemontest: mptcpgod in %s did not exit within %v:\n%s", d.host.Name(), StopTimeout, d.log)
	}
	return d.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM to the daemon and returns its exit status (Wait).
func (d *Daemon) Stop(t testing.TB) int {
	t.Helper()
	d.Signal(t, syscall.SIGTERM)
	return d.Wait(t)
}

// Kill kills the daemon (SIGKILL) and waits until it is gone.
func (d *Daemon) Kill() {
	_ = d.cmd.Process.Kill()
	<-d.done
}

// WaitLog waits until the daemon has logged s at least n times, and fails
// the test if it exits first or after ReadyTimeout.
func (d *Daemon) WaitLog(t testing.TB, s string, n int) {
	t.Helper()
	deadline := time.After(ReadyTimeout)
	for strings.Count(d.log.String(), s) < n {
		select {
		case <-d.done:
			t.Fatalf("daemontest: mptcpgod in %s exited (%v) before it logged %q %d times:\n%s", d.host.Name(), d.err, s, n, d.log)
		case <-deadline:
			t.Fatalf("daemontest: mptcpgod in %s did not log %q %d times within %v:\n%s", d.host.Name(), s, n, ReadyTimeout, d.log)
		case <-time.After(logPollEvery):
		}
	}
}

// logPollEvery is how often WaitLog reads the log again.
const logPollEvery = 10 * time.Millisecond

// notifySocket is the socket a daemon tells its state on, as systemd's
// (sd_notify).
type notifySocket struct {
	path  string
	conn  *net.UnixConn
	ready chan struct{} // closed at the first READY=1
}

// listenNotify listens on a datagram socket at path and reads it until it
// is closed.
func listenNotify(path string) (*notifySocket, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("daemontest: notify socket: %w", err)
	}
	n := &notifySocket{path: path, conn: conn, ready: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		ready := false
		for {
			m, err := conn.Read(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(string(buf[:m]), "\n") {
				if line == "READY=1" && !ready {
					ready = true
					close(n.ready)
				}
			}
		}
	}()
	return n, nil
}

// Exit runs the binary in h's namespace as o says and waits for it to exit
// by itself, as a daemon that refuses to start does; it returns the exit
// status and what the daemon wrote. It fails the test if the daemon is
// still running after ReadyTimeout, or says it is ready.
func Exit(t testing.TB, h *netnstest.Host, o Options) (int, string) {
	t.Helper()
	config := o.ConfigFile
	if config == "" {
		config = filepath.Join(t.TempDir(), "mptcpgod.toml")
		if err := os.WriteFile(config, []byte(o.Config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := o.Binary
	if bin == "" {
		bin = Binary(t, "mptcpgod")
	}
	notify, err := listenNotify(filepath.Join(t.TempDir(), "notify"))
	if err != nil {
		t.Fatal(err)
	}
	defer notify.conn.Close()
	var log syncbuf.Buffer
	cmd := h.Command(bin, "--config", config)
	cmd.Env = append(append(os.Environ(), "NOTIFY_SOCKET="+notify.path), o.Env...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("daemontest: start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode(), log.String()
	case <-notify.ready:
		t.Fatalf("daemontest: mptcpgod in %s is ready, want it to exit:\n%s", h.Name(), &log)
	case <-time.After(ReadyTimeout):
		t.Fatalf("daemontest: mptcpgod in %s still runs after %v, want it to exit:\n%s", h.Name(), ReadyTimeout, &log)
	}
	return 0, ""
}
