package pm

import (
	"net/netip"
	"slices"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Health is a report of how well the namespace's MPTCP subflows and links
// carry data, read from tcp_info by a sampler (internal/health). Each
// report replaces the previous one: a subflow or link it leaves out has no
// known health.
type Health struct {
	// Subflows are the subflows' own health.
	Subflows []SubflowHealth
	// Links are the links' health, summarised over their subflows.
	Links []LinkHealth
}

// SubflowHealth is the health of one subflow, identified by its
// connection's local token and its addresses and ports.
type SubflowHealth struct {
	Token         uint32
	Local, Remote netip.AddrPort
	Health        policy.Health
}

// LinkHealth is the health of one link.
type LinkHealth struct {
	IfIndex int32
	Health  policy.Health
}

// subflowKey identifies a subflow across reports: token, local and remote
// address and port, never IPv4-mapped.
type subflowKey struct {
	token         uint32
	local, remote netip.AddrPort
}

// SetHealth replaces the subflows' and links' health that the views carry
// (policy.Subflow.Health, policy.Link.Health). Like SetHost it never
// blocks: when the engine has not picked up the previous report yet, this
// one replaces it. The engine reconciles the connections whose subflows'
// health changed, in kernel mode the endpoints when a link's health
// changed, and in userspace mode every connection when a link's Stalled
// verdict changed; a policy whose decision depends on elapsed time (a
// hold time) is thus re-evaluated at every report that changes what it
// sees. The slices are copied.
func (e *Engine) SetHealth(h Health) {
	h = Health{Subflows: slices.Clone(h.Subflows), Links: slices.Clone(h.Links)}
	for {
		select {
		case e.healthC <- h:
			e.sets.Add(1)
			return
		default:
		}
		select {
		case <-e.healthC:
		default:
		}
	}
}

// applyHealth takes a health report into the state and marks what it
// affects for reconciliation.
func (e *Engine) applyHealth(h Health) {
	e.counters.healthUpdates++
	e.haveHealth = true
	e.linkHealth = make(map[int32]policy.Health, len(h.Links))
	for _, l := range h.Links {
		e.linkHealth[l.IfIndex] = l.Health
	}
	var linkChanged, verdictChanged bool
	for i := range e.view.Links {
		l := &e.view.Links[i]
		nh := e.linkHealth[l.Index]
		if nh == l.Health {
			continue
		}
		linkChanged = true
		if nh.Stalled != l.Health.Stalled || !nh.StalledChanged.Equal(l.Health.StalledChanged) {
			verdictChanged = true
		}
		l.Health = nh
	}
	old := e.subHealth
	e.subHealth = make(map[subflowKey]policy.Health, len(h.Subflows))
	for _, s := range h.Subflows {
		e.subHealth[subflowKey{s.Token, unmapAP(s.Local), unmapAP(s.Remote)}] = s.Health
	}
	switch {
	case e.cfg.Mode == policy.ModeKernel:
		if linkChanged {
			e.kernelDirty = true
		}
		return
	case verdictChanged:
		e.reconcileAll()
	}
	for _, c := range e.conns {
		for i := range c.subs {
			k := subflowKey{c.token, c.subs[i].local, c.subs[i].remote}
			if old[k] != e.subHealth[k] {
				e.markDirty(c)
				break
			}
		}
	}
}

// healthOf returns the last reported health of a subflow of token: the
// health of every subflow the engine tracks, kept here rather than in
// each subflow.
func (e *Engine) healthOf(token uint32, local, remote netip.AddrPort) policy.Health {
	return e.subHealth[subflowKey{token, local, remote}]
}

// withLinkHealth sets the links' health from the last report, once there
// has been one.
func (e *Engine) withLinkHealth(links []policy.Link) {
	if !e.haveHealth {
		return
	}
	for i := range links {
		links[i].Health = e.linkHealth[links[i].Index]
	}
}
