//go:build linux

package transparent_test

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// waitLimit bounds every wait for an event: a process starting, a socket
// listening, a transfer reaching a rate. They take milliseconds to seconds
// on a quiet machine; this one is shared.
const waitLimit = 90 * time.Second

func TestMain(m *testing.M) { os.Exit(daemontest.Main(m)) }

// binary returns the path of one of the programs the tests build:
// "mptcpctl" and "mptcpgod" as make build builds them, and "sockprobe"
// (testdata/sockprobe) with CGO_ENABLED=0.
func binary(t testing.TB, name string) string {
	t.Helper()
	if name == "sockprobe" {
		return daemontest.Program(t, daemontest.Build{
			Pkg: "github.com/mptcpgod/mptcpgod/internal/transparent/testdata/sockprobe", Env: []string{"CGO_ENABLED=0"}})
	}
	return daemontest.Binary(t, name)
}

// need returns the path of a program the test needs, or skips the test
// without it (fails it when CI is "true": make test installs them).
func need(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	runtest.Unavailable(t, fmt.Sprintf("%s is not installed (apt-get install %s)", name, pkg))
	return ""
}

// staticBusybox returns the path of a statically linked busybox (Debian's
// busybox-static), which no preload library can reach.
func staticBusybox(t testing.TB) string {
	t.Helper()
	p := need(t, "busybox", "busybox-static")
	f, err := elf.Open(p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked: the tests want busybox-static's", p)
		}
	}
	return p
}

// waitFor polls cond until it holds, or fails the test after waitLimit
// with cond's last word on what it saw.
func waitFor(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, waitLimit, saw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// supervisorPid reads the pid `mptcpctl run --verbose` reports for its
// supervisor from its standard error.
func supervisorPid(stderr string) (int, bool) {
	_, rest, ok := strings.Cut(stderr, "mptcpctl run: supervisor started: pid ")
	if !ok {
		return 0, false
	}
	line, _, _ := strings.Cut(rest, "\n")
	pid, err := strconv.Atoi(line)
	return pid, err == nil
}

// pidfd opens a pidfd of a process that is not the test's child, closed
// at cleanup.
func pidfd(t testing.TB, pid int) int {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return fd
}

// exited reports whether the process of pidfd fd has exited, waiting at
// most wait for it.
func exited(fd int, wait time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(wait.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n == 1
	}
}

// killAtCleanup kills pid (a process the test started but does not
// reap) when the test ends.
func killAtCleanup(t testing.TB, pid int) {
	t.Cleanup(func() { _ = unix.Kill(pid, unix.SIGKILL) })
}
