//go:build linux

package daemon_test

import (
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// kernelState is what a daemon may change in its namespace's kernel, as
// iproute2 and the sysctl print it: endpoints, limits, path manager.
func kernelState(t *testing.T, h *netnstest.Host) string {
	t.Helper()
	return h.MustExec("ip", "-j", "mptcp", "endpoint", "show") +
		h.MustExec("ip", "-j", "mptcp", "limits", "show") +
		h.MustExec("sysctl", "-n", "net.mptcp.path_manager")
}

// TestSecondInstance: a second mptcpgod in a namespace that one already
// manages exits 1 naming the first one's pid, before it changes anything:
// the kernel's endpoints, limits and path manager are byte for byte what
// they were, though the second one's configuration asks for another path
// manager and would withdraw the endpoints on exit, and the first one
// still manages them.
func TestSecondInstance(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	first := run(t, tb.Client, writeConfig(t, "", config("kernel")))
	waitEndpoints(t, tb.Client, l0.Client4, l1.Client4, l0.Client6, l1.Client6)
	before := kernelState(t, tb.Client)

	second := writeConfig(t, "", config("userspace"))
	code, stderr := exited(t, tb.Client, second)
	if code != 1 {
		t.Errorf("second instance: exit status %d, want 1", code)
	}
	want := fmt.Sprintf("another mptcpgod (pid %d) manages this network namespace", first.Pid())
	if !strings.Contains(stderr, want) {
		t.Errorf("second instance's error does not say %q:\n%s", want, stderr)
	}
	if after := kernelState(t, tb.Client); after != before {
		t.Errorf("the second instance changed the kernel:\nbefore %s\nafter  %s", before, after)
	}

	// The first one still manages its namespace: it follows a change.
	tb.Client.DelAddr(l1.ClientIf, netip.PrefixFrom(l1.Client4, 24))
	enginetest.Poll(t, "the endpoint of the removed address is gone", func() string {
		if eps := endpoints(t, tb.Client); eps[l1.Client4.String()] != "" {
			return fmt.Sprint(eps)
		}
		return ""
	})

	// Once the first has stopped, a new one starts.
	first.Signal(t, syscall.SIGTERM)
	if code := first.Wait(t); code != 0 {
		t.Fatalf("first instance: exit status %d after SIGTERM", code)
	}
	run(t, tb.Client, second)
}
