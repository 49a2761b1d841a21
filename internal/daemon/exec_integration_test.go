//go:build linux

package daemon_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// gone reports whether the process pid is gone: no such process, or a
// zombie nobody reaped yet.
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// TestExecChildDiesWithDaemon: the exec policy's program dies with a
// daemon killed by SIGKILL, which can clean nothing up: the kernel sends
// it the parent-death signal.
func TestExecChildDiesWithDaemon(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The program never answers the hello: it sleeps, and the policy
	// waits for it (start_timeout) while the rest of the chain decides.
	p := run(t, tb.Client, writeConfig(t, "", config("kernel", fmt.Sprintf(`[[policy.chain]]
name = "fullmesh"

[[policy.chain]]
name = "exec"
config = { command = ["/bin/sh", "-c", "echo $$ > %s; exec sleep 1000"], start_timeout = "1m" }
`, pidFile))))
	var pid int
	eventually(t, "the program's pid", func() (bool, string) {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err == nil && pid > 0, fmt.Sprint(err)
	})
	if gone(pid) {
		t.Fatalf("the program %d is gone before the daemon", pid)
	}
	p.Signal(t, syscall.SIGKILL)
	p.Wait(t)
	eventually(t, "the program killed with the daemon", func() (bool, string) {
		return gone(pid), fmt.Sprintf("process %d still there", pid)
	})
}
