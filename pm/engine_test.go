package pm

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
	"github.com/mptcpgod/mptcpgod/policy"
)

func TestNewConfig(t *testing.T) {
	t.Parallel()
	ns := newFakeNS()
	base := func() Config {
		return Config{Mode: policy.ModeUserspace, Policy: defaultPolicy(t), NewKernel: ns.kernel, Events: newFakeEvents()}
	}
	tests := []struct {
		name   string
		change func(*Config)
		err    string
	}{
		{name: "defaults", change: func(*Config) {}},
		{name: "kernel mode without events", change: func(c *Config) { c.Mode, c.Events = policy.ModeKernel, nil }},
		{name: "no mode", change: func(c *Config) { c.Mode = "" }, err: "pm: config: mode: missing (want kernel or userspace)"},
		{name: "bad mode", change: func(c *Config) { c.Mode = "auto" }, err: `pm: config: mode: "auto" is not kernel or userspace`},
		{name: "no policy", change: func(c *Config) { c.Policy = nil }, err: "pm: config: policy: missing"},
		{name: "no kernel", change: func(c *Config) { c.NewKernel = nil }, err: "pm: config: new kernel: missing"},
		{name: "userspace without events", change: func(c *Config) { c.Events = nil },
			err: "pm: config: events: required in userspace mode"},
		{name: "negative workers", change: func(c *Config) { c.Workers = -1 }, err: "pm: config: workers: -1 is negative"},
		{name: "id range zero", change: func(c *Config) { c.OwnedIDs = IDRange{Min: 0, Max: 10} },
			err: "pm: config: owned ids: 0-10 is not a range within 1-255"},
		{name: "id range reversed", change: func(c *Config) { c.OwnedIDs = IDRange{Min: 20, Max: 10} },
			err: "pm: config: owned ids: 20-10 is not a range within 1-255"},
		{name: "backoff negative", change: func(c *Config) { c.Backoff.Initial = -time.Second },
			err: "pm: config: backoff: initial -1s is negative"},
		{name: "backoff max below initial", change: func(c *Config) { c.Backoff = Backoff{Initial: time.Second, Max: time.Millisecond} },
			err: "pm: config: backoff: max 1ms is below initial 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := base()
			tt.change(&cfg)
			_, err := New(cfg)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("New: error %q, want %q", got, tt.err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	ns := newFakeNS()
	e, err := New(Config{Mode: policy.ModeKernel, Policy: defaultPolicy(t), NewKernel: ns.kernel})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{e.cfg.Workers, e.cfg.OwnedIDs, e.cfg.Backoff, e.cfg.Logger != nil, e.cfg.Now != nil}
	want := []any{4, IDRange{Min: 100, Max: 199}, Backoff{Initial: 50 * time.Millisecond, Max: 30 * time.Second}, true, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: 50 * time.Millisecond, Max: 300 * time.Millisecond}
	var got []time.Duration
	for fails := 1; fails <= 6; fails++ {
		got = append(got, b.delay(fails))
	}
	want := []time.Duration{50, 100, 200, 300, 300, 300}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	for range 100 {
		if j := realJitter(time.Second); j < 750*time.Millisecond || j > time.Second {
			t.Fatalf("jitter of 1s: %v, want 0.75s..1s", j)
		}
	}
}

func TestIDRange(t *testing.T) {
	t.Parallel()
	r := IDRange{Min: 100, Max: 199}
	got := []bool{r.Contains(99), r.Contains(100), r.Contains(199), r.Contains(200)}
	if diff := cmp.Diff([]bool{false, true, true, false}, got); diff != "" {
		t.Errorf("Contains (-want +got):\n%s", diff)
	}
	if r.String() != "100-199" {
		t.Errorf("String: %q", r.String())
	}
}

// TestSetHostLatestWins: updates the loop has not taken are replaced.
func TestSetHostLatestWins(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel)
		h.ns.limits.Subflows, h.ns.limits.AddAddrAccepted = 8, 8
		for range 5 {
			h.setHost(addrA, addrB)
		}
		h.setHost(addrC)
		h.start()
		h.ready()
		h.expect("add_endpoint id=100 203.0.113.1 flags=subflow,fullmesh if=4")
		if st := h.settle(); st.Counters.HostUpdates != 1 {
			t.Errorf("host updates %d, want 1", st.Counters.HostUpdates)
		}
	})
}

func TestConnAndNotRunning(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		cs, err := h.e.Conn(t.Context(), tok1)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Token != tok1 || cs.Side != pmstate.SideClient || len(cs.Paths) != 2 {
			t.Errorf("Conn: %+v", cs)
		}
		if _, err := h.e.Conn(t.Context(), tok2); !errors.Is(err, ErrNoConn) || err.Error() != "pm: no such connection: token 22222222" {
			t.Errorf("Conn of an unknown token: %v", err)
		}
		if err := h.e.Run(t.Context()); err == nil {
			t.Error("a second Run did not fail")
		}
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := h.e.Status(t.Context()); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Status after Run: %v, want ErrNotRunning", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		e, err := New(Config{Mode: policy.ModeKernel, Policy: defaultPolicy(t), NewKernel: h.ns.kernel})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Status(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Status with a done context: %v", err)
		}
	})
}

// TestEventsFatal: Run fails when the event source is closed for good,
// and resynchronises on other errors.
func TestEventsFatal(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.ev.push(fakeBatch{err: errors.New("genl: decode event: truncated attribute")})
		if st := h.settle(); st.Counters.Resyncs != 1 || h.lister.calls != 2 {
			t.Errorf("after a decode error: resyncs %d, listings %d; want 1 and 2", st.Counters.Resyncs, h.lister.calls)
		}
		h.ev.push(fakeBatch{err: net.ErrClosed})
		select {
		case <-h.run.Done():
			if err := h.run.Wait(); err == nil || !errors.Is(err, net.ErrClosed) || !strings.HasPrefix(err.Error(), "pm: events: ") {
				t.Errorf("Run: %v, want pm: events: ... closed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after the event source closed")
		}
	})
}

// TestEventCounters: events are counted by type in both modes.
func TestEventCounters(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel)
		h.setHost(addrA)
		h.start()
		h.ready()
		h.events(event(genl.EventCreated, tok1, "192.0.2.1:1", srv1), event(genl.EventListenerCreated, 0, "192.0.2.1:443", ""))
		h.events(event(genl.EventCreated, tok2, "192.0.2.1:2", srv1))
		st := h.settle()
		if diff := cmp.Diff(map[string]uint64{"created": 2, "listener_created": 1}, st.Counters.Events); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if len(st.Conns) != 0 {
			t.Errorf("kernel mode tracks connections: %+v", st.Conns)
		}
	})
}

// TestStatusJSON: the status and the connections marshal with snake_case
// keys.
func TestStatusJSON(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newUserspace(t)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventSubClosed, tok1, "198.51.100.1:40001", srv1))
		st := h.settle()
		b, err := json.Marshal(map[string]any{"status": st.Status, "conns": st.Conns})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var keys []string
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					if k != strings.ToLower(k) || strings.ContainsAny(k, "- ") {
						t.Errorf("key %q is not snake_case", k)
					}
					keys = append(keys, k)
					if k != "actions" && k != "events" && k != "failures" {
						walk(x)
					}
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(m)
		for _, k := range []string{"mode", "policy", "conns", "paths", "backoff_until", "last_error", "peer_addrs",
			"recent_errors", "counters", "in_flight", "usable_addrs", "path_manager", "connections", "addrs", "queries"} {
			if !slices.Contains(keys, k) {
				t.Errorf("status JSON lacks %q: %s", k, b)
			}
		}
		if !strings.Contains(string(b), `"state":"backoff"`) || !strings.Contains(string(b), `"last_error":"subflow closed"`) {
			t.Errorf("status JSON lacks the backoff path: %s", b)
		}
	})
}

// TestDeps: pm imports policy, genl, peeraddr and the state types of
// mptcpgod, nothing else of it.
func TestDeps(t *testing.T) {
	t.Parallel()
	const mod = depstest.Module
	depstest.Forbid(t, mod+"pm", []string{mod + "..."},
		mod+"policy", mod+"genl", mod+"internal/pmstate", mod+"internal/peeraddr")
}

// TestTallyRoom: a tally has a slot for every path state.
func TestTallyRoom(t *testing.T) {
	t.Parallel()
	if n := len(pmstate.PathStates); n > maxPathStates {
		t.Errorf("%d path states, but a tally counts at most %d: raise maxPathStates", n, maxPathStates)
	}
}

// holdPolicy is fullmesh, except that its first decision for the
// connection hold tells entered and waits for release: it holds the
// loop up.
type holdPolicy struct {
	policy.Policy
	hold     uint32
	held     bool
	entered  chan struct{}
	released chan struct{}
}

func (p *holdPolicy) Conn(v policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	if c.Token == p.hold && !p.held {
		p.held = true
		p.entered <- struct{}{}
		<-p.released
	}
	return p.Policy.Conn(v, c, next)
}

// TestStatusWithoutTheLoop: Status answers from the counts the loop
// posted while the loop is held up, without asking it; Sync waits for the
// loop, and so does a Status once the loop has been held longer than
// stuckAfter, or after a SetHost the loop has not taken.
func TestStatusWithoutTheLoop(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		p := &holdPolicy{Policy: defaultPolicy(t), hold: tok2, entered: make(chan struct{}), released: make(chan struct{})}
		h := newUserspace(t, withPolicy(p))
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		before := h.settle().Status

		h.open(tok2, "192.0.2.1:40001", srv1)
		<-p.entered
		st, err := h.e.Status(t.Context())
		if err != nil {
			t.Fatalf("status while the loop is held: %v", err)
		}
		if st.Connections != before.Connections || !maps.Equal(st.Paths, before.Paths) {
			t.Errorf("status while the loop is held: %d connections, paths %v; want those before it: %d, %v",
				st.Connections, st.Paths, before.Connections, before.Paths)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := h.e.Sync(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("sync while the loop is held: %v, want the deadline", err)
		}
		// Held for longer than stuckAfter, the loop is taken for stuck:
		// Status waits for it too.
		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := h.e.Status(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("status while the loop has been held %v: %v, want the deadline", stuckAfter+time.Second, err)
		}

		close(p.released)
		if st = h.settle().Status; st.Connections != 2 {
			t.Errorf("status once released: %d connections, want 2", st.Connections)
		}

		// Held again, not for long: a SetHost the loop has not taken
		// makes Status wait for the loop.
		p.hold, p.held, p.released = tok3, false, make(chan struct{})
		h.open(tok3, "192.0.2.1:40002", srv1)
		<-p.entered
		h.setHost(addrA)
		ctx, cancel = context.WithTimeout(t.Context(), stuckAfter/2)
		defer cancel()
		if _, err := h.e.Status(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("status after a SetHost the held loop has not taken: %v, want the deadline", err)
		}
		close(p.released)
		if st = h.settle().Status; !slices.Equal(st.UsableAddrs, []netip.Addr{addrA}) {
			t.Errorf("status once released: usable %v, want [%v]", st.UsableAddrs, addrA)
		}
	})
}
