package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// The engine's metrics, read from the engine's status at each scrape: its
// counts, never a walk of its connections.
var (
	engineUp = prometheus.NewDesc("mptcpgod_engine_up",
		"1 when the engine answered this scrape's status query, 0 when it did not (the other engine metrics are then missing).", nil, nil)
	engineReady = prometheus.NewDesc("mptcpgod_engine_ready",
		"1 once the engine has adopted the kernel's state and reconciled it.", nil, nil)
	engineInfo = prometheus.NewDesc("mptcpgod_engine_info",
		"The path manager the engine drives and its policy, as labels; always 1.", []string{"mode", "policy"}, nil)
	engineStart = prometheus.NewDesc("mptcpgod_engine_start_time_seconds",
		"When the engine started, in seconds since the epoch.", nil, nil)
	engineActions = prometheus.NewDesc("mptcpgod_engine_actions_total",
		"Kernel commands handed to the workers, by command (add_endpoint, create_subflow, ...).", []string{"op"}, nil)
	engineFailures = prometheus.NewDesc("mptcpgod_engine_action_failures_total",
		"Kernel commands that failed, by command.", []string{"op"}, nil)
	engineEvents = prometheus.NewDesc("mptcpgod_engine_kernel_events_total",
		"Path-manager events received from the kernel, by type.", []string{"type"}, nil)
	engineBatches = prometheus.NewDesc("mptcpgod_engine_event_batches_total",
		"Batches of kernel events received.", nil, nil)
	engineResyncs = prometheus.NewDesc("mptcpgod_engine_resyncs_total",
		"Full re-reads of the kernel's state after events were lost.", nil, nil)
	engineBackoffs = prometheus.NewDesc("mptcpgod_engine_backoffs_total",
		"Failures that put a path, announce, endpoint or the limits in backoff.", nil, nil)
	engineRepairs = prometheus.NewDesc("mptcpgod_engine_endpoint_repairs_total",
		"Subflow endpoints replaced so that the kernel tries them again on connections that missed their subflow (kernel mode).", nil, nil)
	engineRepairsGivenUp = prometheus.NewDesc("mptcpgod_engine_repairs_given_up_total",
		"Connections still without an endpoint's subflow after three repairs, no longer repaired for it (kernel mode).", nil, nil)
	enginePeerRefused = prometheus.NewDesc("mptcpgod_engine_peer_addrs_refused_total",
		"Addresses peers announced that the peer-address policy refused, by reason (userspace mode).", []string{"reason"}, nil)
	enginePeerGivenUp = prometheus.NewDesc("mptcpgod_engine_peer_addrs_given_up_total",
		"Addresses peers announced that were given up after every try failed (userspace mode).", nil, nil)
	enginePlansRefused = prometheus.NewDesc("mptcpgod_engine_plans_refused_total",
		"Parts of the policies' plans refused (path, announce, endpoint): addresses not usable ones of this host, or not the peer's.", []string{"item"}, nil)
	engineDeferred = prometheus.NewDesc("mptcpgod_engine_deferred_connections_total",
		"Connections whose joins were deferred (userspace mode), by outcome: held (a path or announce was held back), released_time, released_bytes, ended_held (closed before their joins).", []string{"outcome"}, nil)
	engineByteReads = prometheus.NewDesc("mptcpgod_engine_byte_reads_total",
		"Reads of the byte counters of connections whose deferral waits on bytes (sock_diag), by result: ok, error.", []string{"result"}, nil)
	engineConns = prometheus.NewDesc("mptcpgod_engine_connections",
		"Connections the engine tracks (userspace mode).", nil, nil)
	enginePaths = prometheus.NewDesc("mptcpgod_engine_paths",
		"Paths of the tracked connections by state: established, connecting, queued, deferred, backoff, waiting, refused, blocked, closing, kept (userspace mode).", []string{"state"}, nil)
	engineEndpoints = prometheus.NewDesc("mptcpgod_engine_endpoints",
		"Endpoints by state: ok, pending, backoff, removing, foreign, blocked, left_out, unusable (kernel mode).", []string{"state"}, nil)
	engineInFlight = prometheus.NewDesc("mptcpgod_engine_commands_in_flight",
		"Kernel commands with the workers.", nil, nil)
	engineQueued = prometheus.NewDesc("mptcpgod_engine_commands_queued",
		"Kernel commands waiting for their connection's previous one.", nil, nil)
	engineQueries = prometheus.NewDesc("mptcpgod_engine_queries_total",
		"Questions the engine's loop answered (connections, pages of connections, the watchdog's); a status, this scrape's included, asks none.", nil, nil)
	engineQueryTime = prometheus.NewDesc("mptcpgod_engine_query_seconds_total",
		"Time the engine's loop spent answering questions.", nil, nil)
	engineQueryMax = prometheus.NewDesc("mptcpgod_engine_query_max_seconds",
		"The longest time the engine's loop spent answering one question since it started.", nil, nil)
)

// engineCollector exports the engine's status.
type engineCollector struct {
	src     Source
	timeout time.Duration
	log     *slog.Logger
}

// Describe implements prometheus.Collector.
func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{engineUp, engineReady, engineInfo, engineStart, engineActions, engineFailures,
		engineEvents, engineBatches, engineResyncs, engineBackoffs, engineRepairs, engineRepairsGivenUp, enginePeerRefused,
		enginePeerGivenUp, enginePlansRefused, engineDeferred, engineByteReads, engineConns, enginePaths,
		engineEndpoints, engineInFlight, engineQueued, engineQueries, engineQueryTime, engineQueryMax} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.src.Status(ctx)
	if err != nil {
		c.log.Warn("the engine did not answer the scrape", "error", err)
		ch <- prometheus.MustNewConstMetric(engineUp, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(engineUp, 1)
	gauge(engineReady, boolFloat(st.Ready))
	gauge(engineInfo, 1, string(st.Mode), st.Policy)
	if !st.Started.IsZero() {
		gauge(engineStart, float64(st.Started.UnixNano())/1e9)
	}
	// Every command that ran has a failure count, 0 included, so that a
	// failure ratio has a value before the first failure.
	for op, n := range st.Counters.Actions {
		counter(engineActions, n, string(op))
		counter(engineFailures, st.Counters.Failures[op], string(op))
	}
	for op, n := range st.Counters.Failures {
		if _, ok := st.Counters.Actions[op]; !ok {
			counter(engineFailures, n, string(op))
		}
	}
	for typ, n := range st.Counters.Events {
		counter(engineEvents, n, typ)
	}
	counter(engineBatches, st.Counters.EventBatches)
	counter(engineResyncs, st.Counters.Resyncs)
	counter(engineBackoffs, st.Counters.Backoffs)
	counter(engineRepairs, st.Counters.EndpointRepairs)
	counter(engineRepairsGivenUp, st.Counters.RepairsGivenUp)
	for reason, n := range st.Counters.PeerAddrsRefused {
		counter(enginePeerRefused, n, reason)
	}
	counter(enginePeerGivenUp, st.Counters.PeerAddrsGivenUp)
	for item, n := range st.Counters.PlansRefused {
		counter(enginePlansRefused, n, item)
	}
	d := st.Counters.Deferral
	counter(engineDeferred, d.Held, "held")
	counter(engineDeferred, d.ReleasedTime, "released_time")
	counter(engineDeferred, d.ReleasedBytes, "released_bytes")
	counter(engineDeferred, d.EndedHeld, "ended_held")
	counter(engineByteReads, d.ByteReads-d.ByteReadErrors, "ok")
	counter(engineByteReads, d.ByteReadErrors, "error")
	gauge(engineConns, float64(st.Connections))
	gauge(engineInFlight, float64(st.InFlight))
	gauge(engineQueued, float64(st.Queued))
	counter(engineQueries, st.Queries.Count)
	ch <- prometheus.MustNewConstMetric(engineQueryTime, prometheus.CounterValue, st.Queries.Total.Seconds())
	gauge(engineQueryMax, st.Queries.Max.Seconds())

	if st.Mode == pmstate.ModeUserspace {
		for _, state := range pmstate.PathStates {
			gauge(enginePaths, float64(st.Paths[state]), string(state))
		}
	}
	eps := map[pmstate.EndpointState]int{}
	for _, e := range st.Endpoints {
		eps[e.State]++
	}
	for state, n := range eps {
		gauge(engineEndpoints, float64(n), string(state))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var _ prometheus.Collector = (*engineCollector)(nil)
