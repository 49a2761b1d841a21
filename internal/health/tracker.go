package health

import (
	"cmp"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// observed is a subflow as one sample read it, with the link it belongs
// to (0 when unknown).
type observed struct {
	sf      sockdiag.Subflow
	ifindex int32
}

type subKey struct {
	token         uint32
	local, remote netip.AddrPort
}

func (k subKey) compare(o subKey) int {
	return cmp.Or(cmp.Compare(k.token, o.token), k.local.Compare(o.local), k.remote.Compare(o.remote))
}

// subState is what the tracker remembers of a subflow between samples.
type subState struct {
	// calm is the last sample that saw nothing in flight, or the first
	// that saw the subflow.
	calm    time.Time
	stalled bool
	changed time.Time // when stalled last changed; zero when never
	seen    uint64    // the sample that last saw the subflow
	ifindex int32
	ackAt   time.Time     // when the last ACK arrived
	thr     time.Duration // the stall threshold
	health  policy.Health
}

// tracker turns samples into health reports. It is pure: the time is an
// argument, and it does no I/O.
type tracker struct {
	stall   Threshold
	refresh time.Duration
	log     *slog.Logger

	subs  map[subKey]*subState
	links map[int32]*policy.Health
	n     uint64 // samples taken

	emitted  bool      // a report went out
	lastEmit time.Time // when the last report went out
	dirty    bool      // something may have changed since
}

func newTracker(stall Threshold, refresh time.Duration, log *slog.Logger) *tracker {
	return &tracker{stall: stall, refresh: refresh, log: log,
		subs: make(map[subKey]*subState), links: make(map[int32]*policy.Health)}
}

// baseRTO is the retransmission timeout before exponential backoff.
func baseRTO(ti *sockdiag.TCPInfo) time.Duration {
	return ti.RTO >> min(ti.Backoff, 30)
}

// update takes one sample of the established subflows at now. It returns
// the report and whether it is due, and the deadline: the earliest time a
// subflow with data in flight will have gone without an ACK for longer
// than its threshold (zero when none will).
func (t *tracker) update(now time.Time, obs []observed) (rep pm.Health, emit bool, deadline time.Time) {
	t.n++
	flip := false
	for i := range obs {
		o := &obs[i]
		if o.sf.State != sockdiag.StateEstablished {
			continue
		}
		k := subKey{o.sf.Token, unmap(o.sf.Local), unmap(o.sf.Remote)}
		st := t.subs[k]
		if st == nil {
			st = &subState{calm: now}
			t.subs[k] = st
		}
		st.seen, st.ifindex = t.n, o.ifindex
		ti := &o.sf.TCP
		if ti.Unacked == 0 {
			st.calm = now
		}
		st.ackAt = now.Add(-ti.LastAckRecv)
		st.thr = t.stall.For(baseRTO(ti))
		start := later(st.ackAt, st.calm)
		stalled := ti.Unacked > 0 && now.Sub(start) > st.thr
		if stalled != st.stalled {
			st.stalled, st.changed, flip = stalled, now, true
			t.logFlip("subflow", stalled, "token", hexToken(k.token), "local", k.local, "remote", k.remote,
				"ifindex", o.ifindex, "unacked", ti.Unacked, "last_ack", ti.LastAckRecv, "threshold", st.thr)
		}
		if ti.Unacked > 0 && !stalled {
			deadline = earliest(deadline, start.Add(st.thr))
		}
		var loss float64
		if ti.BytesSent > 0 {
			loss = float64(ti.BytesRetrans) / float64(ti.BytesSent)
		}
		st.health = policy.Health{
			RTT: ti.RTT, RTTVar: ti.RTTVar, RTO: ti.RTO, Loss: loss, Retransmits: uint32(ti.Retransmits),
			Unacked: ti.Unacked, LastAckRecv: ti.LastAckRecv, LastDataRecv: ti.LastDataRecv,
			Stalled: st.stalled, StalledChanged: st.changed, Sampled: now,
		}
	}
	for k, st := range t.subs {
		if st.seen != t.n {
			delete(t.subs, k)
			t.dirty = true
		}
	}
	t.dirty = t.dirty || len(t.subs) > 0
	if t.updateLinks(now) {
		flip = true
	}
	if !flip && t.emitted && !(t.dirty && now.Sub(t.lastEmit) >= t.refresh) {
		return pm.Health{}, false, deadline
	}
	t.emitted, t.lastEmit, t.dirty = true, now, false
	return t.report(), true, deadline
}

// updateLinks summarises the subflows per link and reports whether a
// link's stalled verdict changed.
func (t *tracker) updateLinks(now time.Time) bool {
	byLink := make(map[int32][]*subState)
	for _, st := range t.subs {
		if st.ifindex != 0 {
			byLink[st.ifindex] = append(byLink[st.ifindex], st)
		}
	}
	flip := false
	for idx, lh := range t.links {
		if _, ok := byLink[idx]; !ok && !lh.Stalled {
			delete(t.links, idx)
			t.dirty = true
		}
	}
	for idx, sts := range byLink {
		h := summary(sts)
		h.Sampled = now
		old := t.links[idx]
		if old == nil {
			old = &policy.Health{}
			t.links[idx] = old
		}
		h.StalledChanged = old.StalledChanged
		if h.Stalled != old.Stalled {
			h.StalledChanged, flip = now, true
			t.logFlip("link", h.Stalled, "ifindex", idx, "subflows", len(sts))
		}
		*old = h
	}
	return flip
}

// summary summarises the health of a link's subflows, but for
// StalledChanged and Sampled.
func summary(sts []*subState) policy.Health {
	var h policy.Health
	anyStalled, silent := false, true
	for i, st := range sts {
		s := &st.health
		if s.RTT > 0 && (h.RTT == 0 || s.RTT < h.RTT) {
			h.RTT, h.RTTVar = s.RTT, s.RTTVar
		}
		if s.RTO > 0 && (h.RTO == 0 || s.RTO < h.RTO) {
			h.RTO = s.RTO
		}
		h.Loss = max(h.Loss, s.Loss)
		h.Retransmits = max(h.Retransmits, s.Retransmits)
		h.Unacked += s.Unacked
		if i == 0 {
			h.LastAckRecv, h.LastDataRecv = s.LastAckRecv, s.LastDataRecv
		}
		h.LastAckRecv = min(h.LastAckRecv, s.LastAckRecv)
		h.LastDataRecv = min(h.LastDataRecv, s.LastDataRecv)
		anyStalled = anyStalled || st.stalled
		silent = silent && s.LastAckRecv > st.thr
	}
	h.Stalled = anyStalled && silent
	return h
}

// report returns the current health, subflows by token and addresses,
// links by index.
func (t *tracker) report() pm.Health {
	rep := pm.Health{
		Subflows: make([]pm.SubflowHealth, 0, len(t.subs)),
		Links:    make([]pm.LinkHealth, 0, len(t.links)),
	}
	keys := make([]subKey, 0, len(t.subs))
	for k := range t.subs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, subKey.compare)
	for _, k := range keys {
		rep.Subflows = append(rep.Subflows, pm.SubflowHealth{Token: k.token, Local: k.local, Remote: k.remote,
			Health: t.subs[k].health})
	}
	for idx, h := range t.links {
		rep.Links = append(rep.Links, pm.LinkHealth{IfIndex: idx, Health: *h})
	}
	slices.SortFunc(rep.Links, func(a, b pm.LinkHealth) int { return cmp.Compare(a.IfIndex, b.IfIndex) })
	return rep
}

// active reports whether the last sample saw subflows.
func (t *tracker) active() bool { return len(t.subs) > 0 }

func (t *tracker) logFlip(what string, stalled bool, args ...any) {
	msg := what + " recovered"
	if stalled {
		msg = what + " stalled"
	}
	t.log.Info(msg, args...)
}

func unmap(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// earliest returns the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
