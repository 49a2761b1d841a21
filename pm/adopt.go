package pm

import (
	"fmt"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// resyncResult is a listing of the connections, read outside the loop.
type resyncResult struct {
	// start is the event sequence number when the listing began, and
	// listing its number (Engine.listings).
	start   uint64
	listing uint32
	conns   []ExistingConn
	err     error
}

// merging is a listing being folded into the state, a chunk per loop
// iteration, so that the decisions for new connections never wait for
// the whole of it. next is the listing's next connection to merge; once
// every one is, the pass over the engine's connections that forgets those
// the listing lacks goes on from the token from.
type merging struct {
	resyncResult
	next  int
	from  uint32
	done  bool // the pass reached the last token
	prune bool
	// forgot counts the connections the pass forgot.
	forgot int
}

// Chunks of a merge: the listed connections one loop iteration merges,
// and the engine's connections it looks at for those the listing lacks.
const (
	mergeChunk = 128
	pruneChunk = 2048
)

// adopt learns the kernel's state before the loop starts: the endpoints
// and limits in kernel mode, the existing connections in userspace mode.
func (e *Engine) adopt() error {
	if e.cfg.Mode == policy.ModeKernel {
		eps, lim, err := dumpKernel(e.loopKernel)
		if err != nil {
			return fmt.Errorf("pm: read endpoints: %w", err)
		}
		e.kernelMode.actual, e.kernelMode.limits, e.kernelMode.found = eps, lim, lim
		var owned, foreign int
		for _, ep := range eps {
			if e.owned(ep) {
				owned++
			} else {
				foreign++
			}
		}
		e.log.Info("adopted endpoints", "owned", owned, "foreign", foreign, "owned_ids", e.cfg.OwnedIDs.String(),
			"subflows_limit", lim.Subflows, "add_addr_accepted_limit", lim.AddAddrAccepted)
		return nil
	}
	if e.cfg.Conns == nil {
		return nil
	}
	conns, err := e.listConns()
	if err != nil {
		e.log.Warn("cannot list existing connections; managing new ones only", "error", err)
		return nil
	}
	e.listings++
	m := merging{resyncResult: resyncResult{listing: e.listings, conns: conns}}
	for !m.done {
		e.mergeStep(&m)
	}
	e.log.Info("adopted connections", "connections", len(e.conns))
	return nil
}

// listConns lists the connections with their subflows: one sock_diag
// walk, nothing per connection. It runs outside the loop and touches no
// engine state.
func (e *Engine) listConns() ([]ExistingConn, error) {
	existing, err := e.cfg.Conns.ListConns()
	if err != nil {
		return nil, fmt.Errorf("pm: list connections: %w", err)
	}
	return slices.DeleteFunc(existing, func(ec ExistingConn) bool {
		if ec.Side == policy.SideClient || ec.Side == policy.SideServer {
			return false
		}
		e.log.Warn("existing connection of unknown side, not adopted", "token", hexToken(ec.Token),
			"local", ec.Local, "remote", ec.Remote)
		return true
	}), nil
}

// resync re-reads the kernel's state after events were lost.
func (e *Engine) resync() {
	if e.cfg.Mode == policy.ModeKernel {
		e.kernelMode.needDump = true
		e.kernelMode.dumpRetry = retry{}
		e.kernelDirty = true
		return
	}
	if e.cfg.Conns == nil {
		e.reconcileAll()
		return
	}
	if e.resyncing {
		e.resyncAgain = true
		return
	}
	e.resyncing = true
	e.listings++
	r := resyncResult{start: e.seq, listing: e.listings}
	go func() {
		r.conns, r.err = e.listConns()
		e.resyncC <- r
	}()
}

// applyResync starts merging a listing; the loop goes on with it
// (mergeStep) between its other inputs.
func (e *Engine) applyResync(r resyncResult) {
	if r.err != nil {
		e.log.Warn("resynchronisation failed", "error", r.err)
		e.endResync(0)
		return
	}
	e.merging = &merging{resyncResult: r, prune: true}
}

// mergeStep merges the next chunk of the listing being merged, and ends
// the resynchronisation once it is all merged.
func (e *Engine) mergeStep(m *merging) {
	now := e.now()
	for end := min(m.next+mergeChunk, len(m.conns)); m.next < end; m.next++ {
		e.mergeConn(&m.conns[m.next], m.start, m.listing, m.prune, now)
	}
	if m.next < len(m.conns) {
		return
	}
	if !m.prune {
		m.done = true
		return
	}
	// Forget the connections the listing lacks, unless an event touched
	// them after it began.
	var gone []*conn
	m.done = true
	e.order.AscendGreaterOrEqual(&conn{token: m.from}, func(c *conn) bool {
		if len(gone) == pruneChunk {
			m.from, m.done = c.token, false
			return false
		}
		if c.listed != m.listing && c.touched <= m.start {
			gone = append(gone, c)
		}
		return true
	})
	for _, c := range gone {
		e.dropConn(c)
	}
	m.forgot += len(gone)
	if m.done && m == e.merging {
		e.merging = nil
		e.endResync(m.forgot)
	}
}

// endResync ends a resynchronisation that forgot connections: another one
// starts if events were lost meanwhile.
func (e *Engine) endResync(forgot int) {
	e.resyncing = false
	switch {
	case !e.sweeping:
		e.log.Info("resynchronised", "connections", len(e.conns), "forgotten", forgot)
	case forgot > 0:
		e.log.Info("forgot connections the kernel no longer has", "forgotten", forgot)
	}
	e.sweeping = false
	if e.resyncAgain {
		e.resyncAgain = false
		e.resync()
	}
}

// mergeConn folds a listed connection into the state. A connection the
// engine did not know is taken as listed, and its local address list is
// read before it is announced anything (conn.addrsStale); a known one
// gets the subflows the listing shows and loses those it lacks, and is
// reconciled only when that changed something. With prune, what the
// listing lacks is dropped only when no event touched it after start,
// when the listing began.
func (e *Engine) mergeConn(a *ExistingConn, start uint64, listing uint32, prune bool, now time.Time) {
	c := e.conns[a.Token]
	changed := false
	if c == nil {
		c = e.newConn(a.Token)
		c.adopted = true
		c.side = a.Side
		c.local, c.remote = unmapAP(a.Local), unmapAP(a.Remote)
		c.addrsStale, changed = true, true
	}
	c.listed = listing
	if c.unmanaged {
		return
	}
	if !c.established {
		c.established, changed = true, true
	}
	if e.mergeSubflows(c, a, start, listing, prune, now) || changed {
		e.markDirty(c)
	}
}

// mergeSubflows folds the listed subflows of c in and reports whether
// that changed anything. An attempt the kernel accepted before the
// listing began whose subflow the listing lacks has failed: sock_diag
// lists joins from SYN-SENT on, so its SUB_CLOSED was lost.
func (e *Engine) mergeSubflows(c *conn, a *ExistingConn, start uint64, listing uint32, prune bool, now time.Time) bool {
	n := len(c.subs)
	var buf [16]bool
	listed := buf[:0]
	if n > len(buf) {
		listed = make([]bool, 0, n)
	}
	listed = listed[:n]
	changed := false
	for _, es := range a.Subflows {
		local, remote := unmapAP(es.Local), unmapAP(es.Remote)
		i := slices.IndexFunc(c.subs, func(x subflow) bool { return x.local == local && x.remote == remote })
		if i < 0 {
			c.subs = append(c.subs, subflow{local: local, remote: remote, since: now,
				initial: local == c.local && remote == c.remote, joined: es.Joined})
			i = len(c.subs) - 1
			k := c.subs[i].path()
			if j := c.attempt(k); j >= 0 {
				c.subs[i].joined = true
				c.dropAttempt(j)
			}
			changed = true
		} else if i < n {
			listed[i] = true
		}
		s := &c.subs[i]
		if !s.established || s.backup != es.Backup || s.localID != es.LocalID || s.remoteID != es.RemoteID {
			changed = true
		}
		s.established, s.backup = true, es.Backup
		s.localID, s.remoteID = es.LocalID, es.RemoteID
		if es.IfIndex != 0 {
			s.ifindex = es.IfIndex
		}
		c.learnLocal(local.Addr(), 0, es.LocalID, false)
		if es.RemoteID != 0 && remote != c.remote && c.peerAt(remote) == nil &&
			!slices.ContainsFunc(c.peers, func(p peer) bool { return p.id == es.RemoteID }) {
			// A subflow to the address exists: it is the peer's.
			c.peers = append(c.peers, peer{addr: remote, id: es.RemoteID, state: peerJoined})
		}
	}
	if !prune {
		return changed
	}
	keep := c.subs[:0]
	for i, s := range c.subs {
		if i < len(listed) && !listed[i] && s.touched <= start {
			changed = true
			continue
		}
		keep = append(keep, s)
	}
	clear(c.subs[len(keep):])
	c.subs = keep
	for i := 0; i < len(c.attempts); {
		at := c.attempts[i]
		if !at.accepted || at.listing >= listing {
			i++
			continue
		}
		c.dropAttempt(i)
		e.pathFailed(c, at.path, now, "the join did not come up (its end was among the events lost)")
		changed = true
	}
	return changed
}
