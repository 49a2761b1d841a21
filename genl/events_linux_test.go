//go:build linux

package genl

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recvResult is what one fakeConn.Read returns: a datagram or an error.
type recvResult struct {
	b   []byte
	err error
}

// fakeConn is an eventConn whose Read blocks until a result is queued or
// the read deadline passes, like a netlink socket.
type fakeConn struct {
	recv      chan recvResult
	receiving chan struct{} // gets a value each time a waiting Read starts

	mu        sync.Mutex
	deadline  time.Time
	deadlines int           // SetReadDeadline calls
	kick      chan struct{} // closed when the deadline changes
	joined    []uint32
	joinErr   error
	readBuf   int
	closed    bool
}

func newFakeConn() *fakeConn {
	return &fakeConn{
		recv:      make(chan recvResult, maxBatch+16),
		receiving: make(chan struct{}, maxBatch+16),
		kick:      make(chan struct{}),
	}
}

func (f *fakeConn) JoinGroup(group uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.joinErr != nil {
		return f.joinErr
	}
	f.joined = append(f.joined, group)
	return nil
}

func (f *fakeConn) Read(b []byte, wait bool) (int, error) {
	deliver := func(r recvResult) (int, error) {
		if r.err != nil {
			return 0, r.err
		}
		return copy(b, r.b), nil
	}
	f.mu.Lock()
	dl := f.deadline
	f.mu.Unlock()
	if !dl.IsZero() && !time.Now().Before(dl) {
		return 0, &netlink.OpError{Op: "receive", Err: os.ErrDeadlineExceeded}
	}
	if !wait {
		select {
		case r := <-f.recv:
			return deliver(r)
		default:
			return 0, errWouldBlock
		}
	}
	f.receiving <- struct{}{}
	for {
		f.mu.Lock()
		dl, kick := f.deadline, f.kick
		f.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, &netlink.OpError{Op: "receive", Err: os.ErrDeadlineExceeded}
			}
			tm := time.NewTimer(d)
			defer tm.Stop()
			timeout = tm.C
		}
		select {
		case r := <-f.recv:
			return deliver(r)
		case <-timeout:
		case <-kick:
		}
	}
}

func (f *fakeConn) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadline = t
	f.deadlines++
	close(f.kick)
	f.kick = make(chan struct{})
	return nil
}

func (f *fakeConn) SetReadBuffer(bytes int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readBuf = bytes
	return nil
}

func (f *fakeConn) ReadBuffer() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 2 * f.readBuf, nil
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// subscribeFake returns a Subscription over a fake event socket.
func subscribeFake(t *testing.T) (*Subscription, *fakeConn) {
	t.Helper()
	c := testClient(t, nil)
	fc := newFakeConn()
	c.c.dialEvents = func() (eventConn, error) { return fc, nil }
	s, err := c.Subscribe()
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, fc
}

// datagram is one datagram holding msgs as messages of the mptcp_pm
// family.
func datagram(t *testing.T, msgs ...genetlink.Message) recvResult {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		b = append(b, netlinkMsg(t, testFamilyID, m)...)
	}
	return recvResult{b: b}
}

// netlinkMsg encodes m as a netlink message of type typ.
func netlinkMsg(t *testing.T, typ netlink.HeaderType, m genetlink.Message) []byte {
	t.Helper()
	gb, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal generic netlink message: %v", err)
	}
	nm := netlink.Message{Header: netlink.Header{Type: typ}, Data: gb}
	nm.Header.Length = uint32(unix.NLMSG_HDRLEN + len(gb))
	nb, err := nm.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal netlink message: %v", err)
	}
	return nb
}

func closedEvent(t *testing.T, tok uint32) genetlink.Message {
	return eventMsg(t, EventClosed, u32(_MPTCP_ATTR_TOKEN, tok))
}

func TestSubscribe(t *testing.T) {
	t.Parallel()

	t.Run("joins the events group", func(t *testing.T) {
		t.Parallel()
		_, fc := subscribeFake(t)
		if diff := cmp.Diff([]uint32{testEvGroup}, fc.joined); diff != "" {
			t.Errorf("unexpected groups (-want +got):\n%s", diff)
		}
	})

	t.Run("no events group", func(t *testing.T) {
		t.Parallel()
		f := testFamily
		f.groups = f.groups[:1]
		cl, err := newClient(genltest.Dial(serveFamily(f, nil)), nil)
		if err != nil {
			t.Fatalf("newClient: %v", err)
		}
		t.Cleanup(func() { _ = cl.close() })
		cl.dialEvents = func() (eventConn, error) {
			t.Error("Subscribe dialled without an events group")
			return newFakeConn(), nil
		}
		if _, err := (&Client{c: cl}).Subscribe(); !errors.Is(err, ErrEventsUnsupported) {
			t.Fatalf("Subscribe error = %v, want ErrEventsUnsupported", err)
		}
	})

	t.Run("no permission", func(t *testing.T) {
		t.Parallel()
		c := testClient(t, nil)
		fc := newFakeConn()
		fc.joinErr = &netlink.OpError{Op: "join-group", Err: os.NewSyscallError("setsockopt", unix.EPERM)}
		c.c.dialEvents = func() (eventConn, error) { return fc, nil }
		_, err := c.Subscribe()
		var gerr *Error
		if !errors.As(err, &gerr) || !errors.Is(err, os.ErrPermission) {
			t.Fatalf("Subscribe error = %v (%T), want *Error matching os.ErrPermission", err, err)
		}
		if diff := cmp.Diff("genl: subscribe to events: operation not permitted", err.Error()); diff != "" {
			t.Errorf("unexpected error (-want +got):\n%s", diff)
		}
		if !fc.closed {
			t.Error("the socket was not closed")
		}
	})
}

func TestReceive(t *testing.T) {
	t.Parallel()

	t.Run("all events of a datagram", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		r := datagram(t, closedEvent(t, 1), eventMsg(t, EventRemoved, u32(_MPTCP_ATTR_TOKEN, 2), u8(_MPTCP_ATTR_REM_ID, 3)))
		// A message of another family in the same datagram is skipped.
		r.b = append(r.b, netlinkMsg(t, netlink.Error, closedEvent(t, 99))...)
		fc.recv <- r
		got, err := s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		want := []Event{{Type: EventClosed, Token: 1}, {Type: EventRemoved, Token: 2, RemoteID: 3}}
		if diff := cmp.Diff(want, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
	})

	t.Run("ENOBUFS is ErrEventsLost and the stream goes on", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		fc.recv <- recvResult{err: &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", unix.ENOBUFS)}}
		// Queued behind the overflow: older than the caller's resync, so
		// Receive drains it before reporting the loss.
		fc.recv <- datagram(t, closedEvent(t, 4))
		_, err := s.Receive(context.Background())
		if !errors.Is(err, ErrEventsLost) || !errors.Is(err, unix.ENOBUFS) {
			t.Fatalf("Receive error = %v, want ErrEventsLost wrapping ENOBUFS", err)
		}
		if n := len(fc.recv); n != 0 {
			t.Fatalf("%d datagrams still queued after the loss, want them drained", n)
		}
		fc.recv <- datagram(t, closedEvent(t, 5))
		got, err := s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive after ENOBUFS: %v", err)
		}
		if diff := cmp.Diff([]Event{{Type: EventClosed, Token: 5}}, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
	})

	t.Run("malformed event is an error, the next one is fine", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		fc.recv <- datagram(t, eventMsg(t, EventClosed, raw(_MPTCP_ATTR_TOKEN, 1)))
		fc.recv <- datagram(t, closedEvent(t, 6))
		if _, err := s.Receive(context.Background()); err == nil {
			t.Fatal("Receive accepted a 1-byte token")
		}
		got, err := s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if diff := cmp.Diff([]Event{{Type: EventClosed, Token: 6}}, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
	})

	t.Run("cancel unblocks, the next Receive works", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := s.Receive(ctx)
			errc <- err
		}()
		<-fc.receiving
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Receive error = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Receive did not return after cancel")
		}
		fc.recv <- datagram(t, closedEvent(t, 7))
		got, err := s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive after cancel: %v", err)
		}
		if diff := cmp.Diff([]Event{{Type: EventClosed, Token: 7}}, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		s, _ := subscribeFake(t)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := s.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive error = %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("done context returns at once", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		fc.recv <- datagram(t, closedEvent(t, 8))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Receive(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Receive error = %v, want context.Canceled", err)
		}
		if len(fc.recv) != 1 {
			t.Error("Receive read from the socket with a done context")
		}
	})

	t.Run("one Receive returns every queued datagram", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		fc.recv <- datagram(t, closedEvent(t, 10))
		fc.recv <- datagram(t, closedEvent(t, 11), closedEvent(t, 12))
		fc.recv <- datagram(t, closedEvent(t, 13))
		got, err := s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		want := []Event{{Type: EventClosed, Token: 10}, {Type: EventClosed, Token: 11}, {Type: EventClosed, Token: 12}, {Type: EventClosed, Token: 13}}
		if diff := cmp.Diff(want, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
		if n := len(fc.receiving); n != 1 {
			t.Errorf("Receive waited %d times, want once", n)
		}
	})

	t.Run("a batch is bounded", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		for i := range maxBatch + 3 {
			fc.recv <- datagram(t, closedEvent(t, uint32(i)))
		}
		for _, want := range []int{maxBatch, 3} {
			got, err := s.Receive(context.Background())
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			if len(got) != want {
				t.Errorf("Receive returned %d events, want %d", len(got), want)
			}
		}
	})

	t.Run("an error after decoded events comes with the next Receive", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		fc.recv <- datagram(t, closedEvent(t, 20))
		fc.recv <- datagram(t, closedEvent(t, 21), eventMsg(t, EventClosed, raw(_MPTCP_ATTR_TOKEN, 1)))
		fc.recv <- datagram(t, closedEvent(t, 22))
		got, err := s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		// The malformed datagram is refused whole, like on its own.
		if diff := cmp.Diff([]Event{{Type: EventClosed, Token: 20}}, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
		if got, err := s.Receive(context.Background()); err == nil || len(got) != 0 {
			t.Fatalf("second Receive = %+v, %v; want the decoding error", got, err)
		}
		got, err = s.Receive(context.Background())
		if err != nil {
			t.Fatalf("third Receive: %v", err)
		}
		if diff := cmp.Diff([]Event{{Type: EventClosed, Token: 22}}, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
	})

	t.Run("ENOBUFS after decoded events", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		fc.recv <- datagram(t, closedEvent(t, 30))
		fc.recv <- recvResult{err: &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", unix.ENOBUFS)}}
		fc.recv <- datagram(t, closedEvent(t, 31))
		got, err := s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if diff := cmp.Diff([]Event{{Type: EventClosed, Token: 30}}, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
		if n := len(fc.recv); n != 0 {
			t.Fatalf("%d datagrams still queued after the overflow, want them drained", n)
		}
		if _, err := s.Receive(context.Background()); !errors.Is(err, ErrEventsLost) {
			t.Fatalf("second Receive error = %v, want ErrEventsLost", err)
		}
		fc.recv <- datagram(t, closedEvent(t, 32))
		got, err = s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive after the loss: %v", err)
		}
		if diff := cmp.Diff([]Event{{Type: EventClosed, Token: 32}}, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected events (-want +got):\n%s", diff)
		}
	})

	t.Run("the read deadline is set only when it changes", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		far := time.Now().Add(time.Hour)
		dctx, dcancel := context.WithDeadline(context.Background(), far)
		defer dcancel()
		cctx, ccancel := context.WithCancel(context.Background())
		steps := []struct {
			name string
			ctx  context.Context
			want int // SetReadDeadline calls so far
		}{
			{"first", context.Background(), 1},
			{"same, no deadline", context.Background(), 1},
			{"cancellable, no deadline", cctx, 1},
			{"a deadline", dctx, 2},
			{"the same deadline", dctx, 2},
			{"no deadline again", context.Background(), 3},
		}
		for _, st := range steps {
			fc.recv <- datagram(t, closedEvent(t, 40))
			if _, err := s.Receive(st.ctx); err != nil {
				t.Fatalf("%s: Receive: %v", st.name, err)
			}
			fc.mu.Lock()
			got := fc.deadlines
			fc.mu.Unlock()
			if got != st.want {
				t.Errorf("%s: %d SetReadDeadline calls, want %d", st.name, got, st.want)
			}
		}
		// A cancellation leaves a past deadline: the next Receive clears it.
		go func() {
			<-fc.receiving
			ccancel()
		}()
		if _, err := s.Receive(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Receive error = %v, want context.Canceled", err)
		}
		fc.recv <- datagram(t, closedEvent(t, 41))
		if _, err := s.Receive(context.Background()); err != nil {
			t.Fatalf("Receive after a cancellation: %v", err)
		}
	})

	t.Run("returned events do not share the receive buffer", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		ev := func(tok uint32, addr string) genetlink.Message {
			return eventMsg(t, EventAnnounced, u32(_MPTCP_ATTR_TOKEN, tok), u16(_MPTCP_ATTR_FAMILY, unix.AF_INET6),
				ip(_MPTCP_ATTR_DADDR6, addr), u8(_MPTCP_ATTR_REM_ID, 1))
		}
		fc.recv <- datagram(t, ev(50, "2001:db8::1"))
		first, err := s.Receive(context.Background())
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		want := slices.Clone(first)
		fc.recv <- datagram(t, ev(51, "2001:db8::2"))
		if _, err := s.Receive(context.Background()); err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if diff := cmp.Diff(want, first, cmpAddrs); diff != "" {
			t.Errorf("the next Receive changed returned events (-before +after):\n%s", diff)
		}
		if !first[0].Remote.Addr().IsValid() {
			t.Errorf("event %+v has no remote address", first[0])
		}
	})

	t.Run("other errors", func(t *testing.T) {
		t.Parallel()
		s, fc := subscribeFake(t)
		fc.recv <- recvResult{err: &netlink.OpError{Op: "receive", Err: os.NewSyscallError("recvmsg", unix.EBADF)}}
		_, err := s.Receive(context.Background())
		if !errors.Is(err, unix.EBADF) || errors.Is(err, ErrEventsLost) {
			t.Fatalf("Receive error = %v, want EBADF and not ErrEventsLost", err)
		}
	})
}

func TestSetReadBuffer(t *testing.T) {
	t.Parallel()
	s, fc := subscribeFake(t)
	if err := s.SetReadBuffer(0); err == nil {
		t.Error("SetReadBuffer(0) succeeded")
	}
	if err := s.SetReadBuffer(1 << 20); err != nil {
		t.Fatalf("SetReadBuffer: %v", err)
	}
	if fc.readBuf != 1<<20 {
		t.Errorf("read buffer = %d, want %d", fc.readBuf, 1<<20)
	}
	if n, err := s.ReadBuffer(); err != nil || n != 2<<20 {
		t.Errorf("ReadBuffer = %d, %v; want %d", n, err, 2<<20)
	}
}

// TestNetNSSame checks that a client whose namespace is the calling
// thread's runs sysctl work without switching namespaces.
func TestNetNSSame(t *testing.T) {
	t.Parallel()
	ns, err := openNetNS(0)
	if err != nil {
		t.Skipf("no network namespace handle: %v", err)
	}
	defer ns.close()
	var ran bool
	if err := ns.do(func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("do: ran %v, err %v", ran, err)
	}
	want := errors.New("fn failed")
	if err := ns.do(func() error { return want }); !errors.Is(err, want) {
		t.Fatalf("do error = %v, want %v", err, want)
	}
}
