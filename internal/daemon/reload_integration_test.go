//go:build linux

package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/daemon"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestReloadPolicy: a reload with another policy applies to existing
// connections, in both directions; a configuration whose policy does not
// build is refused with its line and changes nothing.
func TestReloadPolicy(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 3)
	acceptJoins(tb.Server)
	one := config("userspace", "[[policy.chain]]\nname = \"fullmesh\"\nconfig = { max_subflows = 1 }\n")
	full := config("userspace")
	cli := daemontest.Run(t, tb.Client, one)

	ln := tb.Server.Listen("tcp", netip.AddrPortFrom(tb.Links[0].Server4, 0).String())
	go serve(ln)
	srv := addrPort(ln)
	conn := dial(t, tb.Client, srv)
	var locals []netip.Addr
	for _, l := range tb.Links {
		locals = append(locals, l.Client4)
	}
	waitCount(t, tb.Client, conn, 2)

	reload(t, cli, full)
	waitPaths(t, tb.Client, conn, pathSet(locals, srv))

	reload(t, cli, one)
	waitCount(t, tb.Client, conn, 2)
	kept := paths(t, tb.Client, conn)
	if !strings.HasPrefix(kept[0], tb.Links[0].Client4.String()+"->") {
		t.Errorf("the initial subflow is gone: %v", kept)
	}

	broken := full + "[[policy.chain]]\nname = \"fullmesh\"\n\nconfig = { max_subflow = 2 }\n"
	line := strings.Count(full, "\n") + 4
	cfg, err := daemon.Parse("broken.toml", []byte(broken))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	err = cli.Reload(context.Background(), cfg)
	var ce *daemon.Error
	want := fmt.Sprintf(`broken.toml:%d: key "policy.chain[0].config.max_subflow": policy/fullmesh: unknown option "max_subflow"`, line)
	if !errors.As(err, &ce) || err.Error() != want {
		t.Fatalf("Reload(broken) = %v, want %s", err, want)
	}
	st, err := cli.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters.PolicySwaps != 2 {
		t.Errorf("policy swaps = %d after a refused reload, want 2", st.Counters.PolicySwaps)
	}
	if got := paths(t, tb.Client, conn); !equal(got, kept) {
		t.Errorf("subflows changed after a refused reload: %v, were %v", got, kept)
	}
}

// waitCount waits until the connection has n subflows.
func waitCount(t *testing.T, h *netnstest.Host, conn netip.AddrPort, n int) {
	t.Helper()
	var got []string
	enginetest.Poll(t, "subflow count", func() string {
		if got = paths(t, h, conn); len(got) != n {
			return fmt.Sprintf("%d, want %d: %v", len(got), n, got)
		}
		return ""
	})
}

func equal(a, b []string) bool { return strings.Join(a, " ") == strings.Join(b, " ") }
