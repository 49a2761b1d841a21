package sockdiag_test

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestNetlinkSockets: a socket that joins the mptcp_pm events group in a
// namespace shows up among the namespace's generic netlink sockets with
// that group, and only there: not in another namespace, not before it
// joined, not after it closed.
func TestNetlinkSockets(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "nldiag")
	other := netnstest.NewHost(t, "nldiag2")
	c, err := genl.New(&genl.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	group := c.EventsGroup()
	if group == 0 {
		t.Fatal("the kernel has no mptcp_pm_events group")
	}
	listeners := func(h *netnstest.Host) []uint32 {
		t.Helper()
		d, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS()})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		var inodes []uint32
		if err := d.NetlinkSockets(unix.NETLINK_GENERIC, func(s *sockdiag.NetlinkSocket) error {
			if s.Protocol != unix.NETLINK_GENERIC {
				t.Errorf("socket of protocol %d in a dump of %d", s.Protocol, unix.NETLINK_GENERIC)
			}
			if s.Joined(group) {
				inodes = append(inodes, s.Inode)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return inodes
	}
	if got := listeners(h); len(got) != 0 {
		t.Fatalf("listeners before anyone subscribed: %v", got)
	}
	sub, err := c.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	got := listeners(h)
	if len(got) != 1 {
		t.Errorf("listeners after one subscribed: %v, want one", got)
	}
	if l := listeners(other); len(l) != 0 {
		t.Errorf("listeners in another namespace: %v", l)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	// The kernel releases the socket when its file's last reference
	// goes, which a process that a parallel test forks holds until it
	// executes its program.
	enginetest.Poll(t, "no listener after the subscription closed", func() string {
		if after := listeners(h); len(after) != 0 {
			return fmt.Sprintf("listeners %v (%v before the close)", after, got)
		}
		return ""
	})
}
