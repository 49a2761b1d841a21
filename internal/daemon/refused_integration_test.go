//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// rogueProgram is an exec policy that adds to every plan what no plan may
// hold: subflows from 127.0.0.1 and 0.0.0.0, to a multicast address and
// to another port of the peer, announces of 127.0.0.1 and 224.0.0.1;
// endpoints of 127.0.0.1 and 0.0.0.0.
const rogueProgram = `import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m["type"] == "hello":
        print(json.dumps({"type": "hello", "version": 1, "name": "rogue"}), flush=True)
        continue
    plan = m["next"]
    if m["type"] == "kernel":
        plan["endpoints"] = (plan.get("endpoints") or []) + [
            {"addr": "127.0.0.1", "subflow": True}, {"addr": "0.0.0.0", "subflow": True}]
    else:
        local, remote = m["conn"]["local"], m["conn"]["remote"]
        host, port = remote.rsplit(":", 1)
        me = local.rsplit(":", 1)[0]
        plan["paths"] = (plan.get("paths") or []) + [
            {"local": "127.0.0.1", "remote": remote}, {"local": "0.0.0.0", "remote": remote},
            {"local": me, "remote": "224.0.0.1:" + port}, {"local": me, "remote": host + ":25"}]
        plan["announces"] = (plan.get("announces") or []) + [{"addr": "127.0.0.1"}, {"addr": "224.0.0.1"}]
    print(json.dumps({"type": m["type"], "id": m["id"], "plan": plan}), flush=True)
`

// startRogue starts the daemon in mode on a one-link testbed with the
// chain fullmesh | exec running rogueProgram.
func startRogue(t *testing.T, mode string) (*netnstest.Testbed, *daemontest.InProcess) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3: %v (.ci/run installs it)", err)
	}
	prog := filepath.Join(t.TempDir(), "rogue.py")
	if err := os.WriteFile(prog, []byte(rogueProgram), 0o644); err != nil {
		t.Fatal(err)
	}
	tb := netnstest.NewTestbed(t, 1)
	acceptJoins(tb.Server)
	r := daemontest.Run(t, tb.Client, config(mode, fmt.Sprintf(`
[[policy.chain]]
name = "fullmesh"

[[policy.chain]]
name = "exec"
config = { command = [%q, %q] }
`, python, prog)))
	return tb, r
}

// TestExecPlanRefused: in userspace mode, what an exec policy asks that no
// plan may hold never reaches the kernel: the client sends no MP_JOIN,
// the server gets no ADD_ADDR, and the daemon shows each refused part with
// its reason and counts it; in kernel mode, no endpoint of 127.0.0.1 or
// 0.0.0.0 is added.
func TestExecPlanRefused(t *testing.T) {
	t.Parallel()
	t.Run("userspace", func(t *testing.T) {
		t.Parallel()
		tb, r := startRogue(t, "userspace")
		ln := tb.Server.Listen("tcp", netip.AddrPortFrom(tb.Links[0].Server4, 0).String())
		go serve(ln)
		srv := addrPort(ln)
		dial(t, tb.Client, srv)
		want := []string{
			"0.0.0.0 -> " + srv.String(),
			"127.0.0.1 -> " + srv.String(),
			tb.Links[0].Client4.String() + " -> " + netip.AddrPortFrom(srv.Addr(), 25).String(),
			tb.Links[0].Client4.String() + " -> 224.0.0.1:" + fmt.Sprint(srv.Port()),
		}
		var conn pmstate.Conn
		enginetest.PollWithin(t, pythonStartLimit, "the rogue plan's paths and announces refused", func() string {
			page, err := r.Conns(context.Background(), pmstate.ConnQuery{})
			if err != nil || len(page.Conns) != 1 {
				return fmt.Sprint(page, err)
			}
			conn = page.Conns[0]
			var refused []string
			for _, p := range conn.Paths {
				if p.State == pmstate.PathRefused && p.Reason != "" {
					refused = append(refused, p.Local.String()+" -> "+p.Remote.String())
				}
			}
			slices.Sort(refused)
			announces := 0
			for _, a := range conn.Announces {
				if a.State == pmstate.AnnounceRefused && a.Reason != "" {
					announces++
				}
			}
			if slices.Equal(refused, want) && announces == 2 {
				return ""
			}
			return fmt.Sprintf("%+v %+v", conn.Paths, conn.Announces)
		})
		st, err := r.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Counters.PlansRefused; got["path"] != 4 || got["announce"] != 2 {
			t.Errorf("plans refused %v, want 4 paths and 2 announces", got)
		}
		if sent, failed := joinCounters(t, tb.Client); sent != 0 || failed != 0 {
			t.Errorf("the client sent %d MP_JOIN SYNs and failed %d, want none\n%s", sent, failed, tb.Client.MPTCPDump())
		}
		if n := nstatValue(t, tb.Server, "MPTcpExtAddAddr"); n != 0 {
			t.Errorf("the server received %d ADD_ADDR, want none", n)
		}
	})
	t.Run("kernel", func(t *testing.T) {
		t.Parallel()
		tb, r := startRogue(t, "kernel")
		enginetest.PollWithin(t, pythonStartLimit, "the rogue plan's endpoints refused", func() string {
			st, err := r.Status(context.Background())
			if err != nil {
				return err.Error()
			}
			unusable := 0
			for _, e := range st.Endpoints {
				if e.State == pmstate.EndpointUnusable && (e.Addr.IsLoopback() || e.Addr.IsUnspecified()) {
					unusable++
				}
			}
			if unusable == 2 && st.Counters.PlansRefused["endpoint"] == 2 {
				return ""
			}
			return fmt.Sprintf("%+v %v", st.Endpoints, st.Counters.PlansRefused)
		})
		eps := endpoints(t, tb.Client)
		for addr := range eps {
			if a := netip.MustParseAddr(addr); a.IsLoopback() || a.IsUnspecified() || strings.HasPrefix(addr, "224.") {
				t.Errorf("endpoint %s added", eps[addr])
			}
		}
	})
}
