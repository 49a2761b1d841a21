package pm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon/ctlhttp"
	"github.com/mptcpgod/mptcpgod/internal/metrics"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/pm"
)

func TestMain(m *testing.M) { os.Exit(daemontest.Main(m)) }

// BenchmarkStatusLoad measures the engine's latency from an ESTABLISHED
// event to the worker's CreateSubflow, with 10,000 connections tracked
// (fullmesh 2×1, a fake kernel), as the status is read:
//
//   - idle: not at all;
//   - busy: not at all, but mptcpctl --version runs in a loop: the
//     processes take the CPU that mptcpctl status in a loop takes,
//     without a read (the control for scraped);
//   - scraped: as the daemon serves it: the daemon's metrics scraped
//     every 100 ms and the real mptcpctl status run in a loop, both
//     through the control socket's real handler;
//   - hammered: GET /v1/status back to back through the control socket
//     by as many clients as the socket serves at once (Limits.MaxQueries),
//     the most a local user can ask.
//
// It reports the median and the 99th percentile, and the status reads
// and the processes run per second.
func BenchmarkStatusLoad(b *testing.B) {
	for _, load := range []string{"idle", "busy", "scraped", "hammered"} {
		b.Run(load, func(b *testing.B) {
			e, open := pm.TrackedEngine(b, 10_000)
			ctx, cancel := context.WithCancel(b.Context())
			var wg sync.WaitGroup
			defer func() {
				cancel()
				wg.Wait()
			}()
			r := readers{ctx: ctx, cancel: cancel, wg: &wg, first: make(chan struct{})}
			switch load {
			case "busy":
				r.runCtl(b, "", "--version")
			case "scraped":
				sock := serveEngine(b, e)
				r.scrape(b, sock)
				r.runCtl(b, sock, "status")
			case "hammered":
				sock := serveEngine(b, e)
				for range ctlhttp.DefaultLimits.MaxQueries {
					r.hammer(b, sock)
				}
			}
			// The measure begins once every reader has read once.
			for range r.started {
				select {
				case <-r.first:
				case <-ctx.Done():
					b.Fatal("a reader stopped before it read once")
				}
			}
			r.reads.Store(0)
			r.runs.Store(0)
			lat := make([]time.Duration, 0, b.N)
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				lat = append(lat, open(i))
			}
			elapsed := time.Since(start).Seconds()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(r.reads.Load())/elapsed, "reads/s")
			b.ReportMetric(float64(r.runs.Load())/elapsed, "runs/s")
		})
	}
}

// readers read the status until ctx is done. Each signals first once
// after its first read; a reader that fails fails the benchmark and
// cancels ctx.
type readers struct {
	ctx     context.Context
	cancel  context.CancelFunc
	wg      *sync.WaitGroup
	first   chan struct{}
	started int
	reads   atomic.Int64
	runs    atomic.Int64
}

// read runs fn in a loop, pausing for every between two runs; fn returns
// whether it read the status.
func (r *readers) read(b *testing.B, what string, every time.Duration, fn func() (bool, error)) {
	r.started++
	r.wg.Go(func() {
		first := true
		for r.ctx.Err() == nil {
			read, err := fn()
			if err != nil {
				if r.ctx.Err() == nil {
					b.Errorf("%s: %v", what, err)
					r.cancel()
				}
				return
			}
			if read {
				r.reads.Add(1)
			}
			if first {
				first = false
				select {
				case r.first <- struct{}{}:
				case <-r.ctx.Done():
				}
			}
			if every > 0 {
				select {
				case <-time.After(every):
				case <-r.ctx.Done():
				}
			}
		}
	})
}

// runCtl runs mptcpctl with args in a loop, through sock when it is set.
func (r *readers) runCtl(b *testing.B, sock string, args ...string) {
	ctl := daemontest.Binary(b, "mptcpctl")
	if sock != "" {
		args = append([]string{"--socket", sock}, args...)
	}
	r.read(b, "mptcpctl", 0, func() (bool, error) {
		out, err := exec.CommandContext(r.ctx, ctl, args...).CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("%v\n%s", err, out)
		}
		r.runs.Add(1)
		return sock != "", nil
	})
}

// scrape reads the metrics through sock every 100 ms, as Prometheus
// would.
func (r *readers) scrape(b *testing.B, sock string) {
	client := unixClient(sock)
	r.read(b, "scrape", 100*time.Millisecond, func() (bool, error) { return true, get(r.ctx, client, "/metrics") })
}

// unixClient returns an HTTP client of the control socket sock.
func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// hammer reads the status through sock back to back.
func (r *readers) hammer(b *testing.B, sock string) {
	client := unixClient(sock)
	r.read(b, "GET /v1/status", 0, func() (bool, error) { return true, get(r.ctx, client, "/v1/status") })
}

// serveEngine serves e on a control socket, with the daemon's metrics, until
// the benchmark ends, and returns the socket's path.
func serveEngine(b *testing.B, e *pm.Engine) string {
	b.Helper()
	m, err := metrics.New(metrics.Config{Engine: e})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	sock := filepath.Join(b.TempDir(), "mptcpgod.sock")
	srv, err := ctlhttp.NewServer(ctlhttp.ServerConfig{Socket: sock, Backend: engineBackend{e}, Metrics: m.Handler()})
	if err != nil {
		b.Fatal(err)
	}
	runtest.Run(b, "server", srv.Run).WaitReady(b, srv.Ready())
	return sock
}

// get reads path through c, and fails unless the answer is 200 OK.
func get(ctx context.Context, c *http.Client, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://mptcpgod"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// engineBackend serves an engine alone on the control socket.
type engineBackend struct{ e *pm.Engine }

var errNoDaemon = errors.New("not in this benchmark: no daemon around the engine")

func (b engineBackend) Status(ctx context.Context) (pmstate.Status, error) { return b.e.Status(ctx) }
func (b engineBackend) Conn(ctx context.Context, token uint32) (pmstate.Conn, error) {
	return b.e.Conn(ctx, token)
}
func (b engineBackend) Conns(ctx context.Context, q pmstate.ConnQuery) (pmstate.ConnPage, error) {
	return b.e.Conns(ctx, q)
}
func (engineBackend) Info(context.Context) (ctlhttp.Info, error) {
	return ctlhttp.Info{Version: "benchmark", Mode: pmstate.ModeUserspace}, nil
}
func (engineBackend) Reload(context.Context) error { return errNoDaemon }
func (engineBackend) Events(context.Context) (<-chan ctlapi.Event, error) {
	return nil, errNoDaemon
}
func (engineBackend) Usage(context.Context) (usage.Report, error) {
	return usage.Report{}, ctlhttp.ErrUsageOff
}
