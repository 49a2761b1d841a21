package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/pm"
)

// fakeSource produces subflows from the sampler's simulated clock and
// collects the reports the sampler published before each read.
type fakeSource struct {
	s       *Sampler
	clock   *time.Time
	fn      func(now time.Time) ([]sockdiag.Subflow, error)
	reports []pm.Health
	closed  bool
}

func (f *fakeSource) Subflows(fn func(*sockdiag.Subflow) error) error {
	select {
	case r := <-f.s.updates:
		f.reports = append(f.reports, r)
	default:
	}
	sfs, err := f.fn(*f.clock)
	if err != nil {
		return err
	}
	for i := range sfs {
		if err := fn(&sfs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSource) Close() error { f.closed = true; return nil }

type fakeAddrs struct {
	m      map[netip.Addr]int32
	calls  int
	closed bool
}

func (f *fakeAddrs) Addrs() (map[netip.Addr]int32, error) { f.calls++; return f.m, nil }

func (f *fakeAddrs) Close() error { f.closed = true; return nil }

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// simulated returns a sampler with the default configuration over
// subflows from fn, on a simulated clock that the sampler's waits advance;
// it also returns the waits it asked for and its logs. The addresses place
// 198.51.100.1 on link 3.
func simulated(t *testing.T, fn func(now time.Time) ([]sockdiag.Subflow, error)) (*Sampler, *fakeSource, *fakeAddrs, *[]time.Duration, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg, err := Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	clock := t0
	src := &fakeSource{clock: &clock, fn: fn}
	as := &fakeAddrs{m: map[netip.Addr]int32{netip.MustParseAddr("198.51.100.1"): 3}}
	s := newSampler(cfg, src, as)
	src.s = s
	var waits []time.Duration
	s.now = func() time.Time { return clock }
	s.after = func(d time.Duration) <-chan time.Time {
		waits = append(waits, d)
		clock = clock.Add(d)
		c := make(chan time.Time, 1)
		c <- clock
		return c
	}
	return s, src, as, &waits, logs
}

// TestSamplerStall runs the sampler over a subflow whose path goes silent
// at t0: it samples every interval, samples again just after the
// subflow's threshold, and reports the stall at once.
func TestSamplerStall(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var src *fakeSource
	s, src, as, waits, logs := simulated(t, func(now time.Time) ([]sockdiag.Subflow, error) {
		// Stop at the read after the stall was reported.
		if n := len(src.reports); n > 0 && len(src.reports[n-1].Links) > 0 && src.reports[n-1].Links[0].Health.Stalled {
			cancel()
		}
		return []sockdiag.Subflow{
			{Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: srv, State: sockdiag.StateEstablished, Token: 1,
				IfIndex: 2, TCP: sockdiag.TCPInfo{RTO: 201 * ms, Unacked: 5, LastAckRecv: now.Sub(t0)}},
			{Local: netip.MustParseAddrPort("198.51.100.1:40001"), Remote: srv, State: sockdiag.StateEstablished, Token: 1,
				TCP: sockdiag.TCPInfo{RTO: 201 * ms, LastAckRecv: 3 * ms}},
			{Local: netip.MustParseAddrPort("203.0.113.1:40002"), Remote: srv, State: sockdiag.StateEstablished, Token: 2,
				TCP: sockdiag.TCPInfo{RTO: 201 * ms}},
		}, nil
	})
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{0}
	for range 8 {
		want = append(want, DefaultInterval)
	}
	want = append(want, 2*ms, DefaultInterval)
	// After the cancel, Run may still take a sample or two.
	if len(*waits) < len(want) {
		t.Fatalf("waits %v, want %v first", *waits, want)
	}
	if diff := cmp.Diff(want, (*waits)[:len(want)]); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if len(src.reports) < 2 {
		t.Fatalf("%d reports, want the first and the stall", len(src.reports))
	}
	var links []int32
	for _, l := range src.reports[1].Links {
		links = append(links, l.IfIndex)
	}
	if diff := cmp.Diff([]int32{2, 3}, links); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	if got := src.reports[1].Subflows[0].Health.StalledChanged; !got.Equal(t0.Add(202 * ms)) {
		t.Errorf("stall seen at %v, want 202ms", got.Sub(t0))
	}
	if as.calls != 1 {
		t.Errorf("%d address listings, want 1 (at most one a second)", as.calls)
	}
	if !strings.Contains(logs.String(), "subflow stalled") || !strings.Contains(logs.String(), "link stalled") {
		t.Errorf("logs lack the stall:\n%s", logs)
	}
	if _, ok := <-s.Updates(); ok {
		t.Error("Updates not closed after Run returned")
	}
	if err := s.Close(); err != nil || !src.closed || !as.closed {
		t.Errorf("Close: %v, source closed %v, addresses closed %v", err, src.closed, as.closed)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("a second Run did not fail")
	}
}

// TestSamplerErrors: a passing error is logged once and sampling goes on
// at the idle interval; a kernel without MPTCP diag ends Run.
func TestSamplerErrors(t *testing.T) {
	t.Parallel()
	reads := 0
	s, _, _, waits, logs := simulated(t, func(time.Time) ([]sockdiag.Subflow, error) {
		reads++
		switch {
		case reads <= 3:
			return nil, errors.New("sockdiag: list MPTCP subflows (IPv4): interrupted")
		case reads == 4:
			return nil, nil
		}
		return nil, fmt.Errorf("sockdiag: list: %w", sockdiag.ErrUnavailable)
	})
	err := s.Run(context.Background())
	if !errors.Is(err, sockdiag.ErrUnavailable) || !strings.HasPrefix(err.Error(), "health: ") {
		t.Errorf("Run: %v, want health: ... ErrUnavailable", err)
	}
	if n := strings.Count(logs.String(), "cannot read"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
	want := []time.Duration{0, DefaultIdleInterval, DefaultIdleInterval, DefaultIdleInterval, DefaultIdleInterval}
	if diff := cmp.Diff(want, *waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

// TestPublishLatestWins: an unread report is replaced, never queued.
func TestPublishLatestWins(t *testing.T) {
	t.Parallel()
	s := newSampler(Config{Logger: slog.New(slog.DiscardHandler)}, &fakeSource{}, &fakeAddrs{})
	for i := range 3 {
		s.publish(pm.Health{Links: []pm.LinkHealth{{IfIndex: int32(i)}}})
	}
	if r := <-s.Updates(); len(r.Links) != 1 || r.Links[0].IfIndex != 2 {
		t.Errorf("got %+v, want the third report", r)
	}
	select {
	case r := <-s.Updates():
		t.Errorf("a second report: %+v", r)
	default:
	}
}
