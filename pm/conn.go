package pm

import (
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
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
	l lane
	// w is the connection's entry in the timer heap while a backoff runs
	// out; nil otherwise.
	w *wake

	token       uint32
	side        policy.Side
	denyJoinID0 bool
	established bool
	// unmanaged: the in-kernel path manager runs the connection.
	unmanaged bool
	// queued: the connection is in the engine's dirty list.
	queued bool
	// addrsStale: refresh locals (ConnectionAddrs) before announcing.
	addrsStale bool
	// touched is the event sequence number of the last change.
	touched uint64
	created time.Time
	local   netip.AddrPort // of the initial subflow
	remote  netip.AddrPort

	peers    []policy.PeerAddr // announced by the peer, by id
	subs     []subflow
	attempts []attempt
	retries  []pathRetry
	locals   []localAddr // the kernel's local address list, as far as known

	// want and wantAnnounces are the last desired state's paths and
	// announces (the latter unmapped addresses with their ports), for
	// Status. want may be shared with other connections and is never
	// changed in place.
	want          []wantPath
	wantAnnounces []netip.AddrPort
	// trigger is when the earliest input arrived that the connection has
	// not finished acting on.
	trigger time.Time
}

// wantPath is a path of a connection's desired state.
type wantPath struct {
	key     pathKey
	dev     string
	ifindex int32
	backup  bool
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
	// accepted: the kernel returned success (the SYN is out).
	accepted bool
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

// policyConn returns c as policies see it, in buffers the engine reuses
// for every connection: a policy keeps no reference to its view.
func (e *Engine) policyConn(c *conn) policy.Conn {
	pc := &e.pc
	pc.Token, pc.Side, pc.Local, pc.Remote, pc.DenyJoinID0 = c.token, c.side, c.local, c.remote, c.denyJoinID0
	pc.PeerAddrs = append(pc.PeerAddrs[:0], policy.PeerAddr{Addr: c.remote, Source: policy.SourceInitial})
	pc.PeerAddrs = append(pc.PeerAddrs, c.peers...)
	pc.Subflows = pc.Subflows[:0]
	for i := range c.subs {
		s := &c.subs[i]
		pc.Subflows = append(pc.Subflows, policy.Subflow{
			Local: s.local, Remote: s.remote, LocalID: s.localID, RemoteID: s.remoteID,
			Backup: s.backup, Established: s.established, EstablishedAt: s.since, IfIndex: s.ifindex,
			Health: e.healthOf(c.token, s.local, s.remote),
		})
	}
	return *pc
}

// keepPlan stores the paths and announces of plan in c for Status. A
// connection whose wanted paths equal those stored last, for this or
// another connection (a client's connections to one service), shares
// that copy.
func (e *Engine) keepPlan(c *conn, plan *policy.ConnPlan) {
	buf := e.wantBuf[:0]
	for _, p := range plan.Paths {
		buf = append(buf, wantPath{key: pathKey{p.Local.Unmap(), unmapAP(p.Remote)}, dev: p.Dev,
			ifindex: p.IfIndex, backup: p.Backup})
	}
	e.wantBuf = buf
	switch {
	case len(buf) == 0:
		c.want = nil
	case slices.Equal(buf, c.want):
	case slices.Equal(buf, e.lastWant):
		c.want = e.lastWant
	default:
		c.want = slices.Clone(buf)
		e.lastWant = c.want
	}
	key := func(a policy.Announce) netip.AddrPort { return netip.AddrPortFrom(a.Addr.Unmap(), a.Port) }
	if slices.EqualFunc(c.wantAnnounces, plan.Announces, func(w netip.AddrPort, a policy.Announce) bool { return w == key(a) }) {
		return
	}
	c.wantAnnounces = nil
	if len(plan.Announces) > 0 {
		c.wantAnnounces = make([]netip.AddrPort, len(plan.Announces))
		for i, a := range plan.Announces {
			c.wantAnnounces[i] = key(a)
		}
	}
}

// newConn starts tracking token.
func (e *Engine) newConn(token uint32) *conn {
	c := &conn{token: token, created: e.now()}
	e.conns[token] = c
	return c
}

// dropConn forgets c.
func (e *Engine) dropConn(c *conn) {
	delete(e.conns, c.token)
	c.l.closed = true
	c.l.queue = nil
	e.setConnWake(c, time.Time{})
}

// setConnWake schedules c's wake at t, or unschedules it when t is zero.
func (e *Engine) setConnWake(c *conn, t time.Time) {
	if c.w == nil {
		if t.IsZero() {
			return
		}
		c.w = &wake{idx: -1, c: c}
	}
	e.setWake(c.w, t)
	if t.IsZero() {
		c.w = nil
	}
}

// wakeAt returns when c's wake is due; zero when it has none.
func (c *conn) wakeAt() time.Time {
	if c.w == nil {
		return time.Time{}
	}
	return c.w.at
}

// markDirty asks for c to be reconciled at the end of the loop iteration.
func (e *Engine) markDirty(c *conn) {
	c.trigger = earliest(c.trigger, e.trigger)
	if !c.queued {
		c.queued = true
		e.dirty = append(e.dirty, c)
	}
}

// applyEvent updates the state from one kernel event.
func (e *Engine) applyEvent(ev *genl.Event) {
	if int(ev.Type) < len(e.counters.events) {
		e.counters.events[ev.Type]++
	}
	if e.cfg.Mode != policy.ModeUserspace {
		if ev.Type == genl.EventSubClosed && ev.Error != 0 {
			e.repairSoon()
		}
		return
	}
	e.seq++
	switch ev.Type {
	case genl.EventCreated, genl.EventEstablished:
		e.connEvent(ev)
		return
	case genl.EventListenerCreated, genl.EventListenerClosed:
		return
	}
	c := e.conns[ev.Token]
	if c == nil {
		e.counters.unknownToken++
		return
	}
	c.touched = e.seq
	switch ev.Type {
	case genl.EventClosed:
		e.dropConn(c)
		return
	case genl.EventAnnounced:
		p := policy.PeerAddr{ID: ev.RemoteID, Addr: unmapAP(ev.Remote), Source: policy.SourceAnnounced}
		if i := slices.IndexFunc(c.peers, func(q policy.PeerAddr) bool { return q.ID == p.ID }); i >= 0 {
			c.peers[i] = p
		} else {
			c.peers = append(c.peers, p)
		}
	case genl.EventRemoved:
		c.peers = slices.DeleteFunc(c.peers, func(q policy.PeerAddr) bool { return q.ID == ev.RemoteID })
	case genl.EventSubEstablished:
		e.subEstablished(c, ev)
	case genl.EventSubClosed:
		e.subClosed(c, ev)
	case genl.EventSubPriority:
		if s := c.sub(unmapAP(ev.Local), unmapAP(ev.Remote)); s != nil {
			s.peerBackup = ev.Backup
		}
	default:
		return
	}
	e.markDirty(c)
}

// connEvent applies CREATED and ESTABLISHED.
func (e *Engine) connEvent(ev *genl.Event) {
	c := e.conns[ev.Token]
	if c == nil {
		c = e.newConn(ev.Token)
	}
	c.touched = e.seq
	c.side = policy.SideClient
	if ev.ServerSide || ev.Flags&genl.EventFlagServerSide != 0 {
		c.side = policy.SideServer
	}
	if ev.Flags&genl.EventFlagDenyJoinID0 != 0 {
		c.denyJoinID0 = true
	}
	local, remote := unmapAP(ev.Local), unmapAP(ev.Remote)
	if local.IsValid() && remote.IsValid() {
		if c.local != local || c.remote != remote {
			c.subs = slices.DeleteFunc(c.subs, func(s subflow) bool { return s.initial })
			c.local, c.remote = local, remote
		}
		s := c.sub(local, remote)
		if s == nil {
			c.subs = append(c.subs, subflow{local: local, remote: remote, initial: true, since: e.now()})
			s = &c.subs[len(c.subs)-1]
		}
		s.touched = e.seq
		if ev.Type == genl.EventEstablished {
			s.established = true
		}
	}
	if ev.Type == genl.EventEstablished && !c.established {
		c.established = true
		e.markDirty(c)
	} else if c.established {
		e.markDirty(c)
	}
}

// subEstablished applies SUB_ESTABLISHED.
func (e *Engine) subEstablished(c *conn, ev *genl.Event) {
	local, remote := unmapAP(ev.Local), unmapAP(ev.Remote)
	now := e.now()
	s := c.sub(local, remote)
	if s == nil {
		c.subs = append(c.subs, subflow{local: local, remote: remote, since: now})
		s = &c.subs[len(c.subs)-1]
		k := s.path()
		if i := c.attempt(k); i >= 0 {
			a := c.attempts[i]
			s.joined, s.backup, s.ifindex = true, a.backup, a.ifindex
			c.dropAttempt(i)
			if e.log.Enabled(e.ctx, slog.LevelDebug) {
				e.log.Debug("subflow established", "token", hexToken(c.token),
					"local", local, "remote", remote, "after", now.Sub(a.since))
			}
		}
	}
	s.localID, s.remoteID, s.peerBackup = ev.LocalID, ev.RemoteID, ev.Backup
	s.established, s.touched = true, e.seq
	if ev.IfIndex != 0 {
		s.ifindex = ev.IfIndex
	}
	c.learnLocal(local.Addr(), 0, ev.LocalID, false)
}

// subClosed applies SUB_CLOSED: a live subflow went away, or an attempt
// failed.
func (e *Engine) subClosed(c *conn, ev *genl.Event) {
	local, remote := unmapAP(ev.Local), unmapAP(ev.Remote)
	now := e.now()
	if i := slices.IndexFunc(c.subs, func(s subflow) bool { return s.local == local && s.remote == remote }); i >= 0 {
		s := c.subs[i]
		c.subs = slices.Delete(c.subs, i, i+1)
		if s.joined && !s.destroying {
			if s.stable(now) {
				c.resetRetry(retryKey{path: s.path()})
			}
			e.pathFailed(c, s.path(), now, closedReason(ev))
			e.observePathFailed(c, local, remote, now)
		}
		return
	}
	k := pathKey{local.Addr(), remote}
	if i := c.attempt(k); i >= 0 {
		c.dropAttempt(i)
		e.pathFailed(c, k, now, closedReason(ev))
		e.observePathFailed(c, local, remote, now)
	}
}

// observePathFailed reports that the path of a subflow failed and backs
// off.
func (e *Engine) observePathFailed(c *conn, local, remote netip.AddrPort, now time.Time) {
	r := c.retry(retryKey{path: pathKey{local.Addr(), remote}})
	e.observe(Decision{Time: now, Kind: DecisionPathFailed, Token: c.token, Local: local, Remote: remote,
		Error: r.lastErr, RetryAt: r.until})
}

// pathFailed starts or extends the backoff of path k.
func (e *Engine) pathFailed(c *conn, k pathKey, now time.Time, why string) {
	r := c.retryFor(retryKey{path: k})
	until := e.fail(r, now, why)
	e.setConnWake(c, earliest(c.wakeAt(), until))
	lvl := slog.LevelDebug
	if r.fails == 1 {
		lvl = slog.LevelInfo
	}
	e.log.Log(e.ctx, lvl, "subflow failed", "token", hexToken(c.token), "local", k.local,
		"remote", k.remote, "error", why, "failures", r.fails, "retry_in", until.Sub(now).Round(time.Millisecond))
}

// closedReason says why a subflow closed, from SUB_CLOSED's attributes.
func closedReason(ev *genl.Event) string {
	switch {
	case ev.Error != 0:
		return "subflow closed: " + syscall.Errno(ev.Error).Error()
	case ev.ResetReason != 0 || ev.ResetFlags != 0:
		return "subflow reset by peer: " + resetReason(ev.ResetReason)
	}
	return "subflow closed"
}

// resetReason names an MPTCP_RST_* code.
func resetReason(r uint32) string {
	names := []string{"unspecified", "mptcp error", "lack of resources", "administratively prohibited",
		"too much outstanding data", "unacceptable performance", "middlebox interference"}
	if int(r) < len(names) {
		return names[r]
	}
	return "reason " + strconv.Itoa(int(r))
}
