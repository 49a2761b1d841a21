package pm

import (
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// maxPathStates is the room a tally has for path states: at least
// len(pmstate.PathStates) (TestTallyRoom).
const maxPathStates = 12

// tally is what one connection adds to the engine's totals, which Status
// reports without looking at any connection: its paths by state, its
// lane, and per local address its established subflows and desired
// paths. The loop counts a connection again at the end of every
// iteration that touched it (Engine.touch), and replaces its old tally
// in the totals by the new one.
type tally struct {
	paths [maxPathStates]uint16
	// busy: a command is with a worker; queued: commands waiting.
	busy   bool
	queued uint16
	// addrs may be shared with other connections and is never changed
	// in place.
	addrs []addrTally
}

// addrTally is what a connection does with a local address.
type addrTally struct {
	addr                      netip.Addr
	subflows, wanted, backoff uint16
}

// totals are the sums of every connection's tally.
type totals struct {
	paths        [maxPathStates]int
	busy, queued int
	addrs        map[netip.Addr]*addrTotal
	// addrsChanged: addrs changed since the loop last posted them.
	addrsChanged bool
}

// addrTotal is what the connections do with a local address, and the last
// path from it that failed.
type addrTotal struct {
	subflows, wanted, backoff int
	lastFailure               *pmstate.PathFailure
}

// add adds t, or subtracts it with sign -1.
func (s *totals) add(t *tally, sign int) {
	for i, n := range t.paths {
		s.paths[i] += sign * int(n)
	}
	if t.busy {
		s.busy += sign
	}
	s.queued += sign * int(t.queued)
	if len(t.addrs) > 0 {
		s.addrsChanged = true
	}
	for _, a := range t.addrs {
		at := s.addrs[a.addr]
		if at == nil {
			at = &addrTotal{}
			s.addrs[a.addr] = at
		}
		at.subflows += sign * int(a.subflows)
		at.wanted += sign * int(a.wanted)
		at.backoff += sign * int(a.backoff)
		if at.subflows == 0 && at.wanted == 0 && at.backoff == 0 {
			delete(s.addrs, a.addr)
		}
	}
}

// touch asks for c to be counted again at the end of the loop iteration.
func (e *Engine) touch(c *conn) {
	if !c.recount {
		c.recount = true
		e.recount = append(e.recount, c)
	}
}

// recountTouched replaces the tallies of the connections touched in this
// iteration.
func (e *Engine) recountTouched() {
	if len(e.recount) == 0 {
		return
	}
	now := e.now()
	for i, c := range e.recount {
		e.recount[i] = nil
		c.recount = false
		if c.lane.closed {
			continue
		}
		t := e.tallyOf(c, now)
		// The new tally goes in first, so that an address both tallies
		// name keeps its entry, and its last failure.
		e.totals.add(&t, 1)
		e.totals.add(&c.tally, -1)
		c.tally = t
	}
	e.recount = e.recount[:0]
}

// untally takes c, which is gone, out of the totals.
func (e *Engine) untally(c *conn) {
	e.totals.add(&c.tally, -1)
	c.tally = tally{}
}

// tallyOf counts c as it is at now.
func (e *Engine) tallyOf(c *conn, now time.Time) tally {
	t := tally{busy: c.lane.busy, queued: uint16(min(len(c.lane.queue), 1<<16-1))}
	buf := e.addrBuf[:0]
	at := func(a netip.Addr) *addrTally {
		for i := range buf {
			if buf[i].addr == a {
				return &buf[i]
			}
		}
		buf = append(buf, addrTally{addr: a})
		return &buf[len(buf)-1]
	}
	live := c.liveSubflows()
	c.eachPath(func(k pathKey, w *wantPath) {
		st := e.pathState(c, k, w, live, now)
		t.paths[pathStateIndex(st)]++
		if w != nil {
			a := at(k.local)
			a.wanted++
			if st == pmstate.PathBackoff {
				a.backoff++
			}
		}
	})
	for i := range c.subs {
		if c.subs[i].established {
			at(c.subs[i].local.Addr()).subflows++
		}
	}
	e.addrBuf = buf
	switch {
	case len(buf) == 0:
	case slices.Equal(buf, c.tally.addrs):
		t.addrs = c.tally.addrs
	case slices.Equal(buf, e.lastAddrs):
		t.addrs = e.lastAddrs
	default:
		t.addrs = slices.Clone(buf)
		e.lastAddrs = t.addrs
	}
	return t
}

// pathStateIndex is the slot of s in a tally.
func pathStateIndex(s pmstate.PathState) int { return slices.Index(pmstate.PathStates, s) }

// pathFailedAt records that path k failed with why at now, for the
// address's use in Status, when a connection uses the address.
func (e *Engine) pathFailedAt(k pathKey, now time.Time, why string) {
	if at := e.totals.addrs[k.local]; at != nil {
		at.lastFailure = &pmstate.PathFailure{Remote: k.remote, Time: now, Error: why}
		e.totals.addrsChanged = true
	}
}
