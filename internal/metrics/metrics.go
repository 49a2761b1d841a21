package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/pm"
)

// Source is the engine's state, asked at each scrape; *pm.Engine is one.
type Source interface {
	Status(ctx context.Context) (pmstate.Status, error)
}

var _ Source = (*pm.Engine)(nil)

// Config configures Metrics.
type Config struct {
	// NetNS is a file descriptor of the network namespace whose kernel
	// state is exported; 0 means the calling thread's.
	NetNS int
	// Engine is the engine; nil leaves the engine's metrics out.
	Engine Source
	// Usage is the traffic accounting of metered links; nil leaves the
	// usage metrics out.
	Usage UsageSource
	// Plugins lists the policies that run programs; nil leaves the plugin
	// metrics out.
	Plugins PluginSource
	// Timeout bounds the engine query of a scrape; 0 means 2s.
	Timeout time.Duration
	// Logger receives scrape failures; nil discards them.
	Logger *slog.Logger
}

// Metrics are mptcpgod's metrics in a registry of their own.
type Metrics struct {
	reg       *prometheus.Registry
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	failovers *prometheus.CounterVec
	demotions *prometheus.CounterVec
	links     *linkTracker
	kernel    *kernelCollector
	log       *slog.Logger
}

// The scope label of the failover and demotion counters: what had its
// backup bit changed.
const (
	scopeSubflow  = "subflow"
	scopeEndpoint = "endpoint"
)

// LatencyBuckets are the bounds, in seconds, of the event-to-action
// histogram: from a tenth of a millisecond (one netlink round trip is
// about 0.2 ms) to ten seconds.
var LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// New opens the kernel interfaces of the namespace (sock_diag, rtnetlink,
// /proc/net/netstat) and returns the metrics. Close releases them.
func New(cfg Config) (*Metrics, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "metrics")
	kc, err := newKernelCollector(cfg.NetNS, log)
	if err != nil {
		return nil, err
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mptcpgod_event_to_action_seconds",
			Help:    "Time from the input that caused a kernel command (a batch of events received, a host change, a policy swap) to the command's completion, by command.",
			Buckets: LatencyBuckets,
		}, []string{"op"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mptcpgod_engine_decisions_total",
			Help: "Decisions of the engine by kind: action (a kernel command completed), path_failed, resync, policy, unmanaged.",
		}, []string{"kind"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mptcpgod_engine_failovers_total",
			Help: "Backup paths the engine made active, by scope: subflow (userspace mode: set_subflow_backup) or endpoint (kernel mode: set_endpoint_flags without backup). A policy promotes them when the primary paths stop working, or when a reload no longer wants them as backup.",
		}, []string{"scope"}),
		demotions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mptcpgod_engine_demotions_total",
			Help: "Paths the engine made backup, by scope: subflow or endpoint. A policy demotes a promoted backup path once a primary path works again (the failback), and the engine a client's dropped initial subflow it keeps.",
		}, []string{"scope"}),
		links:  newLinkTracker(),
		kernel: kc,
		log:    log,
	}
	for _, scope := range []string{scopeSubflow, scopeEndpoint} {
		m.failovers.WithLabelValues(scope)
		m.demotions.WithLabelValues(scope)
	}
	m.reg.MustRegister(m.latency, m.decisions, m.failovers, m.demotions, m.links, kc,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Engine != nil {
		m.reg.MustRegister(&engineCollector{src: cfg.Engine, timeout: cmp.Or(cfg.Timeout, 2*time.Second), log: log})
	}
	if cfg.Usage != nil {
		m.reg.MustRegister(&usageCollector{src: cfg.Usage})
	}
	if cfg.Plugins != nil {
		m.reg.MustRegister(&pluginCollector{src: cfg.Plugins})
	}
	return m, nil
}

// Observe counts d and records the latency of an action; it is quick and
// safe for concurrent use, as pm.Config.Observe needs.
func (m *Metrics) Observe(d pmstate.Decision) {
	m.decisions.WithLabelValues(string(d.Kind)).Inc()
	if d.Kind != pmstate.DecisionAction {
		return
	}
	if d.Latency > 0 {
		m.latency.WithLabelValues(string(d.Op)).Observe(d.Latency.Seconds())
	}
	if d.Error != "" {
		return
	}
	switch d.Op {
	case pmstate.OpSetSubflowBackup:
		m.backupChanged(scopeSubflow, d.Backup)
	case pmstate.OpSetEndpointFlags:
		// The command sets the backup and fullmesh flags; Flags are the
		// endpoint's new ones, as genl.EndpointFlags prints them.
		m.backupChanged(scopeEndpoint, slices.Contains(strings.Fields(d.Flags), "backup"))
	}
}

// backupChanged counts a path of scope made backup or active.
func (m *Metrics) backupChanged(scope string, backup bool) {
	if backup {
		m.demotions.WithLabelValues(scope).Inc()
	} else {
		m.failovers.WithLabelValues(scope).Inc()
	}
}

// SetHost hands the metrics the link monitor's latest state: the link
// gauges follow it and the link changes since the previous state are
// counted. It is safe for concurrent use.
func (m *Metrics) SetHost(st linkmon.State) { m.links.set(st) }

// Handler serves the metrics in the Prometheus exposition formats, two
// scrapes at a time at most.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 2,
		Timeout:             10 * time.Second,
	})
}

// MPTcpExt reads the MPTcpExt counters of the namespace's
// /proc/net/netstat, by name, as the metric mptcpgod_kernel_mptcpext_total
// exports them; it is safe for concurrent use.
func (m *Metrics) MPTcpExt() (map[string]uint64, error) {
	m.kernel.mu.Lock()
	defer m.kernel.mu.Unlock()
	return m.kernel.mptcpExt()
}

// Gatherer returns the registry, for tests and other exporters.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Close releases the kernel interfaces.
func (m *Metrics) Close() error { return m.kernel.close() }

// Serve serves h at /metrics on the TCP address addr of the network
// namespace netns (0: the calling thread's) until ctx is done. The server
// has the timeouts of a small exporter: a scraper that stalls is dropped.
func Serve(ctx context.Context, netns int, addr string, h http.Handler, log *slog.Logger) error {
	var ln net.Listener
	err := inNetNS(netns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("metrics: listen: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("metrics listening", "component", "metrics", "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("metrics: serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve %s: %w", addr, err)
	}
	return nil
}
