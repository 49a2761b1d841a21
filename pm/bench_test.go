package pm

import (
	"context"
	"errors"
	"flag"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/policy"
)

// benchKernel answers everything at once and reports creates.
type benchKernel struct{ created chan<- uint32 }

func (benchKernel) Endpoints() ([]genl.Endpoint, error)                         { return nil, nil }
func (benchKernel) AddEndpoint(genl.Endpoint) error                             { return nil }
func (benchKernel) DelEndpoint(uint8) error                                     { return nil }
func (benchKernel) SetEndpointFlags(genl.Endpoint) error                        { return nil }
func (benchKernel) Limits() (genl.Limits, error)                                { return genl.Limits{}, nil }
func (benchKernel) SetLimits(genl.LimitsUpdate) error                           { return nil }
func (benchKernel) Announce(uint32, genl.Endpoint) error                        { return nil }
func (benchKernel) Remove(uint32, uint8) error                                  { return nil }
func (benchKernel) DestroySubflow(uint32, netip.AddrPort, netip.AddrPort) error { return nil }
func (benchKernel) SetSubflowBackup(uint32, netip.AddrPort, netip.AddrPort, bool) error {
	return nil
}
func (benchKernel) ConnectionAddrs(uint32) ([]genl.Endpoint, error) { return nil, nil }
func (benchKernel) Close() error                                    { return nil }

func (k benchKernel) CreateSubflow(token uint32, _ genl.Endpoint, _ netip.AddrPort) error {
	k.created <- token
	return nil
}

// chanEvents is an EventSource over a channel.
type chanEvents chan []genl.Event

func (c chanEvents) Receive(ctx context.Context) ([]genl.Event, error) {
	select {
	case evs := <-c:
		return evs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// benchEngine runs an engine in userspace mode with the default policy
// (fullmesh), the kernel k and the event source events, on a 2×1 host:
// addrA on eth0 and addrB on eth1, until tb ends. It returns the engine
// once it is ready, with its Running to stop it sooner; Run's error fails
// tb.
func benchEngine(tb testing.TB, k Kernel, events chanEvents) (*Engine, *runtest.Running) {
	tb.Helper()
	e, err := New(Config{
		Mode:      policy.ModeUserspace,
		Policy:    defaultPolicy(tb),
		NewKernel: func() (Kernel, error) { return k, nil },
		Events:    events,
	})
	if err != nil {
		tb.Fatal(err)
	}
	e.SetHost([]policy.Link{
		{Name: "eth0", Index: 2, Up: true, Usable: true},
		{Name: "eth1", Index: 3, Up: true, Usable: true},
	}, []policy.LocalAddr{
		{Addr: addrA, Link: "eth0", IfIndex: 2, Usable: true},
		{Addr: addrB, Link: "eth1", IfIndex: 3, Usable: true},
	})
	run := runtest.Run(tb, "engine", e.Run)
	run.WaitReady(tb, e.Ready())
	return e, run
}

// meshConns opens n client-side connections on the engine e of
// benchEngine, tokens 1 to n from addrA to srv1 (or with distinct each
// to a port of its own: no two want the same paths), and waits until
// each has its extra subflow, which e's kernel must report established.
func meshConns(tb testing.TB, e *Engine, events chanEvents, n int, distinct bool) {
	tb.Helper()
	remote := netip.MustParseAddrPort(srv1)
	for i := range n {
		tok := uint32(i + 1)
		local := netip.AddrPortFrom(addrA, uint16(10000+i%50000))
		if distinct {
			remote = netip.AddrPortFrom(remote.Addr(), uint16(1+i%65000))
		}
		events <- []genl.Event{
			{Type: genl.EventCreated, Token: tok, Local: local, Remote: remote},
			{Type: genl.EventEstablished, Token: tok, Local: local, Remote: remote},
		}
	}
	// Events are applied in order, and the last connection's extra
	// subflow comes after every connection's CREATED and ESTABLISHED;
	// the extra subflows themselves may be applied in any order, so wait
	// for each.
	deadline := time.Now().Add(time.Minute)
	for tok := uint32(1); tok <= uint32(n); {
		cs, err := e.Conn(context.Background(), tok)
		if err == nil && len(cs.Paths) == 2 && cs.Paths[0].State == "established" && cs.Paths[1].State == "established" {
			tok++
			continue
		}
		if time.Now().After(deadline) {
			tb.Fatalf("connection %08x not meshed after a minute: %+v, %v", tok, cs, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkEstablishedToCreate measures the engine's latency from an
// ESTABLISHED event entering the event source to a worker calling
// CreateSubflow for the connection, with the fullmesh policy and a 2×1
// mesh; it reports the median and the 99th percentile.
func BenchmarkEstablishedToCreate(b *testing.B) {
	created := make(chan uint32, 16)
	events := make(chanEvents, 16)
	_, run := benchEngine(b, benchKernel{created: created}, events)
	defer run.Stop()

	open := connTimer(b, events, created, 1)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		lat = append(lat, open(i))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// connTimer returns a function that opens connection base+i on events,
// waits for its CreateSubflow on created, closes it, and returns the time
// from its ESTABLISHED to the CreateSubflow.
func connTimer(b *testing.B, events chanEvents, created <-chan uint32, base uint32) func(i int) time.Duration {
	local := netip.MustParseAddrPort("192.0.2.1:40000")
	remote := netip.MustParseAddrPort(srv1)
	return func(i int) time.Duration {
		tok := base + uint32(i)
		t0 := time.Now()
		events <- []genl.Event{
			{Type: genl.EventCreated, Token: tok, Local: local, Remote: remote},
			{Type: genl.EventEstablished, Token: tok, Local: local, Remote: remote},
		}
		if got := <-created; got != tok {
			b.Fatalf("create for %08x, want %08x", got, tok)
		}
		took := time.Since(t0)
		events <- []genl.Event{{Type: genl.EventClosed, Token: tok}}
		return took
	}
}

// heapProfile names a file connMemory writes a heap profile to while the
// connections are tracked (go tool pprof -sample_index=inuse_space).
var heapProfile = flag.String("pm.heapprofile", "", "write a heap profile of the connections to `file` (BenchmarkConnMemory)")

// memKernel accepts every command and answers a CreateSubflow with the
// SUB_ESTABLISHED the kernel would send once the join completed.
type memKernel struct {
	benchKernel
	events chanEvents
}

func (k memKernel) CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error {
	k.events <- []genl.Event{{Type: genl.EventSubEstablished, Token: token,
		Local: netip.AddrPortFrom(local.Addr, uint16(token)), Remote: remote,
		LocalID: local.ID, IfIndex: local.IfIndex}}
	return nil
}

// connMemory has an engine in userspace mode with the default policy
// (fullmesh) and a 2×1 mesh track n client-side connections, each with
// the extra subflow it made, and returns the live heap the engine holds
// per connection: HeapAlloc after a collection with the connections,
// less HeapAlloc after one before them. The connections go to one
// server address and port, or with distinct each to a port of its own
// (no two want the same paths).
func connMemory(tb testing.TB, n int, distinct bool) float64 {
	tb.Helper()
	if *heapProfile != "" {
		runtime.MemProfileRate = 1 // every allocation, for an exact profile
	}
	events := make(chanEvents, n+16)
	e, run := benchEngine(tb, memKernel{events: events}, events)
	defer run.Stop()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	meshConns(tb, e, events, n, distinct)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if *heapProfile != "" {
		writeHeapProfile(tb, *heapProfile)
	}
	return (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
}

// writeHeapProfile writes the heap profile as of the last collection to
// path.
func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := errors.Join(pprof.WriteHeapProfile(f), f.Close()); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkConnMemory reports the live heap the engine holds per tracked
// connection (B/conn), each with its extra subflow, over 10,000
// connections to one server port, and to a port each.
func BenchmarkConnMemory(b *testing.B) {
	for _, distinct := range []bool{false, true} {
		name := map[bool]string{false: "one-service", true: "distinct-peers"}[distinct]
		b.Run(name, func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = connMemory(b, 10_000, distinct)
			}
			b.ReportMetric(per, "B/conn")
		})
	}
}

// connMemoryLimit bounds the live heap per tracked connection that
// TestConnMemory accepts: the engine keeps about 720 bytes per
// client-side connection with its extra subflow, 880 when no two
// connections want the same paths (docs/performance.md, "Memory").
const connMemoryLimit = 1000

// TestConnMemory fails when the engine's per-connection state grows past
// connMemoryLimit. It does not run in parallel: other tests' allocations
// would blur the heap it measures.
// It runs in a synctest bubble, where connMemory's wait for the
// connections' subflows sleeps in fake time: each sleep ends once the
// engine has nothing left to do.
func TestConnMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if per := connMemory(t, 2_000, true); per > connMemoryLimit {
			t.Errorf("the engine holds %.0f bytes per connection, want at most %d", per, connMemoryLimit)
		} else {
			t.Logf("%.0f bytes per connection", per)
		}
	})
}
