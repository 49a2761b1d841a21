package pm

import (
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// pathKey identifies a path: local address, remote address and port, both
// never IPv4-mapped.
type pathKey struct {
	local  netip.Addr
	remote netip.AddrPort
}

// retryKey names what a retry belongs to: a path, or an announce (local is
// the address, remote holds only the port).
type retryKey struct {
	path     pathKey
	announce bool
}

func announceKey(a netip.Addr, port uint16) retryKey {
	return retryKey{path: pathKey{local: a, remote: netip.AddrPortFrom(netip.Addr{}, port)}, announce: true}
}

// conn is the engine's state of one userspace-PM connection. The engine
// tracks every connection of the host, so the record is kept small: the
// policy's view of it is built on demand (Engine.policyConn), the wanted
// paths are stored compactly and shared between connections that want
// the same ones (Engine.keepPlan), and the slices and the wake exist only
// while they hold something.
type conn struct {
	lane lane
	// wake is the connection's entry in the timer heap while a backoff
	// runs out; nil otherwise.
	wake *wake

	token       uint32
	side        policy.Side
	denyJoinID0 bool
	established bool
	// unmanaged: the in-kernel path manager runs the connection.
	unmanaged bool
	// queued: the connection is in the engine's dirty list; recount:
	// in its list of connections to count again.
	queued, recount bool
	// addrsStale: refresh locals (ConnectionAddrs) before announcing.
	addrsStale bool
	// ownerState says whether the owner was looked up (Config.Owners);
	// owner is the answer, nil until known or when the lookup failed.
	ownerState ownerState
	owner      *policy.Owner
	// peerWarned: a peer address was refused or given up, which is
	// logged as a warning once per connection.
	peerWarned bool
	// triedPeers counts the announced addresses tried (maxTriedPeers).
	triedPeers uint8
	// adopted: a listing found the connection, not its CREATED event, so
	// its age is unknown and it is taken as old (no deferral).
	adopted bool
	// held: the last reconciliation held a path or announce back
	// (policy.Deferral, Config.MinJoinAge); a connection that waits on
	// bytes is in Engine.byteWatch too, with its byte counts.
	held bool
	// touched is the event sequence number of the last change; listed
	// the number of the last listing that showed the connection.
	touched uint64
	listed  uint32
	created time.Time
	local   netip.AddrPort // of the initial subflow
	remote  netip.AddrPort

	peers    []peer // announced by the peer
	subs     []subflow
	attempts []attempt
	retries  []pathRetry
	locals   []localAddr // the kernel's local address list, as far as known
	// refusals are the parts of the latest plan the engine refused.
	refusals []refusal

	// want and wantAnnounces are the last desired state's paths and
	// announces, for Status. want may be shared with other connections and is never
	// changed in place.
	want          []wantPath
	wantAnnounces []wantAnnounce
	// trigger is when the earliest input arrived that the connection has
	// not finished acting on.
	trigger time.Time
	// tally is what the connection adds to the engine's totals.
	tally tally
}

// ownerState is how far the lookup of a connection's owner is.
type ownerState uint8

const (
	ownerUnasked ownerState = iota // not looked up: no policy read it
	ownerPending                   // the lookup is queued or with a worker
	ownerDone                      // looked up: owner is the answer, nil if it failed
)

// askOwner queues the lookup of c's owner in its lane: the engine plans
// c only once the answer is back.
func (e *Engine) askOwner(c *conn) {
	c.ownerState = ownerPending
	c.lane.queue = append(c.lane.queue, command{op: opOwner, token: c.token, conn: c, trigger: e.trigger})
	e.runnable.push(&c.lane)
}

// maxOwners bounds Engine.owners; past it the map starts over (the
// records stay with their connections).
const maxOwners = 4096

// internOwner returns the engine's record of o: the connections of one
// process share one.
func (e *Engine) internOwner(o policy.Owner) *policy.Owner {
	if p, ok := e.owners[o]; ok {
		return p
	}
	if len(e.owners) >= maxOwners {
		clear(e.owners)
	}
	p := &o
	e.owners[o] = p
	return p
}

// wantPath is a path of a connection's desired state; hold is what held
// it back at the last reconciliation (zero when nothing did).
type wantPath struct {
	key     pathKey
	dev     string
	ifindex int32
	backup  bool
	hold    holdBack
}

// wantAnnounce is an announce of a connection's desired state: the
// unmapped address with its port, and what held it back.
type wantAnnounce struct {
	addr netip.AddrPort
	hold holdBack
}

// subflow is a live subflow. Its health is the engine's (Engine.healthOf).
type subflow struct {
	local, remote netip.AddrPort
	since         time.Time
	touched       uint64
	ifindex       int32
	localID       uint8
	remoteID      uint8
	// backup is this host's backup bit; peerBackup the peer's (events).
	backup, peerBackup bool
	// joined: this host opened it with MP_JOIN; initial: the MP_CAPABLE one.
	joined, initial bool
	established     bool
	// destroying: DestroySubflow was sent.
	destroying bool
}

func (s *subflow) path() pathKey { return pathKey{s.local.Addr(), s.remote} }

// stableAfter is how long a subflow must stay established for its path's
// backoff to reset: a join the peer refuses is often established and
// closed at once, which must not count as a success.
const stableAfter = time.Second

// stable reports whether s has been established for stableAfter at now.
func (s *subflow) stable(now time.Time) bool {
	return s.established && !s.since.IsZero() && now.Sub(s.since) >= stableAfter
}

// attempt is a CreateSubflow with a worker, or accepted by the kernel and
// waiting for SUB_ESTABLISHED or SUB_CLOSED.
type attempt struct {
	path    pathKey
	backup  bool
	ifindex int32
	// accepted: the kernel returned success (the SYN is out); listing is
	// the number of listings begun by then.
	accepted bool
	listing  uint32
	since    time.Time
	seq      uint64
}

type pathRetry struct {
	key retryKey
	retry
}

// localAddr is an entry of a connection's local address list.
type localAddr struct {
	addr netip.Addr
	port uint16
	id   uint8
	// signal: announced to the peer (by this engine, or found so).
	signal bool
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	if ap.Addr().Is4In6() {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return ap
}

func (c *conn) sub(local, remote netip.AddrPort) *subflow {
	for i := range c.subs {
		if c.subs[i].local == local && c.subs[i].remote == remote {
			return &c.subs[i]
		}
	}
	return nil
}

// livePath returns the live subflow of path k that is not being
// destroyed.
func (c *conn) livePath(k pathKey) *subflow {
	for i := range c.subs {
		s := &c.subs[i]
		if !s.destroying && s.local.Addr() == k.local && s.remote == k.remote {
			return s
		}
	}
	return nil
}

func (c *conn) attempt(k pathKey) int {
	for i := range c.attempts {
		if c.attempts[i].path == k {
			return i
		}
	}
	return -1
}

func (c *conn) dropAttempt(i int) {
	c.attempts = slices.Delete(c.attempts, i, i+1)
	if len(c.attempts) == 0 {
		c.attempts = nil
	}
}

func (c *conn) retry(k retryKey) *retry {
	for i := range c.retries {
		if c.retries[i].key == k {
			return &c.retries[i].retry
		}
	}
	return nil
}

func (c *conn) retryFor(k retryKey) *retry {
	if r := c.retry(k); r != nil {
		return r
	}
	c.retries = append(c.retries, pathRetry{key: k})
	return &c.retries[len(c.retries)-1].retry
}

func (c *conn) resetRetry(k retryKey) {
	c.retries = slices.DeleteFunc(c.retries, func(r pathRetry) bool { return r.key == k })
	if len(c.retries) == 0 {
		c.retries = nil
	}
}

// localID returns the id the kernel has for addr in the connection's
// local list.
func (c *conn) localID(addr netip.Addr) (uint8, bool) {
	for _, l := range c.locals {
		if l.addr == addr {
			return l.id, true
		}
	}
	return 0, false
}

// learnLocal records that the kernel has addr as id in the connection's
// local list; signal marks it announced.
func (c *conn) learnLocal(addr netip.Addr, port uint16, id uint8, signal bool) {
	if id == 0 || !addr.IsValid() {
		return
	}
	for i := range c.locals {
		l := &c.locals[i]
		if l.id != id {
			continue
		}
		l.addr = addr
		if signal {
			l.port, l.signal = port, true
		}
		return
	}
	c.locals = append(c.locals, localAddr{addr: addr, port: port, id: id, signal: signal})
}

// closable reports whether the engine may close s when the plan drops it:
// this host opened it, with MP_JOIN or, on the client side, as the
// initial subflow. The peer's subflows are the peer's to close.
func (c *conn) closable(s *subflow) bool {
	return s.joined || (s.initial && c.side == policy.SideClient)
}

// liveSubflows counts the established subflows not being destroyed: the
// engine never destroys the last of them, which would leave the
// connection without a path.
func (c *conn) liveSubflows() int {
	n := 0
	for i := range c.subs {
		if c.subs[i].established && !c.subs[i].destroying {
			n++
		}
	}
	return n
}

// validPath reports whether the engine may create path k: it is complete,
// of one family, and not to the peer's initial address and port when the
// peer denies that.
func (c *conn) validPath(k pathKey) bool {
	switch {
	case !k.local.IsValid() || !k.remote.Addr().IsValid() || k.remote.Port() == 0:
		return false
	case k.local.Is4() != k.remote.Addr().Is4(), k.local.Is4() != c.local.Addr().Is4():
		// The kernel joins a subflow only in the family of the
		// connection ("families mismatch"); peers announce addresses of
		// both.
		return false
	case c.denyJoinID0 && k.remote == c.remote:
		return false
	}
	return true
}

// announced reports whether addr and port are announced.
func (c *conn) announced(addr netip.Addr, port uint16) bool {
	return slices.ContainsFunc(c.locals, func(l localAddr) bool { return l.signal && l.addr == addr && l.port == port })
}

// idSet is a set of address ids.
type idSet [4]uint64

func (s *idSet) add(id uint8) { s[id/64] |= 1 << (id % 64) }

func (s *idSet) has(id uint8) bool { return s[id/64]&(1<<(id%64)) != 0 }

// announceID returns the id to announce addr with: the one the kernel has
// for it, else the highest id neither the kernel's list nor taken uses
// (the kernel numbers the addresses it adds itself from the lowest), or 0
// when none is free.
func (c *conn) announceID(addr netip.Addr, taken *idSet) uint8 {
	if id, ok := c.localID(addr); ok {
		return id
	}
	used := *taken
	for _, l := range c.locals {
		used.add(l.id)
	}
	for _, s := range c.subs {
		used.add(s.localID)
	}
	for id := 255; id > 0; id-- {
		if !used.has(uint8(id)) {
			taken.add(uint8(id))
			return uint8(id)
		}
	}
	return 0
}

// subflowID returns the local address id to create a subflow from addr
// with: 0 for the connection's initial address, else the id the kernel
// has for addr, else a free one (announceID), which it records so that
// every subflow and announce of addr uses it. The kernel keeps a subflow
// created without an id under id 0, the initial address's, and then
// refuses every other subflow created without one ("did not match
// address and id"). It reports false when no id is free.
func (c *conn) subflowID(addr netip.Addr, taken *idSet) (uint8, bool) {
	if addr == c.local.Addr() {
		return 0, true
	}
	id := c.announceID(addr, taken)
	if id == 0 {
		return 0, false
	}
	c.learnLocal(addr, 0, id, false)
	return id, true
}

// newConn starts tracking token.
func (e *Engine) newConn(token uint32) *conn {
	c := &conn{token: token, created: e.now()}
	e.conns[token] = c
	e.order.ReplaceOrInsert(c)
	e.touch(c)
	return c
}

// dropConn forgets c.
func (e *Engine) dropConn(c *conn) {
	if c.held {
		e.counters.deferral.endedHeld++
	}
	e.unwatchBytes(c)
	delete(e.conns, c.token)
	e.order.Delete(c)
	e.untally(c)
	c.lane.closed = true
	c.lane.queue = nil
	e.setConnWake(c, time.Time{})
}

// setConnWake schedules c's wake at t, or unschedules it when t is zero.
func (e *Engine) setConnWake(c *conn, t time.Time) {
	if c.wake == nil {
		if t.IsZero() {
			return
		}
		c.wake = &wake{heapIndex: -1, conn: c}
	}
	e.setWake(c.wake, t)
	if t.IsZero() {
		c.wake = nil
	}
}

// wakeAt returns when c's wake is due; zero when it has none.
func (c *conn) wakeAt() time.Time {
	if c.wake == nil {
		return time.Time{}
	}
	return c.wake.at
}

// markDirty asks for c to be reconciled at the end of the loop iteration.
func (e *Engine) markDirty(c *conn) {
	c.trigger = earliest(c.trigger, e.trigger)
	e.touch(c)
	if !c.queued {
		c.queued = true
		e.dirty = append(e.dirty, c)
	}
}
