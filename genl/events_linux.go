//go:build linux

package genl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// eventConn is the event socket of a subscription; tests replace it.
type eventConn interface {
	JoinGroup(group uint32) error
	// Read reads one datagram into b. With wait it blocks until one is
	// queued or the read deadline passes; without, it returns
	// errWouldBlock at once when none is queued.
	Read(b []byte, wait bool) (int, error)
	SetReadDeadline(t time.Time) error
	// SetReadBuffer sets the receive buffer; ReadBuffer returns the
	// size the kernel granted.
	SetReadBuffer(bytes int) error
	ReadBuffer() (int, error)
	Close() error
}

// errWouldBlock is what eventConn.Read returns without wait when no
// datagram is queued.
var errWouldBlock = errors.New("genl: no datagram queued")

// eventSocket is the eventConn of a real generic netlink socket. It reads
// datagrams itself, through the socket's syscall.RawConn, because
// genetlink.Conn.Receive peeks at every datagram to size a new buffer:
// two system calls and several allocations per event.
type eventSocket struct {
	*genetlink.Conn
	rc     syscall.RawConn
	closed atomic.Bool

	// readFn is readFD, bound once so that a Read allocates nothing; it
	// works on the fields below, which belong to the Read in progress
	// (the subscription serialises them).
	readFn func(fd uintptr) bool
	b      []byte
	wait   bool
	n      int
	err    error
}

// dialEventConn opens a generic netlink socket in the client's namespace.
func (c *client) dialEventConn() (eventConn, error) {
	// netlink.NoENOBUFS stays off: an overflow must be reported
	// (ErrEventsLost) so the caller can resynchronise.
	conn, err := dialIn(c.ns)
	if err != nil {
		return nil, err
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	s := &eventSocket{Conn: conn, rc: rc}
	s.readFn = s.readFD
	return s, nil
}

// Read implements eventConn with one read(2) per datagram, straight into
// b. The socket is non-blocking; waiting goes through the runtime's poller,
// so the read deadline and Close interrupt it. A datagram that fills b is
// reported as truncated: read(2) cannot tell whether more was cut off.
func (c *eventSocket) Read(b []byte, wait bool) (int, error) {
	c.b, c.wait = b, wait
	err := c.rc.Read(c.readFn)
	n, rerr := c.n, c.err
	c.b, c.n, c.err = nil, 0, nil
	switch {
	case err != nil && c.closed.Load():
		// The runtime reports "use of closed file"; callers look for
		// net.ErrClosed.
		return 0, net.ErrClosed
	case err != nil:
		return 0, err
	case rerr == unix.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n >= len(b):
		return 0, fmt.Errorf("datagram of %d bytes or more truncated", len(b))
	}
	return n, nil
}

// readFD reads one datagram from fd; it returns false, to wait for the
// socket to become readable, only when Read waits and nothing is queued.
func (c *eventSocket) readFD(fd uintptr) bool {
	for {
		c.n, c.err = unix.Read(int(fd), c.b)
		if c.err != unix.EINTR {
			break
		}
	}
	return !c.wait || c.err != unix.EAGAIN
}

// SetReadBuffer implements eventConn with SO_RCVBUFFORCE, which a holder
// of CAP_NET_ADMIN may set beyond net.core.rmem_max, and SO_RCVBUF, which
// the kernel caps at it, without.
func (c *eventSocket) SetReadBuffer(bytes int) error {
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bytes)
	}); err != nil {
		return err
	}
	switch {
	case serr == nil:
		return nil
	case errors.Is(serr, unix.EPERM):
		return c.Conn.SetReadBuffer(bytes)
	}
	return os.NewSyscallError("setsockopt SO_RCVBUFFORCE", serr)
}

// ReadBuffer implements eventConn: SO_RCVBUF, which the kernel reports
// doubled (it counts its own bookkeeping in).
func (c *eventSocket) ReadBuffer() (int, error) {
	var n int
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		n, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, os.NewSyscallError("getsockopt SO_RCVBUF", serr)
	}
	return n, nil
}

// SetReadDeadline implements eventConn. After Close it reports
// net.ErrClosed, as Read does: a Receive called after Close, or one that
// starts while Close runs, must see the error the daemon looks for at
// shutdown, not the runtime's "use of closed file".
func (c *eventSocket) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	if err != nil && c.closed.Load() {
		return net.ErrClosed
	}
	return err
}

// Close implements eventConn.
func (c *eventSocket) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
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
	return &subscription{c: conn, family: c.family, buf: make([]byte, recvBufSize)}, nil
}

// recvBufSize is the size of a subscription's receive buffer. An event
// datagram is a few hundred bytes (the kernel allocates at most
// NLMSG_GOODSIZE, a page, for one), so a datagram never comes near it.
//
// maxBatch bounds the datagrams one Receive reads after the first, so that
// a continuous flood still lets Receive return.
const (
	recvBufSize = 64 << 10
	maxBatch    = 1024
)

// subscription is the Linux implementation of Subscription.
type subscription struct {
	c      eventConn
	family uint16

	// mu serialises Receive calls, which own the fields below and the
	// socket's read deadline.
	mu sync.Mutex
	// buf receives every datagram; events are decoded out of it into
	// values, so nothing returned refers to it.
	buf []byte
	// deadline is the read deadline set on the socket, valid only when
	// deadlineSet; a cancellation or a drain leaves it unknown.
	deadline    time.Time
	deadlineSet bool
	// pending is an error met after a Receive had already decoded events:
	// those are returned first and the error by the next Receive.
	pending error
}

// receive returns the events of the first datagram it can read, waiting for
// one, and of every datagram already queued behind it.
func (s *subscription) receive(ctx context.Context) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pending; err != nil {
		s.pending = nil
		return nil, err
	}

	deadline, hasDeadline := ctx.Deadline()
	if !s.deadlineSet || !deadline.Equal(s.deadline) {
		if err := s.c.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("genl: receive events: set deadline: %w", err)
		}
		s.deadline, s.deadlineSet = deadline, true
	}
	if ctx.Done() != nil {
		cancelled := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(cancelled)
			_ = s.c.SetReadDeadline(time.Unix(0, 1))
		})
		defer func() {
			if !stop() {
				// The cancellation is setting a past deadline: let it
				// finish so it cannot hit the next Receive, which sets
				// the deadline again.
				<-cancelled
				s.deadlineSet = false
			}
		}()
	}

	var events []Event
	for reads := 0; ; reads++ {
		wait := len(events) == 0
		if !wait && reads >= maxBatch {
			return events, nil
		}
		n, err := s.c.Read(s.buf, wait)
		if err != nil {
			if wait {
				return nil, s.readError(ctx, hasDeadline, err)
			}
			// A deadline hit now is ctx's, or its cancellation's: the
			// events read so far are the answer, not an error.
			if errors.Is(err, errWouldBlock) || errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() != nil {
				return events, nil
			}
			s.pending = s.readError(ctx, hasDeadline, err)
			return events, nil
		}
		// Netlink datagrams are 4-byte aligned; should one not be, the
		// buffer has room for the padding message parsing expects.
		events, err = parseDatagram(events, s.buf[:nlmsgAlign(n)], s.family)
		if err != nil {
			if len(events) == 0 {
				return nil, err
			}
			s.pending = err
			return events, nil
		}
	}
}

// readError converts an error of a read into what Receive returns. After
// an overflow it drains the socket first.
func (s *subscription) readError(ctx context.Context, hasDeadline bool, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) && hasDeadline {
		// The socket may time out a moment before ctx does.
		<-ctx.Done()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, unix.ENOBUFS) {
		s.drain(ctx)
		return fmt.Errorf("%w: %w", ErrEventsLost, err)
	}
	return fmt.Errorf("genl: receive events: %w", err)
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
	s.deadlineSet = false
	end := time.Now().Add(drainMax)
	for ctx.Err() == nil && time.Now().Before(end) {
		if err := s.c.SetReadDeadline(time.Now().Add(drainWait)); err != nil {
			return
		}
		_, err := s.c.Read(s.buf, true)
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			return
		}
	}
}

// nlmsgAlign rounds n up to the netlink alignment (NLMSG_ALIGN).
func nlmsgAlign(n int) int {
	return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
}

// parseDatagram appends to events the events of the mptcp_pm messages
// (netlink type family) in the datagram b; the kernel may put several
// messages, each 4-byte aligned, in one datagram. Messages of other types
// are skipped. On error it returns events as they were, without any of b's.
func parseDatagram(events []Event, b []byte, family uint16) ([]Event, error) {
	had := len(events)
	for len(b) >= unix.NLMSG_HDRLEN {
		// UnmarshalBinary takes a message followed by more bytes: it
		// checks the header's length against b and cuts Data to it.
		var m netlink.Message
		if err := m.UnmarshalBinary(b); err != nil {
			return events[:had], fmt.Errorf("genl: decode event datagram: %w", err)
		}
		if next := nlmsgAlign(int(m.Header.Length)); next < len(b) {
			b = b[next:]
		} else {
			b = nil
		}
		if m.Header.Type != netlink.HeaderType(family) {
			continue
		}
		var gm genetlink.Message
		if err := gm.UnmarshalBinary(m.Data); err != nil {
			return events[:had], fmt.Errorf("genl: decode event: %w", err)
		}
		ev, err := parseEvent(gm)
		if err != nil {
			return events[:had], fmt.Errorf("genl: %w", err)
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

func (s *subscription) readBuffer() (int, error) {
	n, err := s.c.ReadBuffer()
	if err != nil {
		return 0, fmt.Errorf("genl: read buffer: %w", err)
	}
	return n, nil
}

func (s *subscription) close() error { return s.c.Close() }
