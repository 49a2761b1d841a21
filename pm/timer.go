package pm

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// wake is an entry of the engine's timer heap: the earliest time its owner
// (a connection, or kernel mode) has a backoff running out. heapIndex is the
// entry's position in the heap, -1 when it is not in it.
type wake struct {
	at        time.Time
	heapIndex int
	conn      *conn // nil for kernel mode, the sweep and the byte reads
	// sweep marks the connection sweep's wake (Config.SweepEvery);
	// repair the subflow repair's checks (kernel mode); bytes the next
	// read of the byte counters of held connections (Config.Bytes).
	sweep, repair, bytes bool
}

// wakeHeap orders wakes by time.
type wakeHeap []*wake

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}

func (h *wakeHeap) Push(x any) {
	w := x.(*wake)
	w.heapIndex = len(*h)
	*h = append(*h, w)
}

func (h *wakeHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.heapIndex = -1
	return w
}

// setWake schedules w at t, or unschedules it when t is zero.
func (e *Engine) setWake(w *wake, t time.Time) {
	switch {
	case t.IsZero() && w.heapIndex >= 0:
		heap.Remove(&e.wakes, w.heapIndex)
	case t.IsZero():
	case w.heapIndex >= 0:
		w.at = t
		heap.Fix(&e.wakes, w.heapIndex)
	default:
		w.at = t
		heap.Push(&e.wakes, w)
	}
	w.at = t
}

// armTimer makes the loop's timer fire at the earliest wake.
func (e *Engine) armTimer() {
	var at time.Time
	if len(e.wakes) > 0 {
		at = e.wakes[0].at
	}
	if at.Equal(e.timerAt) {
		return
	}
	if e.timerStop != nil {
		e.timerStop()
		e.timerStop, e.timerC = nil, nil
	}
	e.timerAt = at
	if !at.IsZero() {
		e.timerC, e.timerStop = e.after(max(at.Sub(e.now()), 0))
	}
}

// realAfter is the production timer.
func realAfter(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// realJitter takes up to a quarter off d.
func realJitter(d time.Duration) time.Duration {
	if q := int64(d / 4); q > 0 {
		return d - time.Duration(rand.Int64N(q+1))
	}
	return d
}

// retry is the backoff state of one path, announce or endpoint.
type retry struct {
	// fails counts the failures in a row.
	fails int
	// until is when the next try may happen.
	until time.Time
	// lastErr is the last failure, in the kernel's words.
	lastErr string
}

// fail records a failure at now and returns the time of the next try.
func (e *Engine) fail(r *retry, now time.Time, err string) time.Time {
	r.fails++
	r.until = now.Add(e.jitter(e.cfg.Backoff.delay(r.fails)))
	r.lastErr = err
	e.counters.backoffs++
	e.retryAt = r.until
	return r.until
}

// waiting reports whether r forbids a try at now.
func (r *retry) waiting(now time.Time) bool { return r != nil && now.Before(r.until) }

// earliest returns the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
