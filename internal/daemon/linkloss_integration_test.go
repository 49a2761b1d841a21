//go:build linux

package daemon_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestLinkLossAndReturn: a long-lived connection meshed over two links
// loses the second (its address removed, then the link down), keeps going
// on the first, and gets a subflow over the second again when the link
// comes back; in both modes.
func TestLinkLossAndReturn(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"kernel", "userspace"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 2)
			acceptJoins(tb.Server)
			cli := daemontest.Run(t, tb.Client, config(mode))
			l0, l1 := tb.Links[0], tb.Links[1]
			if mode == "kernel" {
				waitEndpoints(t, tb.Client, l0.Client4, l1.Client4)
			}
			ln := tb.Server.Listen("tcp", netip.AddrPortFrom(l0.Server4, 0).String())
			go serve(ln)
			srv := addrPort(ln)
			conn := dial(t, tb.Client, srv)
			both := pathSet([]netip.Addr{l0.Client4, l1.Client4}, srv)
			waitPaths(t, tb.Client, conn, both)

			prefix := netip.PrefixFrom(l1.Client4, 24)
			tb.Client.DelAddr(l1.ClientIf, prefix)
			only := pathSet([]netip.Addr{l0.Client4}, srv)
			waitPaths(t, tb.Client, conn, only)
			if mode == "kernel" {
				enginetest.Poll(t, "the endpoint of the removed address is gone", func() string {
					if eps := endpoints(t, tb.Client); eps[l1.Client4.String()] != "" {
						return fmt.Sprint(eps)
					}
					return ""
				})
			}
			tb.Client.SetLinkUp(l1.ClientIf, false)
			// The link's IPv6 address goes with it; once the daemon saw
			// that, it saw the link go down.
			waitUsable(t, cli, l1.Client6, false)

			// The link comes back with its address; the kernel dropped
			// the link's IPv4 routes when it went down, so they come back
			// too, as a DHCP client would add them.
			tb.Client.SetLinkUp(l1.ClientIf, true)
			tb.Client.AddAddr(l1.ClientIf, prefix)
			tb.Client.MustExec("ip", "route", "replace", "default", "via", l1.Server4.String(),
				"dev", l1.ClientIf, "table", "101")
			waitUsable(t, cli, l1.Client4, true)
			waitPaths(t, tb.Client, conn, both)
		})
	}
}
