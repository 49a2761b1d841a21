package pm

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// board is what Status reads without asking the loop. At the end of every
// iteration the loop copies its counts there under mu (Engine.post): a
// few hundred bytes, whatever the number of connections, and no
// allocation. Status copies them out under mu into memory it allocated
// before, and builds the report (the maps, the sorted lists) on its own
// goroutine; so a status costs the loop the same however often it is
// read, and neither waits for the other longer than a copy.
//
// A new board per iteration, swapped in with an atomic pointer, would
// spare the lock but allocate about a kilobyte per iteration: tried, it
// took BenchmarkEstablishedToCreate from 2.4 to 6.9 KB allocated per
// connection and lengthened its median.
type board struct {
	mu sync.Mutex
	// posted: the loop has posted once. sets is Engine.sets as the loop
	// read it before taking the slots whose effect the board shows.
	posted bool
	sets   uint64

	policy                          string
	started                         time.Time
	ready, resyncing, repairListing bool
	counters                        counters
	conns, inFlight, queued         int
	paths                           [maxPathStates]int
	queries                         pmstate.QueryStats
	recent                          errRing
	// addrs is the board's own copy of the totals' addresses, written
	// when they changed. usable, limits and endpoints are replaced by the
	// loop and never changed in place.
	addrs     []pmstate.AddrUse
	usable    []netip.Addr
	limits    *pmstate.Limits
	endpoints []pmstate.Endpoint
}

// post copies the loop's counts to the board; sets is Engine.sets as read
// before the iteration's last takeSlots.
func (e *Engine) post(sets uint64) {
	var limits *pmstate.Limits
	var endpoints []pmstate.Endpoint
	kernelChanged := e.cfg.Mode == policy.ModeKernel && e.kernelMode.changed
	if kernelChanged {
		limits, endpoints = e.limitsStatus(), e.endpointStatus()
		e.kernelMode.changed = false
	}
	b := &e.board
	b.mu.Lock()
	defer b.mu.Unlock()
	b.posted, b.sets = true, sets
	b.policy, b.started = e.policyName, e.started
	b.ready, b.resyncing, b.repairListing = e.isReady, e.resyncing, e.kernelMode.repair.listing
	b.counters = e.counters
	b.conns = len(e.conns)
	b.inFlight = e.totals.busy
	if e.kernelMode.lane.busy {
		b.inFlight++
	}
	b.queued = e.totals.queued + len(e.kernelMode.lane.queue)
	b.paths = e.totals.paths
	b.queries = e.queries
	b.usable = e.usableAddrs
	if e.recentChanged {
		e.recentChanged = false
		b.recent = e.recent
	}
	if kernelChanged {
		b.limits, b.endpoints = limits, endpoints
	}
	if e.totals.addrsChanged {
		e.totals.addrsChanged = false
		b.addrs = b.addrs[:0]
		for addr, t := range e.totals.addrs {
			b.addrs = append(b.addrs, pmstate.AddrUse{Addr: addr, Subflows: t.subflows, Wanted: t.wanted,
				Backoff: t.backoff, LastFailure: t.lastFailure})
		}
	}
}

// read returns the engine at a glance in mode, and false when the loop
// has posted nothing yet or has not taken the settings made up to sets.
func (b *board) read(mode policy.Mode, sets uint64) (pmstate.Status, bool) {
	addrs := make([]pmstate.AddrUse, 0, 8)
	var recent errRing
	var c counters
	var paths [maxPathStates]int
	b.mu.Lock()
	if !b.posted || b.sets < sets {
		b.mu.Unlock()
		return pmstate.Status{}, false
	}
	addrs = append(addrs, b.addrs...)
	recent, c, paths = b.recent, b.counters, b.paths
	st := pmstate.Status{
		Mode:          pmstate.Mode(mode),
		Policy:        b.policy,
		Started:       b.started,
		Ready:         b.ready,
		Resyncing:     b.resyncing,
		RepairListing: b.repairListing,
		Connections:   b.conns,
		InFlight:      b.inFlight,
		Queued:        b.queued,
		Queries:       b.queries,
		Addrs:         addrs,
	}
	usable, endpoints, limits := b.usable, b.endpoints, b.limits
	b.mu.Unlock()

	st.RecentErrors = recent.list()
	st.UsableAddrs, st.Endpoints = slices.Clone(usable), slices.Clone(endpoints)
	if limits != nil {
		l := *limits
		st.Limits = &l
	}
	st.Counters = c.export()
	st.Paths = make(map[pmstate.PathState]int)
	for i, n := range paths {
		if n > 0 {
			st.Paths[pmstate.PathStates[i]] = n
		}
	}
	slices.SortFunc(st.Addrs, func(a, b pmstate.AddrUse) int { return a.Addr.Compare(b.Addr) })
	return st, true
}
