package pm

import (
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// cmpAddrs compares netip values by ==.
var cmpAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

// decisions collects what Config.Observe receives.
type decisions struct {
	mu  sync.Mutex
	all []pmstate.Decision
}

func (d *decisions) observe(x pmstate.Decision) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.all = append(d.all, x)
}

// take returns the decisions received since the last take.
func (d *decisions) take() []pmstate.Decision {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.all
	d.all = nil
	return out
}

func withObserver(d *decisions) harnessOpt { return func(c *Config) { c.Observe = d.observe } }

// gate blocks the fake kernel's calls for token until the returned func is
// called.
func (h *harness) gate(token uint32) func() {
	g := make(chan struct{})
	h.ns.mu.Lock()
	h.ns.gate[token] = g
	h.ns.mu.Unlock()
	return func() {
		h.ns.mu.Lock()
		delete(h.ns.gate, token)
		h.ns.mu.Unlock()
		close(g)
	}
}

// TestObserveUserspace: every command's outcome is observed with the time
// it took and its latency from the events that caused it; a subflow that
// fails puts its path in backoff; a retry has no latency.
func TestObserveUserspace(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		h := newUserspace(t, withObserver(&got))
		t0 := h.clock.Now()
		release := h.gate(tok1)
		h.open(tok1, "192.0.2.1:40000", srv1)
		create := "create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255"
		h.waitCall(create)
		h.clock.Advance(5 * time.Millisecond)
		release()
		h.expect(create)
		t1 := t0.Add(5 * time.Millisecond)
		local, remote := netip.MustParseAddrPort("198.51.100.1:0"), netip.MustParseAddrPort(srv1)
		want := []pmstate.Decision{{Time: t1, Kind: pmstate.DecisionAction, Op: "create_subflow", Token: tok1, Local: local,
			Remote: remote, Took: 5 * time.Millisecond, Latency: 5 * time.Millisecond}}
		if diff := cmp.Diff(want, got.take(), cmpAddrs); diff != "" {
			t.Errorf("decisions after the first create (-want +got):\n%s", diff)
		}

		h.events(event(genl.EventSubClosed, tok1, "198.51.100.1:40001", srv1, sockErr(unix.ECONNREFUSED)))
		h.expect()
		failed := netip.MustParseAddrPort("198.51.100.1:40001")
		want = []pmstate.Decision{{Time: t1, Kind: pmstate.DecisionPathFailed, Token: tok1, Local: failed, Remote: remote,
			Error: "subflow closed: connection refused", RetryAt: t1.Add(50 * time.Millisecond)}}
		if diff := cmp.Diff(want, got.take(), cmpAddrs); diff != "" {
			t.Errorf("decisions after SUB_CLOSED (-want +got):\n%s", diff)
		}

		h.clock.Advance(50 * time.Millisecond)
		h.expect(create)
		want = []pmstate.Decision{{Time: t1.Add(50 * time.Millisecond), Kind: pmstate.DecisionAction, Op: "create_subflow",
			Token: tok1, Local: local, Remote: remote}}
		if diff := cmp.Diff(want, got.take(), cmpAddrs); diff != "" {
			t.Errorf("decisions after the retry (-want +got):\n%s", diff)
		}
		if st := h.settle(); st.Counters.Backoffs != 1 {
			t.Errorf("backoffs = %d, want 1", st.Counters.Backoffs)
		}
	})
}

// TestObserveKernel: kernel-mode commands carry the latency from the host
// change that caused them until the lane runs empty; a failure has its
// error and retry time.
func TestObserveKernel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		h := newHarness(t, policy.ModeKernel, withObserver(&got))
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		h.start()
		h.setHost(addrA)
		h.ready()
		h.expect("add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2")
		got.take()

		t0 := h.clock.Now()
		release := h.gate(0)
		h.ns.mu.Lock()
		h.ns.fail = func(call string) error {
			if call == "add_endpoint id=102 203.0.113.1 flags=subflow,fullmesh if=4" {
				return kerr("add endpoint", unix.EADDRNOTAVAIL, "")
			}
			return nil
		}
		h.ns.mu.Unlock()
		h.setHost(addrA, addrB, addrC)
		h.waitCall("add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3")
		h.clock.Advance(3 * time.Millisecond)
		release()
		h.expect(
			"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
			"add_endpoint id=102 203.0.113.1 flags=subflow,fullmesh if=4",
		)
		t1 := t0.Add(3 * time.Millisecond)
		want := []pmstate.Decision{
			{Time: t1, Kind: pmstate.DecisionAction, Op: "add_endpoint", ID: 101, Addr: addrB, Flags: "subflow fullmesh",
				Took: 3 * time.Millisecond, Latency: 3 * time.Millisecond},
			{Time: t1, Kind: pmstate.DecisionAction, Op: "add_endpoint", ID: 102, Addr: addrC, Flags: "subflow fullmesh",
				Latency: 3 * time.Millisecond, Error: "genl: add endpoint: cannot assign requested address",
				RetryAt: t1.Add(50 * time.Millisecond)},
		}
		if diff := cmp.Diff(want, got.take(), cmpAddrs); diff != "" {
			t.Errorf("decisions (-want +got):\n%s", diff)
		}
		if st := h.settle(); st.Counters.Backoffs != 1 {
			t.Errorf("backoffs = %d, want 1", st.Counters.Backoffs)
		}
	})
}

// TestObservePolicyAndResync: policy swaps and resynchronisations are
// observed.
func TestObservePolicyAndResync(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		h := newUserspace(t, withObserver(&got))
		h.lost()
		h.settle()
		h.e.SetPolicy(allPairs{})
		h.settle()
		want := []pmstate.Decision{
			{Time: h.clock.Now(), Kind: pmstate.DecisionResync, Detail: "genl: events lost: the receive buffer overflowed: no buffer space available"},
			{Time: h.clock.Now(), Kind: pmstate.DecisionPolicy, Detail: "fullmesh -> all-pairs"},
		}
		if diff := cmp.Diff(want, got.take(), cmpAddrs); diff != "" {
			t.Errorf("decisions (-want +got):\n%s", diff)
		}
	})
}

// TestObserveUnmanaged: a connection the in-kernel path manager runs is
// reported once.
func TestObserveUnmanaged(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var got decisions
		h := newUserspace(t, withObserver(&got))
		h.ns.mu.Lock()
		h.ns.kernelPM[tok1] = true
		h.ns.mu.Unlock()
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.settle()
		kinds := []pmstate.DecisionKind{}
		for _, d := range got.take() {
			kinds = append(kinds, d.Kind)
		}
		if diff := cmp.Diff([]pmstate.DecisionKind{pmstate.DecisionAction, pmstate.DecisionUnmanaged}, kinds); diff != "" {
			t.Errorf("decision kinds (-want +got):\n%s", diff)
		}
	})
}
