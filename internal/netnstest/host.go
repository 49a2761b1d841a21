package netnstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// nsPrefix starts the name of every namespace this package creates.
const nsPrefix = "mgt-"

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// commandWaitDelay bounds how long Cmd.Wait waits for output after the
// command was killed at cleanup.
const commandWaitDelay = 2 * time.Second

var (
	// hostSeq makes namespace names unique inside one test binary.
	hostSeq atomic.Uint64
	// validName is what NewHost accepts as a short host name.
	validName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)
	// staleName matches the namespaces of any test binary; group 1 is its pid.
	staleName = regexp.MustCompile(`^` + nsPrefix + `([0-9]+)-`)
)

// Host is a network namespace created for one test. Its helpers that change
// the namespace fail the test (t.Fatal, with the command output) on error, so
// like t.Fatal they must be called from the test's goroutine; Name, NetNS,
// Do, Exec, Command and Dial may be called from any goroutine.
type Host struct {
	t    TB
	name string

	fdMu sync.RWMutex // guards fd: cleanup closes it while a late Do may run
	fd   int          // of /run/netns/NAME; -1 after cleanup

	ctx    context.Context // cancelled at cleanup; kills Command processes
	cancel context.CancelFunc

	mu      sync.Mutex
	closers []io.Closer // listeners and connections made by Listen and Dial
}

// NewHost creates a network namespace named "mgt-<pid>-<name>-<n>", brings lo
// up, turns rp_filter and IPv6 duplicate address detection off, and registers
// a t.Cleanup that closes what the host opened, kills the processes started
// through Command and deletes the namespace. name is a short label (1 to 32
// letters, digits, '_', '.' or '-') that keeps the namespace recognisable.
//
// Without root NewHost skips the test, or fails it when CI is "true".
func NewHost(t TB, name string) *Host {
	t.Helper()
	requireRoot(t)
	if !validName.MatchString(name) {
		t.Fatalf("netnstest: host name %q: want 1 to 32 letters, digits, '_', '.' or '-'", name)
	}
	sweepStale(t)

	h := &Host{
		t:    t,
		name: fmt.Sprintf("%s%d-%s-%d", nsPrefix, os.Getpid(), name, hostSeq.Add(1)),
		fd:   -1,
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if out, err := run("ip", "netns", "add", h.name); err != nil {
		h.cancel()
		t.Fatalf("netnstest: create namespace %s: %v\n%s", h.name, err, out)
	}
	t.Cleanup(h.cleanup)

	fd, err := unix.Open(filepath.Join(netnsDir, h.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("netnstest: open namespace %s: %v", h.name, err)
	}
	h.fdMu.Lock()
	h.fd = fd
	h.fdMu.Unlock()

	h.ip("link", "set", "lo", "up")
	for _, key := range []string{
		"net.ipv4.conf.all.rp_filter",
		"net.ipv4.conf.default.rp_filter",
		"net.ipv6.conf.all.accept_dad",
		"net.ipv6.conf.default.accept_dad",
	} {
		h.Sysctl(key, "0")
	}
	return h
}

// requireRoot skips the test without root, or fails it when CI is "true".
func requireRoot(t TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "netnstest: network namespaces need root")
	}
}

// sweepStale deletes the namespaces left behind by test binaries that died
// before their cleanup ran: those named "mgt-<pid>-*" whose pid is gone. It
// runs on every NewHost; reading /run/netns is cheap and a crashed run is
// then cleaned up by the next one, whatever order tests run in.
func sweepStale(t TB) {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return // no namespace was ever created on this machine
	}
	for _, e := range entries {
		m := staleName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		out, err := run("ip", "netns", "del", e.Name())
		// A parallel test binary may have swept the same namespace first.
		if err != nil && !isMissingNetns(e.Name()) {
			t.Logf("netnstest: delete stale namespace %s: %v\n%s", e.Name(), err, out)
		}
	}
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// isMissingNetns reports whether the named namespace no longer exists.
func isMissingNetns(name string) bool {
	_, err := os.Lstat(filepath.Join(netnsDir, name))
	return errors.Is(err, os.ErrNotExist)
}

// cleanup closes what the host opened, kills its processes and deletes the
// namespace.
func (h *Host) cleanup() {
	h.cancel()
	h.mu.Lock()
	closers := h.closers
	h.closers = nil
	h.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		_ = closers[i].Close() // a test may have closed it already
	}
	h.fdMu.Lock()
	if h.fd >= 0 {
		_ = unix.Close(h.fd)
		h.fd = -1
	}
	h.fdMu.Unlock()
	if out, err := run("ip", "netns", "del", h.name); err != nil {
		h.t.Errorf("netnstest: delete namespace %s: %v\n%s", h.name, err, out)
	}
}

// track registers c to be closed at cleanup.
func (h *Host) track(c io.Closer) {
	h.mu.Lock()
	h.closers = append(h.closers, c)
	h.mu.Unlock()
}

// Name returns the namespace name, as shown by `ip netns list`.
func (h *Host) Name() string { return h.name }

// NetNS returns a file descriptor of the namespace, for APIs that take one
// (genl.Config{NetNS}). It stays open until cleanup; do not close it.
func (h *Host) NetNS() int {
	h.fdMu.RLock()
	defer h.fdMu.RUnlock()
	return h.fd
}

// Do runs fn on a locked OS thread inside the namespace and returns its
// error. Sockets fn creates belong to the namespace. fn runs on a goroutine
// of its own, so it must not call t.FailNow (t.Fatal); goroutines fn starts
// do not run in the namespace. A panic in fn is re-raised in the caller.
func (h *Host) Do(fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { done <- r }()
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			r.err = fmt.Errorf("netnstest: open current namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := h.enter(); err != nil {
			runtime.UnlockOSThread()
			r.err = err
			return
		}
		func() {
			defer func() { r.panic = recover() }()
			r.err = fn()
		}()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread exits with this goroutine instead of
			// running other goroutines in the wrong namespace.
			r.err = errors.Join(r.err, fmt.Errorf("netnstest: leave namespace %s: %w", h.name, err))
			return
		}
		runtime.UnlockOSThread()
	}()
	r := <-done
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

// enter moves the calling thread into the namespace.
func (h *Host) enter() error {
	h.fdMu.RLock()
	defer h.fdMu.RUnlock()
	if h.fd < 0 {
		return fmt.Errorf("netnstest: enter namespace %s: host already cleaned up", h.name)
	}
	if err := unix.Setns(h.fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netnstest: enter namespace %s: %w", h.name, err)
	}
	return nil
}

// Exec runs `ip netns exec NAME args...` and returns its combined output. The
// error names the command and includes the output.
func (h *Host) Exec(args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("netnstest: exec: args: empty command")
	}
	return run("ip", append([]string{"netns", "exec", h.name}, args...)...)
}

// MustExec is Exec that fails the test on error.
func (h *Host) MustExec(args ...string) string {
	h.t.Helper()
	out, err := h.Exec(args...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// Nstat returns the namespace's counter name ("MPTcpExtMPJoinSynTx",
// "TcpExtListenDrops") as `nstat -asz` reads it from /proc/net/netstat
// and /proc/net/snmp, and fails the test when nstat does not know it.
func (h *Host) Nstat(name string) uint64 {
	h.t.Helper()
	out := h.MustExec("nstat", "-asz", name)
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				h.t.Fatalf("netnstest: nstat %s: %q", name, line)
			}
			return v
		}
	}
	h.t.Fatalf("netnstest: nstat has no %s:\n%s", name, out)
	return 0
}

// MPTCPDump returns what explains a missing subflow, for a failure message:
// the TCP sockets with their details (every subflow), the MPTCP sockets
// with their path-manager counters, the endpoints, the limits and the
// namespace's MP_JOIN, ADD_ADDR and RM_ADDR counters, each under the
// command that printed it. A command that fails prints its error; the
// test goes on.
func (h *Host) MPTCPDump() string {
	var b strings.Builder
	for _, cmd := range [][]string{
		{"ss", "-tanio"},
		{"ss", "-Mni"},
		{"ip", "mptcp", "endpoint", "show"},
		{"ip", "mptcp", "limits", "show"},
		{"sh", "-c", "nstat -asz | grep -i -e join -e addaddr -e rmaddr"},
	} {
		out, err := h.Exec(cmd...)
		fmt.Fprintf(&b, "$ %s (%v)\n%s\n", strings.Join(cmd, " "), err, out)
	}
	return b.String()
}

// Command returns an unstarted command that runs name inside the namespace
// (through `ip netns exec`). The command gets a process group of its own; if
// it still runs at cleanup, the whole group is killed.
//
// It has no parent-death signal: the kernel sends that when the thread
// that started the command exits, and the test's threads exit whenever a
// goroutine that entered a namespace (here, or in a netlink library) ends
// locked to its thread. A supervisor of `mptcpctl run` killed that way
// left its program's socket(2) failing with ENOSYS.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(h.ctx, "ip", append([]string{"netns", "exec", h.name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// `ip netns exec` execs name in place: its pid leads the group.
		return unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}
	cmd.WaitDelay = commandWaitDelay
	return cmd
}

// ip runs `ip -n NAME args...` and fails the test on error.
func (h *Host) ip(args ...string) string {
	h.t.Helper()
	out, err := run("ip", append([]string{"-n", h.name}, args...)...)
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// ipBatch runs the ip commands in lines, one `ip -n NAME -batch` per family
// flag ("-4" or "-6"), and fails the test on error.
func (h *Host) ipBatch(family string, lines []string) {
	h.t.Helper()
	if len(lines) == 0 {
		return
	}
	cmd := exec.Command("ip", family, "-n", h.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("netnstest: ip %s -n %s -batch: %v\n%s\ncommands:\n%s",
			family, h.name, err, out, strings.Join(lines, "\n"))
	}
}

// AddAddr adds prefix p to interface ifname; IPv6 addresses get nodad so
// they are usable at once.
func (h *Host) AddAddr(ifname string, p netip.Prefix) {
	h.t.Helper()
	args := []string{"addr", "add", p.String(), "dev", ifname}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	h.ip(args...)
}

// DelAddr removes prefix p from interface ifname.
func (h *Host) DelAddr(ifname string, p netip.Prefix) {
	h.t.Helper()
	h.ip("addr", "del", p.String(), "dev", ifname)
}

// SetLinkUp sets interface ifname up or down.
func (h *Host) SetLinkUp(ifname string, up bool) {
	h.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	h.ip("link", "set", "dev", ifname, state)
}

// Sysctl sets key (dotted, as in sysctl(8), or a path below /proc/sys) to
// value inside the namespace.
func (h *Host) Sysctl(key, value string) {
	h.t.Helper()
	if err := h.Do(func() error { return writeSysctl(key, value) }); err != nil {
		h.t.Fatal(err)
	}
}

// sysctl returns the value of key inside the namespace.
func (h *Host) sysctl(key string) (string, error) {
	var v string
	err := h.Do(func() error {
		b, err := os.ReadFile(sysctlPath(key))
		if err != nil {
			return fmt.Errorf("netnstest: read sysctl %s: %w", key, err)
		}
		v = strings.TrimSpace(string(b))
		return nil
	})
	return v, err
}

// sysctlPath turns a sysctl key into its file below /proc/sys.
func sysctlPath(key string) string {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", filepath.Clean("/"+key))
}

// writeSysctl writes value to key in the calling thread's namespace.
func writeSysctl(key, value string) error {
	f, err := os.OpenFile(sysctlPath(key), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("netnstest: sysctl %s: %w", key, err)
	}
	if _, err := f.WriteString(value); err != nil {
		_ = f.Close()
		return fmt.Errorf("netnstest: sysctl %s=%s: %w", key, value, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("netnstest: sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// SetPathManager selects the MPTCP path manager of the namespace: "kernel"
// or "userspace". It writes net.mptcp.path_manager (Linux 6.15+) or, on older
// kernels, net.mptcp.pm_type (0 kernel, 1 userspace).
func (h *Host) SetPathManager(pm string) {
	h.t.Helper()
	var pmType string
	switch pm {
	case "kernel":
		pmType = "0"
	case "userspace":
		pmType = "1"
	default:
		h.t.Fatalf("netnstest: path manager %q: want \"kernel\" or \"userspace\"", pm)
	}
	err := h.Do(func() error {
		if _, err := os.Stat(sysctlPath("net.mptcp.path_manager")); err == nil {
			return writeSysctl("net.mptcp.path_manager", pm)
		}
		return writeSysctl("net.mptcp.pm_type", pmType)
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// run runs a command and returns its combined output; the error names the
// command and includes the output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netnstest: %s %s: %w: %s",
			name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
