//go:build linux

package bench_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
)

// burstConns is the number of connections BenchmarkBurst opens at once.
const burstConns = 4000

// burstTimed is the number of new connections BenchmarkBurst times
// before and after the burst.
const burstTimed = 200

// BenchmarkBurst opens burstConns connections at once through the daemon
// in userspace mode, and times, one at a time, burstTimed new connections
// to another server port from their ESTABLISHED to their extra subflow
// established: before the burst (quiet) and right after it, while the
// daemon still digests it. It runs with the default event buffer and
// with one of 2 KiB, which loses events in the burst and makes the daemon
// re-read the connections; it reports the resyncs.
func BenchmarkBurst(b *testing.B) {
	for _, small := range []bool{false, true} {
		name := map[bool]string{false: "default-buffer", true: "small-buffer"}[small]
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				benchBurst(b, small)
			}
		})
	}
}

func benchBurst(b *testing.B, small bool) {
	tb, server := testbed(b)
	ln := tb.Server.Listen("tcp", ":0")
	go serve(ln)
	timed := netip.AddrPortFrom(tb.Links[0].Server4, netip.MustParseAddrPort(ln.Addr().String()).Port())
	sock := filepath.Join(b.TempDir(), "mptcpgod.sock")
	buffer := 0
	if small {
		buffer = 2048
	}
	daemontest.Start(b, tb.Client, fmt.Sprintf("mode = \"userspace\"\nset_path_manager = true\n\n[engine]\nevent_buffer = %d\n\n"+
		"[control]\nsocket = %q\n\n[links]\ninclude_kinds = [\"virtual\"]\n%s", buffer, sock, atOnce))
	ctl := &ctlapi.Client{Socket: sock}
	w := watch(b, tb.Client)
	w.port = timed.Port()

	one := func(n int) error {
		c, err := tb.Client.Dial("tcp", "", timed.String())
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte{0}); err != nil {
			return err
		}
		return w.waitFor(n)
	}
	for i := range burstTimed {
		if err := one(i + 1); err != nil {
			b.Fatalf("quiet: %v", err)
		}
	}
	quiet := w.samples()

	conns := make(chan net.Conn, burstConns)
	var wg sync.WaitGroup
	const dialers = 128
	for range dialers {
		wg.Go(func() {
			for range burstConns / dialers {
				c, err := tb.Client.Dial("tcp", "", server.String())
				if err != nil {
					b.Errorf("burst: %v", err)
					return
				}
				_, _ = c.Write([]byte{0})
				conns <- c
			}
		})
	}
	wg.Wait()
	close(conns)
	b.Cleanup(func() {
		for c := range conns {
			_ = c.Close()
		}
	})
	for i := range burstTimed {
		if err := one(burstTimed + i + 1); err != nil {
			b.Fatalf("after the burst: %v", err)
		}
	}
	after := w.samples()[burstTimed:]

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := ctl.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	qs, as := summarize(b, quiet), summarize(b, after)
	afterResult := bench.Result{Figure: "burst-after", Manager: "mptcpgod", Mode: "userspace", InFlight: 1, Conns: burstConns, Summary: &as}
	if small {
		afterResult.Figure = "burst-after-small"
		record(b, afterResult)
	} else {
		record(b, bench.Result{Figure: "burst-quiet", Manager: "mptcpgod", Mode: "userspace", InFlight: 1, Conns: burstConns,
			Summary: &qs}, afterResult)
	}
	b.ReportMetric(qs.P50, "quiet-p50-ms")
	b.ReportMetric(qs.P99, "quiet-p99-ms")
	b.ReportMetric(as.P50, "after-p50-ms")
	b.ReportMetric(as.P99, "after-p99-ms")
	b.ReportMetric(float64(st.Counters.Resyncs), "resyncs")
}
