package metrics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
	kernel    *kernelCollector
	log       *slog.Logger
}

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
		kernel: kc,
		log:    log,
	}
	m.reg.MustRegister(m.latency, m.decisions, kc,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Engine != nil {
		m.reg.MustRegister(&engineCollector{src: cfg.Engine, timeout: cmp.Or(cfg.Timeout, 2*time.Second), log: log})
	}
	if cfg.Usage != nil {
		m.reg.MustRegister(&usageCollector{src: cfg.Usage})
	}
	return m, nil
}

// Observe counts d and records the latency of an action; it is quick and
// safe for concurrent use, as pm.Config.Observe needs.
func (m *Metrics) Observe(d pmstate.Decision) {
	m.decisions.WithLabelValues(string(d.Kind)).Inc()
	if d.Kind == pmstate.DecisionAction && d.Latency > 0 {
		m.latency.WithLabelValues(string(d.Op)).Observe(d.Latency.Seconds())
	}
}

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
