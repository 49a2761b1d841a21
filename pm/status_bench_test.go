package pm

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// meshKernel answers a CreateSubflow for a token below measured with the
// SUB_ESTABLISHED the kernel would send, and reports the others' creates.
type meshKernel struct {
	benchKernel
	events   chanEvents
	measured uint32
}

func (k meshKernel) CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error {
	if token >= k.measured {
		return k.benchKernel.CreateSubflow(token, local, remote)
	}
	k.events <- []genl.Event{{Type: genl.EventSubEstablished, Token: token,
		Local: netip.AddrPortFrom(local.Addr, uint16(token)), Remote: remote,
		LocalID: local.ID, IfIndex: local.IfIndex}}
	return nil
}

// trackedEngine runs an engine in userspace mode with the default policy
// (fullmesh) and a 2×1 mesh that tracks n client-side connections, each
// with its extra subflow. Connections from token measuredBase on report
// their creates to the returned channel instead.
func trackedEngine(b *testing.B, n int) (*Engine, chanEvents, <-chan uint32) {
	b.Helper()
	created := make(chan uint32, 16)
	events := make(chanEvents, n+16)
	e, _ := benchEngine(b, meshKernel{benchKernel: benchKernel{created: created}, events: events, measured: measuredBase}, events)
	meshConns(b, e, events, n, false)
	return e, events, created
}

// measuredBase is the first token whose creates trackedEngine reports.
const measuredBase = 1 << 24

// BenchmarkStatus measures one Engine.Status with 1,000 and 10,000
// tracked connections, each with its extra subflow: the reader's cost,
// since a status asks the loop nothing (BenchmarkPost is the loop's).
func BenchmarkStatus(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			e, _, _ := trackedEngine(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Status(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnsPage measures a page of 100 connections (Engine.Conns)
// with 10,000 tracked, and reports the longest the loop spent answering
// one of the questions the page takes (max-query-ns).
func BenchmarkConnsPage(b *testing.B) {
	e, _, _ := trackedEngine(b, 10_000)
	from := uint32(0)
	for b.Loop() {
		p, err := e.Conns(b.Context(), pmstate.ConnQuery{From: from, Limit: 100})
		if err != nil {
			b.Fatal(err)
		}
		from = p.Next
	}
	reportQueries(b, e)
}

// reportQueries reports the longest time e's loop spent answering one
// question.
func reportQueries(b *testing.B, e *Engine) {
	b.Helper()
	st, err := e.Status(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(st.Queries.Max.Nanoseconds()), "max-query-ns")
	b.ReportMetric(float64(st.Queries.Total.Nanoseconds())/float64(st.Queries.Count), "mean-query-ns")
}

// BenchmarkPost measures the status work of one loop iteration: the copy
// of the counts Status reads (Engine.post). It copies the same bytes
// whatever the number of connections; here two local addresses carry
// 10,000 connections' subflows, copied again at every post, as after an
// iteration that changed them.
func BenchmarkPost(b *testing.B) {
	e, err := New(Config{Mode: policy.ModeUserspace, Policy: defaultPolicy(b),
		NewKernel: func() (Kernel, error) { return benchKernel{}, nil }, Events: make(chanEvents)})
	if err != nil {
		b.Fatal(err)
	}
	e.totals.addrs[addrA] = &addrTotal{subflows: 10_000, wanted: 10_000}
	e.totals.addrs[addrB] = &addrTotal{subflows: 10_000, wanted: 10_000}
	b.ReportAllocs()
	for b.Loop() {
		e.totals.addrsChanged = true
		e.post(1)
	}
}
