package pm

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/policy"
)

// adoptedConn is an existing userspace-PM connection with its local
// address list.
type adoptedConn struct {
	ExistingConn
	addrs []genl.Endpoint
}

type resyncResult struct {
	// start is the event sequence number when the resync began.
	start uint64
	conns []adoptedConn
	err   error
}

// staleAttempt is how old an attempt must be for a resync to drop it when
// the kernel does not list its subflow: longer than the kernel's SYN
// retries take to give up.
const staleAttempt = 150 * time.Second

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
	e.merge(conns, 0, false)
	e.log.Info("adopted connections", "connections", len(e.conns))
	return nil
}

// listConns lists the userspace-PM connections and their local address
// lists. It runs outside the loop and touches no engine state.
func (e *Engine) listConns() ([]adoptedConn, error) {
	existing, err := e.cfg.Conns.ListConns()
	if err != nil {
		return nil, fmt.Errorf("pm: list connections: %w", err)
	}
	out := make([]adoptedConn, 0, len(existing))
	for _, ec := range existing {
		if ec.Side != policy.SideClient && ec.Side != policy.SideServer {
			e.log.Warn("existing connection of unknown side, not adopted", "token", hexToken(ec.Token),
				"local", ec.Local, "remote", ec.Remote)
			continue
		}
		addrs, err := e.loopKernel.ConnectionAddrs(ec.Token)
		switch {
		case errors.Is(err, genl.ErrNotUserspacePM):
			continue
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			e.log.Warn("cannot read an existing connection's addresses", "token", hexToken(ec.Token), "error", err)
		}
		out = append(out, adoptedConn{ExistingConn: ec, addrs: addrs})
	}
	return out, nil
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
	start := e.seq
	go func() {
		conns, err := e.listConns()
		e.resyncC <- resyncResult{start: start, conns: conns, err: err}
	}()
}

func (e *Engine) applyResync(r resyncResult) {
	e.resyncing = false
	defer func() { e.sweeping = false }()
	if r.err != nil {
		e.log.Warn("resynchronisation failed", "error", r.err)
	} else {
		before := len(e.conns)
		e.merge(r.conns, r.start, true)
		switch {
		case !e.sweeping:
			e.log.Info("resynchronised", "connections", len(e.conns))
		case len(e.conns) < before:
			e.log.Info("forgot connections the kernel no longer has", "forgotten", before-len(e.conns))
		}
	}
	if e.resyncAgain {
		e.resyncAgain = false
		e.resync()
	}
	e.reconcileAll()
}

// merge folds a listing of connections into the state. Things the listing
// lacks are dropped only when prune is set and no event touched them after
// start, when the listing began.
func (e *Engine) merge(list []adoptedConn, start uint64, prune bool) {
	now := e.now()
	seen := make(map[uint32]bool, len(list))
	for i := range list {
		a := &list[i]
		seen[a.Token] = true
		c := e.conns[a.Token]
		if c == nil {
			c = e.newConn(a.Token)
			c.side = a.Side
			c.local, c.remote = unmapAP(a.Local), unmapAP(a.Remote)
		}
		if c.unmanaged {
			continue
		}
		c.established = true
		e.mergeSubflows(c, a, start, prune, now)
		if a.addrs != nil {
			c.locals = c.locals[:0]
			for _, ep := range a.addrs {
				c.learnLocal(ep.Addr.Unmap(), ep.Port, ep.ID, ep.Flags&genl.FlagSignal != 0)
			}
		}
		e.markDirty(c)
	}
	if !prune {
		return
	}
	for _, c := range e.conns {
		if !seen[c.token] && c.touched <= start {
			e.dropConn(c)
		}
	}
}

func (e *Engine) mergeSubflows(c *conn, a *adoptedConn, start uint64, prune bool, now time.Time) {
	n := len(c.subs)
	listed := make([]bool, n)
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
		} else if i < n {
			listed[i] = true
		}
		s := &c.subs[i]
		s.established, s.backup = true, es.Backup
		s.localID, s.remoteID = es.LocalID, es.RemoteID
		if es.IfIndex != 0 {
			s.ifindex = es.IfIndex
		}
		c.learnLocal(local.Addr(), 0, es.LocalID, false)
		if es.RemoteID != 0 && remote != c.remote &&
			!slices.ContainsFunc(c.peers, func(p policy.PeerAddr) bool { return p.ID == es.RemoteID }) {
			c.peers = append(c.peers, policy.PeerAddr{ID: es.RemoteID, Addr: remote, Source: policy.SourceAnnounced})
		}
	}
	if !prune {
		return
	}
	keep := c.subs[:0]
	for i, s := range c.subs {
		if i < len(listed) && !listed[i] && s.touched <= start {
			continue
		}
		keep = append(keep, s)
	}
	clear(c.subs[len(keep):])
	c.subs = keep
	c.attempts = slices.DeleteFunc(c.attempts, func(at attempt) bool {
		return at.accepted && at.seq <= start && now.Sub(at.since) > staleAttempt
	})
}
