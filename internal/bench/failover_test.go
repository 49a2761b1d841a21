//go:build linux

package bench_test

import (
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/bench"
	"github.com/mptcpgod/mptcpgod/internal/failover"
)

// failoverCases are the path managers of BenchmarkFailover: internal/
// failover's scenario names them, the report by manager and mode.
var failoverCases = []struct{ scenario, manager, mode string }{
	{failover.Mptcpgod, "mptcpgod", "userspace"},
	{failover.KernelBackup, "kernel-backup", "kernel"},
}

// BenchmarkFailover runs internal/failover's scenario (a paced stream
// whose primary link goes silent in both directions for 1.5 s) with
// mptcpgod (fullmesh | backup-cellular, eth1 cellular) and with the
// in-kernel path manager's "subflow backup" endpoint, and reports the
// longest stall in the delivered data and the number of stalls after the
// first one; an iteration is one scenario on a testbed of its own.
func BenchmarkFailover(b *testing.B) {
	for _, c := range failoverCases {
		b.Run(c.manager+"-"+c.mode, func(b *testing.B) {
			var f bench.Failover
			var total, promote time.Duration
			promoted := 0
			for b.Loop() {
				o := failover.Run(b, c.scenario, slog.New(slog.DiscardHandler))
				if !o.Intact() {
					b.Fatalf("received %d bytes, sent %d, or the data differs", o.GotN, o.SentN)
				}
				b.Logf("%s: %s", c.manager, o)
				f.Runs++
				for i, s := range o.Stalls() {
					f.LongestStallMs = max(f.LongestStallMs, msOf(s.D))
					total += s.D
					if i > 0 {
						f.RepeatStalls++
					}
				}
				if !o.Promoted.IsZero() {
					promoted++
					promote += o.Promoted.Sub(o.Cut)
				}
			}
			f.StallMsPerRun = math.Round(msOf(total) / float64(f.Runs))
			if c.scenario == failover.Mptcpgod && promoted > 0 {
				p := math.Round(msOf(promote) / float64(promoted))
				f.PromoteMs = &p
				b.ReportMetric(p, "promote-ms")
			}
			b.ReportMetric(f.LongestStallMs, "longest-stall-ms")
			b.ReportMetric(float64(f.RepeatStalls)/float64(f.Runs), "repeat-stalls/op")
			b.ReportMetric(f.StallMsPerRun, "stall-ms/op")
			record(b, bench.Result{Figure: "failover", Manager: c.manager, Mode: c.mode, Failover: &f})
		})
	}
}

// msOf returns d in milliseconds, rounded to the millisecond.
func msOf(d time.Duration) float64 {
	return math.Round(float64(d) / float64(time.Millisecond))
}
