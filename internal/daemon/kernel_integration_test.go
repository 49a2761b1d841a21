//go:build linux

package daemon_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestKernelModeNewLink: in kernel mode, an address that appears on a new
// link becomes an endpoint bound to the link, existing and new
// connections get subflows over it, and removing the address removes the
// endpoint and those subflows.
func TestKernelModeNewLink(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	acceptJoins(tb.Server)
	daemontest.Run(t, tb.Client, config("kernel"))
	l0 := tb.Links[0]

	enginetest.Poll(t, "endpoints for eth0's addresses", func() string {
		eps := endpoints(t, tb.Client)
		if ownedOn(eps, l0.Client4.String(), "eth0") && ownedOn(eps, l0.Client6.String(), "eth0") && len(eps) == 2 {
			return ""
		}
		return fmt.Sprint(eps)
	})

	ln := tb.Server.Listen("tcp", netip.AddrPortFrom(l0.Server4, 0).String())
	go serve(ln)
	srv := addrPort(ln)
	before := dial(t, tb.Client, ln.Addr())
	waitPaths(t, tb.Client, before, pathSet([]netip.Addr{l0.Client4}, srv))

	// A new link with an address and a route out; the server answers
	// the new address through it, as the testbed's links do. The address
	// becomes usable with the route, so the source rule comes first.
	newAddr := netip.MustParseAddr("198.51.100.1")
	netnstest.Connect(tb.Client, "eth7", tb.Server, "eth7")
	tb.Server.AddAddr("eth7", netip.MustParsePrefix("198.51.100.2/24"))
	tb.Server.MustExec("ip", "route", "add", "default", "via", "198.51.100.1", "dev", "eth7", "table", "107")
	tb.Server.MustExec("ip", "rule", "add", "to", "198.51.100.1", "table", "107", "pref", "1000")
	tb.Client.MustExec("ip", "rule", "add", "from", "198.51.100.1", "table", "107")
	tb.Client.MustExec("ip", "rule", "add", "oif", "eth7", "table", "107")
	tb.Client.AddAddr("eth7", netip.MustParsePrefix("198.51.100.1/24"))
	tb.Client.MustExec("ip", "route", "add", "default", "via", "198.51.100.2", "dev", "eth7", "table", "107")

	enginetest.Poll(t, "an endpoint for the new address", func() string {
		if eps := endpoints(t, tb.Client); !ownedOn(eps, newAddr.String(), "eth7") {
			return fmt.Sprint(eps)
		}
		return ""
	})
	both := pathSet([]netip.Addr{l0.Client4, newAddr}, srv)
	waitPaths(t, tb.Client, before, both)
	after := dial(t, tb.Client, ln.Addr())
	waitPaths(t, tb.Client, after, both)

	tb.Client.DelAddr("eth7", netip.MustParsePrefix("198.51.100.1/24"))
	enginetest.Poll(t, "the endpoint of the removed address is gone", func() string {
		eps := endpoints(t, tb.Client)
		if _, ok := eps[newAddr.String()]; !ok && len(eps) == 2 {
			return ""
		}
		return fmt.Sprint(eps)
	})
	only := pathSet([]netip.Addr{l0.Client4}, srv)
	waitPaths(t, tb.Client, before, only)
	waitPaths(t, tb.Client, after, only)
}

// ownedOn reports whether eps has an endpoint for addr with an id in
// mptcpgod's default range, bound to dev.
func ownedOn(eps map[string]string, addr, dev string) bool {
	line := eps[addr]
	return owned(line) && strings.Contains(line+" ", " dev "+dev+" ")
}
