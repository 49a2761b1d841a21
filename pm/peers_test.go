package pm

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/peeraddr"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// setPeerHost gives the engine the test host with A (192.0.2.1/24) and B
// (198.51.100.1/24) usable, and loopback.
func (h *harness) setPeerHost() {
	links := []policy.Link{
		{Name: "lo", Index: 1, Kind: policy.LinkVirtual, Up: true},
		{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true},
		{Name: "eth1", Index: 3, Kind: policy.LinkWired, Up: true, Usable: true},
	}
	h.e.SetHost(links, []policy.LocalAddr{
		{Addr: netip.MustParseAddr("127.0.0.1"), PrefixLen: 8, Link: "lo", IfIndex: 1, Reason: "excluded by kind loopback"},
		{Addr: addrA, PrefixLen: 24, Link: "eth0", IfIndex: 2, Usable: true},
		{Addr: addrB, PrefixLen: 24, Link: "eth1", IfIndex: 3, Usable: true},
	})
}

func newPeerHarness(t *testing.T, peers peeraddr.Config, opts ...harnessOpt) *harness {
	t.Helper()
	// No sweep: the test's lister lists no connection.
	opts = append([]harnessOpt{withPolicy(allPairs{})}, append(opts, func(c *Config) {
		c.Peers, c.SweepEvery = peers, -1
	})...)
	h := newHarness(t, policy.ModeUserspace, opts...)
	h.setPeerHost()
	h.start()
	h.ready()
	return h
}

// peerStates returns "addr state: reason (tries)" for every announced
// address of token.
func (h *harness) peerStates(token uint32) []string {
	h.t.Helper()
	st := h.settle()
	for _, c := range st.Conns {
		if c.Token != token {
			continue
		}
		var out []string
		for _, p := range c.PeerAddrs {
			if p.Source == pmstate.SourceInitial {
				continue
			}
			s := p.Addr.String() + " " + string(p.State)
			if p.Reason != "" {
				s += ": " + p.Reason
			}
			if p.Tries > 0 {
				s += " (" + strings.Repeat("x", p.Tries) + ")"
			}
			out = append(out, s)
		}
		return out
	}
	h.t.Fatalf("no connection %08x in status", token)
	return nil
}

// warnings returns the log lines at warning level that contain msg.
func (h *harness) warnings(msg string) []string {
	var out []string
	for line := range strings.Lines(h.logs.String()) {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, msg) {
			out = append(out, line)
		}
	}
	return out
}

// TestPeerAddrRefused: a peer's announces of addresses the peer-address
// policy refuses reach no policy and give no subflow, even with a policy
// that wants every pair; they are shown, counted and warned about once.
func TestPeerAddrRefused(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newPeerHarness(t, peeraddr.Config{Deny: []netip.Prefix{netip.MustParsePrefix("198.51.100.128/25")}})
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		announces := []struct{ addr, want string }{
			{"198.51.100.1:443", "198.51.100.1:443 refused: 198.51.100.1 is an address of this host"},
			{"127.0.0.1:443", "127.0.0.1:443 refused: 127.0.0.1 is a loopback address"},
			{"255.255.255.255:443", "255.255.255.255:443 refused: 255.255.255.255 is a broadcast address"},
			{"192.0.2.255:443", "192.0.2.255:443 refused: 192.0.2.255 is the broadcast address of this host's subnet 192.0.2.0/24"},
			{"224.0.0.1:443", "224.0.0.1:443 refused: 224.0.0.1 is a multicast address"},
			{"0.0.0.0:443", "0.0.0.0:443 refused: 0.0.0.0 is an unspecified address"},
			{"203.0.113.82:25", "203.0.113.82:25 refused: port 25 is not the connection's port 443"},
			{"198.51.100.200:443", "198.51.100.200:443 refused: 198.51.100.200 is in the denied prefix 198.51.100.128/25"},
			{"10.99.0.2:443", "10.99.0.2:443 refused: 10.99.0.2 is a private address, more private than the peer's public address 203.0.113.80"},
			{"100.64.0.2:443", "100.64.0.2:443 refused: 100.64.0.2 is a shared address, more private than the peer's public address 203.0.113.80"},
		}
		var evs []genl.Event
		var want []string
		for i, a := range announces {
			evs = append(evs, event(genl.EventAnnounced, tok1, "", a.addr, ids(0, uint8(i+1))))
			want = append(want, a.want)
		}
		h.events(evs...)
		h.expect()
		if diff := cmp.Diff(want, h.peerStates(tok1)); diff != "" {
			t.Errorf("peer addresses (-want +got):\n%s", diff)
		}
		// Announcing them again, or anything else later, changes nothing.
		h.events(evs...)
		h.clock.Advance(time.Minute)
		h.expect()
		st := h.settle()
		if diff := cmp.Diff(map[string]uint64{"class": 4, "own_address": 1, "directed_broadcast": 1, "port": 1,
			"denied": 1, "more_private": 2}, st.Counters.PeerAddrsRefused); diff != "" {
			t.Errorf("refusals counted (-want +got):\n%s", diff)
		}
		if w := h.warnings("peer address refused"); len(w) != 1 || !strings.Contains(w[0], "token=11111111") {
			t.Errorf("warnings, want one for the connection: %q", w)
		}

		// A second connection gets its own warning.
		h.open(tok2, "192.0.2.1:40001", srv1)
		h.expect("create 22222222 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventAnnounced, tok2, "", "127.0.0.1:443", ids(0, 1)))
		h.expect()
		if w := h.warnings("peer address refused"); len(w) != 2 {
			t.Errorf("warnings, want one per connection: %q", w)
		}
	})
}

// TestPeerAddrTries: an announced address is tried one path at a time,
// Tries times, then given up for the connection's life; a subflow
// established to it makes it the peer's, retried like the initial one.
func TestPeerAddrTries(t *testing.T) {
	t.Parallel()
	for _, tries := range []int{0, 1, 3} {
		t.Run(strings.Repeat("x", tries), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				h := newPeerHarness(t, peeraddr.Config{Tries: tries})
				want := max(tries, 1)
				h.open(tok1, "192.0.2.1:40000", srv1)
				h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
				h.events(event(genl.EventAnnounced, tok1, "", srv2, ids(0, 1)))
				// One try at a time, from either local address, each
				// after the backoff of the one before.
				for i := range want {
					if i > 0 {
						h.expect()
						h.clock.Advance(time.Minute)
					}
					h.settle()
					calls := h.ns.Calls()[h.seen:]
					if len(calls) != 1 || !strings.HasPrefix(calls[0], "create 11111111 ") ||
						!strings.Contains(calls[0], " -> "+srv2+" ") {
						t.Fatalf("try %d: calls %q, want one create to %s", i+1, calls, srv2)
					}
					h.seen++
					local := strings.Fields(calls[0])[2]
					h.events(event(genl.EventSubClosed, tok1, local+":40002", srv2, sockErr(unix.ECONNREFUSED)))
				}
				h.clock.Advance(time.Hour)
				h.events(event(genl.EventAnnounced, tok1, "", srv2, ids(0, 2)))
				h.expect()
				if diff := cmp.Diff([]string{"203.0.113.81:443 given_up: subflow closed: connection refused (" +
					strings.Repeat("x", want) + ")"}, h.peerStates(tok1)); diff != "" {
					t.Errorf("peer addresses (-want +got):\n%s", diff)
				}
				st := h.settle()
				if st.Counters.PeerAddrsGivenUp != 1 || len(st.Counters.PeerAddrsRefused) != 0 {
					t.Errorf("counters: given up %d, refused %v", st.Counters.PeerAddrsGivenUp, st.Counters.PeerAddrsRefused)
				}
				for _, p := range st.Conns[0].Paths {
					if p.Remote == netip.MustParseAddrPort(srv2) {
						t.Errorf("a path to the given-up address: %+v", p)
					}
				}
				if w := h.warnings("peer address given up"); len(w) != 1 {
					t.Errorf("warnings: %q", w)
				}
			})
		})
	}
}

// TestPeerAddrJoined: once a subflow to an announced address is
// established, its paths back off and retry without end, as the initial
// address's do; a kernel error counts as a try of a pending address.
func TestPeerAddrJoined(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newPeerHarness(t, peeraddr.Config{Tries: 2})
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		first := "create 11111111 192.0.2.1 -> 203.0.113.81:443 flags= if=2 id=0"
		h.ns.fail = func(call string) error {
			if call == first {
				return kerr("create subflow", unix.EINVAL, "connect error: -101")
			}
			return nil
		}
		h.events(event(genl.EventAnnounced, tok1, "", srv2, ids(0, 1)))
		h.expect(first)
		if diff := cmp.Diff([]string{"203.0.113.81:443 pending: genl: create subflow: connect error: -101: invalid argument (x)"},
			h.peerStates(tok1)); diff != "" {
			t.Errorf("peer addresses (-want +got):\n%s", diff)
		}
		h.ns.fail = nil
		h.clock.Advance(time.Second)
		h.expect(first)
		h.events(event(genl.EventSubEstablished, tok1, "192.0.2.1:40002", srv2, ids(0, 1)))
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.81:443 flags= if=3 id=255")
		if diff := cmp.Diff([]string{"203.0.113.81:443 joined"}, h.peerStates(tok1)); diff != "" {
			t.Errorf("peer addresses (-want +got):\n%s", diff)
		}
		for range 4 {
			h.events(event(genl.EventSubClosed, tok1, "198.51.100.1:40003", srv2, sockErr(unix.ECONNREFUSED)))
			h.expect()
			h.clock.Advance(time.Minute)
			h.expect("create 11111111 198.51.100.1 -> 203.0.113.81:443 flags= if=3 id=255")
		}
		if st := h.settle(); st.Counters.PeerAddrsGivenUp != 0 {
			t.Errorf("given up %d", st.Counters.PeerAddrsGivenUp)
		}
	})
}

// TestPeerAddrBudget: a connection tries at most maxTriedPeers announced
// addresses; the peer's next ones are refused.
func TestPeerAddrBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newPeerHarness(t, peeraddr.Config{})
		h.setHost(addrA)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect()
		var evs []genl.Event
		var want []string
		for i := range maxTriedPeers + 2 {
			ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + i)}), 443).String()
			evs = append(evs, event(genl.EventAnnounced, tok1, "", ap, ids(0, uint8(i+1))))
			if i < maxTriedPeers {
				want = append(want, "create 11111111 192.0.2.1 -> "+ap+" flags= if=2 id=0")
			}
		}
		h.events(evs...)
		h.expect(want...)
		h.events(event(genl.EventSubClosed, tok1, "192.0.2.1:40001", netip.MustParseAddrPort("203.0.113.100:443").String()))
		h.clock.Advance(time.Minute)
		h.expect()
		states := h.peerStates(tok1)
		for _, s := range states[maxTriedPeers:] {
			if !strings.HasSuffix(s, "refused: the connection tried 8 announced addresses already") {
				t.Errorf("address over the budget: %s", s)
			}
		}
		if st := h.settle(); st.Counters.PeerAddrsRefused["budget"] != 2 {
			t.Errorf("refusals: %v", st.Counters.PeerAddrsRefused)
		}
	})
}

// rogue is a test policy that asks for what no plan may hold: subflows
// from addresses that are not the host's usable ones, to addresses and
// ports the peer never announced, and announces of loopback and
// multicast addresses, beside one legitimate path and announce.
type rogue struct{}

func (rogue) Name() string { return "rogue" }

func (rogue) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan {
	for _, a := range []string{"127.0.0.1", "0.0.0.0", "192.0.2.1"} {
		next.Endpoints = append(next.Endpoints, policy.Endpoint{Addr: netip.MustParseAddr(a), Subflow: true})
	}
	return next
}

func (rogue) Conn(_ policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	path := func(local, remote string) policy.Path {
		return policy.Path{Local: netip.MustParseAddr(local), Remote: netip.MustParseAddrPort(remote)}
	}
	if c.Side == policy.SideServer {
		for _, a := range []string{"127.0.0.1", "224.0.0.1", "198.51.100.1"} {
			next.Announces = append(next.Announces, policy.Announce{Addr: netip.MustParseAddr(a)})
		}
		return next
	}
	next.Paths = append(next.Paths,
		path("127.0.0.1", srv1), path("0.0.0.0", srv1), path("10.0.0.1", srv1),
		path("192.0.2.1", "224.0.0.1:443"), path("192.0.2.1", "203.0.113.80:25"),
		path("192.0.2.1", "203.0.113.99:443"), path("198.51.100.1", srv1))
	return next
}

// TestPlanRefused: the engine refuses the parts of a plan no policy may
// ask for, in both modes: they never reach the kernel, are shown with
// the reason, counted once per connection and logged once.
func TestPlanRefused(t *testing.T) {
	t.Parallel()
	t.Run("userspace", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			h := newPeerHarness(t, peeraddr.Config{}, withPolicy(rogue{}))
			h.open(tok1, "192.0.2.1:40000", srv1)
			h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=0 id=255")
			want := []string{
				"0.0.0.0 -> 203.0.113.80:443 refused: local address not usable: not an address of this host",
				"10.0.0.1 -> 203.0.113.80:443 refused: local address not usable: not an address of this host",
				"127.0.0.1 -> 203.0.113.80:443 refused: local address not usable: excluded by kind loopback",
				"192.0.2.1 -> 203.0.113.80:25 refused: 203.0.113.80:25 is not an address the peer announced",
				"192.0.2.1 -> 203.0.113.80:443 kept",
				"192.0.2.1 -> 203.0.113.99:443 refused: 203.0.113.99:443 is not an address the peer announced",
				"192.0.2.1 -> 224.0.0.1:443 refused: 224.0.0.1:443 is not an address the peer announced",
				"198.51.100.1 -> 203.0.113.80:443 connecting",
			}
			paths := func() []string {
				var out []string
				for _, p := range h.settle().Conns[0].Paths {
					s := p.Local.String() + " -> " + p.Remote.String() + " " + string(p.State)
					if p.Reason != "" {
						s += ": " + p.Reason
					}
					out = append(out, s)
				}
				return out
			}
			if diff := cmp.Diff(want, paths()); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			// Later reconciliations count and log nothing new.
			h.events(event(genl.EventSubPriority, tok1, "192.0.2.1:40000", srv1))
			h.expect()
			h.open(tok3, "192.0.2.1:443", client, serverSide)
			h.expect("announce 33333333 id=255 198.51.100.1 flags=signal if=0")
			st := h.settle()
			var announces []string
			for _, a := range st.Conns[1].Announces {
				announces = append(announces, a.Addr.String()+" "+string(a.State)+" "+a.Reason)
			}
			if diff := cmp.Diff([]string{
				"127.0.0.1 refused address not usable: excluded by kind loopback",
				"224.0.0.1 refused address not usable: not an address of this host",
				"198.51.100.1 announced ",
			}, announces); diff != "" {
				t.Errorf("announces (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]uint64{"path": 6, "announce": 2}, st.Counters.PlansRefused); diff != "" {
				t.Errorf("refusals counted (-want +got):\n%s", diff)
			}
			if w := h.warnings("plan refused"); len(w) != 8 {
				t.Errorf("warnings, want one per refused part: %d\n%s", len(w), strings.Join(w, ""))
			}
			// The same plan for another connection: counted, not logged again.
			h.open(tok2, "192.0.2.1:40001", srv1)
			h.expect("create 22222222 198.51.100.1 -> 203.0.113.80:443 flags= if=0 id=255")
			if n := h.settle().Counters.PlansRefused["path"]; n != 12 {
				t.Errorf("paths refused: %d, want 12", n)
			}
			if w := h.warnings("plan refused"); len(w) != 8 {
				t.Errorf("warnings after a second connection: %d", len(w))
			}
		})
	})
	t.Run("kernel", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, policy.ModeKernel, withPolicy(rogue{}))
			h.setPeerHost()
			h.start()
			h.ready()
			h.expect("add_endpoint id=100 192.0.2.1 flags=subflow if=2")
			st := h.settle()
			var got []string
			for _, ep := range st.Endpoints {
				got = append(got, ep.Addr.String()+" "+string(ep.State)+" "+ep.Reason)
			}
			if diff := cmp.Diff([]string{
				"0.0.0.0 unusable address not usable: not an address of this host",
				"127.0.0.1 unusable address not usable: excluded by kind loopback",
				"192.0.2.1 ok ",
			}, got); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			h.setPeerHost()
			h.expect()
			if diff := cmp.Diff(map[string]uint64{"endpoint": 2}, h.settle().Counters.PlansRefused); diff != "" {
				t.Errorf("refusals counted (-want +got):\n%s", diff)
			}
			if w := h.warnings("plan refused"); len(w) != 2 {
				t.Errorf("warnings: %q", w)
			}
		})
	})
}

// TestPeerAddrHostChange: a refusal follows the host's addresses: an
// address of the host that the peer announces is used once the host no
// longer has it.
func TestPeerAddrHostChange(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newPeerHarness(t, peeraddr.Config{})
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventAnnounced, tok1, "", "198.51.100.1:443", ids(0, 1)))
		h.expect()
		if got := h.peerStates(tok1); !slices.Equal(got, []string{"198.51.100.1:443 refused: 198.51.100.1 is an address of this host"}) {
			t.Errorf("peer addresses: %q", got)
		}
		h.setHostPresent(hostAddrs[0])
		h.settle()
		if calls := h.ns.Calls()[h.seen:]; !slices.Contains(calls, "create 11111111 192.0.2.1 -> 198.51.100.1:443 flags= if=2 id=0") {
			t.Errorf("calls after the host lost the address: %q", calls)
		}
		if got := h.peerStates(tok1); !slices.Equal(got, []string{"198.51.100.1:443 pending"}) {
			t.Errorf("peer addresses: %q", got)
		}
	})
}
