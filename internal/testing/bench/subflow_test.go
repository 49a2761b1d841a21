//go:build linux

package bench_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
)

// watcher times, from its own subscription to a namespace's mptcp_pm
// events, each connection's first extra subflow: from the moment its
// ESTABLISHED event is read to the moment the SUB_ESTABLISHED event of
// another subflow of it is read. Events carry no time: when the reader
// lags (many connections at once), an ESTABLISHED event is read late and
// the latency comes out shorter than the truth.
type watcher struct {
	// port, when set, is the only server port whose connections are
	// timed.
	port        uint16
	mu          sync.Mutex
	established map[uint32]time.Time
	timed       map[uint32]bool
	latencies   []time.Duration
	changed     chan struct{} // signalled when latencies grow or err is set
	err         error
}

// watch starts a watcher on h's events until the benchmark ends.
func watch(b *testing.B, h *netnstest.Host) *watcher {
	b.Helper()
	sub, err := newClient(b, h).Subscribe()
	if err != nil {
		b.Fatalf("Subscribe: %v", err)
	}
	// Room for a burst's events: a watcher that lost some would time
	// nothing (BenchmarkBurst).
	if err := sub.SetReadBuffer(64 << 20); err != nil {
		b.Fatalf("SetReadBuffer: %v", err)
	}
	w := &watcher{established: map[uint32]time.Time{}, timed: map[uint32]bool{}, changed: make(chan struct{}, 1)}
	readEvents(b, sub, w.run)
	return w
}

func (w *watcher) run(ctx context.Context, sub *genl.Subscription) {
	for {
		evs, err := sub.Receive(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				w.fail(fmt.Errorf("receive: %w", err))
			}
			return
		}
		w.mu.Lock()
		for _, ev := range evs {
			switch ev.Type {
			case genl.EventEstablished:
				if w.port == 0 || ev.Remote.Port() == w.port {
					w.established[ev.Token] = now
				}
			case genl.EventSubEstablished:
				at, ok := w.established[ev.Token]
				if ok && !w.timed[ev.Token] {
					w.timed[ev.Token] = true
					w.latencies = append(w.latencies, now.Sub(at))
				}
			case genl.EventClosed:
				delete(w.established, ev.Token)
				delete(w.timed, ev.Token)
			}
		}
		w.mu.Unlock()
		w.signal()
	}
}

func (w *watcher) fail(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	w.signal()
}

func (w *watcher) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until n connections have been timed.
func (w *watcher) waitFor(n int) error {
	timeout := time.After(waitLimit)
	for {
		w.mu.Lock()
		got, err := len(w.latencies), w.err
		w.mu.Unlock()
		switch {
		case err != nil:
			return err
		case got >= n:
			return nil
		}
		select {
		case <-w.changed:
		case <-timeout:
			return fmt.Errorf("%d of %d connections got an extra subflow within %v", got, n, waitLimit)
		}
	}
}

func (w *watcher) samples() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.latencies...)
}

// subflowCase is a path manager run in the client namespace of
// BenchmarkSubflow: setup makes it give every connection a subflow from
// the client's eth1 address to the server, and returns the id of its
// process (0: the kernel's, no process).
type subflowCase struct {
	manager, mode string
	setup         func(b *testing.B, tb *netnstest.Testbed) (pid int)
}

var subflowCases = []subflowCase{
	{"mptcpgod", "userspace", func(b *testing.B, tb *netnstest.Testbed) int {
		return startDaemon(b, tb.Client, "userspace")
	}},
	{"kernel", "kernel", func(b *testing.B, tb *netnstest.Testbed) int {
		tb.Client.SetPathManager("kernel")
		limits(tb.Client)
		tb.Client.MustExec("ip", "mptcp", "endpoint", "add", tb.Links[1].Client4.String(), "dev", tb.Links[1].ClientIf, "subflow")
		return 0
	}},
	{"mptcpgod", "kernel", func(b *testing.B, tb *netnstest.Testbed) int {
		pid := startDaemon(b, tb.Client, "kernel")
		waitEndpoint(b, newClient(b, tb.Client), tb.Links[1].Client4)
		return pid
	}},
	{"mptcpd", "kernel", func(b *testing.B, tb *netnstest.Testbed) int {
		tb.Client.SetPathManager("kernel")
		limits(tb.Client)
		return startMptcpd(b, tb.Client, newClient(b, tb.Client), "subflow", tb.Links[0].Client4, tb.Links[1].Client4)
	}},
}

// waitEndpoint waits until the kernel lists an endpoint for addr.
func waitEndpoint(b *testing.B, cli *genl.Client, addr netip.Addr) {
	b.Helper()
	deadline := time.Now().Add(waitLimit)
	for !hasEndpoint(b, cli, addr) {
		if time.Now().After(deadline) {
			b.Fatalf("no endpoint for %s within %v", addr, waitLimit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkSubflow measures, for each path manager, the time from a
// connection being established to its extra subflow being established,
// with connections dialled one at a time and 32 at once; an iteration is
// one connection or one batch of 32. Every connection must get its
// subflow (none missed); it also reports the connections per second the
// run kept meshed and the path manager process's CPU seconds per 1,000
// connections.
func BenchmarkSubflow(b *testing.B) {
	for _, c := range subflowCases {
		for _, inFlight := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s-%s/inflight=%d", c.manager, c.mode, inFlight), func(b *testing.B) {
				benchSubflow(b, c, inFlight)
			})
		}
	}
}

func benchSubflow(b *testing.B, c subflowCase, inFlight int) {
	tb, server := testbed(b)
	pid := c.setup(b, tb)
	w := watch(b, tb.Client)
	timed := 0
	cpu := func() float64 {
		if pid == 0 {
			return 0
		}
		s, err := cpuSeconds(pid)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	cpuStart, start := cpu(), time.Now()
	for b.Loop() {
		conns, err := dialBatch(tb.Client, server, inFlight)
		if err == nil {
			timed += inFlight
			err = w.waitFor(timed)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		if err != nil {
			b.Fatalf("%s %s mode, %d in flight: %v", c.manager, c.mode, inFlight, err)
		}
	}
	elapsed, cpuUsed := time.Since(start), cpu()-cpuStart
	samples := w.samples()
	s := summarize(b, samples)
	r := bench.Result{Figure: "subflow", Manager: c.manager, Mode: c.mode, InFlight: inFlight, Summary: &s,
		ConnsPerSec: math.Round(float64(timed) / elapsed.Seconds())}
	if pid != 0 {
		per1000 := math.Round(cpuUsed*1000/float64(timed)*1000) / 1000
		r.CPUPer1000 = &per1000
		b.ReportMetric(per1000, "cpu-s/1000conns")
	}
	b.ReportMetric(s.P50, "p50-ms")
	b.ReportMetric(s.P90, "p90-ms")
	b.ReportMetric(s.P99, "p99-ms")
	b.ReportMetric(r.ConnsPerSec, "conns/s")
	record(b, r)
	recordCDF(b, bench.Series{Label: fmt.Sprintf("%s (%s mode), %d in flight", c.manager, c.mode, inFlight),
		Manager: c.manager + "-" + c.mode, InFlight: inFlight, Samples: samples})
}

// dialBatch dials n MPTCP connections from h to server at once and sends
// a byte on each, which makes the client's side fully established. It
// returns the connections it opened.
func dialBatch(h *netnstest.Host, server netip.AddrPort, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := h.Dial("tcp", "", server.String())
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = c
			if _, err := c.Write([]byte{0}); err != nil {
				errs[i] = fmt.Errorf("write to %s: %w", server, err)
			}
		})
	}
	wg.Wait()
	var opened []net.Conn
	for _, c := range conns {
		if c != nil {
			opened = append(opened, c)
		}
	}
	return opened, errors.Join(errs...)
}

// readEvents runs read on sub's events until the benchmark ends, then
// waits for it and closes sub.
func readEvents(b *testing.B, sub *genl.Subscription, read func(context.Context, *genl.Subscription)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		read(ctx, sub)
	}()
	b.Cleanup(func() {
		cancel()
		<-done
		_ = sub.Close()
	})
}
