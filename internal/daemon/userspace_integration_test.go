//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/daemon"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
)

// TestUserspaceMesh: in userspace mode every new connection gets its full
// mesh: 2×1 with two local links while the server announces nothing more,
// 2×2 once it announces its second address (after a reload that includes
// its second link), for existing and new connections, IPv4 and IPv6.
func TestUserspaceMesh(t *testing.T) {
	t.Parallel()
	for _, family := range []string{"ipv4", "ipv6"} {
		t.Run(family, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 2)
			local, remote := addrs(tb, family)
			daemontest.Run(t, tb.Client, config("userspace"))
			// The server announces the addresses of the connection's
			// family only, and at first not those of eth1.
			chain := fmt.Sprintf("[[policy.chain]]\nname = \"fullmesh\"\nconfig = { families = %q }\n", family)
			srv := daemontest.Run(t, tb.Server, config("userspace", `exclude_names = ["eth1"]`, chain))

			// Joins to an announced address need a listener on it too.
			ln := tb.Server.Listen("tcp", ":0")
			go serve(ln)
			port := addrPort(ln).Port()
			s0 := netip.AddrPortFrom(remote[0], port)
			s1 := netip.AddrPortFrom(remote[1], port)

			first := dial(t, tb.Client, s0)
			waitPaths(t, tb.Client, first, pathSet(local, s0))

			reload(t, srv, config("userspace", chain))
			full := pathSet(local, s0, s1)
			waitPaths(t, tb.Client, first, full)
			second := dial(t, tb.Client, s0)
			waitPaths(t, tb.Client, second, full)
		})
	}
}

// addrs returns the client's and the server's address of every link of
// tb in family ("ipv4" or "ipv6").
func addrs(tb *netnstest.Testbed, family string) (client, server []netip.Addr) {
	for _, l := range tb.Links {
		if family == "ipv4" {
			client, server = append(client, l.Client4), append(server, l.Server4)
		} else {
			client, server = append(client, l.Client6), append(server, l.Server6)
		}
	}
	return client, server
}

// reload reloads r with the configuration text.
func reload(t *testing.T, r *daemontest.InProcess, text string) {
	t.Helper()
	cfg, err := daemon.Parse("reload.toml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if err := r.Reload(context.Background(), cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
}
