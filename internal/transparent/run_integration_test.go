//go:build linux

package transparent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// socket is what testdata/sockprobe reports of one socket(2) call.
type socket struct {
	Name     string `json:"name"`
	Protocol int    `json:"protocol"`
	Flags    uint64 `json:"flags"`
	Error    string `json:"error"`
}

// probeSockets runs `sockprobe sockets` in h, through mptcpctl run when
// run is set, and returns its sockets by name.
func probeSockets(t *testing.T, h *netnstest.Host, run bool) map[string]socket {
	t.Helper()
	args := []string{binary(t, "sockprobe"), "sockets"}
	if run {
		args = append([]string{binary(t, "mptcpctl"), "run"}, args...)
	}
	return sockprobe(t, h.Command(args[0], args[1:]...))
}

// sockprobe runs cmd, a `sockprobe sockets` command line, and returns the
// sockets it reports by name.
func sockprobe(t *testing.T, cmd *exec.Cmd) map[string]socket {
	t.Helper()
	args := cmd.Args
	cmd.Env = append(os.Environ(), "GODEBUG=multipathtcp=0")
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var list []socket
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("sockprobe printed %q: %v", out, err)
	}
	got := map[string]socket{}
	for _, s := range list {
		got[s.Name] = s
	}
	return got
}

// checkSockets compares sockprobe's sockets with the protocol each should
// have: tcp is the protocol of the TCP sockets, mptcp says whether MPTCP
// is enabled (else IPPROTO_MPTCP is refused), and every socket keeps the
// O_NONBLOCK and O_CLOEXEC its call asked for.
func checkSockets(t *testing.T, got map[string]socket, tcp int, mptcp bool) {
	t.Helper()
	tests := []struct {
		name              string
		protocol          int
		nonblock, cloexec bool
	}{
		{"tcp4", tcp, false, false},
		{"tcp6-tcp", tcp, false, false},
		{"tcp4-nonblock", tcp, true, false},
		{"tcp6-cloexec", tcp, false, true},
		{"tcp4-both", tcp, true, true},
		{"mptcp4", unix.IPPROTO_MPTCP, false, false},
		{"udp4", unix.IPPROTO_UDP, false, false},
		{"udp6", unix.IPPROTO_UDP, false, false},
		{"unix", 0, false, false},
	}
	for _, tt := range tests {
		s, ok := got[tt.name]
		switch {
		case !ok:
			t.Errorf("%s: not reported", tt.name)
			continue
		case tt.protocol == unix.IPPROTO_MPTCP && !mptcp:
			if s.Error != "protocol not available" {
				t.Errorf("%s with MPTCP disabled: %+v, want ENOPROTOOPT", tt.name, s)
			}
			continue
		case s.Error != "":
			t.Errorf("%s: %s", tt.name, s.Error)
			continue
		}
		if s.Protocol != tt.protocol {
			t.Errorf("%s: SO_PROTOCOL %d, want %d", tt.name, s.Protocol, tt.protocol)
		}
		if nb := s.Flags&unix.O_NONBLOCK != 0; nb != tt.nonblock {
			t.Errorf("%s: fdinfo flags %o: O_NONBLOCK %v, want %v", tt.name, s.Flags, nb, tt.nonblock)
		}
		if ce := s.Flags&unix.O_CLOEXEC != 0; ce != tt.cloexec {
			t.Errorf("%s: fdinfo flags %o: O_CLOEXEC %v, want %v", tt.name, s.Flags, ce, tt.cloexec)
		}
	}
}

// TestRunSockets: under mptcpctl run, a CGO_ENABLED=0 Go program with
// GODEBUG=multipathtcp=0 gets MPTCP for its TCP sockets of both families
// and protocols 0 and IPPROTO_TCP, with the flags it asked for, and keeps
// its UDP and unix sockets; without run the same sockets are TCP.
func TestRunSockets(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "sock")
	checkSockets(t, probeSockets(t, h, false), unix.IPPROTO_TCP, true)
	checkSockets(t, probeSockets(t, h, true), unix.IPPROTO_MPTCP, true)
}

// TestRunMPTCPDisabled: with net.mptcp.enabled=0 in the program's network
// namespace, the program gets the TCP sockets it asked for, flags and all,
// and no error; the supervisor's own namespace has MPTCP enabled.
func TestRunMPTCPDisabled(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "off")
	h.Sysctl("net.mptcp.enabled", "0")
	checkSockets(t, probeSockets(t, h, true), unix.IPPROTO_TCP, false)
}

// TestRunNetns: with -n the program runs in the named network namespace
// and its sockets are made there, though the supervisor runs in the
// namespace mptcpctl started in: where MPTCP is disabled the program gets
// TCP, where it is enabled its MPTCP listener is the namespace's.
func TestRunNetns(t *testing.T) {
	t.Parallel()
	ctl := binary(t, "mptcpctl")
	off := netnstest.NewHost(t, "nsoff")
	off.Sysctl("net.mptcp.enabled", "0")
	cmd := exec.Command(ctl, "-n", off.Name(), "run", binary(t, "sockprobe"), "sockets")
	checkSockets(t, sockprobe(t, cmd), unix.IPPROTO_TCP, false)

	on := netnstest.NewHost(t, "nson")
	busybox := staticBusybox(t)
	httpd := exec.Command(ctl, "-n", on.Name(), "run", busybox, "httpd", "-f", "-p", "127.0.0.1:8080", "-h", t.TempDir())
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = httpd.Process.Kill()
		_ = httpd.Wait()
	})
	waitFor(t, "busybox httpd's MPTCP listener in "+on.Name(), func() (bool, string) {
		recs := on.SSRecords("-M", "-l")
		return listener(recs, "127.0.0.1:8080") != "", strings.Join(recs, "; ")
	})
}

// recorder is an HTTP server on an MPTCP listener that records, for each
// path asked for, whether the connection was MPTCP from end to end
// (MPTCP_INFO, through net.TCPConn.MultipathTCP).
type recorder struct {
	mu  sync.Mutex
	got map[string]bool
}

type mptcpKey struct{}

func serveRecorder(t *testing.T, ln net.Listener) *recorder {
	t.Helper()
	r := &recorder{got: map[string]bool{}}
	srv := &http.Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			mp, _ := c.(*net.TCPConn).MultipathTCP()
			return context.WithValue(ctx, mptcpKey{}, mp)
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			r.mu.Lock()
			r.got[req.URL.Path] = req.Context().Value(mptcpKey{}).(bool)
			r.mu.Unlock()
			fmt.Fprintf(w, "hello %s\n", req.URL.Path)
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *recorder) mptcp(path string) (mptcp, seen bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mptcp, seen = r.got[path]
	return mptcp, seen
}

// TestRunClients: unmodified clients under mptcpctl run reach an MPTCP
// server over MPTCP: static busybox wget, curl (which passes IPPROTO_TCP),
// python3, and a CGO_ENABLED=0 Go client with GODEBUG=multipathtcp=0.
func TestRunClients(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	curl := need(t, "curl", "curl")
	python := need(t, "python3", "python3")
	ctl := binary(t, "mptcpctl")
	tb := netnstest.NewTestbed(t, 1)
	addr := net.JoinHostPort(tb.Links[0].Server4.String(), "8080")
	rec := serveRecorder(t, tb.Server.Listen("tcp", addr))

	clients := []struct {
		path string
		argv []string
	}{
		{"/busybox-wget", []string{busybox, "wget", "-q", "-O", "-", "http://" + addr + "/busybox-wget"}},
		{"/curl", []string{curl, "-sS", "--max-time", "60", "http://" + addr + "/curl"}},
		{"/python3", []string{python, "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=60).read().decode())", "http://" + addr + "/python3"}},
		{"/go", []string{binary(t, "sockprobe"), "get", addr, "/go"}},
	}
	for _, c := range clients {
		cmd := tb.Client.Command(ctl, append([]string{"run"}, c.argv...)...)
		cmd.Env = append(os.Environ(), "GODEBUG=multipathtcp=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(c.argv, " "), err, out)
			continue
		}
		if c.path == "/go" {
			var g struct {
				Protocol  int  `json:"protocol"`
				Multipath bool `json:"multipath"`
			}
			if err := json.Unmarshal(out, &g); err != nil || g.Protocol != unix.IPPROTO_MPTCP || !g.Multipath {
				t.Errorf("go client: %s (%v): want protocol 262 and multipath true", out, err)
			}
		} else if want := "hello " + c.path; !strings.Contains(string(out), want) {
			t.Errorf("%s printed %q, want %q", c.path, out, want)
		}
		if mptcp, seen := rec.mptcp(c.path); !seen || !mptcp {
			t.Errorf("%s: the server saw the request %v, over MPTCP %v; want MPTCP", c.path, seen, mptcp)
		}
	}
}

// TestRunServer: static busybox httpd under mptcpctl run listens with
// MPTCP (sock_diag lists its listener) and serves an MPTCP client, and a
// static busybox wget under run downloads from it.
func TestRunServer(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	ctl := binary(t, "mptcpctl")
	tb := netnstest.NewTestbed(t, 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("served by busybox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(tb.Links[0].Server4.String(), "8081")
	httpd := tb.Server.Command(ctl, "run", busybox, "httpd", "-f", "-p", addr, "-h", dir)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "busybox httpd's MPTCP listener", func() (bool, string) {
		recs := tb.Server.SSRecords("-M", "-l")
		return len(recs) == 1 && strings.Contains(recs[0], addr), strings.Join(recs, "; ")
	})

	c, err := tb.Client.Dial("tcp", "", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(c)
	if err != nil || !strings.Contains(string(body), "served by busybox") {
		t.Fatalf("GET /: %q, %v", body, err)
	}
	if mp, _ := c.(*net.TCPConn).MultipathTCP(); !mp {
		t.Error("busybox httpd under run: the connection fell back to TCP")
	}

	out, err := tb.Client.Command(ctl, "run", busybox, "wget", "-q", "-O", "-", "http://"+addr+"/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "served by busybox") {
		t.Errorf("busybox wget from busybox httpd, both under run: %v\n%s", err, out)
	}
}

// TestRunFallback: against a server without MPTCP the program's MPTCP
// socket falls back to TCP, as the kernel does, and the request works.
func TestRunFallback(t *testing.T) {
	t.Parallel()
	ctl := binary(t, "mptcpctl")
	tb := netnstest.NewTestbed(t, 1)
	addr := net.JoinHostPort(tb.Links[0].Server4.String(), "8082")
	var ln net.Listener
	err := tb.Server.Do(func() error {
		var lc net.ListenConfig
		lc.SetMultipathTCP(false)
		var err error
		ln, err = lc.Listen(context.Background(), "tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	rec := serveRecorder(t, ln)

	cmd := tb.Client.Command(ctl, "run", binary(t, "sockprobe"), "get", addr, "/plain")
	cmd.Env = append(os.Environ(), "GODEBUG=multipathtcp=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sockprobe get: %v\n%s", err, out)
	}
	var g struct {
		Protocol  int  `json:"protocol"`
		Multipath bool `json:"multipath"`
		Bytes     int  `json:"bytes"`
	}
	if err := json.Unmarshal(out, &g); err != nil {
		t.Fatalf("sockprobe printed %q: %v", out, err)
	}
	if g.Protocol != unix.IPPROTO_MPTCP || g.Multipath || g.Bytes == 0 {
		t.Errorf("got %+v: want an MPTCP socket (262) fallen back to TCP, with the response", g)
	}
	if mp, seen := rec.mptcp("/plain"); !seen || mp {
		t.Errorf("the plain TCP server saw the request %v, MPTCP %v", seen, mp)
	}
}

// TestRunDaemonize: a program that daemonizes keeps MPTCP in its child
// after its first process exits; the supervisor stays while the child
// lives and exits after it.
func TestRunDaemonize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sup, child := startDaemon(t, netnstest.NewHost(t, "daemon"), dir)
	supFD := pidfd(t, sup)
	childFD := pidfd(t, child)
	if exited(supFD, 0) {
		t.Fatal("the supervisor exited with the first process, while its child lives")
	}
	if s := daemonSocket(t, dir, childFD); s.Protocol != unix.IPPROTO_MPTCP {
		t.Errorf("the daemon's child got %+v, want an MPTCP socket", s)
	}
	if !exited(supFD, waitLimit) {
		t.Errorf("the supervisor (pid %d) still runs %v after the last process under it exited", sup, waitLimit)
	}
}

// startDaemon runs `mptcpctl run --verbose sockprobe daemon DIR [MODE]`
// in h and returns the pids of the supervisor and of the daemon's child,
// which waits for DIR/go.
func startDaemon(t *testing.T, h *netnstest.Host, dir string, mode ...string) (supervisor, child int) {
	t.Helper()
	args := append([]string{"run", "--verbose", binary(t, "sockprobe"), "daemon", dir}, mode...)
	cmd := h.Command(binary(t, "mptcpctl"), args...)
	// A file, not a pipe: the child and the supervisor keep it open.
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	err = cmd.Run()
	child = daemonChild(t, dir)
	logged, _ := os.ReadFile(stderr.Name())
	supervisor, ok := supervisorPid(string(logged))
	if err != nil || !ok || child == 0 {
		t.Fatalf("sockprobe daemon: %v, supervisor found %v, child %d\n%s", err, ok, child, logged)
	}
	return supervisor, child
}

// daemonSocket lets the daemon's child (pidfd childFD) open its socket
// and returns what it got.
func daemonSocket(t *testing.T, dir string, childFD int) socket {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !exited(childFD, waitLimit) {
		t.Fatalf("the child did not finish within %v", waitLimit)
	}
	b, err := os.ReadFile(filepath.Join(dir, "result"))
	if err != nil {
		t.Fatal(err)
	}
	var s socket
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("the child wrote %q: %v", b, err)
	}
	return s
}

// daemonChild returns the pid `sockprobe daemon DIR` wrote for its child
// (0 when there is none), killed at cleanup.
func daemonChild(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0
	}
	child, err := strconv.Atoi(string(b))
	if err != nil {
		return 0
	}
	killAtCleanup(t, child)
	return child
}

// TestRunDaemonizePipes: a daemon whose first process exits is done for
// whoever reads its output through a pipe (a shell's $(...), ssh): the
// supervisor, which outlives that process, does not hold the pipe open.
func TestRunDaemonizePipes(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "pipes")
	dir := t.TempDir()
	cmd := h.Command(binary(t, "mptcpctl"), "run", binary(t, "sockprobe"), "daemon", dir)
	var stdout, stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	daemonChild(t, dir)
	if err != nil {
		t.Fatalf("sockprobe daemon: %v (the pipes were held open after it exited?)\n%s", err, stderr.String())
	}
}

// TestRunExitStatus: the program keeps the pid of mptcpctl run; its exit
// status and the signal that ends it are run's; run's own failures exit
// as a shell's do.
func TestRunExitStatus(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	ctl := binary(t, "mptcpctl")

	cmd := exec.Command(ctl, "run", busybox, "sh", "-c", "echo $$; exit 7")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exit 7: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("the program's pid is %s, mptcpctl run's %d", got, cmd.Process.Pid)
	}

	sleep := exec.Command(ctl, "run", busybox, "sleep", "600")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "busybox sleep in place of mptcpctl", func() (bool, string) {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", sleep.Process.Pid))
		return exe == busybox, exe
	})
	if err := sleep.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = sleep.Wait()
	if ws, ok := sleep.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("SIGTERM: wait status %v (%v), want killed by SIGTERM", sleep.ProcessState, err)
	}

	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		prog string
		code int
		msg  string
	}{
		{"no-such-program-here", 127, "no-such-program-here: command not found"},
		{notExec, 126, notExec + ": permission denied"},
		{t.TempDir(), 126, "is a directory"},
	} {
		out, err := exec.Command(ctl, "run", tt.prog).CombinedOutput()
		if !errors.As(err, &ee) || ee.ExitCode() != tt.code || !strings.Contains(string(out), tt.msg) {
			t.Errorf("run %s: %v %q, want exit %d saying %q", tt.prog, err, out, tt.code, tt.msg)
		}
	}
}

// TestRunIgnoredSignals: a signal ignored when mptcpctl run starts is
// still ignored in the program, as with the program run directly
// (systemd ignores SIGPIPE for services, shells SIGINT and SIGQUIT for
// background jobs).
func TestRunIgnoredSignals(t *testing.T) {
	t.Parallel()
	if out, _ := exec.Command("go", "env", "CGO_ENABLED").Output(); strings.TrimSpace(string(out)) != "1" {
		t.Skip("mptcpctl built without cgo keeps only SIGHUP and SIGINT ignored")
	}
	busybox := staticBusybox(t)
	script := fmt.Sprintf("trap '' PIPE QUIT HUP; exec %s run %s grep SigIgn /proc/self/status", binary(t, "mptcpctl"), busybox)
	out, err := exec.Command(busybox, "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		t.Fatalf("grep printed %q", out)
	}
	mask, err := strconv.ParseUint(f[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGPIPE, syscall.SIGQUIT, syscall.SIGHUP} {
		if mask&(1<<(sig-1)) == 0 {
			t.Errorf("SigIgn %s: %v not ignored in the program", f[1], sig)
		}
	}
	if mask&(1<<(syscall.SIGTERM-1)) != 0 {
		t.Errorf("SigIgn %s: SIGTERM ignored, which nobody asked for", f[1])
	}
}

// TestRunUnavailableNested: mptcpctl run inside mptcpctl run is refused
// with the kernel's one-listener rule explained, and exit status 125.
func TestRunUnavailableNested(t *testing.T) {
	t.Parallel()
	ctl := binary(t, "mptcpctl")
	out, err := exec.Command(ctl, "run", ctl, "run", "true").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 125 || !strings.Contains(string(out), "one listener per process tree") {
		t.Errorf("nested run: %v %q", err, out)
	}
}

// TestRunSupervisorKilled: what docs/transparent.md says of a killed
// supervisor holds: the program's later TCP sockets fail with ENOSYS.
func TestRunSupervisorKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sup, child := startDaemon(t, netnstest.NewHost(t, "killed"), dir)
	supFD := pidfd(t, sup)
	if err := unix.Kill(sup, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !exited(supFD, waitLimit) {
		t.Fatal("the supervisor survived SIGKILL")
	}
	childFD := pidfd(t, child)
	if s := daemonSocket(t, dir, childFD); s.Error != unix.ENOSYS.Error() {
		t.Errorf("after the supervisor was killed the program got %+v, want ENOSYS", s)
	}
}

// TestRunSupervisorSignalled: signals that reach the supervisor while it
// serves calls (the Go runtime's SIGURG is one) neither end it nor lose a
// call. The kernel's poll of the listener reports POLLERR when a signal
// interrupts its wait for the listener's lock, which a call in flight
// holds: a supervisor that took that for POLLHUP exited under the
// program, whose next calls failed with ENOSYS. The test aims SIGURG at
// the thread that polls while the program makes call after call.
func TestRunSupervisorSignalled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sup, child := startDaemon(t, netnstest.NewHost(t, "signalled"), dir, "churn")
	supFD := pidfd(t, sup)
	childFD := pidfd(t, child)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the program's first socket", func() (bool, string) {
		_, err := os.Stat(filepath.Join(dir, "running"))
		return err == nil, fmt.Sprint(err)
	})
	// Signals one at a time, a pause between two so that they do not
	// merge while pending; the old supervisor rarely lasted a few
	// thousand.
	const signals = 20000
	sent := 0
	for round := 0; round < signals/100 && !exited(supFD, 0); round++ {
		tid := pollingThread(t, sup)
		for range min(tid, 100) { // none between two polls: look again
			if err := unix.Tgkill(sup, tid, unix.SIGURG); err != nil {
				break
			}
			sent++
			time.Sleep(20 * time.Microsecond)
		}
	}
	if exited(supFD, 0) {
		t.Errorf("the supervisor exited after %d signals, while the program runs", sent)
	}
	if err := os.WriteFile(filepath.Join(dir, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !exited(childFD, waitLimit) {
		t.Fatalf("the program did not stop within %v", waitLimit)
	}
	b, err := os.ReadFile(filepath.Join(dir, "result"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Calls  int            `json:"calls"`
		MPTCP  int            `json:"mptcp"`
		Errors map[string]int `json:"errors"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("the program wrote %q: %v", b, err)
	}
	if len(got.Errors) != 0 || got.MPTCP != got.Calls {
		t.Errorf("under %d signals to the supervisor, of %d socket calls %d were MPTCP; errors: %v", sent, got.Calls, got.MPTCP, got.Errors)
	}
	if !exited(supFD, waitLimit) {
		t.Errorf("the supervisor (pid %d) still runs %v after the program exited", sup, waitLimit)
	}
}

// pollingThread returns the thread of process pid that waits in ppoll(2),
// which in the supervisor is the one watching the listener, or 0.
func pollingThread(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	want := strconv.Itoa(unix.SYS_PPOLL) + " "
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/syscall", pid, task.Name()))
		if err == nil && strings.HasPrefix(string(b), want) {
			tid, err := strconv.Atoi(task.Name())
			if err == nil {
				return tid
			}
		}
	}
	return 0
}
