package pm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/peeraddr"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// counters are the loop's Counters.
type counters struct {
	actions, failures        [numOps]uint64
	events                   [maxEventType + 1]uint64
	batches, resyncs         uint64
	backoffs                 uint64
	unknownToken             uint64
	hostUpdates, policySwaps uint64
	healthUpdates            uint64
	endpointRepairs          uint64
	repairGivenUp            uint64
	peerRefused              [peeraddr.NumRefusals]uint64
	peerBudget, peerGivenUp  uint64
	planRefused              [numPlanItems]uint64
	deferral                 deferralCounters
}

// maxEventType is the highest kernel event type Counters counts (the
// kernel's go up to 16); applyEvent counts none above it.
const maxEventType = 31

type deferralCounters struct {
	held, releasedTime, releasedBytes, endedHeld, byteReads, byteReadErrors uint64
}

func (c *counters) export() pmstate.Counters {
	out := pmstate.Counters{
		Actions:          make(map[pmstate.Op]uint64),
		Failures:         make(map[pmstate.Op]uint64),
		Events:           make(map[string]uint64),
		EventBatches:     c.batches,
		Resyncs:          c.resyncs,
		Backoffs:         c.backoffs,
		UnknownToken:     c.unknownToken,
		HostUpdates:      c.hostUpdates,
		PolicySwaps:      c.policySwaps,
		HealthUpdates:    c.healthUpdates,
		EndpointRepairs:  c.endpointRepairs,
		RepairsGivenUp:   c.repairGivenUp,
		PeerAddrsRefused: make(map[string]uint64),
		PeerAddrsGivenUp: c.peerGivenUp,
		PlansRefused:     make(map[string]uint64),
		Deferral: pmstate.DeferralCounters{Held: c.deferral.held, ReleasedTime: c.deferral.releasedTime,
			ReleasedBytes: c.deferral.releasedBytes, EndedHeld: c.deferral.endedHeld,
			ByteReads: c.deferral.byteReads, ByteReadErrors: c.deferral.byteReadErrors},
	}
	for r, n := range c.peerRefused {
		if n > 0 {
			out.PeerAddrsRefused[peeraddr.Refusal(r).String()] = n
		}
	}
	if c.peerBudget > 0 {
		out.PeerAddrsRefused[budgetReason] = c.peerBudget
	}
	for i, n := range c.planRefused {
		if n > 0 {
			out.PlansRefused[planItem(i).String()] = n
		}
	}
	for o := range numOps {
		if n := c.actions[o]; n > 0 {
			out.Actions[o.name()] = n
		}
		if n := c.failures[o]; n > 0 {
			out.Failures[o.name()] = n
		}
	}
	for t, n := range c.events {
		if n > 0 {
			out.Events[genl.EventType(t).String()] = n
		}
	}
	return out
}

// recentErrors is the size of the error ring.
const recentErrors = 32

// errRing keeps the last recentErrors records.
type errRing struct {
	buf  [recentErrors]pmstate.ErrorRecord
	next int
	full bool
}

func (r *errRing) add(rec pmstate.ErrorRecord) {
	r.buf[r.next] = rec
	r.next = (r.next + 1) % recentErrors
	if r.next == 0 {
		r.full = true
	}
}

func (r *errRing) list() []pmstate.ErrorRecord {
	if !r.full {
		return slices.Clone(r.buf[:r.next])
	}
	return append(slices.Clone(r.buf[r.next:]), r.buf[:r.next]...)
}

func (e *Engine) errorRecord(r *result) pmstate.ErrorRecord {
	c := &r.cmd
	rec := pmstate.ErrorRecord{Time: e.now(), Op: c.op.name(), Token: c.token, Error: r.err.Error()}
	switch c.op {
	case opCreateSubflow:
		rec.Local, rec.Remote = netip.AddrPortFrom(c.path.local, 0), c.remote
	case opDestroySubflow, opSetSubflowBackup:
		rec.Local, rec.Remote = c.local, c.remote
	case opAddEndpoint, opDelEndpoint, opSetEndpointFlags, opAnnounce, opRemove:
		rec.Addr = c.ep.Addr
	}
	return rec
}

// ErrNotRunning is returned by Status, Conn and Conns when Run has
// returned.
var ErrNotRunning = errors.New("pm: engine not running")

// ErrNoConn is returned by Conn for a token the engine does not track.
var ErrNoConn = errors.New("pm: no such connection")

// connsPerQuery is the most connections one question to the loop
// describes: Conns asks as many times as its page needs, and the loop
// serves its other inputs in between.
const connsPerQuery = 32

// scanPerQuery is the most connections one question to the loop looks at
// for a filter.
const scanPerQuery = 4096

// stuckAfter is how long one iteration of the loop may last before Status
// takes the loop for stuck and waits for it: a reconciliation of every
// connection after a host change takes milliseconds, a stuck policy
// forever.
const stuckAfter = 100 * time.Millisecond

// Status returns the engine at a glance without asking Run's loop: it
// reads the counts the loop posts at the end of every iteration (board),
// and builds the report on the caller's goroutine. It asks the loop, and
// so waits for it as long as ctx allows, only when a SetHost, SetHealth
// or SetPolicy made before it has not been taken yet, before the loop's
// first iteration, and when the loop has been in one iteration for longer
// than stuckAfter: a stuck loop posts nothing new, and its callers (the
// metrics' engine_up, a status over the control socket) must see that it
// does not answer rather than counts that no longer move.
func (e *Engine) Status(ctx context.Context) (pmstate.Status, error) {
	select {
	case <-e.doneC:
		return pmstate.Status{}, ErrNotRunning
	default:
	}
	sets := e.sets.Load()
	if st, ok := e.board.read(e.cfg.Mode, sets); ok && e.busy() < stuckAfter {
		return st, nil
	}
	if err := e.Sync(ctx); err != nil {
		return pmstate.Status{}, err
	}
	st, _ := e.board.read(e.cfg.Mode, sets)
	return st, nil
}

// Sync returns once Run's loop has taken every SetHost, SetHealth and
// SetPolicy made before the call, fired the timers that were due and
// reconciled what they changed: a round trip through the loop, which
// shows that the loop answers (the watchdog) and that it no longer uses
// a policy SetPolicy replaced.
func (e *Engine) Sync(ctx context.Context) error {
	_, err := e.ask(ctx, query{kind: querySync})
	return err
}

// Conn returns the state of the connection token; errors.Is(err,
// ErrNoConn) when the engine does not track it.
func (e *Engine) Conn(ctx context.Context, token uint32) (pmstate.Conn, error) {
	a, err := e.ask(ctx, query{kind: queryConn, token: token})
	switch {
	case err != nil:
		return pmstate.Conn{}, err
	case !a.found:
		return pmstate.Conn{}, fmt.Errorf("%w: token %08x", ErrNoConn, token)
	}
	return a.conn, nil
}

// Conns returns a page of the connections q selects, in token order. The
// loop describes connsPerQuery connections per question and looks at no
// more than scanPerQuery for q's filter, so that the page never holds it
// up for long; a page may therefore be short and still have a next one.
func (e *Engine) Conns(ctx context.Context, q pmstate.ConnQuery) (pmstate.ConnPage, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = pmstate.DefaultConnLimit
	case limit > pmstate.MaxConnLimit:
		limit = pmstate.MaxConnLimit
	}
	page := pmstate.ConnPage{Conns: []pmstate.Conn{}}
	from := q.From
	for {
		chunk := pmstate.ConnQuery{From: from, Limit: min(limit-len(page.Conns), connsPerQuery), Peer: q.Peer}
		a, err := e.ask(ctx, query{kind: queryPage, page: chunk})
		if err != nil {
			return pmstate.ConnPage{}, err
		}
		page.Conns = append(page.Conns, a.page.Conns...)
		page.Next = a.page.Next
		if page.Next == 0 || len(page.Conns) >= limit {
			return page, nil
		}
		from = page.Next
	}
}

// queryKind is what a query asks for.
type queryKind uint8

const (
	querySync queryKind = iota
	queryConn
	queryPage
)

// query is a question to the loop; the loop answers on reply.
type query struct {
	kind  queryKind
	token uint32
	page  pmstate.ConnQuery
	reply chan answer
}

// answer is the loop's answer to a query.
type answer struct {
	conn  pmstate.Conn
	found bool
	page  pmstate.ConnPage
}

func (e *Engine) ask(ctx context.Context, q query) (answer, error) {
	q.reply = make(chan answer, 1)
	select {
	case e.queryC <- q:
	case <-e.doneC:
		return answer{}, ErrNotRunning
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
	select {
	case a := <-q.reply:
		return a, nil
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
}

// answer replies to a query, and measures the loop's CPU time for it.
func (e *Engine) answer(q query) {
	var clock cpuClock
	clock.start()
	var a answer
	switch q.kind {
	case queryConn:
		if c := e.conns[q.token]; c != nil {
			a.conn, a.found = e.connStatus(c), true
		}
	case queryPage:
		a.page = e.connPage(q.page)
	}
	took := clock.stop()
	e.queries.Count++
	e.queries.Total += took
	e.queries.Max = max(e.queries.Max, took)
	q.reply <- a
}

// connPage describes, in token order from q.From, at most q.Limit of the
// connections q's filter selects, looking at no more than scanPerQuery.
func (e *Engine) connPage(q pmstate.ConnQuery) pmstate.ConnPage {
	p := pmstate.ConnPage{Conns: []pmstate.Conn{}}
	scanned := 0
	e.order.AscendGreaterOrEqual(&conn{token: q.From}, func(c *conn) bool {
		if len(p.Conns) == q.Limit || scanned == scanPerQuery {
			p.Next = c.token
			return false
		}
		scanned++
		if q.Peer.IsValid() && !q.Peer.Contains(c.remote.Addr()) {
			return true
		}
		p.Conns = append(p.Conns, e.connStatus(c))
		return true
	})
	return p
}

func (e *Engine) limitsStatus() *pmstate.Limits {
	k := &e.kernelMode
	ls := &pmstate.Limits{Subflows: k.limits.Subflows, AddAddrAccepted: k.limits.AddAddrAccepted, LastError: k.limRetry.lastErr}
	if s := k.plan.Limits.Subflows; s != nil {
		ls.WantSubflows = new(*s)
	}
	if a := k.plan.Limits.AddAddrAccepted; a != nil {
		ls.WantAddAddrAccepted = new(*a)
	}
	return ls
}

func (e *Engine) endpointStatus() []pmstate.Endpoint {
	k := &e.kernelMode
	now := e.now()
	var out []pmstate.Endpoint
	index := make(map[netip.AddrPort]int)
	for _, a := range k.actual {
		es := pmstate.Endpoint{ID: a.ID, Addr: a.Addr, Port: a.Port, IfIndex: a.IfIndex, Flags: a.Flags.String(),
			Owned: e.owned(a), Present: true, State: pmstate.EndpointForeign}
		if es.Owned {
			es.State = pmstate.EndpointRemoving
			index[epKey(a)] = len(out)
		}
		out = append(out, es)
	}
	for _, p := range k.plan.Endpoints {
		addr := p.Addr.Unmap()
		key := netip.AddrPortFrom(addr, p.Port)
		want := endpointFlags(p).String()
		i, ok := index[key]
		if !ok {
			out = append(out, pmstate.Endpoint{Addr: addr, Port: p.Port, State: pmstate.EndpointPending})
			i = len(out) - 1
			index[key] = i
		}
		es := &out[i]
		es.Desired, es.WantFlags, es.Dev = true, want, p.Dev
		if es.IfIndex == 0 {
			es.IfIndex = e.devIndex(p.Dev, p.IfIndex)
		}
		switch note := k.notes[key]; {
		case strings.HasPrefix(note, notUsable):
			es.State, es.Reason = pmstate.EndpointUnusable, note
		case strings.HasPrefix(note, "address taken"):
			es.State, es.Reason = pmstate.EndpointBlocked, note
		case strings.HasPrefix(note, "left out"):
			es.State, es.Reason = pmstate.EndpointLeftOut, note
		case note != "":
			es.State, es.Reason = pmstate.EndpointPending, note
		case es.Present && es.Flags == want:
			es.State = pmstate.EndpointOK
		default:
			es.State = pmstate.EndpointPending
		}
	}
	for i := range out {
		es := &out[i]
		if r := k.retries[netip.AddrPortFrom(es.Addr, es.Port)]; r != nil && (es.Owned || !es.Present) {
			es.Failures, es.LastError = r.fails, r.lastErr
			if r.waiting(now) && es.State != pmstate.EndpointOK {
				es.State, es.BackoffUntil = pmstate.EndpointBackoff, r.until
			}
		}
	}
	slices.SortStableFunc(out, func(a, b pmstate.Endpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// connStatus describes c.
func (e *Engine) connStatus(c *conn) pmstate.Conn {
	now := e.now()
	cs := pmstate.Conn{
		Token: c.token, Side: pmstate.Side(c.side.String()), Local: c.local, Remote: c.remote, Since: c.created,
		Established: c.established, PathManager: pmstate.PathManagerUserspace, DenyJoinID0: c.denyJoinID0,
		PeerAddrs: make([]pmstate.PeerAddr, 0, 1+len(c.peers)),
	}
	cs.BytesSent, cs.BytesReceived = e.connBytes(c)
	if c.unmanaged {
		cs.PathManager = pmstate.PathManagerKernel
	}
	if c.owner != nil {
		cs.Owner = &pmstate.Owner{UID: c.owner.UID, Cgroup: c.owner.Cgroup}
	}
	if r, ok := e.policy.(*policy.Router); ok && r.Rules() > 0 {
		cs.Chain = "default"
		if _, i := r.Route(e.policyConn(c)); i >= 0 {
			cs.Chain = fmt.Sprintf("rules[%d]", i)
		}
	}
	cs.PeerAddrs = append(cs.PeerAddrs, pmstate.PeerAddr{Addr: c.remote, Source: pmstate.SourceInitial,
		State: pmstate.PeerJoined})
	for _, p := range c.peers {
		cs.PeerAddrs = append(cs.PeerAddrs, pmstate.PeerAddr{ID: p.id, Addr: p.addr, Source: pmstate.SourceAnnounced,
			State: p.state.state(), Reason: p.why, Tries: int(p.fails)})
	}
	live := c.liveSubflows()
	c.eachPath(func(k pathKey, w *wantPath) {
		ps := pmstate.Path{Local: k.local, Remote: k.remote, State: e.pathState(c, k, w, live, now)}
		if w != nil {
			ps.Desired, ps.WantBackup, ps.Dev, ps.IfIndex = true, w.backup, w.dev, w.ifindex
		}
		if ps.State == pmstate.PathDeferred {
			ps.DeferredUntil, ps.DeferredBytes = w.hold.notBefore(), w.hold.bytes
		}
		for _, s := range c.subs {
			if s.path() != k {
				continue
			}
			ps.Subflows = append(ps.Subflows, pmstate.Subflow{Local: s.local, Remote: s.remote, LocalID: s.localID,
				RemoteID: s.remoteID, Backup: s.backup, PeerBackup: s.peerBackup, Joined: s.joined, Initial: s.initial,
				Established: s.established, IfIndex: s.ifindex, Since: s.since,
				Health: healthState(e.healthOf(c.token, s.local, s.remote))})
		}
		r := c.retry(retryKey{path: k})
		if l := c.livePath(k); r != nil && (l == nil || !l.stable(now)) {
			ps.Failures, ps.LastError = r.fails, r.lastErr
		}
		switch ps.State {
		case pmstate.PathBackoff:
			ps.BackoffUntil = r.until
		case pmstate.PathRefused:
			ps.Reason = c.refusedWhy(retryKey{path: k})
		}
		cs.Paths = append(cs.Paths, ps)
	})
	for _, w := range c.wantAnnounces {
		addr, port := w.addr.Addr(), w.addr.Port()
		as := pmstate.Announce{Addr: addr, Port: port, Desired: true, State: pmstate.AnnounceQueued}
		if id, ok := c.localID(addr); ok {
			as.ID = id
		}
		switch {
		case c.announced(addr, port):
			as.Announced, as.State = true, pmstate.AnnounceAnnounced
		case w.hold.held():
			as.State, as.DeferredUntil, as.DeferredBytes = pmstate.AnnounceDeferred, w.hold.notBefore(), w.hold.bytes
		}
		if r := c.retry(announceKey(addr, port)); r != nil {
			as.Failures, as.LastError = r.fails, r.lastErr
			if r.waiting(now) && !as.Announced {
				as.State, as.BackoffUntil = pmstate.AnnounceBackoff, r.until
			}
		}
		if why := c.refusedWhy(announceKey(addr, port)); why != "" && !as.Announced {
			as.State, as.Reason = pmstate.AnnounceRefused, why
		}
		cs.Announces = append(cs.Announces, as)
	}
	for _, l := range c.locals {
		if l.signal && !slices.ContainsFunc(c.wantAnnounces, func(w wantAnnounce) bool { return w.addr == netip.AddrPortFrom(l.addr, l.port) }) {
			cs.Announces = append(cs.Announces, pmstate.Announce{Addr: l.addr, Port: l.port, ID: l.id,
				Announced: true, State: pmstate.AnnounceWithdrawing})
		}
	}
	slices.SortFunc(cs.Paths, func(a, b pmstate.Path) int {
		return cmp.Or(a.Local.Compare(b.Local), a.Remote.Compare(b.Remote))
	})
	return cs
}

// pathState says what became of path k of c; w is the plan's path (nil:
// the plan does not want it), live c's established subflows not being
// destroyed.
func (e *Engine) pathState(c *conn, k pathKey, w *wantPath, live int, now time.Time) pmstate.PathState {
	desired := w != nil
	closing := queuedFor(c, opDestroySubflow, k) ||
		slices.ContainsFunc(c.subs, func(s subflow) bool { return s.path() == k && s.destroying })
	kept := !closing && slices.ContainsFunc(c.subs, func(s subflow) bool {
		return s.path() == k && !s.destroying &&
			(!c.closable(&s) || (s.established && live <= 1) || e.demotes(c, &s))
	})
	alive := c.livePath(k) != nil
	switch {
	case !desired && kept:
		return pmstate.PathKept
	case !desired && (alive || closing):
		return pmstate.PathClosing
	case alive:
		return pmstate.PathEstablished
	case c.attempt(k) >= 0:
		return pmstate.PathConnecting
	case queuedFor(c, opCreateSubflow, k):
		return pmstate.PathQueued
	case c.refusedWhy(retryKey{path: k}) != "":
		return pmstate.PathRefused
	case w.hold.held():
		return pmstate.PathDeferred
	case c.retry(retryKey{path: k}).waiting(now):
		return pmstate.PathBackoff
	}
	if _, ok := c.peerWaits(k.remote, c.lane.queue, now); ok {
		return pmstate.PathWaiting
	}
	return pmstate.PathBlocked
}

// eachPath calls fn for every path of c once: its desired paths (w is
// the plan's), then the other paths of its subflows and of its attempts
// (w is nil).
func (c *conn) eachPath(fn func(k pathKey, w *wantPath)) {
	wanted := func(k pathKey) bool { return slices.ContainsFunc(c.want, func(w wantPath) bool { return w.key == k }) }
	for i := range c.want {
		if k := c.want[i].key; !slices.ContainsFunc(c.want[:i], func(w wantPath) bool { return w.key == k }) {
			fn(k, &c.want[i])
		}
	}
	for i := range c.subs {
		k := c.subs[i].path()
		if !wanted(k) && !slices.ContainsFunc(c.subs[:i], func(s subflow) bool { return s.path() == k }) {
			fn(k, nil)
		}
	}
	for i := range c.attempts {
		k := c.attempts[i].path
		if !wanted(k) && !slices.ContainsFunc(c.subs, func(s subflow) bool { return s.path() == k }) &&
			!slices.ContainsFunc(c.attempts[:i], func(a attempt) bool { return a.path == k }) {
			fn(k, nil)
		}
	}
}

// healthState is h as the state types carry it.
func healthState(h policy.Health) pmstate.Health {
	return pmstate.Health{RTT: h.RTT, RTTVar: h.RTTVar, RTO: h.RTO, Loss: h.Loss, Retransmits: h.Retransmits,
		Unacked: h.Unacked, LastAckRecv: h.LastAckRecv, LastDataRecv: h.LastDataRecv, Stalled: h.Stalled,
		StalledChanged: h.StalledChanged, Sampled: h.Sampled}
}

// queuedFor reports whether c's lane holds a command op for path k.
func queuedFor(c *conn, o op, k pathKey) bool {
	return slices.ContainsFunc(c.lane.queue, func(cmd command) bool { return cmd.op == o && cmd.path == k })
}
