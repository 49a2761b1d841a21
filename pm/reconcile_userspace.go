package pm

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/policy"
)

// reconcileConn asks the policy for c's desired state, diffs it against
// what c has and queues the commands that close the gap: creates first,
// then backup changes, announces, destroys, a demotion and removes. It
// destroys the subflows this host opened that the plan drops (closable),
// as long as another subflow stays established, but demotes a client's
// initial subflow that is alive to backup instead (demotes).
func (e *Engine) reconcileConn(c *conn) {
	if c.lane.closed || c.unmanaged || !c.established || !e.haveHost {
		return
	}
	if e.readsOwner && c.ownerState != ownerDone {
		// No plan before the owner is known: the answer reconciles c.
		if c.ownerState == ownerUnasked {
			e.askOwner(c)
		}
		return
	}
	if c.lane.busy {
		c.lane.dirty = true
		return
	}
	c.lane.dirty = false
	now := e.now()
	v := e.view
	v.Now = now
	e.checkPeers(c)
	plan := e.policy.Conn(v, e.policyConn(c), policy.ConnPlan{})
	q := e.cmdBuf[:0]
	refused := e.refusalBuf[:0]
	var h hold
	var next time.Time
	wait := func(k retryKey) bool {
		r := c.retry(k)
		if r.waiting(now) {
			next = earliest(next, r.until)
			return true
		}
		return false
	}

	var taken idSet
	for i := range plan.Paths {
		p := &plan.Paths[i]
		k := pathKey{p.Local.Unmap(), unmapAP(p.Remote)}
		d := p.Deferral
		p.Deferral = policy.Deferral{}
		if !c.validPath(k) || withdrawn(plan.Withdraw, k.local) || c.livePath(k) != nil || c.attempt(k) >= 0 {
			continue
		}
		p.Deferral = d
		if why := e.pathRefusal(c, k); why != "" {
			refused = append(refused, refusal{key: retryKey{path: k}, why: why})
			continue
		}
		if e.holds(c, &p.Deferral, now, &h) {
			continue
		}
		if until, ok := c.peerWaits(k.remote, q, now); ok {
			next = earliest(next, until)
			continue
		}
		if wait(retryKey{path: k}) || !e.tryPeer(c, k.remote) {
			continue
		}
		id, ok := c.subflowID(k.local, &taken)
		if !ok {
			e.warnOnce("no free address id", "token", hexToken(c.token), "addr", k.local)
			continue
		}
		var flags genl.EndpointFlags
		if p.Backup {
			flags = genl.FlagBackup
		}
		ifindex := e.devIndex(p.Dev, p.IfIndex)
		q = append(q, command{op: opCreateSubflow, token: c.token, conn: c, path: k, backup: p.Backup,
			ep: genl.Endpoint{ID: id, Addr: k.local, Flags: flags, IfIndex: ifindex}, remote: k.remote})
	}

	for i := range c.subs {
		s := &c.subs[i]
		if !s.established || s.destroying {
			continue
		}
		p := findPath(plan.Paths, s.path())
		if p == nil || p.Backup == s.backup || wait(retryKey{path: s.path()}) {
			continue
		}
		q = append(q, command{op: opSetSubflowBackup, token: c.token, conn: c, path: s.path(),
			local: s.local, remote: s.remote, backup: p.Backup})
	}

	if c.addrsStale {
		q = append(q, command{op: opConnAddrs, token: c.token, conn: c})
	}
	for i := range plan.Announces {
		a := &plan.Announces[i]
		addr := a.Addr.Unmap()
		d := a.Deferral
		a.Deferral = policy.Deferral{}
		if !addr.IsValid() || addr == c.local.Addr() || addr.Is4() != c.local.Addr().Is4() || c.announced(addr, a.Port) {
			continue
		}
		a.Deferral = d
		if why := e.localRefusal(addr); why != "" {
			refused = append(refused, refusal{key: announceKey(addr, a.Port), why: why})
			continue
		}
		if e.holds(c, &a.Deferral, now, &h) || c.addrsStale || wait(announceKey(addr, a.Port)) {
			continue
		}
		id := c.announceID(addr, &taken)
		if id == 0 {
			e.warnOnce("no free address id", "token", hexToken(c.token), "addr", addr)
			continue
		}
		q = append(q, command{op: opAnnounce, token: c.token, conn: c, ep: genl.Endpoint{
			ID: id, Addr: addr, Port: a.Port, Flags: genl.FlagSignal, IfIndex: e.devIndex(a.Dev, a.IfIndex)}})
	}
	e.keepPlan(c, &plan)
	e.applyHold(c, &h)

	live := c.liveSubflows()
	// Withdraw the ids of unusable addresses before their subflows are
	// destroyed: the subflows' FIN or RST cannot leave from an address
	// that is gone or unusable, so only the RM_ADDR, sent over another
	// subflow, makes the peer close its ends (it would keep them, and
	// count them against its subflow limit, until the connection ends).
	// SUBFLOW_DESTROY deletes the kernel's entry of the id, after which
	// REMOVE finds nothing to withdraw: REMOVE goes first.
	var removed idSet
	if !c.addrsStale {
		for _, l := range c.locals {
			if !e.withdrawsID(c, &plan, l) || wait(announceKey(l.addr, l.port)) {
				continue
			}
			removed.add(l.id)
			q = append(q, command{op: opRemove, token: c.token, conn: c, id: l.id,
				ep: genl.Endpoint{ID: l.id, Addr: l.addr, Port: l.port}})
		}
	}
	var demote *subflow
	for i := range c.subs {
		s := &c.subs[i]
		if !c.closable(s) || !s.established || s.destroying ||
			findPath(plan.Paths, s.path()) != nil || wait(retryKey{path: s.path()}) {
			continue
		}
		// A client's initial subflow from a usable address stays,
		// demoted to backup below; the last working subflow stays
		// unless the policy withdraws its address outright.
		gone := withdrawn(plan.Withdraw, s.local.Addr())
		if !gone && e.demotes(c, s) {
			demote = s
			continue
		}
		if live <= 1 && !gone {
			continue
		}
		q = append(q, command{op: opDestroySubflow, token: c.token, conn: c, path: s.path(),
			local: s.local, remote: s.remote})
		live--
	}
	if demote != nil && !demote.backup && live > 1 {
		q = append(q, command{op: opSetSubflowBackup, token: c.token, conn: c, path: demote.path(),
			local: demote.local, remote: demote.remote, backup: true})
	}

	if !c.addrsStale {
		for _, l := range c.locals {
			if !l.signal || removed.has(l.id) || announceWanted(plan.Announces, l.addr, l.port) ||
				wait(announceKey(l.addr, l.port)) {
				continue
			}
			q = append(q, command{op: opRemove, token: c.token, conn: c, id: l.id,
				ep: genl.Endpoint{ID: l.id, Addr: l.addr, Port: l.port}})
		}
	}

	e.keepRefusals(c, refused)
	e.refusalBuf = refused[:0]
	stamp(q, c.trigger)
	c.lane.queue = nil
	if len(q) > 0 {
		c.lane.queue = slices.Clone(q)
		clear(q)
		e.runnable.push(&c.lane)
	}
	e.cmdBuf = q[:0]
	e.setConnWake(c, earliest(next, h.until))
}

// policyConn returns c as policies see it, in buffers the engine reuses
// for every connection: a policy keeps no reference to its view.
func (e *Engine) policyConn(c *conn) policy.Conn {
	pc := &e.connView
	pc.Token, pc.Side, pc.Local, pc.Remote, pc.DenyJoinID0 = c.token, c.side, c.local, c.remote, c.denyJoinID0
	pc.Owner = c.owner
	pc.PeerAddrs = append(pc.PeerAddrs[:0], policy.PeerAddr{Addr: c.remote, Source: policy.SourceInitial})
	pc.PeerAddrs = c.viewPeers(pc.PeerAddrs)
	pc.Created = c.created
	pc.BytesSent, pc.BytesReceived = e.connBytes(c)
	if c.adopted {
		pc.Created = time.Time{}
	}
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

// keepPlan stores the paths and announces of plan in c for Status, with
// what held them back (reconcileConn rewrote their Deferral so). A
// connection whose wanted paths equal those stored last, for this or
// another connection (a client's connections to one service), shares
// that copy.
func (e *Engine) keepPlan(c *conn, plan *policy.ConnPlan) {
	buf := e.wantBuf[:0]
	for _, p := range plan.Paths {
		buf = append(buf, wantPath{key: pathKey{p.Local.Unmap(), unmapAP(p.Remote)}, dev: p.Dev,
			ifindex: p.IfIndex, backup: p.Backup, hold: holdOf(p.Deferral)})
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
	want := func(a policy.Announce) wantAnnounce {
		return wantAnnounce{addr: netip.AddrPortFrom(a.Addr.Unmap(), a.Port), hold: holdOf(a.Deferral)}
	}
	if slices.EqualFunc(c.wantAnnounces, plan.Announces, func(w wantAnnounce, a policy.Announce) bool { return w == want(a) }) {
		return
	}
	c.wantAnnounces = nil
	if len(plan.Announces) > 0 {
		c.wantAnnounces = make([]wantAnnounce, len(plan.Announces))
		for i, a := range plan.Announces {
			c.wantAnnounces[i] = want(a)
		}
	}
}

// withdrawsID reports whether the engine withdraws l, an entry of c's
// local address list, with REMOVE before destroying its subflows: its
// address is gone from the host or not usable, the plan wants no path
// from it and does not announce it (the peer closes every subflow with
// the id), every subflow from it is one the engine may close (the peer's
// subflows are the peer's to close), and another subflow stays
// established to carry the RM_ADDR. Id 0 is never withdrawn: the kernel
// takes REMOVE 0 as an RM_ADDR of the initial subflow's address, whose
// subflow the engine keeps as a backup while the address is usable and
// otherwise only destroys (see demotes); the peer does not count that
// subflow against its subflow limit. A usable address the policy drops
// needs no RM_ADDR: its subflows' FIN leaves from it and the peer closes
// its ends.
func (e *Engine) withdrawsID(c *conn, plan *policy.ConnPlan, l localAddr) bool {
	if l.id == 0 || e.usable[l.addr] || announceWanted(plan.Announces, l.addr, l.port) ||
		slices.ContainsFunc(plan.Paths, func(p policy.Path) bool { return p.Local.Unmap() == l.addr }) ||
		slices.ContainsFunc(c.subs, func(s subflow) bool { return s.local.Addr() == l.addr && !c.closable(&s) }) {
		return false
	}
	return slices.ContainsFunc(c.subs, func(s subflow) bool {
		return s.established && !s.destroying && s.local.Addr() != l.addr
	})
}

// demotes reports whether the engine sets the backup bit of s instead of
// closing it when the plan drops it and another subflow is established:
// s is a client's initial subflow, its address is usable and it is not
// stalled. Linux 6.18 loses connections whose initial subflow the
// userspace path manager destroys while data flows (the server's data
// after the client's shutdown is retransmitted and never acknowledged;
// see internal/testing/soak/corrupt_test.go, case destroy-initial); a backup
// subflow is sent new data only when no other subflow is left. An initial
// subflow whose address is gone or unusable, or that is stalled, is dead
// anyway and is closed: only closing it makes the kernel send the data
// queued on it again at once over the others (a demoted dead subflow
// holds its data until retransmission timeouts move it, 200 ms each).
func (e *Engine) demotes(c *conn, s *subflow) bool {
	return s.initial && c.side == policy.SideClient && e.usable[s.local.Addr()] &&
		!e.healthOf(c.token, s.local, s.remote).Stalled
}

// withdrawn reports whether the plan withdraws the local address addr.
func withdrawn(addrs []netip.Addr, addr netip.Addr) bool {
	for _, a := range addrs {
		if a.Unmap() == addr.Unmap() {
			return true
		}
	}
	return false
}

func findPath(paths []policy.Path, k pathKey) *policy.Path {
	for i := range paths {
		p := &paths[i]
		if p.Local.Unmap() == k.local && unmapAP(p.Remote) == k.remote {
			return p
		}
	}
	return nil
}

func announceWanted(as []policy.Announce, addr netip.Addr, port uint16) bool {
	return slices.ContainsFunc(as, func(a policy.Announce) bool { return a.Addr.Unmap() == addr && a.Port == port })
}

// sentConn updates c when a worker takes cmd.
func (e *Engine) sentConn(c *conn, cmd *command) {
	switch cmd.op {
	case opCreateSubflow:
		c.attempts = append(c.attempts, attempt{path: cmd.path, backup: cmd.backup,
			ifindex: cmd.ep.IfIndex, since: e.now(), seq: e.seq})
	case opDestroySubflow:
		if s := c.sub(cmd.local, cmd.remote); s != nil {
			s.destroying = true
		}
	}
}

// connResult applies the result of a connection's command.
func (e *Engine) connResult(r *result) {
	cmd := &r.cmd
	c := cmd.conn
	c.lane.busy = false
	if c.lane.closed {
		return
	}
	now := e.now()
	err := r.err
	if err != nil && errors.Is(err, genl.ErrNotUserspacePM) {
		e.unmanage(c)
		return
	}
	switch cmd.op {
	case opCreateSubflow:
		i := c.attempt(cmd.path)
		switch {
		case err != nil:
			if i >= 0 {
				c.dropAttempt(i)
			}
			e.pathFailed(c, cmd.path, now, err.Error())
			if errors.Is(err, genl.ErrAddrIDMismatch) {
				c.addrsStale = true
				c.lane.dirty = true
			}
		case i >= 0:
			c.attempts[i].accepted, c.attempts[i].listing = true, e.listings
		}
	case opSetSubflowBackup:
		s := c.sub(cmd.local, cmd.remote)
		switch {
		case err == nil:
			if s != nil {
				s.backup = cmd.backup
			}
			c.resetRetry(retryKey{path: cmd.path})
		case errors.Is(err, os.ErrNotExist):
			e.forgetSubflow(c, cmd.local, cmd.remote)
		default:
			e.actionFailed(c, retryKey{path: cmd.path}, now, cmd, err)
		}
	case opDestroySubflow:
		switch {
		case err == nil:
			c.resetRetry(retryKey{path: cmd.path})
		case errors.Is(err, os.ErrNotExist):
			e.forgetSubflow(c, cmd.local, cmd.remote)
		default:
			if s := c.sub(cmd.local, cmd.remote); s != nil {
				s.destroying = false
			}
			e.actionFailed(c, retryKey{path: cmd.path}, now, cmd, err)
		}
	case opAnnounce:
		k := announceKey(cmd.ep.Addr, cmd.ep.Port)
		if err == nil {
			c.learnLocal(cmd.ep.Addr, cmd.ep.Port, cmd.ep.ID, true)
			c.resetRetry(k)
			break
		}
		e.actionFailed(c, k, now, cmd, err)
		if errors.Is(err, genl.ErrAddrIDMismatch) {
			c.addrsStale = true
			c.lane.dirty = true
		}
	case opRemove:
		k := announceKey(cmd.ep.Addr, cmd.ep.Port)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			c.locals = slices.DeleteFunc(c.locals, func(l localAddr) bool { return l.id == cmd.id })
			c.resetRetry(k)
			break
		}
		e.actionFailed(c, k, now, cmd, err)
	case opOwner:
		c.ownerState = ownerDone
		c.lane.dirty = true
		if err != nil {
			lvl := slog.LevelWarn
			if errors.Is(err, os.ErrNotExist) {
				lvl = slog.LevelDebug // closed already
			}
			e.log.Log(e.ctx, lvl, "cannot read the connection's owner; rules by unit or uid do not select it",
				"token", hexToken(c.token), "error", err)
			break
		}
		c.owner = e.internOwner(r.owner)
	case opConnAddrs:
		c.addrsStale = false
		c.lane.dirty = true
		if err != nil {
			e.log.Warn("cannot read the connection's addresses", "token", hexToken(c.token), "error", err)
			break
		}
		c.locals = c.locals[:0]
		for _, ep := range r.eps {
			c.learnLocal(ep.Addr.Unmap(), ep.Port, ep.ID, ep.Flags&genl.FlagSignal != 0)
		}
	}
	if c.lane.dirty {
		e.markDirty(c)
	} else if len(c.lane.queue) > 0 {
		e.runnable.push(&c.lane)
	}
}

// actionFailed starts or extends the backoff of k after cmd failed.
func (e *Engine) actionFailed(c *conn, k retryKey, now time.Time, cmd *command, err error) {
	r := c.retryFor(k)
	until := e.fail(r, now, err.Error())
	e.setConnWake(c, earliest(c.wakeAt(), until))
	lvl := slog.LevelDebug
	if r.fails == 1 {
		lvl = slog.LevelWarn
	}
	e.log.Log(e.ctx, lvl, cmd.op.String()+" failed", "token", hexToken(c.token), "error", err,
		"failures", r.fails, "retry_in", until.Sub(now).Round(time.Millisecond))
}

// forgetSubflow drops a subflow the kernel no longer has.
func (e *Engine) forgetSubflow(c *conn, local, remote netip.AddrPort) {
	c.subs = slices.DeleteFunc(c.subs, func(s subflow) bool { return s.local == local && s.remote == remote })
}

// unmanage stops managing c: the in-kernel path manager runs it.
func (e *Engine) unmanage(c *conn) {
	if c.unmanaged {
		return
	}
	c.unmanaged = true
	c.lane.queue = nil
	c.attempts = nil
	c.held = false
	e.unwatchBytes(c)
	e.setConnWake(c, time.Time{})
	e.log.Info("connection is run by the in-kernel path manager, leaving it alone", "token", hexToken(c.token),
		"local", c.local, "remote", c.remote)
}
