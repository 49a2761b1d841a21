//go:build linux

package daemon

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestFindListener: a program that follows the path manager's events in
// the namespace (here ip mptcp monitor, as mptcpd would) is found from the
// kernel's state, with its name when /proc shows its process, and without
// when a sandbox hides it; one in another namespace is not.
func TestFindListener(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "coexist")
	other := netnstest.NewHost(t, "coexist2")
	c, err := genl.New(&genl.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	group := c.EventsGroup()
	log := slog.New(slog.DiscardHandler)
	if got := findManagers(log, "/proc", h.NetNS(), group).listeners; len(got) != 0 {
		t.Fatalf("listeners before the monitor: %v", got)
	}
	mon := other.Command("ip", "mptcp", "monitor")
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mon.Process.Kill(); _ = mon.Wait() }()
	mon = h.Command("ip", "mptcp", "monitor")
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mon.Process.Kill(); _ = mon.Wait() }()
	var got []string
	enginetest.PollWithin(t, netnstest.Patience(time.Minute), "ip mptcp monitor subscribed", func() string {
		if got = findManagers(log, "/proc", h.NetNS(), group).listeners; len(got) == 0 {
			return "no listener"
		}
		return ""
	})
	if len(got) != 1 || !strings.HasSuffix(got[0], "(ip)") {
		t.Errorf("listeners with ip mptcp monitor running: %v, want it, named", got)
	}
	hidden := findManagers(log, t.TempDir(), h.NetNS(), group).listeners
	if len(hidden) != 1 || strings.Contains(hidden[0], "(") {
		t.Errorf("listeners with /proc hidden: %v, want the port alone", hidden)
	}
}
