package pm

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/peeraddr"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// peer is an address the peer of a connection announced (ADD_ADDR), with
// what the peer-address policy (Config.Peers) made of it. Policies see
// only the pending and joined ones.
type peer struct {
	// addr is the announced address and port; the connection's port when
	// the peer named none.
	addr netip.AddrPort
	id   uint8
	// state is where the address stands; refusal why it is refused.
	state   peerState
	refusal peeraddr.Refusal
	// tried: a subflow to the address was asked for, which counts
	// against the connection's maxTriedPeers.
	tried bool
	// fails counts the failed tries while pending; the next try waits
	// until until, the backoff of the last one.
	fails uint8
	until time.Time
	// why is the refusal's reason, or the last failure.
	why string
}

// peerState is where an announced address stands.
type peerState uint8

const (
	// peerPending: the policy accepts the address; no subflow to it was
	// established yet, so the engine tries one path to it at a time, at
	// most Config.Peers tries times, with the backoff of Config.Backoff
	// between two.
	peerPending peerState = iota
	// peerJoined: a subflow to the address was established, which only
	// the peer can do (MP_JOIN is authenticated with the connection's
	// keys): paths to it are retried like those to the initial address.
	peerJoined
	// peerRefused: the policy refuses the address (refusal, why), or the
	// connection tried maxTriedPeers others already.
	peerRefused
	// peerGivenUp: tried Config.Peers tries times without a subflow
	// established; never tried again on the connection.
	peerGivenUp
)

var peerStates = [...]pmstate.PeerState{
	peerPending: pmstate.PeerPending,
	peerJoined:  pmstate.PeerJoined,
	peerRefused: pmstate.PeerRefused,
	peerGivenUp: pmstate.PeerGivenUp,
}

// state is s as the state types name it.
func (s peerState) state() pmstate.PeerState { return peerStates[s] }

// maxTriedPeers bounds the announced addresses a connection tries, as the
// in-kernel path manager's add_addr_accepted limit does (at most 8): a
// peer that announces address after address gets at most this many times
// Config.Peers tries SYNs sent.
const maxTriedPeers = 8

// budgetReason is the reason of an address refused because the
// connection tried maxTriedPeers others, and its counter's name.
const budgetReason = "budget"

// peerAt returns the announced address with addr and port.
func (c *conn) peerAt(addr netip.AddrPort) *peer {
	for i := range c.peers {
		if c.peers[i].addr == addr {
			return &c.peers[i]
		}
	}
	return nil
}

// announcedPeer applies ANNOUNCED: the address is added, or replaces the
// one of its id. Announcing an address again changes nothing, so that a
// peer cannot have a given-up address tried again.
func (e *Engine) announcedPeer(c *conn, id uint8, ap netip.AddrPort) {
	ap = unmapAP(ap)
	if ap.Port() == 0 {
		ap = netip.AddrPortFrom(ap.Addr(), c.remote.Port())
	}
	if i := slices.IndexFunc(c.peers, func(p peer) bool { return p.id == id }); i >= 0 {
		if c.peers[i].addr == ap {
			return
		}
		c.peers = slices.Delete(c.peers, i, i+1)
	}
	if p := c.peerAt(ap); p != nil {
		p.id = id
		return
	}
	c.peers = append(c.peers, peer{addr: ap, id: id})
	e.checkPeer(c, &c.peers[len(c.peers)-1])
}

// removedPeer applies REMOVED.
func (c *conn) removedPeer(id uint8) {
	c.peers = slices.DeleteFunc(c.peers, func(p peer) bool { return p.id == id })
	if len(c.peers) == 0 {
		c.peers = nil
	}
}

// checkPeers runs the policy again on the addresses that are not settled
// (pending or refused): the host's addresses change.
func (e *Engine) checkPeers(c *conn) {
	for i := range c.peers {
		if p := &c.peers[i]; p.state == peerPending || p.state == peerRefused {
			e.checkPeer(c, p)
		}
	}
}

// checkPeer sets p's state from the policy and the connection's budget of
// tried addresses, and counts and logs a refusal when it starts.
func (e *Engine) checkPeer(c *conn, p *peer) {
	r, why := e.cfg.Peers.Check(e.host, c.remote, p.addr)
	if r == peeraddr.Accepted && !p.tried && c.triedPeers >= maxTriedPeers {
		why = fmt.Sprintf("the connection tried %d announced addresses already", maxTriedPeers)
	}
	if why == "" {
		p.state, p.refusal, p.why = peerPending, peeraddr.Accepted, ""
		return
	}
	if p.state == peerRefused && p.why == why {
		return
	}
	p.state, p.refusal, p.why = peerRefused, r, why
	if r == peeraddr.Accepted {
		e.counters.peerBudget++
	} else {
		e.counters.peerRefused[r]++
	}
	e.warnPeer(c, "peer address refused", "addr", p.addr, "id", p.id, "reason", why)
}

// tryPeer reports whether the engine may create a path to remote: it is
// not a pending announced address, or it was tried already, or the
// connection has not tried maxTriedPeers of them yet, in which case it
// counts remote as tried. An address over the budget is refused.
func (e *Engine) tryPeer(c *conn, remote netip.AddrPort) bool {
	p := c.peerAt(remote)
	if p == nil || p.state != peerPending || p.tried {
		return true
	}
	if c.triedPeers >= maxTriedPeers {
		e.checkPeer(c, p)
		return false
	}
	p.tried = true
	c.triedPeers++
	return true
}

// peerFailed counts a failed try of a path to remote, and gives the
// address up after Config.Peers tries of them while it is pending. It
// reports whether it gave it up.
func (e *Engine) peerFailed(c *conn, remote netip.AddrPort, now time.Time, why string) bool {
	p := c.peerAt(remote)
	if p == nil || p.state != peerPending {
		return false
	}
	p.fails++
	p.why = why
	if int(p.fails) < e.cfg.Peers.TriesOrDefault() {
		p.until = now.Add(e.jitter(e.cfg.Backoff.delay(int(p.fails))))
		e.setConnWake(c, earliest(c.wakeAt(), p.until))
		return false
	}
	p.state = peerGivenUp
	e.counters.peerGivenUp++
	c.retries = slices.DeleteFunc(c.retries, func(r pathRetry) bool { return !r.key.announce && r.key.path.remote == remote })
	if len(c.retries) == 0 {
		c.retries = nil
	}
	e.warnPeer(c, "peer address given up", "addr", p.addr, "id", p.id, "tries", p.fails, "error", why)
	return true
}

// peerJoined records that a subflow to remote is established.
func (c *conn) peerJoined(remote netip.AddrPort) {
	if p := c.peerAt(remote); p != nil && p.state == peerPending {
		p.state, p.fails, p.why = peerJoined, 0, ""
	}
}

// peerWaits reports whether remote is a pending address that may not be
// tried at now: a subflow to it is asked for already (in the attempts or
// in q: the engine tries one path to it at a time), or its last try's
// backoff runs until the time it returns.
func (c *conn) peerWaits(remote netip.AddrPort, q []command, now time.Time) (time.Time, bool) {
	p := c.peerAt(remote)
	switch {
	case p == nil || p.state != peerPending:
		return time.Time{}, false
	case now.Before(p.until):
		return p.until, true
	}
	return time.Time{}, slices.ContainsFunc(c.attempts, func(a attempt) bool { return a.path.remote == remote }) ||
		slices.ContainsFunc(q, func(cmd command) bool { return cmd.op == opCreateSubflow && cmd.remote == remote })
}

// warnPeer logs what the policy did to a connection's peer address: a
// warning the first time on the connection, then at debug level.
func (e *Engine) warnPeer(c *conn, msg string, args ...any) {
	lvl := slog.LevelDebug
	if !c.peerWarned {
		c.peerWarned = true
		lvl = slog.LevelWarn
	}
	e.log.Log(e.ctx, lvl, msg, append([]any{"token", hexToken(c.token), "peer", c.remote}, args...)...)
}

// viewPeers appends the addresses policies may use to out: those pending
// and joined.
func (c *conn) viewPeers(out []policy.PeerAddr) []policy.PeerAddr {
	for _, p := range c.peers {
		if p.state == peerPending || p.state == peerJoined {
			out = append(out, policy.PeerAddr{ID: p.id, Addr: p.addr, Source: policy.SourceAnnounced})
		}
	}
	return out
}

// localRefusal says why addr cannot be a local address of a plan (an
// endpoint, a path's local address, an announce), or "" when it can: it
// must be a usable address of this host.
func (e *Engine) localRefusal(addr netip.Addr) string {
	if e.usable[addr] {
		return ""
	}
	if a, ok := e.addrs[addr]; ok && a.Reason != "" {
		return fmt.Sprintf("%s: %s", notUsable, a.Reason)
	}
	if _, ok := e.addrs[addr]; ok {
		return notUsable
	}
	return notUsable + ": not an address of this host"
}

// notUsable starts the reason of a local address that is not usable.
const notUsable = "address not usable"

// pathRefusal says why the engine does not create the path k of c's plan,
// or "": its local address must be usable and its remote address and port
// the peer's initial ones or an address it announced that the
// peer-address policy accepts.
func (e *Engine) pathRefusal(c *conn, k pathKey) string {
	if why := e.localRefusal(k.local); why != "" {
		return fmt.Sprintf("local %s", why)
	}
	if k.remote == c.remote {
		return ""
	}
	p := c.peerAt(k.remote)
	switch {
	case p == nil:
		return fmt.Sprintf("%s is not an address the peer announced", k.remote)
	case p.state == peerRefused:
		return fmt.Sprintf("the peer's address %s is refused: %s", k.remote, p.why)
	case p.state == peerGivenUp:
		return fmt.Sprintf("the peer's address %s was given up after %d tries", k.remote, p.fails)
	}
	return ""
}

// refusal is a part of a plan the engine refused: a path, an announce or
// (kernel mode) an endpoint, and why.
type refusal struct {
	key retryKey
	why string
}

// planItem is the kind of a refused part of a plan.
type planItem uint8

const (
	itemPath planItem = iota
	itemAnnounce
	itemEndpoint
	numPlanItems
)

var planItemNames = [numPlanItems]string{itemPath: "path", itemAnnounce: "announce", itemEndpoint: "endpoint"}

func (i planItem) String() string { return planItemNames[i] }

// item returns the kind of what r refused.
func (r refusal) item() planItem {
	if r.key.announce {
		return itemAnnounce
	}
	return itemPath
}

// keepRefusals stores the refusals of c's latest plan (found, in a buffer
// of the engine's) and counts and logs, once, those that are new.
func (e *Engine) keepRefusals(c *conn, found []refusal) {
	if slices.Equal(found, c.refusals) {
		return
	}
	for _, r := range found {
		if slices.ContainsFunc(c.refusals, func(o refusal) bool { return o.key == r.key }) {
			continue
		}
		e.counters.planRefused[r.item()]++
		addr := r.key.path.local
		if !r.key.announce {
			e.warnOnce("plan refused", "policy", e.policy.Name(), "item", r.item(), "local", addr,
				"remote", r.key.path.remote, "reason", r.why)
			continue
		}
		e.warnOnce("plan refused", "policy", e.policy.Name(), "item", r.item(), "addr", addr, "reason", r.why)
	}
	c.refusals = nil
	if len(found) > 0 {
		c.refusals = slices.Clone(found)
	}
}

// refusedWhy returns why the engine refused k of c's plan, or "".
func (c *conn) refusedWhy(k retryKey) string {
	for _, r := range c.refusals {
		if r.key == k {
			return r.why
		}
	}
	return ""
}
