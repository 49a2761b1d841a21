package pm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// batch is what the event reader forwards: events, or an error.
type batch struct {
	events []genl.Event
	err    error
	// fatal: the event source is closed.
	fatal bool
	// at is when the batch was received.
	at time.Time
}

// readEvents forwards the event source's batches to the loop.
func (e *Engine) readEvents(ctx context.Context) {
	var pause time.Duration
	for {
		evs, err := e.cfg.Events.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		b := batch{events: evs, err: err, at: e.now()}
		switch {
		case err == nil:
			pause = 0
		case errors.Is(err, genl.ErrEventsLost):
		case errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrClosed), errors.Is(err, io.EOF):
			b.fatal = true
		default:
			pause = min(max(2*pause, 10*time.Millisecond), time.Second)
		}
		select {
		case e.eventsC <- b:
		case <-ctx.Done():
			return
		}
		if b.fatal {
			return
		}
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

func (e *Engine) applyBatch(b *batch) {
	if b.err != nil {
		e.counters.resyncs++
		e.warnLost(b.err)
		e.observe(pmstate.Decision{Time: e.now(), Kind: pmstate.DecisionResync, Detail: b.err.Error()})
		e.resync()
		return
	}
	e.counters.batches++
	e.trigger = earliest(e.trigger, b.at)
	for i := range b.events {
		e.applyEvent(&b.events[i])
	}
}

// lostLogEvery bounds how often lost events are logged: under an event
// flood every batch can overflow, and each resync says the same.
const lostLogEvery = 10 * time.Second

// warnLost logs that events were lost, at most once per lostLogEvery,
// with the number of losses since the last line.
func (e *Engine) warnLost(err error) {
	e.lost.count++
	now := e.now()
	if !e.lost.logged.IsZero() && now.Sub(e.lost.logged) < lostLogEvery {
		return
	}
	e.log.Warn("events lost, resynchronising", "error", err, "losses", e.lost.count)
	e.lost.logged, e.lost.count = now, 0
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
	e.touch(c)
	switch ev.Type {
	case genl.EventClosed:
		e.dropConn(c)
		return
	case genl.EventAnnounced:
		e.announcedPeer(c, ev.RemoteID, ev.Remote)
	case genl.EventRemoved:
		c.removedPeer(ev.RemoteID)
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
		if e.readsOwner {
			// Looked up at once, so that the answer is back by the
			// time the connection is established.
			e.askOwner(c)
		}
	}
	e.touch(c)
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
			if !e.cfg.Kernel.Has(genl.CapSubflowFlags) {
				// Before 6.9 the kernel ignored the flag: the next
				// reconcile sets it with SET_FLAGS.
				s.backup = false
			}
			c.dropAttempt(i)
			if e.log.Enabled(e.ctx, slog.LevelDebug) {
				e.log.Debug("subflow established", "token", hexToken(c.token),
					"local", local, "remote", remote, "after", now.Sub(a.since))
			}
		}
	}
	s.localID, s.remoteID, s.peerBackup = ev.LocalID, ev.RemoteID, ev.Backup
	s.established, s.touched = true, e.seq
	c.peerJoined(remote)
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
// off, or was given up with its announced address.
func (e *Engine) observePathFailed(c *conn, local, remote netip.AddrPort, now time.Time) {
	d := pmstate.Decision{Time: now, Kind: pmstate.DecisionPathFailed, Token: c.token, Local: local, Remote: remote}
	if r := c.retry(retryKey{path: pathKey{local.Addr(), remote}}); r != nil {
		d.Error, d.RetryAt = r.lastErr, r.until
	} else if p := c.peerAt(remote); p != nil {
		d.Error = p.why // given up: no retry
	}
	e.observe(d)
}

// pathFailed starts or extends the backoff of path k; a path to an
// announced address that was never joined counts against its tries
// instead (peerFailed), and ends with it given up.
func (e *Engine) pathFailed(c *conn, k pathKey, now time.Time, why string) {
	if e.peerFailed(c, k.remote, now, why) {
		return
	}
	r := c.retryFor(retryKey{path: k})
	until := e.fail(r, now, why)
	e.setConnWake(c, earliest(c.wakeAt(), until))
	e.pathFailedAt(k, now, why)
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
