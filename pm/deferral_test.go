package pm

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// fakeBytes is a ByteReader whose counters the test sets.
type fakeBytes struct {
	mu     sync.Mutex
	counts map[uint32][2]uint64
	reads  int
	asked  []uint32 // the tokens of the last read
	err    error
}

func newFakeBytes() *fakeBytes { return &fakeBytes{counts: map[uint32][2]uint64{}} }

func (f *fakeBytes) ReadBytes(tokens []uint32, fn func(token uint32, sent, received uint64)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	f.asked = tokens
	if f.err != nil {
		return f.err
	}
	for _, t := range tokens {
		if c, ok := f.counts[t]; ok {
			fn(t, c[0], c[1])
		}
	}
	return nil
}

func (f *fakeBytes) set(token uint32, sent, received uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[token] = [2]uint64{sent, received}
}

func (f *fakeBytes) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// deferring returns the options of a userspace engine whose fullmesh
// defers joins by delay and bytes, reading bytes from fb, with the
// minimum join age floor.
func deferring(t *testing.T, delay time.Duration, bytes uint64, floor time.Duration, fb *fakeBytes) harnessOpt {
	cfg := fullmesh.DefaultConfig()
	cfg.JoinDelay, cfg.JoinBytes = delay, bytes
	fm, err := fullmesh.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *Config) {
		c.Policy = policy.Compose(fm)
		c.MinJoinAge = floor
		c.BytesEvery = 5 * time.Millisecond
		if fb != nil {
			c.Bytes = fb
		}
	}
}

// step moves the clock on by total in steps of every, letting the engine
// settle after each, and returns the status at the end.
func (h *harness) step(total, every time.Duration) engineStatus {
	h.t.Helper()
	st := h.settle()
	for d := time.Duration(0); d < total; d += every {
		st = h.advance(min(every, total-d))
	}
	return st
}

const createB = "create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255"

// deferred returns the deferral of token's path from B, as Status shows
// it, with its state.
func (h *harness) deferred(token uint32) (string, time.Time, uint64) {
	h.t.Helper()
	for _, c := range h.settle().Conns {
		if c.Token != token {
			continue
		}
		for _, p := range c.Paths {
			if p.Local == addrB {
				return string(p.State), p.DeferredUntil, p.DeferredBytes
			}
		}
	}
	h.t.Fatalf("no path from %s of %08x in status", addrB, token)
	return "", time.Time{}, 0
}

// TestDeferralTime: a young connection gets its extra path only when it
// is join_delay old; Status shows the path deferred with its deadline.
func TestDeferralTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t, deferring(t, 100*time.Millisecond, 0, 0, nil))
		created := h.clock.Now()
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect()
		state, until, bytes := h.deferred(tok1)
		if state != "deferred" || !until.Equal(created.Add(100*time.Millisecond)) || bytes != 0 {
			t.Errorf("path from B: %s until %v after %d bytes, want deferred until %v", state, until, bytes, created.Add(100*time.Millisecond))
		}
		h.advance(99 * time.Millisecond)
		h.expect()
		st := h.advance(time.Millisecond)
		h.expect(createB)
		want := pmstate.DeferralCounters{Held: 1, ReleasedTime: 1}
		if diff := cmp.Diff(want, st.Counters.Deferral); diff != "" {
			t.Errorf("deferral counters (-want +got):\n%s", diff)
		}
		if state, until, _ := h.deferred(tok1); state != "connecting" || !until.IsZero() {
			t.Errorf("path from B after the delay: %s until %v, want connecting", state, until)
		}
	})
}

// TestDeferralEndsEarly: connections that close before their deadline
// never get their paths, leave no wake behind, and the byte reads stop
// with the last of them.
func TestDeferralEndsEarly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBytes()
		h := newUserspace(t, deferring(t, time.Second, 1<<20, 0, fb))
		const n = 50
		for i := range uint32(n) {
			h.open(tok1+i, fmt.Sprintf("192.0.2.1:%d", 40000+i), srv1)
		}
		h.expect()
		h.step(20*time.Millisecond, 5*time.Millisecond)
		reads := fb.count()
		if reads != 4 {
			t.Errorf("%d byte reads in 20ms with connections waiting on bytes, want 4", reads)
		}
		for i := range uint32(n) {
			h.events(event(genl.EventClosed, tok1+i, "", ""))
		}
		h.expect()
		st := h.step(time.Second, 5*time.Millisecond)
		h.expect()
		if d := st.Counters.Deferral; d.Held != n || d.EndedHeld != n || d.ReleasedTime+d.ReleasedBytes != 0 {
			t.Errorf("deferral counters %+v, want %d held and ended held", d, n)
		}
		if after := fb.count(); after != reads {
			t.Errorf("%d byte reads after every connection closed, want none", after-reads)
		}
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		for _, w := range h.e.wakes {
			if !w.sweep {
				t.Errorf("wake left after every connection closed: %+v", *w)
			}
		}
		if len(h.e.byteWatch) != 0 {
			t.Errorf("%d connections left in the byte watch", len(h.e.byteWatch))
		}
	})
}

// TestDeferralWakes: however many connections wait, each has one wake
// entry at most, and the byte reads one.
func TestDeferralWakes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBytes()
		h := newUserspace(t, deferring(t, time.Second, 1<<20, 0, fb))
		const n = 200
		for i := range uint32(n) {
			h.open(tok1+i, fmt.Sprintf("192.0.2.1:%d", 40000+i), srv1)
		}
		h.expect()
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		var conns, bytes int
		for _, w := range h.e.wakes {
			switch {
			case w.conn != nil:
				conns++
			case w.bytes:
				bytes++
			}
		}
		if conns != n || bytes > 1 || len(h.e.byteWatch) != n {
			t.Errorf("%d connection wakes, %d byte-read wakes, %d watched; want %d, at most 1, %d", conns, bytes, len(h.e.byteWatch), n, n)
		}
	})
}

// TestDeferralBytes: a connection that moves more than join_bytes gets
// its path at the next byte read, not before; reads ask for the waiting
// connections only.
func TestDeferralBytes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBytes()
		h := newUserspace(t, deferring(t, time.Second, 1000, 0, fb))
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.open(tok2, "192.0.2.1:40001", srv1)
		h.expect()
		state, _, bytes := h.deferred(tok1)
		if state != "deferred" || bytes != 1000 {
			t.Errorf("path from B: %s after %d bytes, want deferred after 1000", state, bytes)
		}
		fb.set(tok1, 1000, 20)
		h.advance(5 * time.Millisecond)
		h.expect()
		fb.set(tok1, 1000, 1001)
		fb.set(tok2, 10, 20)
		h.advance(5 * time.Millisecond)
		h.expect(createB)
		h.advance(5 * time.Millisecond)
		fb.mu.Lock()
		asked := fb.asked
		fb.mu.Unlock()
		if diff := cmp.Diff([]uint32{tok2}, asked); diff != "" {
			t.Errorf("tokens of the last read (-want +got):\n%s", diff)
		}
		st := h.settle()
		if d := st.Counters.Deferral; d.Held != 2 || d.ReleasedBytes != 1 {
			t.Errorf("deferral counters %+v, want 2 held, 1 released by bytes", d)
		}
		// The status shows the bytes of a connection that waits on them,
		// and none of one released.
		want := map[uint32][2]uint64{tok1: {0, 0}, tok2: {10, 20}}
		for _, c := range st.Conns {
			if got := [2]uint64{c.BytesSent, c.BytesReceived}; got != want[c.Token] {
				t.Errorf("connection %08x: bytes sent and received %v, want %v", c.Token, got, want[c.Token])
			}
		}
	})
}

// TestDeferralByteReadFails: while the counters cannot be read, the
// deferral ends with its time, and the reads slow down.
func TestDeferralByteReadFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		fb := newFakeBytes()
		fb.err = fmt.Errorf("sock_diag says no")
		h := newUserspace(t, deferring(t, 3*time.Second, 1000, 0, fb))
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect()
		h.step(2*time.Second, 5*time.Millisecond)
		if n := fb.count(); n != 2 {
			t.Errorf("%d failed reads in 2s, want one a second after the first", n)
		}
		h.step(time.Second, 5*time.Millisecond)
		h.expect(createB)
		if st := h.settle(); st.Counters.Deferral.ByteReadErrors == 0 {
			t.Error("no byte read error counted")
		}
	})
}

// TestMinJoinAge: the floor holds every create, also when the policy
// defers nothing, and bytes bring a deferred path forward to the floor,
// not before it.
func TestMinJoinAge(t *testing.T) {
	t.Parallel()
	t.Run("no policy deferral", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newUserspace(t, deferring(t, 0, 0, 20*time.Millisecond, nil))
			h.open(tok1, "192.0.2.1:40000", srv1)
			h.expect()
			h.advance(19 * time.Millisecond)
			h.expect()
			h.advance(time.Millisecond)
			h.expect(createB)
		})
	})
	t.Run("bytes before the floor", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fb := newFakeBytes()
			h := newUserspace(t, deferring(t, time.Second, 1000, 20*time.Millisecond, fb))
			created := h.clock.Now()
			h.open(tok1, "192.0.2.1:40000", srv1)
			h.expect()
			fb.set(tok1, 5000, 0)
			h.advance(5 * time.Millisecond)
			h.expect()
			state, until, bytes := h.deferred(tok1)
			if state != "deferred" || !until.Equal(created.Add(20*time.Millisecond)) || bytes != 0 {
				t.Errorf("path from B: %s until %v after %d bytes, want deferred until the floor", state, until, bytes)
			}
			h.advance(15 * time.Millisecond)
			h.expect(createB)
		})
	})
	t.Run("adopted connections are old", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, policy.ModeUserspace, deferring(t, time.Second, 0, 20*time.Millisecond, nil))
			h.lister.set(ExistingConn{Token: tok1, Side: policy.SideClient,
				Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: netip.MustParseAddrPort(srv1),
				Subflows: []ExistingSubflow{{Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: netip.MustParseAddrPort(srv1)}}})
			h.setHost(addrA, addrB)
			h.start()
			h.ready()
			h.expect(createB, "addrs 11111111")
		})
	})
}

// TestDeferralAnnounce: a young server-side connection's announces wait
// for join_delay too.
func TestDeferralAnnounce(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t, deferring(t, 50*time.Millisecond, 0, 0, nil))
		h.events(event(genl.EventCreated, tok1, "192.0.2.1:443", client, serverSide),
			event(genl.EventEstablished, tok1, "192.0.2.1:443", client, serverSide))
		h.expect()
		st := h.settle()
		if len(st.Conns) != 1 || len(st.Conns[0].Announces) != 1 || st.Conns[0].Announces[0].State != "deferred" {
			t.Fatalf("announces %+v, want one deferred", st.Conns)
		}
		h.advance(50 * time.Millisecond)
		h.expect("announce 11111111 id=255 198.51.100.1 flags=signal if=3")
	})
}
