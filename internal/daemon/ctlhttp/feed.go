package ctlhttp

import (
	"context"
	"sync"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// DefaultFeedBuffer is each subscriber's buffer when NewFeed gets 0.
const DefaultFeedBuffer = 256

// Feed hands the engine's decisions to any number of subscribers without
// ever making the engine wait: Publish gives each subscriber what fits in
// its buffer and counts what does not, and the subscriber is told how
// many decisions it missed (an Event of Kind ctlapi.EventDropped) as soon as it
// has room again. Its Publish method is what pm.Config.Observe wants.
type Feed struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	buffer int
}

type subscriber struct {
	ch      chan ctlapi.Event
	dropped uint64
}

// NewFeed returns a Feed whose subscribers each buffer buffer events; 0
// means DefaultFeedBuffer.
func NewFeed(buffer int) *Feed {
	if buffer <= 0 {
		buffer = DefaultFeedBuffer
	}
	return &Feed{subs: make(map[*subscriber]struct{}), buffer: buffer}
}

// Publish hands d to every subscriber that has room, and never blocks.
func (f *Feed) Publish(d pmstate.Decision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if s.dropped > 0 {
			select {
			case s.ch <- ctlapi.Event{Decision: pmstate.Decision{Time: d.Time, Kind: ctlapi.EventDropped}, Dropped: s.dropped}:
				s.dropped = 0
			default:
				s.dropped++
				continue
			}
		}
		select {
		case s.ch <- ctlapi.Event{Decision: d}:
		default:
			s.dropped++
		}
	}
}

// Subscribe returns the decisions published from now on, until ctx is
// done, when the channel is closed.
func (f *Feed) Subscribe(ctx context.Context) <-chan ctlapi.Event {
	s := &subscriber{ch: make(chan ctlapi.Event, f.buffer)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, s)
		close(s.ch)
		f.mu.Unlock()
	}()
	return s.ch
}

// Subscribers returns the number of subscribers.
func (f *Feed) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}
