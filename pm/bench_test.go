package pm

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
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

// BenchmarkEstablishedToCreate measures the engine's latency from an
// ESTABLISHED event entering the event source to a worker calling
// CreateSubflow for the connection, with the fullmesh policy and a 2×1
// mesh; it reports the median and the 99th percentile.
func BenchmarkEstablishedToCreate(b *testing.B) {
	created := make(chan uint32, 16)
	events := make(chanEvents, 16)
	e, err := New(Config{
		Mode:      policy.ModeUserspace,
		Policy:    defaultPolicy(b),
		NewKernel: func() (Kernel, error) { return benchKernel{created: created}, nil },
		Events:    events,
	})
	if err != nil {
		b.Fatal(err)
	}
	links := []policy.Link{
		{Name: "eth0", Index: 2, Up: true, Usable: true},
		{Name: "eth1", Index: 3, Up: true, Usable: true},
	}
	e.SetHost(links, []policy.LocalAddr{
		{Addr: addrA, Link: "eth0", IfIndex: 2, Usable: true},
		{Addr: addrB, Link: "eth1", IfIndex: 3, Usable: true},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	<-e.Ready()

	local := netip.MustParseAddrPort("192.0.2.1:40000")
	remote := netip.MustParseAddrPort(srv1)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tok := uint32(i + 1)
		t0 := time.Now()
		events <- []genl.Event{
			{Type: genl.EventCreated, Token: tok, Local: local, Remote: remote},
			{Type: genl.EventEstablished, Token: tok, Local: local, Remote: remote},
		}
		if got := <-created; got != tok {
			b.Fatalf("create for %08x, want %08x", got, tok)
		}
		lat = append(lat, time.Since(t0))
		events <- []genl.Event{{Type: genl.EventClosed, Token: tok}}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
