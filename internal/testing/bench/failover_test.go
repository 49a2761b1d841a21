//go:build linux

package bench_test

import (
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/failover"
)

// failoverCases are the path managers of BenchmarkFailover, by manager and
// mode as the report names them: the mptcpgod binary with its
// configuration file, the engine and the health sampler alone in this
// process (internal/testing/failover's Mptcpgod) and the in-kernel path manager's
// backup endpoint. promotes marks the rows whose cellular subflow's
// promotion is reported.
var failoverCases = []struct {
	manager, mode string
	promotes      bool
	run           func(b *testing.B) *failover.Outcome
}{
	{"mptcpgod", "userspace", true, func(b *testing.B) *failover.Outcome {
		return failover.RunUserspace(b, startFailoverDaemon)
	}},
	{"mptcpgod-engine", "userspace", true, func(b *testing.B) *failover.Outcome {
		return failover.Run(b, failover.Mptcpgod, slog.New(slog.DiscardHandler))
	}},
	{"kernel-backup", "kernel", false, func(b *testing.B) *failover.Outcome {
		return failover.Run(b, failover.KernelBackup, slog.New(slog.DiscardHandler))
	}},
}

// failoverConfig is the mptcpgod binary's configuration file in
// BenchmarkFailover: userspace mode, the veth links used, eth1 named
// cellular, the chain fullmesh | backup-cellular with a hold time of 1 s;
// the health sampler runs with the daemon's defaults (the configuration
// has no key for it).
const failoverConfig = `mode = "userspace"

[control]
socket = ""

[links]
include_kinds = ["virtual", "cellular"]
cellular_names = ["eth1"]

[[policy.chain]]
name = "fullmesh"

[[policy.chain]]
name = "backup-cellular"
[policy.chain.config]
hold_time = "1s"
`

// BenchmarkFailover runs internal/testing/failover's scenario (a paced stream
// whose primary link goes silent in both directions for 1.5 s) with
// mptcpgod (fullmesh | backup-cellular, eth1 cellular), as the binary and
// as the engine alone in this process, and with the in-kernel path
// manager's "subflow backup" endpoint, and reports the longest stall in
// the delivered data and the number of stalls after the first one; an
// iteration is one scenario on a testbed of its own.
func BenchmarkFailover(b *testing.B) {
	for _, c := range failoverCases {
		b.Run(c.manager+"-"+c.mode, func(b *testing.B) {
			var f bench.Failover
			var total, promote time.Duration
			promoted := 0
			for b.Loop() {
				o := c.run(b)
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
			if c.promotes && promoted > 0 {
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

// startFailoverDaemon runs the mptcpgod binary with failoverConfig in h's
// namespace until the scenario ends and waits until it is ready; it is
// internal/testing/failover's Starter.
func startFailoverDaemon(tb testing.TB, h *netnstest.Host) {
	tb.Helper()
	daemontest.Start(tb, h, failoverConfig)
}

// msOf returns d in milliseconds, rounded to the millisecond.
func msOf(d time.Duration) float64 {
	return math.Round(float64(d) / float64(time.Millisecond))
}
