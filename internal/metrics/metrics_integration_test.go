//go:build linux

package metrics_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mptcpgod/mptcpgod/internal/metrics"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// fakeEngine answers Status with a canned status.
type fakeEngine struct{ st pmstate.Status }

func (f fakeEngine) Status(context.Context) (pmstate.Status, error) { return f.st, nil }

// scrape fetches h and parses it with the Prometheus text parser.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, rec.Body)
	}
	return fams
}

// value returns the value of the sample of name whose labels include
// labels (name=value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestKernelMetrics: the kernel's metrics of a namespace move when an
// MPTCP connection is made in it; the engine's come from its status; the
// latency histogram and the backup changes from Observe.
func TestKernelMetrics(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	st := pmstate.Status{Mode: pmstate.ModeKernel, Policy: "fullmesh", Ready: true, Started: time.Unix(1700000000, 0),
		Counters: pmstate.Counters{Actions: map[pmstate.Op]uint64{pmstate.OpAddEndpoint: 2, pmstate.OpSetLimits: 1},
			Failures: map[pmstate.Op]uint64{pmstate.OpAddEndpoint: 1},
			Events:   map[string]uint64{"created": 1}, Resyncs: 1, Backoffs: 3,
			EndpointRepairs: 4, RepairsGivenUp: 5},
		Endpoints: []pmstate.Endpoint{{State: pmstate.EndpointOK}, {State: pmstate.EndpointOK}, {State: pmstate.EndpointBackoff}},
		Queries:   pmstate.QueryStats{Count: 7, Total: 3 * time.Millisecond, Max: time.Millisecond}}
	m, err := metrics.New(metrics.Config{NetNS: tb.Client.NetNS(), Engine: fakeEngine{st}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	h := m.Handler()

	before := scrape(t, h)
	if v, ok := value(before, "mptcpgod_kernel_connections"); !ok || v != 0 {
		t.Errorf("connections before: %v %v", v, ok)
	}
	syn0, ok := value(before, "mptcpgod_kernel_mptcpext_total", "name", "MPCapableSYNTX")
	if !ok {
		t.Fatalf("no MPCapableSYNTX counter: %v", before["mptcpgod_kernel_mptcpext_total"])
	}

	ln := tb.Server.Listen("tcp", netip.AddrPortFrom(tb.Links[0].Server4, 0).String())
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := tb.Client.Dial("tcp", "", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	sc := <-accepted
	t.Cleanup(func() { _ = sc.Close() })
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(sc, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}

	m.Observe(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpAddEndpoint, Latency: 3 * time.Millisecond})
	m.Observe(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpAddEndpoint}) // a retry: no latency
	m.Observe(pmstate.Decision{Kind: pmstate.DecisionResync})
	// Backup bits: promoted, demoted, and a failure that changed nothing.
	m.Observe(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpSetSubflowBackup, Backup: false})
	m.Observe(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpSetSubflowBackup, Backup: false, Error: "no such subflow"})
	m.Observe(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpSetEndpointFlags, Flags: "subflow"})
	m.Observe(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpSetEndpointFlags, Flags: "subflow backup"})
	m.Observe(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpSetEndpointFlags, Flags: "signal backup fullmesh"})
	deadline := time.Now().Add(10 * time.Second)
	var after map[string]*dto.MetricFamily
	for {
		after = scrape(t, h)
		v, _ := value(after, "mptcpgod_kernel_subflows", "link", "eth0")
		if v == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mptcpgod_kernel_connections", nil, 1},
		{"mptcpgod_kernel_subflows", []string{"link", "eth0"}, 1},
		{"mptcpgod_kernel_mptcpext", []string{"name", "MPCurrEstab"}, 1},
		{"mptcpgod_engine_up", nil, 1},
		{"mptcpgod_engine_ready", nil, 1},
		{"mptcpgod_engine_info", []string{"mode", "kernel", "policy", "fullmesh"}, 1},
		{"mptcpgod_engine_actions_total", []string{"op", "add_endpoint"}, 2},
		{"mptcpgod_engine_action_failures_total", []string{"op", "add_endpoint"}, 1},
		{"mptcpgod_engine_actions_total", []string{"op", "set_limits"}, 1},
		{"mptcpgod_engine_action_failures_total", []string{"op", "set_limits"}, 0},
		{"mptcpgod_engine_failovers_total", []string{"scope", "subflow"}, 1},
		{"mptcpgod_engine_failovers_total", []string{"scope", "endpoint"}, 1},
		{"mptcpgod_engine_demotions_total", []string{"scope", "subflow"}, 0},
		{"mptcpgod_engine_demotions_total", []string{"scope", "endpoint"}, 2},
		{"mptcpgod_engine_kernel_events_total", []string{"type", "created"}, 1},
		{"mptcpgod_engine_resyncs_total", nil, 1},
		{"mptcpgod_engine_backoffs_total", nil, 3},
		{"mptcpgod_engine_endpoint_repairs_total", nil, 4},
		{"mptcpgod_engine_repairs_given_up_total", nil, 5},
		{"mptcpgod_engine_endpoints", []string{"state", "ok"}, 2},
		{"mptcpgod_engine_endpoints", []string{"state", "backoff"}, 1},
		{"mptcpgod_engine_start_time_seconds", nil, 1700000000},
		{"mptcpgod_engine_queries_total", nil, 7},
		{"mptcpgod_engine_query_seconds_total", nil, 0.003},
		{"mptcpgod_engine_query_max_seconds", nil, 0.001},
		{"mptcpgod_event_to_action_seconds", []string{"op", "add_endpoint"}, 1},
		{"mptcpgod_engine_decisions_total", []string{"kind", "action"}, 7},
		{"mptcpgod_engine_decisions_total", []string{"kind", "resync"}, 1},
	}
	for _, c := range checks {
		if v, ok := value(after, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if syn, _ := value(after, "mptcpgod_kernel_mptcpext_total", "name", "MPCapableSYNTX"); syn != syn0+1 {
		t.Errorf("MPCapableSYNTX %v after one connection, was %v", syn, syn0)
	}
	if f := after["mptcpgod_event_to_action_seconds"]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("latency is not a histogram: %v", f)
	} else if sum := f.Metric[0].Histogram.GetSampleSum(); sum != 0.003 {
		t.Errorf("latency sum %v, want 0.003", sum)
	}
}

// TestServe: the TCP exporter serves /metrics and stops with its context.
func TestServe(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	m, err := metrics.New(metrics.Config{NetNS: tb.Client.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	// The namespace is the test's own: any port is free there.
	const addr = "127.0.0.1:9464"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, tb.Client.NetNS(), addr, m.Handler(), nil) }()
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := tb.Client.HTTPGet(addr, "/metrics")
		if err == nil {
			body = b
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /metrics: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(body, "mptcpgod_kernel_connections 0") || strings.Contains(body, "mptcpgod_engine_up") {
		t.Errorf("metrics without an engine:\n%s", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// stuckEngine is an engine whose loop does not answer: its Status waits
// until the scrape gives up, as pm.Engine's does for a loop stuck in one
// iteration.
type stuckEngine struct{}

func (stuckEngine) Status(ctx context.Context) (pmstate.Status, error) {
	<-ctx.Done()
	return pmstate.Status{}, ctx.Err()
}

// TestEngineNotAnswering: a scrape whose engine does not answer within
// the timeout reports mptcpgod_engine_up 0 (what MptcpgodEngineStalled
// alerts on) and none of the engine's other metrics.
func TestEngineNotAnswering(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "stuck")
	m, err := metrics.New(metrics.Config{NetNS: h.NetNS(), Engine: stuckEngine{}, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	fams := scrape(t, m.Handler())
	if v, ok := value(fams, "mptcpgod_engine_up"); !ok || v != 0 {
		t.Errorf("mptcpgod_engine_up = %v (present %v), want 0", v, ok)
	}
	if _, ok := value(fams, "mptcpgod_engine_ready"); ok {
		t.Error("mptcpgod_engine_ready reported for an engine that did not answer")
	}
}
