package pm

import (
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// dropStalled is a test modifier that drops the paths whose subflow is
// stalled, and makes the paths over backupIf backup while another path
// has an established subflow that is not stalled.
type dropStalled struct{ backupIf int32 }

func (dropStalled) Name() string { return "drop-stalled" }

func (dropStalled) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (d dropStalled) Conn(_ policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	on := func(p policy.Path, s policy.Subflow) bool { return s.Local.Addr() == p.Local && s.Remote == p.Remote }
	working := false
	next.Paths = slices.DeleteFunc(next.Paths, func(p policy.Path) bool {
		for _, s := range c.Subflows {
			if !on(p, s) {
				continue
			}
			if s.Health.Stalled {
				return true
			}
			working = working || (s.Established && p.IfIndex != d.backupIf)
		}
		return false
	})
	for i := range next.Paths {
		if next.Paths[i].IfIndex == d.backupIf {
			next.Paths[i].Backup = working
		}
	}
	return next
}

// backupUnlessStalled is a test modifier that makes the endpoints over
// backupIf backup unless the link primary is stalled.
type backupUnlessStalled struct{ backupIf, primary int32 }

func (backupUnlessStalled) Name() string { return "backup-unless-stalled" }

func (b backupUnlessStalled) Kernel(v policy.View, next policy.KernelPlan) policy.KernelPlan {
	l, _ := v.Link(b.primary)
	for i := range next.Endpoints {
		if next.Endpoints[i].IfIndex == b.backupIf {
			next.Endpoints[i].Backup = !l.Health.Stalled
		}
	}
	return next
}

func (backupUnlessStalled) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	return next
}

func withDropStalled(t *testing.T) harnessOpt {
	t.Helper()
	fm, err := fullmesh.New(joinAtOnce())
	if err != nil {
		t.Fatal(err)
	}
	return withPolicy(policy.Compose(fm, dropStalled{backupIf: 3}))
}

func sfHealth(token uint32, local, remote string, h policy.Health) SubflowHealth {
	return SubflowHealth{Token: token, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), Health: h}
}

// TestUserspaceHealth: a health report reaches the policy's view of the
// connection; the stalled initial subflow is promoted away from at once:
// the backup path's bit is cleared, then the initial subflow is closed (a
// stalled subflow is dead: see Engine.demotes).
func TestUserspaceHealth(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t, withDropStalled(t))
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags=backup if=3 id=255")
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		h.expect()

		now := h.clock.Now()
		ok := policy.Health{RTT: time.Millisecond, Unacked: 3, Sampled: now}
		h.e.SetHealth(Health{Subflows: []SubflowHealth{
			sfHealth(tok1, "192.0.2.1:40000", srv1, ok),
			sfHealth(tok1, "198.51.100.1:40001", srv1, policy.Health{RTT: 20 * time.Millisecond, Sampled: now}),
			sfHealth(tok2, "192.0.2.1:40010", srv1, ok), // unknown connection
		}})
		h.expect()
		st := h.settle()
		if got := st.Conns[0].Paths[0].Subflows[0].Health; got != healthState(ok) {
			t.Errorf("status health %+v, want %+v", got, ok)
		}
		if st.Counters.HealthUpdates != 1 {
			t.Errorf("health updates %d, want 1", st.Counters.HealthUpdates)
		}

		stalled := ok
		stalled.Stalled, stalled.StalledChanged, stalled.LastAckRecv = true, now, 300*time.Millisecond
		h.e.SetHealth(Health{Subflows: []SubflowHealth{sfHealth(tok1, "192.0.2.1:40000", srv1, stalled)}})
		h.expect(
			"backup 11111111 198.51.100.1:40001 -> 203.0.113.80:443 false",
			"destroy 11111111 192.0.2.1:40000 -> 203.0.113.80:443",
		)
		h.events(event(genl.EventSubClosed, tok1, "192.0.2.1:40000", srv1))
		// The path comes back into the plan: a new subflow probes it.
		h.expect("create 11111111 192.0.2.1 -> 203.0.113.80:443 flags= if=2 id=0")
		h.events(event(genl.EventSubEstablished, tok1, "192.0.2.1:40002", srv1, ids(0, 0)))
		h.expect("backup 11111111 198.51.100.1:40001 -> 203.0.113.80:443 true")
	})
}

// TestUserspaceHealthReconcilesOnChange: the same report twice does not
// reconcile; a subflow created later gets the health already reported.
func TestUserspaceHealthReconcilesOnChange(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var calls int
		count := countingPolicy{calls: &calls}
		h := newUserspace(t, withPolicy(count))
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect()
		rep := Health{Subflows: []SubflowHealth{
			sfHealth(tok1, "192.0.2.1:40000", srv1, policy.Health{RTT: time.Millisecond}),
			sfHealth(tok1, "198.51.100.1:40001", srv1, policy.Health{RTT: 3 * time.Millisecond}),
		}}
		base := calls
		h.e.SetHealth(rep)
		h.settle()
		if calls != base+1 {
			t.Fatalf("policy calls %d after a changed report, want %d", calls, base+1)
		}
		h.e.SetHealth(rep)
		h.settle()
		if calls != base+1 {
			t.Errorf("policy calls %d after the same report, want %d", calls, base+1)
		}
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		st := h.settle()
		var got []time.Duration
		for _, p := range st.Conns[0].Paths {
			for _, s := range p.Subflows {
				got = append(got, s.Health.RTT)
			}
		}
		if diff := cmp.Diff([]time.Duration{time.Millisecond, 3 * time.Millisecond}, got); diff != "" {
			t.Errorf("subflow RTTs (-want +got):\n%s", diff)
		}
		// A report without the subflows clears their health.
		h.e.SetHealth(Health{})
		st = h.settle()
		if hl := st.Conns[0].Paths[0].Subflows[0].Health; hl != (pmstate.Health{}) {
			t.Errorf("health after an empty report: %+v", hl)
		}
	})
}

// countingPolicy counts its calls (the engine calls it from its loop
// only; the test reads the count after settle).
type countingPolicy struct{ calls *int }

func (countingPolicy) Name() string { return "counting" }

func (countingPolicy) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (p countingPolicy) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	*p.calls++
	return next
}

// TestKernelHealth: a link's health reaches the kernel-mode view, survives
// host updates, and its change reconciles the endpoints.
func TestKernelHealth(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fm, err := fullmesh.New(joinAtOnce())
		if err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, policy.ModeKernel, withPolicy(policy.Compose(fm, backupUnlessStalled{backupIf: 3, primary: 2})))
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		h.setHost(addrA, addrB)
		h.start()
		h.ready()
		h.expect(
			"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
			"add_endpoint id=101 198.51.100.1 flags=subflow,backup,fullmesh if=3",
		)
		stalled := policy.Health{Stalled: true, StalledChanged: h.clock.Now(), Unacked: 4}
		h.e.SetHealth(Health{Links: []LinkHealth{{IfIndex: 2, Health: stalled}}})
		h.expect("set_endpoint_flags id=101 198.51.100.1 flags=subflow,fullmesh if=3")
		// A host update keeps the reported health.
		h.setHost(addrA, addrB, addrD)
		h.expect("add_endpoint id=102 2001:db8:1::1 flags=subflow,fullmesh if=2")
		h.e.SetHealth(Health{Links: []LinkHealth{{IfIndex: 2, Health: policy.Health{StalledChanged: h.clock.Now()}}}})
		h.expect("set_endpoint_flags id=101 198.51.100.1 flags=subflow,backup,fullmesh if=3")
	})
}
