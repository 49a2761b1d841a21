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
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
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
	enginetest.Poll(t, "the program's pid", func() string {
		b, err := os.ReadFile(pidFile)
		if err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if err == nil && pid > 0 {
			return ""
		}
		return fmt.Sprint(err)
	})
	if gone(pid) {
		t.Fatalf("the program %d is gone before the daemon", pid)
	}
	p.Signal(t, syscall.SIGKILL)
	p.Wait(t)
	enginetest.Poll(t, "the program killed with the daemon", func() string {
		if gone(pid) {
			return ""
		}
		return fmt.Sprintf("process %d still there", pid)
	})
}
