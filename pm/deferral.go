package pm

import (
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// hold gathers what one reconciliation of a connection holds back: the
// earliest time a held path or announce is due, and the smallest byte
// count that brings one forward (0: none waits on bytes).
type hold struct {
	until time.Time
	bytes uint64
	any   bool
}

// joinFloor returns when c is old enough for joins (Config.MinJoinAge);
// zero when there is no floor or c's age is unknown.
func (e *Engine) joinFloor(c *conn) time.Time {
	if e.cfg.MinJoinAge <= 0 || c.adopted || c.created.IsZero() {
		return time.Time{}
	}
	return c.created.Add(e.cfg.MinJoinAge)
}

// holds reports whether an item of c (a path to create, an address to
// announce) with the policy's deferral d waits at now, and rewrites d to
// what holds it back: the time it is due at the latest and the bytes that
// bring it forward (the zero Deferral when it does not wait). The floor
// (Config.MinJoinAge) holds it whatever the bytes: a policy's deferral
// that ends later than the floor keeps its byte threshold, one that ends
// earlier gives way to the floor. h gathers the item.
func (e *Engine) holds(c *conn, d *policy.Deferral, now time.Time, h *hold) bool {
	floor := e.joinFloor(c)
	sent, received := e.connBytes(c)
	byPolicy := d.Holds(now, sent, received)
	switch {
	case now.Before(floor) && byPolicy && d.NotBefore.After(floor):
		// Bytes can bring it forward to the floor, not before.
	case now.Before(floor):
		*d = policy.Deferral{NotBefore: floor}
	case byPolicy:
	default:
		*d = policy.Deferral{}
		return false
	}
	h.until = earliest(h.until, d.NotBefore)
	if d.AfterBytes > 0 && (h.bytes == 0 || d.AfterBytes < h.bytes) {
		h.bytes = d.AfterBytes
	}
	h.any = true
	return true
}

// watched is a connection in the byte watch: the smallest count above
// which a held path or announce of it is due, and the bytes it had sent
// and received at the last read. Only the connections that wait on bytes
// carry these, in the watch, not in conn.
type watched struct {
	c                         *conn
	threshold, sent, received uint64
}

// holdBack is a policy.Deferral as a connection keeps it for Status, in
// 16 bytes instead of 32: every desired path of every connection has
// one. until is NotBefore in Unix nanoseconds, 0 when nothing holds the
// item back.
type holdBack struct {
	until int64
	bytes uint64
}

// holdOf returns d as a holdBack.
func holdOf(d policy.Deferral) holdBack {
	if d.NotBefore.IsZero() {
		return holdBack{}
	}
	return holdBack{until: d.NotBefore.UnixNano(), bytes: d.AfterBytes}
}

// held reports whether something holds the item back.
func (h holdBack) held() bool { return h.until != 0 }

// notBefore is when the item is due at the latest; zero when not held.
func (h holdBack) notBefore() time.Time {
	if h.until == 0 {
		return time.Time{}
	}
	return time.Unix(0, h.until)
}

// moved is the larger of the bytes sent and received, as last read.
func (w *watched) moved() uint64 { return max(w.sent, w.received) }

// connBytes returns the bytes c had sent and received at the last read;
// 0 unless c waits on bytes.
func (e *Engine) connBytes(c *conn) (sent, received uint64) {
	if w := e.byteWatch[c.token]; w != nil {
		return w.sent, w.received
	}
	return 0, 0
}

// applyHold records what a reconciliation of c held back: c is in the
// byte watch while a held item waits on bytes (and, unread, while the
// floor holds items whose bytes came), and the counters count the
// connection's first hold and its release.
func (e *Engine) applyHold(c *conn, h *hold) {
	switch {
	case h.any && !c.held:
		e.counters.deferral.held++
	case !h.any && c.held:
		if w := e.byteWatch[c.token]; w != nil && w.moved() > w.threshold {
			e.counters.deferral.releasedBytes++
		} else {
			e.counters.deferral.releasedTime++
		}
	}
	c.held = h.any
	w := e.byteWatch[c.token]
	switch {
	case !h.any || e.cfg.Bytes == nil:
		e.unwatchBytes(c)
		return
	case w == nil && h.bytes == 0:
		return
	case w == nil:
		w = &watched{c: c}
		e.byteWatch[c.token] = w
	}
	// A connection whose bytes crossed the threshold while the floor
	// holds it stays in the watch, unread (threshold 0), so that its
	// bytes still count when the floor ends.
	w.threshold = h.bytes
	if h.bytes > 0 && !e.bytesReading && e.bytesWake.heapIndex < 0 {
		e.setWake(&e.bytesWake, e.now().Add(e.cfg.BytesEvery))
	}
}

// unwatchBytes takes c out of the byte watch.
func (e *Engine) unwatchBytes(c *conn) {
	if e.byteWatch[c.token] == nil {
		return
	}
	delete(e.byteWatch, c.token)
	if len(e.byteWatch) == 0 {
		e.setWake(&e.bytesWake, time.Time{})
	}
}

// bytesResult is the answer of one byte read.
type bytesResult struct {
	counts []byteCount
	err    error
	// at is when the read returned: the latency of the commands a
	// crossed threshold causes counts from then.
	at time.Time
}

type byteCount struct {
	token          uint32
	sent, received uint64
}

// bytesRetry is the period of the byte reads after one failed.
const bytesRetry = time.Second

// readBytes starts a read of the byte counters of the connections in the
// byte watch, outside the loop; applyBytes gets its answer.
func (e *Engine) readBytes() {
	if e.bytesReading {
		return
	}
	var tokens []uint32
	for t, w := range e.byteWatch {
		if w.threshold > 0 {
			tokens = append(tokens, t)
		}
	}
	if len(tokens) == 0 {
		return
	}
	e.bytesReading = true
	e.counters.deferral.byteReads++
	go func() {
		var r bytesResult
		r.err = e.cfg.Bytes.ReadBytes(tokens, func(token uint32, sent, received uint64) {
			r.counts = append(r.counts, byteCount{token: token, sent: sent, received: received})
		})
		r.at = e.now()
		e.bytesC <- r
	}()
}

// applyBytes applies a byte read: a connection that crossed its threshold
// is reconciled. The next read is due BytesEvery later while connections
// still wait on bytes.
func (e *Engine) applyBytes(r bytesResult) {
	e.bytesReading = false
	next := e.cfg.BytesEvery
	if r.err != nil {
		e.counters.deferral.byteReadErrors++
		e.warnOnce("cannot read the connections' byte counters; deferred paths wait for their time", "error", r.err)
		next = max(next, bytesRetry)
	}
	e.trigger = earliest(e.trigger, r.at)
	for _, bc := range r.counts {
		w := e.byteWatch[bc.token]
		if w == nil {
			continue
		}
		w.sent, w.received = bc.sent, bc.received
		if w.moved() > w.threshold {
			e.markDirty(w.c)
		}
	}
	if len(e.byteWatch) > 0 {
		e.setWake(&e.bytesWake, e.now().Add(next))
	}
}
