package linkmon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// source is the monitor's seam to the kernel. Receive blocks until the next
// message; the first message is a snapshotMsg of the existing state, and a
// source that lost messages sends a new snapshotMsg. Close may be called
// while Receive blocks: it makes a blocked or later Receive release the
// source's resources and return errSourceClosed.
type source interface {
	Receive() (msg, error)
	Close() error
}

// errSourceClosed is what Receive returns after Close.
var errSourceClosed = errors.New("linkmon: source closed")

// Counters are a link's traffic counters since the link was created.
type Counters struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
}

// Monitor watches the links, addresses and routes of one network namespace
// and delivers their changes as Deltas.
type Monitor struct {
	cfg config

	// open returns the source Run reads; sysfs reads a device's sysfs facts;
	// counters reads a link's counters; closeOS releases what New opened.
	// Tests replace them.
	open     func() (source, error)
	sysfs    func(name string) (sysInfo, error)
	counters func(index int) (Counters, error)
	closeOS  func() error

	events    chan Delta
	ready     chan struct{}
	state     atomic.Pointer[State]
	running   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New returns a Monitor configured by cfg (nil means the defaults). It opens a
// netlink handle in the namespace for dumps and Counters; Close releases it.
func New(cfg *Config) (*Monitor, error) {
	c, err := newConfig(cfg)
	if err != nil {
		return nil, err
	}
	m := newMonitor(c)
	if err := m.openOS(); err != nil {
		return nil, err
	}
	return m, nil
}

// newMonitor returns a Monitor without its OS parts; New and tests fill them.
func newMonitor(c config) *Monitor {
	return &Monitor{
		cfg:     c,
		events:  make(chan Delta),
		ready:   make(chan struct{}),
		closeOS: func() error { return nil },
	}
}

// String returns "linkmon".
func (m *Monitor) String() string { return "linkmon" }

// Events returns the channel of Deltas. It is unbuffered and never blocks the
// monitor: while the receiver is busy, changes accumulate into one Delta
// relative to the last State the receiver got. The first Delta has Initial
// set. The channel is closed when Run returns.
func (m *Monitor) Events() <-chan Delta { return m.events }

// Ready returns a channel closed once the existing links, addresses and
// routes are loaded, when State first describes the namespace.
func (m *Monitor) Ready() <-chan struct{} { return m.ready }

// State returns a copy of the latest State; before Ready it is empty.
func (m *Monitor) State() State {
	if s := m.state.Load(); s != nil {
		return s.Clone()
	}
	return State{Links: map[int]Link{}}
}

// Counters reads the traffic counters of link index from the kernel.
func (m *Monitor) Counters(index int) (Counters, error) {
	c, err := m.counters(index)
	if err != nil {
		return Counters{}, fmt.Errorf("linkmon: counters of link %d: %w", index, err)
	}
	return c, nil
}

// Close releases the netlink handle New opened. Call it after Run returned.
func (m *Monitor) Close() error {
	m.closeOnce.Do(func() { m.closeErr = m.closeOS() })
	return m.closeErr
}

// Run subscribes to link, address and route changes, loads the existing
// state and delivers Deltas on Events until ctx is done (then it returns nil)
// or the kernel connection fails for good. Run may be called once.
func (m *Monitor) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("linkmon: run called twice")
	}
	defer close(m.events)
	src, err := m.open()
	if err != nil {
		return err
	}
	msgs := make(chan msg, 64)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			mm, err := src.Receive()
			if err != nil {
				errc <- err
				return
			}
			select {
			case msgs <- mm:
			case <-ctx.Done():
				// Run is returning and closes src: the next Receive
				// reports it and releases the source's resources.
			}
		}
	})
	defer wg.Wait()
	defer src.Close()
	err = m.loop(ctx, msgs, errc)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// loop is the single owner of the table: it applies messages, debounces, and
// hands Deltas to the receiver.
func (m *Monitor) loop(ctx context.Context, msgs <-chan msg, errc <-chan error) error {
	var (
		t     = newTable(&m.cfg, m.sysfs)
		log   = m.cfg.log
		timer = time.NewTimer(time.Hour)

		loaded  bool      // the first snapshot arrived
		dirty   bool      // messages arrived since the last flush
		first   time.Time // when the first of them arrived
		current State     // the latest State built
		started bool      // current holds a State (the first flush happened)

		delivered State // the last State the receiver got
		sentFirst bool  // the Initial delta was received
		pending   Delta // what the receiver gets next, when out != nil
		pendState State // the State pending describes
		pendDesc  string
		debug     = log.Enabled(ctx, slog.LevelDebug)
		out       chan<- Delta
	)
	timer.Stop()
	defer timer.Stop()

	// apply applies one message and reports whether it may have changed
	// the State.
	apply := func(mm msg) bool {
		eff := t.apply(mm)
		if _, ok := mm.(snapshotMsg); ok {
			if loaded {
				log.Info("re-listed links, addresses and routes", t.logAttrs()...)
			}
			loaded = true
		}
		return eff != effectNone
	}
	// flush ends the burst: it builds the State and, when it differs from
	// what the receiver last got, makes the Delta pending.
	flush := func() {
		timer.Stop()
		dirty = false
		t.endBurst()
		if !loaded {
			return
		}
		st := t.state()
		if started && st.Equal(current) {
			return
		}
		published := st.Clone()
		m.state.Store(&published)
		if !started {
			log.Info("loaded links, addresses and routes", t.logAttrs()...)
			close(m.ready)
		}
		current, started = st, true
		switch {
		case !sentFirst:
			pending = diff(State{}, st, true)
		case st.Equal(delivered):
			out = nil
			return
		default:
			pending = diff(delivered, st, false)
		}
		pendState, out = st, m.events
		if debug {
			// Described now: once sent, pending belongs to the receiver.
			pendDesc = pending.String()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return fmt.Errorf("linkmon: %w", err)
		case mm := <-msgs:
			if !apply(mm) {
				// Nothing to settle: a Delta due is not put off.
				continue
			}
			now := time.Now()
			if !dirty {
				dirty, first = true, now
			}
			if t.complete() {
				// Complete by itself: reported at once, with the
				// messages already queued behind it (the subscriptions
				// are read in no particular order), unless one of them
				// may be completed by later messages.
			queued:
				for range cap(msgs) {
					select {
					case mm := <-msgs:
						apply(mm)
					default:
						break queued
					}
				}
				if t.complete() {
					flush()
					continue
				}
			}
			timer.Reset(min(m.cfg.settle, first.Add(m.cfg.maxSettle).Sub(now)))
		case <-timer.C:
			flush()
		case out <- pending:
			log.Debug("delta delivered", "change", pendDesc)
			delivered, sentFirst, out = pendState, true, nil
		}
	}
}
