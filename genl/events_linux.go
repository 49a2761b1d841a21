//go:build linux

package genl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// eventConn is the part of *genetlink.Conn a subscription uses; tests
// replace it.
type eventConn interface {
	JoinGroup(group uint32) error
	Receive() ([]genetlink.Message, []netlink.Message, error)
	SetReadDeadline(t time.Time) error
	SetReadBuffer(bytes int) error
	Close() error
}

// dialEventConn opens a generic netlink socket in the client's namespace.
func (c *client) dialEventConn() (eventConn, error) {
	// netlink.NoENOBUFS stays off: an overflow must be reported
	// (ErrEventsLost) so the caller can resynchronise.
	return dialIn(c.ns)
}

func (c *client) subscribe() (*subscription, error) {
	const op = "subscribe to events"
	if c.evGroup == 0 {
		return nil, ErrEventsUnsupported
	}
	conn, err := c.dialEvents()
	if err != nil {
		return nil, fmt.Errorf("genl: %s: dial generic netlink: %w", op, err)
	}
	if err := conn.JoinGroup(c.evGroup); err != nil {
		_ = conn.Close()
		return nil, opError(op, err)
	}
	return &subscription{c: conn, family: c.family}, nil
}

// subscription is the Linux implementation of Subscription.
type subscription struct {
	c      eventConn
	family uint16
	// mu serialises Receive calls, which own the read deadline.
	mu sync.Mutex
}

func (s *subscription) receive(ctx context.Context) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	deadline, hasDeadline := ctx.Deadline()
	if err := s.c.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("genl: receive events: set deadline: %w", err)
	}
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		_ = s.c.SetReadDeadline(time.Unix(0, 1))
	})
	defer func() {
		if !stop() {
			// The cancellation is setting a past deadline: let it
			// finish so it cannot hit the next Receive.
			<-cancelled
		}
	}()

	for {
		msgs, nmsgs, err := s.c.Receive()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if hasDeadline {
					// The socket may time out a moment before ctx does.
					<-ctx.Done()
				}
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, unix.ENOBUFS) {
				s.drain(ctx)
				return nil, fmt.Errorf("%w: %w", ErrEventsLost, err)
			}
			return nil, fmt.Errorf("genl: receive events: %w", err)
		}
		events, err := s.parse(msgs, nmsgs)
		if err != nil {
			return nil, err
		}
		if len(events) > 0 {
			return events, nil
		}
	}
}

// drainWait is how long drain waits for another queued datagram, and
// drainMax bounds the whole drain under a continuous flood.
const (
	drainWait = time.Millisecond
	drainMax  = time.Second
)

// drain reads and discards what is queued after an overflow. A netlink
// socket that overflowed stays congested, and the kernel drops every new
// event without another ENOBUFS, until a read finds its queue empty: without
// draining, events sent after the caller's resynchronisation would be lost
// silently. What drain discards is older than that resynchronisation.
func (s *subscription) drain(ctx context.Context) {
	end := time.Now().Add(drainMax)
	for ctx.Err() == nil && time.Now().Before(end) {
		if err := s.c.SetReadDeadline(time.Now().Add(drainWait)); err != nil {
			return
		}
		if _, _, err := s.c.Receive(); errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
	}
}

// parse decodes the mptcp_pm messages of one datagram.
func (s *subscription) parse(msgs []genetlink.Message, nmsgs []netlink.Message) ([]Event, error) {
	events := make([]Event, 0, len(msgs))
	for i, m := range msgs {
		if i < len(nmsgs) && nmsgs[i].Header.Type != netlink.HeaderType(s.family) {
			continue
		}
		ev, err := parseEvent(m)
		if err != nil {
			return nil, fmt.Errorf("genl: %w", err)
		}
		events = append(events, ev)
	}
	return events, nil
}

func (s *subscription) setReadBuffer(bytes int) error {
	if bytes <= 0 {
		return fmt.Errorf("genl: set read buffer: invalid size %d: must be positive", bytes)
	}
	if err := s.c.SetReadBuffer(bytes); err != nil {
		return fmt.Errorf("genl: set read buffer: %w", err)
	}
	return nil
}

func (s *subscription) close() error { return s.c.Close() }
