package genl_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// TestReceiveBurst opens 200 connections at once and checks that the
// server's subscription delivers exactly the kernel's events, one CREATED
// and one ESTABLISHED per connection the kernel lists, in far fewer
// Receive calls than events: each call returns what is already queued.
func TestReceiveBurst(t *testing.T) {
	t.Parallel()
	const conns = 200
	tb := netnstest.NewTestbed(t, 1)
	ln, lnAddr := listen(t, tb.Server, "tcp4")
	sub, err := newClient(t, tb.Server).Subscribe()
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	if err := sub.SetReadBuffer(8 << 20); err != nil {
		t.Fatalf("SetReadBuffer: %v", err)
	}

	accepted := make(chan error, 1)
	go func() {
		for range conns {
			c, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
		accepted <- nil
	}()
	srv := netip.AddrPortFrom(tb.Links[0].Server4, lnAddr.Port()).String()
	dialed := make(chan error, conns)
	for range conns {
		go func() {
			_, err := tb.Client.Dial("tcp4", "", srv)
			dialed <- err
		}()
	}
	for range conns {
		if err := <-dialed; err != nil {
			t.Fatalf("dial: %v", err)
		}
	}
	if err := <-accepted; err != nil {
		t.Fatalf("accept: %v", err)
	}

	// The kernel's view: the server's established MPTCP connections.
	sd, err := sockdiag.Dial(&sockdiag.Config{NetNS: tb.Server.NetNS()})
	if err != nil {
		t.Fatalf("sockdiag.Dial: %v", err)
	}
	defer sd.Close()
	want := map[uint32]int{}
	err = sd.Connections(func(c *sockdiag.Connection) error {
		if c.State == sockdiag.StateEstablished {
			want[c.Token] = 2 // CREATED and ESTABLISHED
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list connections: %v", err)
	}
	if len(want) != conns {
		t.Fatalf("the kernel lists %d established connections, want %d", len(want), conns)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got := map[uint32]int{}
	var events, calls int
	for events < 2*conns {
		evs, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("Receive after %d events in %d calls: %v", events, calls, err)
		}
		calls++
		for _, ev := range evs {
			if ev.Type == genl.EventCreated || ev.Type == genl.EventEstablished {
				got[ev.Token]++
			}
			events++
		}
	}
	t.Logf("%d events in %d Receive calls", events, calls)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events per connection token (-want +got):\n%s", diff)
	}
	// Every event was queued before the first call; allow for a few
	// that the kernel sends late.
	if calls*10 > events {
		t.Errorf("%d Receive calls for %d queued events, want at least 10 events per call", calls, events)
	}
}

// TestSubscriptionClose checks that Close unblocks a waiting Receive with
// an error matching net.ErrClosed, as the daemon expects at shutdown, and
// that a Receive after Close, the first or a later one, gets it too.
func TestSubscriptionClose(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "close")
	early, err := newClient(t, h).Subscribe()
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := early.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := early.Receive(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("first Receive after Close: %v, want net.ErrClosed", err)
	}
	sub, err := newClient(t, h).Subscribe()
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := sub.Receive(context.Background())
		errc <- err
	}()
	// Close must work whether or not Receive is already waiting.
	time.Sleep(10 * time.Millisecond)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Receive error = %v, want net.ErrClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Receive did not return after Close")
	}
	if _, err := sub.Receive(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Receive after Close: %v, want net.ErrClosed", err)
	}
}

// listenerBurst opens and closes n MPTCP listeners in h, which makes the
// kernel send 2n events (LISTENER_CREATED, LISTENER_CLOSED).
func listenerBurst(tb testing.TB, h *netnstest.Host, n int) {
	tb.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	err := h.Do(func() error {
		lns := make([]net.Listener, 0, n)
		defer func() {
			for _, ln := range lns {
				_ = ln.Close()
			}
		}()
		for range n {
			ln, err := lc.Listen(context.Background(), "tcp4", "0.0.0.0:0")
			if err != nil {
				return err
			}
			lns = append(lns, ln)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("listener burst in %s: %v", h.Name(), err)
	}
}

// BenchmarkReceive measures Receive on a real kernel: each iteration queues
// a burst of listener events (outside the timer), then receives them all.
// It reports the cost per event and how many events one Receive returns;
// allocs/event counts every allocation of the process while receiving.
func BenchmarkReceive(b *testing.B) {
	for _, listeners := range []int{1, 100} { // events per burst: 2 × listeners
		b.Run(fmt.Sprintf("burst=%d", 2*listeners), func(b *testing.B) {
			benchmarkReceive(b, listeners)
		})
	}
}

func benchmarkReceive(b *testing.B, listeners int) {
	h := netnstest.NewHost(b, "bench")
	c, err := genl.New(&genl.Config{NetNS: h.NetNS()})
	if err != nil {
		b.Fatalf("genl.New: %v", err)
	}
	b.Cleanup(func() { _ = c.Close() })
	sub, err := c.Subscribe()
	if err != nil {
		b.Fatalf("Subscribe: %v", err)
	}
	b.Cleanup(func() { _ = sub.Close() })
	if err := sub.SetReadBuffer(8 << 20); err != nil {
		b.Fatalf("SetReadBuffer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)

	var (
		events, calls int
		mallocs       uint64
		elapsed       time.Duration
		ms            runtime.MemStats
	)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		listenerBurst(b, h, listeners)
		runtime.ReadMemStats(&ms)
		before := ms.Mallocs
		b.StartTimer()
		start := time.Now()
		for got := 0; got < 2*listeners; {
			evs, err := sub.Receive(ctx)
			if err != nil {
				b.Fatalf("Receive after %d events: %v", got, err)
			}
			got += len(evs)
			calls++
		}
		elapsed += time.Since(start)
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - before
		events += 2 * listeners
		b.StartTimer()
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(events)/float64(calls), "events/Receive")
}
