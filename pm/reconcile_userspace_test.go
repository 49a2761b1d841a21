package pm

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

const (
	tok1 uint32 = 0x11111111
	tok2 uint32 = 0x22222222
	tok3 uint32 = 0x33333333
	tok4 uint32 = 0x44444444
)

// Peer addresses: the server's two addresses and a client's.
const (
	srv1   = "203.0.113.80:443"
	srv2   = "203.0.113.81:443"
	client = "203.0.113.90:50000"
)

// event builds an event; mods set the rest.
func event(typ genl.EventType, token uint32, local, remote string, mods ...func(*genl.Event)) genl.Event {
	ev := genl.Event{Type: typ, Token: token}
	if local != "" {
		ev.Local = netip.MustParseAddrPort(local)
	}
	if remote != "" {
		ev.Remote = netip.MustParseAddrPort(remote)
	}
	for _, m := range mods {
		m(&ev)
	}
	return ev
}

func ids(loc, rem uint8) func(*genl.Event) {
	return func(ev *genl.Event) { ev.LocalID, ev.RemoteID = loc, rem }
}

func serverSide(ev *genl.Event) { ev.ServerSide, ev.Flags = true, ev.Flags|genl.EventFlagServerSide }

func denyJoinID0(ev *genl.Event) { ev.Flags |= genl.EventFlagDenyJoinID0 }

func sockErr(errno unix.Errno) func(*genl.Event) {
	return func(ev *genl.Event) { ev.Error = uint8(errno) }
}

// open feeds CREATED and ESTABLISHED of a client-side connection.
func (h *harness) open(token uint32, local, remote string, mods ...func(*genl.Event)) {
	h.events(event(genl.EventCreated, token, local, remote, mods...),
		event(genl.EventEstablished, token, local, remote, mods...))
}

func newUserspace(t *testing.T, opts ...harnessOpt) *harness {
	t.Helper()
	h := newHarness(t, policy.ModeUserspace, opts...)
	h.setHost(addrA, addrB)
	h.start()
	h.ready()
	return h
}

// pathStates returns "local -> remote state" for every path of token.
func (h *harness) pathStates(token uint32) []string {
	h.t.Helper()
	st := h.settle()
	for _, c := range st.Conns {
		if c.Token == token {
			var out []string
			for _, p := range c.Paths {
				out = append(out, p.Local.String()+" -> "+p.Remote.String()+" "+string(p.State))
			}
			return out
		}
	}
	h.t.Fatalf("no connection %08x in status", token)
	return nil
}

// TestUserspaceMesh walks a client connection through its life: 2×1 mesh
// on ESTABLISHED, 2×2 after ANNOUNCED, back after REMOVED, gone after
// CLOSED.
func TestUserspaceMesh(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.events(event(genl.EventCreated, tok1, "192.0.2.1:40000", srv1))
		h.expect() // nothing before ESTABLISHED
		h.events(event(genl.EventEstablished, tok1, "192.0.2.1:40000", srv1))
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		if diff := cmp.Diff([]string{
			"192.0.2.1 -> 203.0.113.80:443 established",
			"198.51.100.1 -> 203.0.113.80:443 connecting",
		}, h.pathStates(tok1)); diff != "" {
			t.Errorf("paths (-want +got):\n%s", diff)
		}
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		h.expect()

		// An announced address is tried one path at a time until a
		// subflow to it is established.
		h.events(event(genl.EventAnnounced, tok1, "", srv2, ids(0, 1)))
		h.expect("create 11111111 192.0.2.1 -> 203.0.113.81:443 flags= if=2 id=0")
		if diff := cmp.Diff([]string{
			"192.0.2.1 -> 203.0.113.80:443 established",
			"192.0.2.1 -> 203.0.113.81:443 connecting",
			"198.51.100.1 -> 203.0.113.80:443 established",
			"198.51.100.1 -> 203.0.113.81:443 waiting",
		}, h.pathStates(tok1)); diff != "" {
			t.Errorf("paths while the announced address is tried (-want +got):\n%s", diff)
		}
		h.events(event(genl.EventSubEstablished, tok1, "192.0.2.1:40002", srv2, ids(0, 1)))
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.81:443 flags= if=3 id=255")
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40003", srv2, ids(1, 1)))
		h.expect()
		if diff := cmp.Diff([]string{
			"192.0.2.1 -> 203.0.113.80:443 established",
			"192.0.2.1 -> 203.0.113.81:443 established",
			"198.51.100.1 -> 203.0.113.80:443 established",
			"198.51.100.1 -> 203.0.113.81:443 established",
		}, h.pathStates(tok1)); diff != "" {
			t.Errorf("paths (-want +got):\n%s", diff)
		}

		h.events(event(genl.EventRemoved, tok1, "", "", ids(0, 1)))
		h.expect(
			"destroy 11111111 192.0.2.1:40002 -> 203.0.113.81:443",
			"destroy 11111111 198.51.100.1:40003 -> 203.0.113.81:443",
		)
		h.events(
			event(genl.EventSubClosed, tok1, "192.0.2.1:40002", srv2, ids(0, 1)),
			event(genl.EventSubClosed, tok1, "198.51.100.1:40003", srv2, ids(1, 1)),
		)
		h.expect()
		if diff := cmp.Diff([]string{
			"192.0.2.1 -> 203.0.113.80:443 established",
			"198.51.100.1 -> 203.0.113.80:443 established",
		}, h.pathStates(tok1)); diff != "" {
			t.Errorf("paths after REMOVED (-want +got):\n%s", diff)
		}

		h.events(event(genl.EventClosed, tok1, "", ""))
		h.expect()
		if st := h.settle(); len(st.Conns) != 0 {
			t.Errorf("connections after CLOSED: %+v", st.Conns)
		}
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		connWakes := 0
		for _, w := range h.e.wakes {
			if !w.sweep {
				connWakes++
			}
		}
		if len(h.e.conns) != 0 || connWakes != 0 || h.e.runnable.len() != 0 || len(h.e.dirty) != 0 {
			t.Errorf("state left after CLOSED: %d conns, %d wakes, %d ready, %d dirty",
				len(h.e.conns), connWakes, h.e.runnable.len(), len(h.e.dirty))
		}
	})
}

// TestUserspaceBackoff: a failed path waits Initial, then twice that, and
// a success resets it.
func TestUserspaceBackoff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		create := "create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255"
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect(create)
		h.events(event(genl.EventSubClosed, tok1, "198.51.100.1:40001", srv1, sockErr(unix.ECONNREFUSED)))
		h.expect()
		st := h.settle()
		p := st.Conns[0].Paths[1]
		if p.State != "backoff" || p.Failures != 1 || p.LastError != "subflow closed: connection refused" ||
			!p.BackoffUntil.Equal(h.clock.Now().Add(50*time.Millisecond)) {
			t.Errorf("path after a failure: %+v", p)
		}
		// A reconciliation inside the backoff does not retry.
		h.clock.Advance(49 * time.Millisecond)
		h.events(event(genl.EventSubPriority, tok1, "192.0.2.1:40000", srv1))
		h.expect()
		h.clock.Advance(time.Millisecond)
		h.expect(create)

		// The kernel refuses the next create: twice the delay.
		h.ns.fail = func(call string) error {
			if call == create {
				return kerr("create subflow", unix.EINVAL, "connect error: -99")
			}
			return nil
		}
		h.events(event(genl.EventSubClosed, tok1, "198.51.100.1:40002", srv1))
		h.expect()
		h.clock.Advance(100 * time.Millisecond)
		h.expect(create)
		st = h.settle()
		if p := st.Conns[0].Paths[1]; p.Failures != 3 || p.LastError != "genl: create subflow: connect error: -99: invalid argument" {
			t.Errorf("path after a refused create: %+v", p)
		}
		h.ns.fail = nil
		h.clock.Advance(199 * time.Millisecond)
		h.expect()
		h.clock.Advance(time.Millisecond)
		h.expect(create)

		// A subflow closed right after it was established (a refused join)
		// is no success: the delay keeps growing.
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40003", srv1, ids(1, 0)),
			event(genl.EventSubClosed, tok1, "198.51.100.1:40003", srv1, ids(1, 0)))
		h.expect()
		h.clock.Advance(399 * time.Millisecond)
		h.expect()
		h.clock.Advance(time.Millisecond)
		h.expect(create)

		// A subflow that stays up resets the backoff: the next failure waits
		// Initial again.
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40004", srv1, ids(1, 0)))
		h.expect()
		h.clock.Advance(time.Second)
		if p := h.settle().Conns[0].Paths[1]; p.Failures != 0 || p.State != "established" {
			t.Errorf("path after success: %+v", p)
		}
		h.events(event(genl.EventSubClosed, tok1, "198.51.100.1:40004", srv1, ids(1, 0)))
		h.expect()
		h.clock.Advance(50 * time.Millisecond)
		h.expect(create)
	})
}

// TestUserspaceOrdering: one connection's commands are serial even with
// a slow worker, and other connections do not wait for it.
func TestUserspaceOrdering(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t, withWorkers(4))
		gate := make(chan struct{})
		h.ns.mu.Lock()
		h.ns.gate[tok1] = gate
		h.ns.mu.Unlock()
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.waitCall("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventAnnounced, tok1, "", srv2, ids(0, 1)))
		h.open(tok2, "192.0.2.1:40010", srv1)
		h.waitCall("create 22222222 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		// The subflow of the blocked command comes up before its result.
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		if got := h.ns.Calls(); len(got) != 2 || !strings.HasPrefix(got[0], "create 11111111") {
			t.Fatalf("calls while connection 1 is blocked: %q", got)
		}
		close(gate)
		h.settle()
		var one []string
		for _, c := range h.ns.Calls() {
			if strings.Contains(c, "11111111") {
				one = append(one, c)
			}
		}
		if diff := cmp.Diff([]string{
			"create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255",
			"create 11111111 192.0.2.1 -> 203.0.113.81:443 flags= if=2 id=0",
		}, one); diff != "" {
			t.Errorf("connection 1 calls (-want +got):\n%s", diff)
		}
	})
}

// TestUserspaceDenyJoinID0: no subflow to the peer's initial address and
// port when the peer forbids it, even when the policy asks for one.
func TestUserspaceDenyJoinID0(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t, withPolicy(allPairs{}))
		h.open(tok1, "192.0.2.1:40000", srv1, denyJoinID0)
		h.expect()
		if diff := cmp.Diff([]string{
			"192.0.2.1 -> 203.0.113.80:443 established",
			"198.51.100.1 -> 203.0.113.80:443 blocked",
		}, h.pathStates(tok1)); diff != "" {
			t.Errorf("paths (-want +got):\n%s", diff)
		}
		h.events(event(genl.EventAnnounced, tok1, "", srv2, ids(0, 1)))
		h.expect("create 11111111 192.0.2.1 -> 203.0.113.81:443 flags= if=2 id=0")
		h.events(event(genl.EventSubEstablished, tok1, "192.0.2.1:40002", srv2, ids(0, 1)))
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.81:443 flags= if=3 id=255")
	})
}

// allPairs is a test policy that wants every local address with every
// peer address, deny-join-id0 or not.
type allPairs struct{}

func (allPairs) Name() string { return "all-pairs" }

func (allPairs) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (allPairs) Conn(v policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	for _, l := range v.UsableAddrs() {
		for _, p := range c.PeerAddrs {
			next.Paths = append(next.Paths, policy.Path{Local: l.Addr, Dev: l.Link, IfIndex: l.IfIndex, Remote: p.Addr})
		}
	}
	return next
}

// backupOn is a test modifier that makes the paths over one interface
// backup.
type backupOn struct{ ifindex int32 }

func (backupOn) Name() string { return "backup-on" }

func (b backupOn) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (b backupOn) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	for i := range next.Paths {
		if next.Paths[i].IfIndex == b.ifindex {
			next.Paths[i].Backup = true
		}
	}
	return next
}

// TestUserspaceServerAnnounces: a server-side connection announces the
// other usable addresses and withdraws them when they go.
func TestUserspaceServerAnnounces(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.open(tok1, "192.0.2.1:443", client, serverSide)
		h.expect("announce 11111111 id=255 198.51.100.1 flags=signal if=3")
		h.setHost(addrA)
		h.expect("remove 11111111 id=255")
		h.setHost(addrA, addrB)
		h.expect("announce 11111111 id=255 198.51.100.1 flags=signal if=3")

		// A peer join to an address gives it an id, which an announce reuses.
		h.events(event(genl.EventSubEstablished, tok2, "203.0.113.1:443", "203.0.113.90:50001", ids(3, 1)))
		h.events(event(genl.EventCreated, tok2, "192.0.2.1:443", client, serverSide),
			event(genl.EventSubEstablished, tok2, "203.0.113.1:443", "203.0.113.90:50001", ids(3, 1)),
			event(genl.EventEstablished, tok2, "192.0.2.1:443", client, serverSide))
		h.expect("announce 22222222 id=255 198.51.100.1 flags=signal if=3")
		h.setHost(addrA, addrB, addrC)
		h.expect("announce 11111111 id=254 203.0.113.1 flags=signal if=4",
			"announce 22222222 id=3 203.0.113.1 flags=signal if=4")
		if st := h.settle(); st.Counters.UnknownToken != 1 {
			t.Errorf("unknown-token events %d, want 1", st.Counters.UnknownToken)
		}
	})
}

// TestUserspaceFamilies: a connection gets subflows and announces only in
// its own family, whatever addresses the host has and the peer announces:
// the kernel refuses the others ("families mismatch"), and retrying them
// would go on for ever.
func TestUserspaceFamilies(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeUserspace)
		h.setHost(addrA, addrB, addrD)
		h.start()
		h.ready()

		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventAnnounced, tok1, "", "[2001:db8:9::80]:443", ids(0, 1)))
		h.expect()

		h.open(tok2, "[2001:db8:1::1]:443", "[2001:db8:9::90]:50000", serverSide)
		h.expect()
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestUserspaceAnnounceMismatch: "did not match address and id" makes the
// engine re-read the connection's addresses and use the kernel's id.
func TestUserspaceAnnounceMismatch(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.ns.mu.Lock()
		h.ns.addrs[tok1] = []genl.Endpoint{{ID: 9, Addr: addrB, Flags: genl.FlagSubflow}}
		h.ns.fail = func(call string) error {
			if strings.HasPrefix(call, "announce 11111111 id=255") {
				return kerr("announce", unix.EINVAL, "did not match address and id")
			}
			return nil
		}
		h.ns.mu.Unlock()
		h.open(tok1, "192.0.2.1:443", client, serverSide)
		h.expect("announce 11111111 id=255 198.51.100.1 flags=signal if=3", "addrs 11111111")
		st := h.settle()
		if a := st.Conns[0].Announces; len(a) != 1 || a[0].State != "backoff" || a[0].ID != 9 ||
			a[0].LastError != "genl: announce: did not match address and id: invalid argument" {
			t.Errorf("announces: %+v", a)
		}
		h.clock.Advance(50 * time.Millisecond)
		h.expect("announce 11111111 id=9 198.51.100.1 flags=signal if=3")
	})
}

// TestUserspaceBackupAndPolicySwap: a new policy applies to existing
// connections: backup bits change in place, new paths get the flag.
func TestUserspaceBackupAndPolicySwap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		h.expect()
		fm, err := fullmesh.New(joinAtOnce())
		if err != nil {
			t.Fatal(err)
		}
		h.e.SetPolicy(policy.Compose(fm, backupOn{ifindex: 3}))
		h.expect("backup 11111111 198.51.100.1:40001 -> 203.0.113.80:443 true")
		// The peer's MP_PRIO does not change this host's bit: no fight.
		h.events(event(genl.EventSubPriority, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		h.expect()
		h.events(event(genl.EventAnnounced, tok1, "", srv2, ids(0, 1)))
		h.expect("create 11111111 192.0.2.1 -> 203.0.113.81:443 flags= if=2 id=0")
		h.events(event(genl.EventSubEstablished, tok1, "192.0.2.1:40003", srv2, ids(0, 1)))
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.81:443 flags=backup if=3 id=255")
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40002", srv2, ids(1, 1)))
		h.e.SetPolicy(policy.Compose(fm))
		h.expect(
			"backup 11111111 198.51.100.1:40001 -> 203.0.113.80:443 false",
			"backup 11111111 198.51.100.1:40002 -> 203.0.113.81:443 false",
		)
		if st := h.settle(); st.Policy != "fullmesh" || st.Counters.PolicySwaps != 2 {
			t.Errorf("policy %q, swaps %d", st.Policy, st.Counters.PolicySwaps)
		}
	})
}

// TestUserspaceResync: after lost events the engine re-lists connections:
// it adopts new ones, drops vanished ones, and creates nothing twice. It
// reads the local address list of the new connection only, after its
// subflow is asked for.
func TestUserspaceResync(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.open(tok3, "192.0.2.1:40020", srv1)
		h.expect(
			"create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255",
			"create 33333333 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255",
		)
		initial := func(local string) ExistingSubflow {
			return ExistingSubflow{Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(srv1)}
		}
		h.lister.set(
			ExistingConn{Token: tok1, Side: policy.SideClient, Local: netip.MustParseAddrPort("192.0.2.1:40000"),
				Remote: netip.MustParseAddrPort(srv1), Subflows: []ExistingSubflow{initial("192.0.2.1:40000")}},
			ExistingConn{Token: tok2, Side: policy.SideClient, Local: netip.MustParseAddrPort("192.0.2.1:40010"),
				Remote: netip.MustParseAddrPort(srv1), Subflows: []ExistingSubflow{initial("192.0.2.1:40010")}},
		)
		h.lost()
		h.expect("create 22222222 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255", "addrs 22222222")
		st := h.settle()
		var toks []uint32
		for _, c := range st.Conns {
			toks = append(toks, c.Token)
		}
		if diff := cmp.Diff([]uint32{tok1, tok2}, toks); diff != "" {
			t.Errorf("connections after resync (-want +got):\n%s", diff)
		}
		if st.Counters.Resyncs != 1 {
			t.Errorf("resyncs %d, want 1", st.Counters.Resyncs)
		}
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		h.expect()
		if diff := cmp.Diff([]string{
			"192.0.2.1 -> 203.0.113.80:443 established",
			"198.51.100.1 -> 203.0.113.80:443 established",
		}, h.pathStates(tok1)); diff != "" {
			t.Errorf("paths (-want +got):\n%s", diff)
		}
	})
}

// TestUserspaceResyncLostJoin: a join the kernel accepted whose
// SUB_CLOSED was among the events lost is not left connecting: the
// listing after the loss lacks its subflow (sock_diag lists joins from
// SYN-SENT on), so the path fails and is tried again.
func TestUserspaceResyncLostJoin(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.lister.set(ExistingConn{Token: tok1, Side: policy.SideClient, Local: netip.MustParseAddrPort("192.0.2.1:40000"),
			Remote: netip.MustParseAddrPort(srv1), Subflows: []ExistingSubflow{
				{Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: netip.MustParseAddrPort(srv1)}}})
		h.lost()
		h.expect()
		if diff := cmp.Diff([]string{
			"192.0.2.1 -> 203.0.113.80:443 established",
			"198.51.100.1 -> 203.0.113.80:443 backoff",
		}, h.pathStates(tok1)); diff != "" {
			t.Errorf("paths after the listing (-want +got):\n%s", diff)
		}
		h.clock.Advance(time.Second)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
	})
}

// TestUserspaceResyncMany: a listing longer than a merge chunk is merged
// a chunk per loop iteration; in the end every connection is adopted and
// meshed, each once, and the counts of the status are the connections'.
func TestUserspaceResyncMany(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		const n = 3*mergeChunk + 5
		var listed []ExistingConn
		var want []string
		for i := range n {
			tok := uint32(0x1000 + i)
			local := netip.AddrPortFrom(addrA, uint16(30000+i))
			listed = append(listed, ExistingConn{Token: tok, Side: policy.SideClient, Local: local,
				Remote: netip.MustParseAddrPort(srv1), Subflows: []ExistingSubflow{{Local: local, Remote: netip.MustParseAddrPort(srv1)}}})
			want = append(want, fmt.Sprintf("create %08x 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255", tok),
				fmt.Sprintf("addrs %08x", tok))
		}
		h.lister.set(listed...)
		h.lost()
		h.settle()
		got := h.ns.Calls()[h.seen:]
		h.seen += len(got)
		slices.Sort(got)
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		if st := h.settle(); st.Connections != n {
			t.Errorf("%d connections after the resync, want %d", st.Connections, n)
		}
		// A second listing of the same connections changes nothing.
		h.lost()
		h.expect()
	})
}

// TestUserspaceAdopt: connections that exist when the engine starts are
// adopted with their subflows and local ids, their local address lists
// read after the subflows they miss are asked for; kernel-PM ones are
// left alone once the kernel says so.
func TestUserspaceAdopt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeUserspace)
		h.lister.set(
			ExistingConn{Token: tok1, Side: policy.SideClient, Local: netip.MustParseAddrPort("192.0.2.1:40000"),
				Remote: netip.MustParseAddrPort(srv1), Subflows: []ExistingSubflow{
					{Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: netip.MustParseAddrPort(srv1)},
					{Local: netip.MustParseAddrPort("198.51.100.1:40001"), Remote: netip.MustParseAddrPort(srv1),
						LocalID: 1, Joined: true, IfIndex: 3},
				}},
			ExistingConn{Token: tok2, Side: policy.SideClient, Local: netip.MustParseAddrPort("192.0.2.1:40010"),
				Remote: netip.MustParseAddrPort(srv1)},
			ExistingConn{Token: tok3, Side: policy.SideServer, Local: netip.MustParseAddrPort("192.0.2.1:443"),
				Remote: netip.MustParseAddrPort(client)},
			ExistingConn{Token: tok4, Side: policy.SideClient, Local: netip.MustParseAddrPort("192.0.2.1:40030"),
				Remote: netip.MustParseAddrPort(srv1), Subflows: []ExistingSubflow{
					{Local: netip.MustParseAddrPort("192.0.2.1:40030"), Remote: netip.MustParseAddrPort(srv1)},
				}},
		)
		h.ns.kernelPM[tok2] = true
		h.ns.addrs[tok1] = []genl.Endpoint{{ID: 1, Addr: addrB, Flags: genl.FlagSubflow}}
		h.ns.addrs[tok3] = []genl.Endpoint{{ID: 7, Addr: addrB, Flags: genl.FlagSignal}}
		h.setHost(addrA, addrB)
		h.start()
		h.ready()
		h.expect("addrs 11111111", "create 22222222 192.0.2.1 -> 203.0.113.80:443 flags= if=2 id=0", "addrs 33333333",
			"create 44444444 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255", "addrs 44444444")
		if diff := cmp.Diff([]string{
			"192.0.2.1 -> 203.0.113.80:443 established",
			"198.51.100.1 -> 203.0.113.80:443 established",
		}, h.pathStates(tok1)); diff != "" {
			t.Errorf("paths (-want +got):\n%s", diff)
		}
		st := h.settle()
		var pms []string
		for _, c := range st.Conns {
			pms = append(pms, fmt.Sprintf("%08x %s", c.Token, c.PathManager))
		}
		if diff := cmp.Diff([]string{"11111111 userspace", "22222222 kernel", "33333333 userspace", "44444444 userspace"}, pms); diff != "" {
			t.Errorf("adopted connections (-want +got):\n%s", diff)
		}
		// The adopted announce stays; when its address becomes unusable it
		// is withdrawn, and so are the ids the connections learnt for it
		// (tok1's subflow, tok4's attempt), each before its subflows are
		// destroyed.
		h.setHost(addrA)
		h.expect("remove 11111111 id=1", "remove 33333333 id=7", "remove 44444444 id=255",
			"destroy 11111111 198.51.100.1:40001 -> 203.0.113.80:443")
	})
}

// TestUserspaceKernelPMConn: a connection the in-kernel path manager runs
// is left alone after the kernel says so.
func TestUserspaceKernelPMConn(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.ns.mu.Lock()
		h.ns.kernelPM[tok1] = true
		h.ns.mu.Unlock()
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventAnnounced, tok1, "", srv2, ids(0, 1)))
		h.setHost(addrA, addrB, addrC)
		h.expect()
		st := h.settle()
		if len(st.Conns) != 1 || st.Conns[0].PathManager != "kernel" {
			t.Errorf("connections: %+v", st.Conns)
		}
	})
}

// TestUserspaceNoHostNoAction: nothing happens before the first SetHost.
func TestUserspaceNoHostNoAction(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeUserspace)
		h.start()
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect()
		select {
		case <-h.e.Ready():
			t.Fatal("ready before the first SetHost")
		default:
		}
		h.setHost(addrA, addrB)
		h.ready()
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
	})
}

// onlyFrom is a test modifier that keeps the paths from the given local
// addresses.
type onlyFrom []netip.Addr

func (onlyFrom) Name() string { return "only-from" }

func (onlyFrom) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (o onlyFrom) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	var keep []policy.Path
	for _, p := range next.Paths {
		if slices.Contains(o, p.Local) {
			keep = append(keep, p)
		}
	}
	next.Paths = keep
	return next
}

// TestUserspaceDestroyInitial: the engine closes the subflows it opened
// with MP_JOIN that the plan drops, demotes a client-side connection's
// initial subflow from a usable address to backup instead, and never
// closes the connection's last established subflow nor a subflow the
// peer opened.
func TestUserspaceDestroyInitial(t *testing.T) {
	t.Parallel()
	fm, err := fullmesh.New(joinAtOnce())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		server bool
		join   bool // a second subflow from addrB is established
		keep   onlyFrom
		want   []string
		states []string
	}{
		{
			name: "initial dropped, another established", join: true, keep: onlyFrom{addrB},
			want:   []string{"backup 11111111 192.0.2.1:40000 -> 203.0.113.80:443 true"},
			states: []string{"192.0.2.1 -> 203.0.113.80:443 kept", "198.51.100.1 -> 203.0.113.80:443 established"},
		},
		{
			name: "initial dropped, the last one", keep: onlyFrom{addrB},
			states: []string{"192.0.2.1 -> 203.0.113.80:443 kept", "198.51.100.1 -> 203.0.113.80:443 connecting"},
		},
		{
			name: "both dropped: the initial one stays", join: true, keep: onlyFrom{},
			want:   []string{"destroy 11111111 198.51.100.1:40001 -> 203.0.113.80:443"},
			states: []string{"192.0.2.1 -> 203.0.113.80:443 kept", "198.51.100.1 -> 203.0.113.80:443 closing"},
		},
		{
			name: "server side: the peer's subflows stay", server: true, join: true, keep: onlyFrom{},
			states: []string{"192.0.2.1 -> 203.0.113.90:50000 kept", "198.51.100.1 -> 203.0.113.90:50001 kept"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				h := newUserspace(t)
				remote, mods := srv1, []func(*genl.Event){}
				if tt.server {
					remote, mods = client, append(mods, serverSide)
				}
				h.open(tok1, "192.0.2.1:40000", remote, mods...)
				if !tt.server {
					h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
				} else {
					h.expect("announce 11111111 id=255 198.51.100.1 flags=signal if=3")
				}
				if tt.join {
					jr := remote
					if tt.server {
						jr = "203.0.113.90:50001"
					}
					h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", jr, ids(1, 0)))
					h.expect()
				}
				h.e.SetPolicy(policy.Compose(fm, tt.keep))
				h.expect(tt.want...)
				if diff := cmp.Diff(tt.states, h.pathStates(tok1)); diff != "" {
					t.Errorf("paths (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// withdrawFrom is a policy that withdraws local addresses outright.
type withdrawFrom []netip.Addr

func (withdrawFrom) Name() string { return "withdraw-from" }

func (withdrawFrom) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (w withdrawFrom) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	next.Withdraw = append(next.Withdraw, w...)
	return next
}

// TestUserspaceWithdrawLast: a withdrawn address loses its subflows even
// the connection's last one, and no path from it is created again; an
// address that is only left out of the plan keeps the last subflow.
func TestUserspaceWithdrawLast(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fm, err := fullmesh.New(joinAtOnce())
		if err != nil {
			t.Fatal(err)
		}
		h := newUserspace(t)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		h.expect()

		// Both left out: the joined subflow closes, the initial one stays
		// (the last one, so not demoted).
		h.e.SetPolicy(policy.Compose(fm, onlyFrom{}))
		h.expect("destroy 11111111 198.51.100.1:40001 -> 203.0.113.80:443")
		h.events(event(genl.EventSubClosed, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		h.expect()

		// Its address withdrawn: the last subflow closes too, and fullmesh's
		// path from it is not created again.
		h.e.SetPolicy(policy.Compose(fm, onlyFrom{}, withdrawFrom{addrA}))
		h.expect("destroy 11111111 192.0.2.1:40000 -> 203.0.113.80:443")
		h.events(event(genl.EventSubClosed, tok1, "192.0.2.1:40000", srv1))
		h.e.SetPolicy(policy.Compose(fm, withdrawFrom{addrA}))
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
	})
}

// backupFrom is a policy modifier that makes the paths from its addresses
// backup.
type backupFrom []netip.Addr

func (backupFrom) Name() string { return "backup-from" }

func (backupFrom) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (b backupFrom) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	for i := range next.Paths {
		if slices.Contains(b, next.Paths[i].Local) {
			next.Paths[i].Backup = true
		}
	}
	return next
}

// TestUserspaceDemoteInitial: a client's initial subflow that the plan
// drops while another subflow is established is demoted to backup, not
// destroyed (Linux 6.18 loses the connection), and promoted again when the
// plan wants its path back as a primary one; it is destroyed when its
// address stops being usable or the plan withdraws it (and when it
// stalls: TestUserspaceHealth).
func TestUserspaceDemoteInitial(t *testing.T) {
	t.Parallel()
	fm, err := fullmesh.New(joinAtOnce())
	if err != nil {
		t.Fatal(err)
	}
	const initialSub = "192.0.2.1:40000 -> 203.0.113.80:443"
	type step struct {
		policy policy.Policy
		usable []netip.Addr // nil: the host does not change
		want   []string
		states []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "dropped, then wanted again",
			steps: []step{
				{policy: policy.Compose(fm, onlyFrom{addrB}), want: []string{"backup 11111111 " + initialSub + " true"},
					states: []string{"192.0.2.1 -> 203.0.113.80:443 kept", "198.51.100.1 -> 203.0.113.80:443 established"}},
				{policy: policy.Compose(fm, onlyFrom{addrB})}, // demoted once
				{policy: fm, want: []string{"backup 11111111 " + initialSub + " false"},
					states: []string{"192.0.2.1 -> 203.0.113.80:443 established", "198.51.100.1 -> 203.0.113.80:443 established"}},
			},
		},
		{
			name: "dropped, then wanted again as backup",
			steps: []step{
				{policy: policy.Compose(fm, onlyFrom{addrB}), want: []string{"backup 11111111 " + initialSub + " true"}},
				{policy: policy.Compose(fm, backupFrom{addrA}),
					states: []string{"192.0.2.1 -> 203.0.113.80:443 established", "198.51.100.1 -> 203.0.113.80:443 established"}},
			},
		},
		{
			name: "address no longer usable",
			steps: []step{
				{policy: fm, usable: []netip.Addr{addrB}, want: []string{"destroy 11111111 " + initialSub},
					states: []string{"192.0.2.1 -> 203.0.113.80:443 closing", "198.51.100.1 -> 203.0.113.80:443 established"}},
			},
		},
		{
			name: "demoted, then its address no longer usable",
			steps: []step{
				{policy: policy.Compose(fm, onlyFrom{addrB}), want: []string{"backup 11111111 " + initialSub + " true"}},
				{policy: policy.Compose(fm, onlyFrom{addrB}), usable: []netip.Addr{addrB},
					want: []string{"destroy 11111111 " + initialSub}},
			},
		},
		{
			name: "address withdrawn",
			steps: []step{
				{policy: policy.Compose(fm, onlyFrom{addrB}, withdrawFrom{addrA}), want: []string{"destroy 11111111 " + initialSub},
					states: []string{"192.0.2.1 -> 203.0.113.80:443 closing", "198.51.100.1 -> 203.0.113.80:443 established"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				h := newUserspace(t)
				h.open(tok1, "192.0.2.1:40000", srv1)
				h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
				h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
				h.expect()
				for i, s := range tt.steps {
					if s.usable != nil {
						h.setHost(s.usable...)
					}
					h.e.SetPolicy(s.policy)
					h.expect(s.want...)
					if s.states == nil {
						continue
					}
					if diff := cmp.Diff(s.states, h.pathStates(tok1)); diff != "" {
						t.Errorf("step %d: paths (-want +got):\n%s", i, diff)
					}
				}
			})
		})
	}
}

// TestUserspaceSweep: every SweepEvery the engine lists the connections
// and forgets those the kernel no longer has, such as one whose connect
// was cancelled and whose CLOSED never came; listed ones stay.
func TestUserspaceSweep(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.open(tok2, "192.0.2.1:40001", srv1)
		h.expect(
			"create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255",
			"create 22222222 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255",
		)
		h.lister.set(ExistingConn{
			Token: tok2, Side: policy.SideClient,
			Local:    netip.MustParseAddrPort("192.0.2.1:40001"),
			Remote:   netip.MustParseAddrPort(srv1),
			Subflows: []ExistingSubflow{{Local: netip.MustParseAddrPort("192.0.2.1:40001"), Remote: netip.MustParseAddrPort(srv1)}},
		})
		tokens := func() []uint32 {
			var out []uint32
			for _, c := range h.settle().Conns {
				out = append(out, c.Token)
			}
			return out
		}
		if diff := cmp.Diff([]uint32{tok1, tok2}, tokens()); diff != "" {
			t.Fatalf("connections before the sweep (-want +got):\n%s", diff)
		}
		h.clock.Advance(DefaultSweepEvery)
		if got := tokens(); !slices.Equal(got, []uint32{tok2}) {
			t.Fatalf("connections after the sweep: %08x, want only %08x", got, tok2)
		}
	})
}

// TestUserspaceSubflowIDs: every address but the initial one creates its
// subflows under an id of its own, the same for all of its subflows (the
// kernel keeps a subflow created without an id under id 0 and then
// refuses the next one); a create the kernel refuses that way makes the
// engine re-read the connection's addresses.
func TestUserspaceSubflowIDs(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeUserspace)
		h.setHost(addrA, addrB, addrC)
		h.start()
		h.ready()
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect(
			"create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255",
			"create 11111111 203.0.113.1 -> 203.0.113.80:443 flags= if=4 id=254",
		)
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(255, 0)),
			event(genl.EventSubEstablished, tok1, "203.0.113.1:40002", srv1, ids(254, 0)),
			event(genl.EventAnnounced, tok1, "", srv2, ids(0, 1)))
		h.expect("create 11111111 192.0.2.1 -> 203.0.113.81:443 flags= if=2 id=0")
		h.events(event(genl.EventSubEstablished, tok1, "192.0.2.1:40003", srv2, ids(0, 1)))
		h.expect(
			"create 11111111 198.51.100.1 -> 203.0.113.81:443 flags= if=3 id=255",
			"create 11111111 203.0.113.1 -> 203.0.113.81:443 flags= if=4 id=254",
		)

		// The kernel has another id for an address: it refuses, the engine
		// reads the addresses and creates under the kernel's id.
		h.ns.mu.Lock()
		h.ns.addrs[tok2] = []genl.Endpoint{{ID: 7, Addr: addrB, Flags: genl.FlagSubflow}}
		h.ns.fail = func(call string) error {
			if strings.HasPrefix(call, "create 22222222 198.51.100.1") && !strings.HasSuffix(call, "id=7") {
				return kerr("create subflow", unix.EINVAL, "did not match address and id")
			}
			return nil
		}
		h.ns.mu.Unlock()
		h.open(tok2, "192.0.2.1:40010", srv1)
		h.expect(
			"create 22222222 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255",
			"create 22222222 203.0.113.1 -> 203.0.113.80:443 flags= if=4 id=254",
			"addrs 22222222",
		)
		h.clock.Advance(50 * time.Millisecond)
		h.expect("create 22222222 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=7")
	})
}
