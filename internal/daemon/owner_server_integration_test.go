//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestRulesByOwnerServer: a connection this host accepted is owned by
// its listener's user from the start, while it still waits in the
// listener's queue, which is when the daemon asks: a rule by uid picks
// its chain. Kernels before 6.17 report root as the owner of a socket
// nobody accepted yet; the daemon then takes its listener's uid.
func TestRulesByOwnerServer(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	r := daemontest.Run(t, tb.Server, `mode = "userspace"
set_path_manager = true

[control]
socket = ""

[[policy.rules]]
uid = 4242
[[policy.rules.chain]]
name = "fullmesh"

[[policy.chain]]
name = "fullmesh"
`)
	ln := tb.Server.ListenAs(4242, "tcp4", ":0")
	// Nobody accepts: the connection stays in the listener's queue.
	raddr := netip.AddrPortFrom(tb.Links[0].Server4, addrPort(ln).Port())
	c, err := tb.Client.Dial("tcp4", "", raddr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	enginetest.Poll(t, "the queued connection on the rule's chain, owned by uid 4242", func() string {
		st, err := r.Conns(context.Background(), pmstate.ConnQuery{})
		if err != nil {
			return err.Error()
		}
		for _, cn := range st.Conns {
			if cn.Local.Port() == raddr.Port() && cn.Owner != nil {
				if cn.Chain == "rules[0]" && cn.Owner.UID == 4242 {
					return ""
				}
				return fmt.Sprintf("chain %q, owner %+v", cn.Chain, *cn.Owner)
			}
		}
		return fmt.Sprintf("not listed with its owner: %+v", st.Conns)
	})
}
