package pm

import (
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/policy"
)

// repairTries is how many repairs a connection gets before it is given up.
const repairTries = 3

// repairState is kernel mode's subflow repair (see the package doc). It
// keeps a record per subflow endpoint the engine added; the listings it
// reads are scratch of the check that asked for them.
type repairState struct {
	// wake is the next check's.
	wake wake
	// listing: a listing is in flight; again: another is wanted after it.
	listing, again bool
	endpoints      map[netip.AddrPort]*repairEP
}

// repairEP is the repair record of one owned subflow endpoint.
type repairEP struct {
	id uint8
	// added is when the engine last added the endpoint. base are the
	// tokens, sorted, of the connections the first listing after that
	// found (older than the add) and of those a check saw with a subflow
	// from the endpoint's address (the peer accepts their joins), less
	// the given-up ones: the only connections the endpoint is repaired
	// for. haveBase: base is set.
	added    time.Time
	base     []uint32
	haveBase bool
	// due is when the endpoint is checked next; zero: not scheduled.
	due time.Time
	// pending: the check asked reconcileKernel for a replacement, for
	// the connections in missing (scratch until the replacement is done).
	pending bool
	missing []uint32
	// backoff is the backoff between repairs; its fails count the repairs in
	// a row, reset by a check that finds every connection served.
	backoff retry
	// tries counts the repairs made for connections still without a
	// subflow; given are the tokens, sorted, given up after repairTries.
	tries map[uint32]uint8
	given []uint32
}

// repairListing is a listing's outcome, sent back to the loop.
type repairListing struct {
	start time.Time
	conns []ExistingConn
	err   error
}

// repairOn reports whether kernel mode repairs endpoints.
func (e *Engine) repairOn() bool {
	return e.cfg.Mode == policy.ModeKernel && e.cfg.Conns != nil && e.cfg.RepairAfter > 0
}

// repairAdded records that the engine added ep (an owned endpoint) at now:
// the kernel tried it on every established connection; the first check
// comes RepairAfter later, once the connections have been listed.
func (e *Engine) repairAdded(ep genl.Endpoint, now time.Time) {
	rp := &e.kernelMode.repair
	if !e.repairOn() || ep.Flags&genl.FlagSubflow == 0 {
		return
	}
	key := epKey(ep)
	r := rp.endpoints[key]
	if r == nil {
		r = &repairEP{}
		rp.endpoints[key] = r
	}
	r.id, r.added, r.base, r.haveBase, r.pending = ep.ID, now, nil, false, false
	r.due = now.Add(e.cfg.RepairAfter)
	e.repairList()
	e.repairSchedule()
}

// repairDeleted forgets ep's record: the engine removed the endpoint for
// good (not to replace it).
func (e *Engine) repairDeleted(ep genl.Endpoint) { delete(e.kernelMode.repair.endpoints, epKey(ep)) }

// repairSoon moves every check forward to RepairAfter from now: a subflow
// closed with an error.
func (e *Engine) repairSoon() {
	if !e.repairOn() {
		return
	}
	at := e.now().Add(e.cfg.RepairAfter)
	for _, r := range e.kernelMode.repair.endpoints {
		if r.due.IsZero() || at.Before(r.due) {
			r.due = at
		}
	}
	e.repairSchedule()
}

// repairSchedule sets the check wake to the earliest due check.
func (e *Engine) repairSchedule() {
	var at time.Time
	for _, r := range e.kernelMode.repair.endpoints {
		at = earliest(at, r.due)
	}
	e.setWake(&e.kernelMode.repair.wake, at)
}

// repairList starts a listing of the connections, or asks for one after
// the one in flight.
func (e *Engine) repairList() {
	rp := &e.kernelMode.repair
	if rp.listing {
		rp.again = true
		return
	}
	rp.listing = true
	start := e.now()
	go func() {
		conns, err := e.cfg.Conns.ListConns()
		e.repairC <- repairListing{start: start, conns: conns, err: err}
	}()
}

// applyRepairListing sets the baselines the listing can give and checks
// the endpoints that are due.
func (e *Engine) applyRepairListing(l repairListing) {
	rp := &e.kernelMode.repair
	rp.listing = false
	if l.err != nil {
		e.log.Warn("repair: cannot list connections", "error", l.err)
		for _, r := range rp.endpoints {
			if !r.due.IsZero() && !r.due.After(l.start) {
				r.due = l.start.Add(max(e.cfg.RepairAfter, e.repairEvery()))
			}
		}
	} else {
		var toks []uint32
		for key, r := range rp.endpoints {
			if !r.haveBase && !r.added.After(l.start) {
				if toks == nil {
					toks = make([]uint32, 0, len(l.conns))
					for i := range l.conns {
						toks = append(toks, l.conns[i].Token)
					}
					slices.Sort(toks)
				}
				r.base = slices.DeleteFunc(slices.Clone(toks), func(t uint32) bool { return has(r.given, t) })
				r.haveBase = true
			}
			if r.haveBase && !r.due.IsZero() && !r.due.After(l.start) {
				e.repairCheck(key, r, l.conns, l.start)
			}
		}
	}
	if rp.again {
		rp.again = false
		e.repairList()
	}
	e.repairSchedule()
}

// repairEvery is the period of the checks after the first; 0: none.
func (e *Engine) repairEvery() time.Duration { return max(e.cfg.RepairEvery, 0) }

// repairCheck decides whether the endpoint key needs replacing: some
// established connection older than its add, or seen by an earlier check
// with a subflow from its address, of its family, opened from another
// address, below the subflow limit, has no subflow from its address.
// Given-up connections and those that left are forgotten.
func (e *Engine) repairCheck(key netip.AddrPort, r *repairEP, conns []ExistingConn, now time.Time) {
	k := &e.kernelMode
	r.due = time.Time{}
	if every := e.repairEvery(); every > 0 {
		r.due = now.Add(every)
	}
	i := slices.IndexFunc(k.actual, func(a genl.Endpoint) bool { return e.owned(a) && epKey(a) == key })
	if i < 0 || k.actual[i].Flags&genl.FlagSubflow == 0 {
		delete(k.repair.endpoints, key)
		return
	}
	ep := k.actual[i]
	addr := ep.Addr.Unmap()
	if !e.usable[addr] || r.pending {
		return
	}
	listed := make([]uint32, 0, len(conns))
	present := make([]uint32, 0, len(r.base))
	var missing []uint32
	for ci := range conns {
		c := &conns[ci]
		listed = append(listed, c.Token)
		if !has(r.base, c.Token) {
			// A newer connection with a subflow from the address: the
			// peer accepts its joins, so it counts from now on.
			if subflowFrom(c, addr) && !has(r.given, c.Token) {
				present = append(present, c.Token)
			}
			continue
		}
		present = append(present, c.Token)
		if !e.lacksSubflow(c, addr) {
			delete(r.tries, c.Token)
			continue
		}
		if r.tries[c.Token] >= repairTries {
			delete(r.tries, c.Token)
			r.given = insertSorted(r.given, c.Token)
			e.counters.repairGivenUp++
			e.log.Info("repair: connection given up: still no subflow after repairs",
				"token", hexToken(c.Token), "id", ep.ID, "addr", addr, "repairs", repairTries)
			continue
		}
		missing = append(missing, c.Token)
	}
	// Connections that left are forgotten; base keeps the present ones
	// that are not given up.
	slices.Sort(listed)
	r.given = slices.DeleteFunc(r.given, func(t uint32) bool { return !has(listed, t) })
	for t := range r.tries {
		if !has(listed, t) {
			delete(r.tries, t)
		}
	}
	slices.Sort(present)
	r.base = slices.DeleteFunc(present, func(t uint32) bool { return has(r.given, t) })
	if len(missing) == 0 {
		r.backoff = retry{}
		return
	}
	if r.backoff.waiting(now) {
		r.due = r.backoff.until
		return
	}
	r.backoff.fails++
	r.backoff.until = now.Add(e.jitter(e.cfg.Backoff.delay(r.backoff.fails)))
	r.pending, r.missing = true, missing
	e.kernelDirty = true
}

// repaired records that the replacement of ep is done: the kernel tried
// ep again on every established connection.
func (e *Engine) repaired(ep genl.Endpoint) {
	r := e.kernelMode.repair.endpoints[epKey(ep)]
	if r == nil {
		return
	}
	if r.tries == nil && len(r.missing) > 0 {
		r.tries = make(map[uint32]uint8, len(r.missing))
	}
	for _, t := range r.missing {
		r.tries[t]++
	}
	e.counters.endpointRepairs++
	e.log.Info("endpoint repaired: replaced so that the kernel tries it again on connections without its subflow",
		"id", ep.ID, "addr", ep.Addr, "connections", len(r.missing), "repairs_in_a_row", r.backoff.fails)
	r.missing = nil
}

// subflowFrom reports whether c has a subflow from addr.
func subflowFrom(c *ExistingConn, addr netip.Addr) bool {
	return slices.ContainsFunc(c.Subflows, func(sf ExistingSubflow) bool { return sf.Local.Addr().Unmap() == addr })
}

// lacksSubflow reports whether the kernel should give c a subflow from
// addr and has none: c is on the client side (the in-kernel path manager
// opens subflows there), of addr's family, not opened from addr, and below
// the subflow limit, and no subflow of c, in any state, is from addr.
func (e *Engine) lacksSubflow(c *ExistingConn, addr netip.Addr) bool {
	local := unmapAP(c.Local)
	if c.Side != policy.SideClient || c.Fallback || local.Addr().Is4() != addr.Is4() || local.Addr() == addr {
		return false
	}
	remote := unmapAP(c.Remote)
	extra := 0
	for _, sf := range c.Subflows {
		l := unmapAP(sf.Local)
		if l.Addr() == addr {
			return false
		}
		if l != local || unmapAP(sf.Remote) != remote {
			extra++
		}
	}
	return uint32(extra) < e.kernelMode.limits.Subflows
}

// repairCommands returns the replacements (delete, then add with the same
// id and flags) the checks asked for, for endpoints the plan keeps as they
// are; w are the wanted endpoints and have their indexes in actual.
func (e *Engine) repairCommands(wants []wantEndpoint, have []int, busy func(netip.AddrPort) bool) []command {
	k := &e.kernelMode
	var out []command
	for key, r := range k.repair.endpoints {
		if !r.pending {
			continue
		}
		r.pending = false
		i := slices.IndexFunc(wants, func(w wantEndpoint) bool { return w.key == key })
		if i < 0 || have[i] < 0 || busy(key) {
			r.missing = nil
			continue
		}
		a := k.actual[have[i]]
		out = append(out, command{op: opDelEndpoint, id: a.ID, ep: a, repair: true},
			command{op: opAddEndpoint, ep: a, repair: true})
	}
	slices.SortStableFunc(out, func(a, b command) int { return int(a.ep.ID) - int(b.ep.ID) })
	return out
}

// repairID returns the id the endpoint key had before a replacement, when
// the replacement's delete went through but not its add yet, or 0.
func (e *Engine) repairID(key netip.AddrPort, used *idSet) uint8 {
	r := e.kernelMode.repair.endpoints[key]
	if r == nil || r.id == 0 || used.has(r.id) || !e.cfg.OwnedIDs.Contains(r.id) {
		return 0
	}
	used.add(r.id)
	return r.id
}

// has reports whether the sorted s holds t.
func has(s []uint32, t uint32) bool {
	_, ok := slices.BinarySearch(s, t)
	return ok
}

// insertSorted inserts t into the sorted s.
func insertSorted(s []uint32, t uint32) []uint32 {
	i, ok := slices.BinarySearch(s, t)
	if ok {
		return s
	}
	return slices.Insert(s, i, t)
}
