//go:build linux

package bench_test

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
)

// socketCalls is how many sockets one run of the C loop opens and closes;
// socketRuns how many runs of each way one iteration takes, interleaved so
// that the machine's other load falls on every way alike.
const (
	socketCalls = 2000
	socketRuns  = 7
)

// socketWay is one way for the C loop to get its sockets.
type socketWay struct {
	name string
	// argv is the command line before the loop's own.
	argv func(b *testing.B) []string
	// protocol is the loop's own protocol argument.
	protocol string
}

// BenchmarkTransparentSocket measures the cost of one socket(AF_INET,
// SOCK_STREAM, 0) and close in a dynamically linked C loop
// (testdata/sockloop), side by side: unforced (TCP), the program asking
// IPPROTO_MPTCP itself (the cost of an MPTCP socket), under mptcpize
// (mptcpd's LD_PRELOAD library; when installed) and under mptcpctl run
// (seccomp user notification). It reports the median microseconds per
// socket of each way.
func BenchmarkTransparentSocket(b *testing.B) {
	h := netnstest.NewHost(b, "socket")
	loop := daemontest.Program(b, daemontest.Build{Pkg: "github.com/mptcpgod/mptcpgod/internal/testing/bench/testdata/sockloop"})
	ctl := daemontest.Binary(b, "mptcpctl")
	ways := []socketWay{
		{"tcp", func(*testing.B) []string { return nil }, "0"},
		{"mptcp-asked", func(*testing.B) []string { return nil }, "262"},
		{"mptcpize", func(b *testing.B) []string {
			p, err := exec.LookPath("mptcpize")
			if err != nil {
				b.Logf("mptcpize is not installed (apt-get install mptcpd): left out")
				return nil
			}
			return []string{p, "run"}
		}, "0"},
		{"mptcpctl-run", func(*testing.B) []string { return []string{ctl, "run"} }, "0"},
	}
	var run []socketWay
	prefix := map[string][]string{}
	for _, w := range ways {
		argv := w.argv(b)
		if w.name == "mptcpize" && argv == nil {
			continue
		}
		prefix[w.name] = argv
		run = append(run, w)
	}
	us := map[string][]float64{}
	protocol := map[string]int{}
	for b.Loop() {
		for range socketRuns {
			for _, w := range run {
				argv := append(slices.Clone(prefix[w.name]), loop, fmt.Sprint(socketCalls), w.protocol)
				out, err := h.Command(argv[0], argv[1:]...).CombinedOutput()
				if err != nil {
					b.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
				}
				var p int
				var ns float64
				if _, err := fmt.Sscan(string(out), &p, &ns); err != nil {
					b.Fatalf("%s printed %q: %v", strings.Join(argv, " "), out, err)
				}
				protocol[w.name] = p
				us[w.name] = append(us[w.name], ns/1000)
			}
		}
	}
	for _, w := range run {
		s := slices.Sorted(slices.Values(us[w.name]))
		r := bench.Socket{Protocol: protocol[w.name], Calls: socketCalls, Runs: len(s),
			MedianUs: round1(s[len(s)/2]), MinUs: round1(s[0])}
		b.ReportMetric(r.MedianUs, "µs/socket-"+w.name)
		record(b, bench.Result{Figure: "socket", Manager: w.name, Socket: &r})
	}
	b.ReportMetric(0, "ns/op")
}

// The download figure: each link shaped to downloadMbit both ways, rates
// measured over downloadWindows windows of downloadWindow after one of
// slow start.
const (
	downloadMbit    = 50
	downloadWindow  = 2 * time.Second
	downloadWindows = 3
)

// downloadConfig is mptcpgod's configuration on the client: the in-kernel
// path manager meshed over every link, veth links included.
const downloadConfig = `mode = "kernel"

[control]
socket = ""

[links]
include_kinds = ["virtual"]
`

// BenchmarkTransparentDownload measures the seed scenario: static busybox
// wget downloading from busybox httpd, both unmodified under mptcpctl run,
// over two links of downloadMbit each: first with no path manager acting
// (one path), then meshed by mptcpgod (fullmesh, kernel mode).
func BenchmarkTransparentDownload(b *testing.B) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		b.Skip("busybox is not installed (apt-get install busybox-static)")
	}
	ctl := daemontest.Binary(b, "mptcpctl")
	tb := netnstest.NewTestbed(b, 2)
	for _, l := range tb.Links {
		tb.Client.Shape(l.ClientIf, downloadMbit)
		tb.Server.Shape(l.ServerIf, downloadMbit)
	}
	dir := b.TempDir()
	big, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		b.Fatal(err)
	}
	if err := big.Truncate(8 << 30); err != nil { // sparse
		b.Fatal(err)
	}
	_ = big.Close()
	addr := net.JoinHostPort(tb.Links[0].Server4.String(), "8080")
	if err := tb.Server.Command(ctl, "run", busybox, "httpd", "-f", "-p", addr, "-h", dir).Start(); err != nil {
		b.Fatal(err)
	}
	waitUntil(b, "busybox httpd's listener", func() bool {
		return len(tb.Server.SSRecords("-M", "-l", "sport", "= :8080")) == 1
	})
	url := "http://" + addr + "/big"

	var one, meshed float64
	for b.Loop() {
		one = downloadRate(b, tb.Client, ctl, busybox, url)
		god := daemontest.StartWith(b, tb.Client, daemontest.Options{ConfigFile: writeFile(b, dir, "mptcpgod.toml", downloadConfig)})
		waitUntil(b, "mptcpgod's endpoints", func() bool {
			out, _ := tb.Client.Command(ctl, "endpoints", "--json").Output()
			return strings.Count(string(out), `"id"`) >= 2
		})
		meshed = downloadRate(b, tb.Client, ctl, busybox, url)
		if code := god.Stop(b); code != 0 {
			b.Fatalf("mptcpgod exited with status %d after SIGTERM:\n%s", code, god.Log())
		}
	}
	for _, x := range []struct {
		paths string
		mbps  float64
	}{{"one-path", one}, {"meshed", meshed}} {
		d := bench.Download{Mbps: round1(x.mbps), LinkMbps: downloadMbit, Windows: downloadWindows,
			Seconds: downloadWindow.Seconds(), OfOneLink: math.Round(x.mbps/downloadMbit*100) / 100}
		b.ReportMetric(d.Mbps, "Mbit/s-"+x.paths)
		record(b, bench.Result{Figure: "download", Manager: x.paths, Download: &d})
	}
	b.ReportMetric(0, "ns/op")
}

// downloadRate runs busybox wget under mptcpctl run in h and returns its
// best rate over downloadWindows windows, after one of slow start.
func downloadRate(b *testing.B, h *netnstest.Host, ctl, busybox, url string) float64 {
	b.Helper()
	cmd := h.Command(ctl, "run", busybox, "wget", "-q", "-O", "-", url)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	m := netnstest.NewMeter(out)
	_ = m.Rate(downloadWindow)
	var best float64
	for range downloadWindows {
		best = max(best, m.Rate(downloadWindow))
	}
	select {
	case <-m.Done():
		b.Fatalf("wget %s ended: %v", url, m.Err())
	default:
	}
	return best
}

// waitUntil polls cond until it holds, or fails after waitLimit.
func waitUntil(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within %v", what, waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeFile writes content to dir/name and returns the path.
func writeFile(b *testing.B, dir, name, content string) string {
	b.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// round1 rounds to one decimal.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
