package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		// 100 … 1 ms, in reverse: Summarize sorts.
		hundred[i] = time.Duration(100-i) * time.Millisecond
	}
	tests := []struct {
		name    string
		in      []time.Duration
		want    Summary
		wantErr string
	}{
		{name: "empty", wantErr: "bench: summarize: no samples"},
		{name: "one", in: []time.Duration{1500 * time.Microsecond},
			want: Summary{Samples: 1, P50: 1.5, P90: 1.5, P99: 1.5, Max: 1.5}},
		{name: "hundred", in: hundred,
			want: Summary{Samples: 100, P50: 50, P90: 90, P99: 99, Max: 100}},
		{name: "rounded to the microsecond",
			in:   []time.Duration{1234567 * time.Nanosecond, 3 * time.Millisecond},
			want: Summary{Samples: 2, P50: 1.235, P90: 3, P99: 3, Max: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Summarize(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Summarize error: want %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Summarize: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarizeKeepsInput(t *testing.T) {
	t.Parallel()
	in := []time.Duration{3, 1, 2}
	if _, err := Summarize(in); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Duration{3, 1, 2}, in); diff != "" {
		t.Errorf("input (-want +got):\n%s", diff)
	}
}

func TestCPUModel(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"first model", "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n", "AMD EPYC 7B13"},
		{"none", "processor\t: 0\nFeatures\t: fp\n", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, cpuModel(strings.NewReader(tt.in))); diff != "" {
				t.Errorf("cpuModel (-want +got):\n%s", diff)
			}
		})
	}
}

var testReport = Report{
	Date:    time.Date(2026, 11, 23, 15, 30, 0, 0, time.UTC),
	Machine: Machine{CPUs: 2, CPU: "AMD EPYC", Kernel: "6.18.0", Go: "go1.26", LoadBefore: 0.5, LoadAfter: 1.25},
	Results: []Result{
		{Figure: "subflow", Manager: "mptcpgod", Mode: "userspace", InFlight: 32, ConnsPerSec: 2000, CPUPer1000: ptr(0.25),
			Summary: &Summary{Samples: 320, P50: 0.1, P90: 0.2, P99: 0.3, Max: 1.25}},
		{Figure: "add", Manager: "mptcpd", Mode: "kernel",
			Summary: &Summary{Samples: 10, P50: 1, P90: 2, P99: 3, Max: 4}},
		{Figure: "delete6", Manager: "kernel", Mode: "kernel",
			Summary: &Summary{Samples: 10, P50: 15, P90: 16, P99: 27.5, Max: 28}},
		{Figure: "mesh", Manager: "mptcpgod", Mode: "userspace", Conns: 8,
			Summary: &Summary{Samples: 50, P50: 2.5, P90: 3, P99: 4, Max: 4.25}},
		{Figure: "mesh-conn", Manager: "mptcpgod", Mode: "userspace", Conns: 8,
			Summary: &Summary{Samples: 400, P50: 1.5, P90: 2.5, P99: 3.5, Max: 4.25}},
		{Figure: "link-up", Manager: "kernel", Mode: "kernel", Conns: 8,
			Summary: &Summary{Samples: 50, P50: 1, P90: 1.25, P99: 1.5, Max: 1.75}},
		{Figure: "failover", Manager: "mptcpgod", Mode: "userspace",
			Failover: &Failover{Runs: 2, LongestStallMs: 412.5, RepeatStalls: 1, StallMsPerRun: 480, PromoteMs: ptr(1004)}},
		{Figure: "failover", Manager: "kernel-backup", Mode: "kernel",
			Failover: &Failover{Runs: 1, LongestStallMs: 1500, StallMsPerRun: 1500}},
		{Figure: "aggregation", Manager: "kernel", Mode: "kernel",
			Aggregation: &Aggregation{Seconds: 3, Mbps: 187.25, LinksMbps: 200, Fraction: 0.93625}},
		{Figure: "memory", Manager: "mptcpgod", Mode: "userspace",
			Memory: &Memory{IdleKB: 10240, Conns: 10000, LoadedKB: 25600, BytesPerConn: 1572.864, SetupSeconds: 4.25}},
		{Figure: "churn", Manager: "mptcpgod", Mode: "userspace", ConnsPerSec: 3950, CPUPer1000: ptr(0.176),
			Summary: &Summary{Samples: 5925, P50: 0.388, P90: 2, P99: 7.093, Max: 9},
			Churn:   &Churn{Load: "open", Ceiling: &churnCeiling, Next: &churnNext, Steps: []ChurnStep{churnCeiling, churnNext}}},
		{Figure: "churn", Manager: "kernel", Mode: "kernel", InFlight: 32, ConnsPerSec: 4207,
			Summary: &Summary{Samples: 6310, P50: 0.091, P90: 3, P99: 9.9, Max: 12},
			Churn: &Churn{Load: "closed", Ceiling: &ChurnStep{Rate: 4207, MeanInFlight: 24.3, P50: 0.091, P99: 9.9,
				MachinePer1000: 0.474, GeneratorCPU: 0.318, GeneratorUserCPU: 0.06, ServerCPU: 0.169, KernelThreadsCPU: 0.104, MachineBusy: 0.994, Tries: 1}}},
		{Figure: "churn", Manager: "mptcpd", Mode: "kernel",
			Churn: &Churn{Load: "open", Next: &ChurnStep{Offered: 2000, Rate: 1998, Missed: 3, Failure: "3 of 3000 missed", Tries: 2}}},
		{Figure: "socket", Manager: "tcp", Socket: &Socket{Protocol: 6, Calls: 2000, Runs: 7, MedianUs: 2.5, MinUs: 2.25}},
		{Figure: "socket", Manager: "mptcpctl-run", Socket: &Socket{Protocol: 262, Calls: 2000, Runs: 7, MedianUs: 41.5, MinUs: 35}},
		{Figure: "download", Manager: "one-path", Download: &Download{Mbps: 47.5, LinkMbps: 50, Windows: 3, Seconds: 2, OfOneLink: 0.95}},
		{Figure: "download", Manager: "meshed", Download: &Download{Mbps: 93.25, LinkMbps: 50, Windows: 3, Seconds: 2, OfOneLink: 1.87}},
	},
}

// churnCeiling and churnNext are the churn steps of testReport.
var (
	churnCeiling = ChurnStep{Offered: 3950, Rate: 3950, MeanInFlight: 11.3, P50: 0.388, P99: 7.093,
		CPUPer1000: ptr(0.176), MachinePer1000: 0.432, ManagerCPU: ptr(0.344), ManagerUserCPU: ptr(0.146),
		GeneratorCPU: 0.308, GeneratorUserCPU: 0.05, ServerCPU: 0.142, KernelThreadsCPU: 0.02, MachineBusy: 0.848, Tries: 1}
	churnNext = ChurnStep{Offered: 4950, Rate: 4881, MeanInFlight: 393.2, P50: 17.7, P99: 270.4,
		CPUPer1000: ptr(0.168), MachinePer1000: 0.5, ManagerCPU: ptr(0.317), ManagerUserCPU: ptr(0.124),
		GeneratorCPU: 0.271, GeneratorUserCPU: 0.049, ServerCPU: 0.108, MachineBusy: 0.951, Failure: "p99 270.4 ms", Tries: 2}
)

func ptr(f float64) *float64 { return &f }

func TestMarkdown(t *testing.T) {
	t.Parallel()
	want := "Measured 2026-11-23 15:30 UTC on 2 CPUs (AMD EPYC), Linux 6.18.0, go1.26; load average 0.50 before, 1.25 after.\n\n" +
		"| Figure | Path manager | Mode | In flight | Samples | p50 ms | p90 ms | p99 ms | max ms | conns/s | CPU s / 1,000 conns |\n" +
		"|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n" +
		"| established → extra subflow | mptcpgod | userspace | 32 | 320 | 0.100 | 0.200 | 0.300 | 1.250 | 2000 | 0.250 |\n" +
		"| address added → endpoint | mptcpd | kernel | – | 10 | 1.000 | 2.000 | 3.000 | 4.000 | – | – |\n" +
		"| IPv6 address removed → endpoint gone | kernel | kernel | – | 10 | 15.000 | 16.000 | 27.500 | 28.000 | – | – |\n" +
		"| address added → subflow on all 8 connections | mptcpgod | userspace | – | 50 | 2.500 | 3.000 | 4.000 | 4.250 | – | – |\n" +
		"| address added → subflow, each of 8 connections | mptcpgod | userspace | – | 400 | 1.500 | 2.500 | 3.500 | 4.250 | – | – |\n" +
		"| link usable again → subflows on all 8 connections | kernel | kernel | – | 50 | 1.000 | 1.250 | 1.500 | 1.750 | – | – |\n" +
		"\nFailover: stalls (gaps of 50 ms or more between reads) while the primary link is silent in both directions.\n\n" +
		"| Path manager | Mode | Runs | Longest stall ms | Stalls after the first | Stall ms / run | Backup promoted after ms |\n" +
		"|---|---|---:|---:|---:|---:|---:|\n" +
		"| mptcpgod | userspace | 2 | 412 | 1 | 480 | 1004 |\n" +
		"| kernel-backup | kernel | 1 | 1500 | 0 | 1500 | – |\n" +
		"\nAggregation: one connection's throughput over both shaped links.\n\n" +
		"| Path manager | Mode | Seconds | Mbit/s | Links Mbit/s | Fraction of the sum |\n" +
		"|---|---|---:|---:|---:|---:|\n" +
		"| kernel | kernel | 3.0 | 187.2 | 200 | 93.6% |\n" +
		"\nMemory: the path manager process's VmRSS, idle and with connections open.\n\n" +
		"| Path manager | Mode | Idle MB | Connections | With them MB | Bytes / connection | Setup s |\n" +
		"|---|---|---:|---:|---:|---:|---:|\n" +
		"| mptcpgod | userspace | 10.0 | 10000 | 25.0 | 1573 | 4.2 |\n" +
		"\nChurn: the most new connections per second kept meshed, none missed, p99 (established → extra subflow) " +
		"under 10 ms; closed: 32 kept in flight, each replaced when meshed; open: connections started on a schedule, " +
		"the highest rate step that passed. CPU shares are of both CPUs' time over the step; a process's system time " +
		"holds the kernel's network work done while it ran.\n\n" +
		"| Path manager | Mode | Load | Mean in flight | conns/s | p50 ms | p99 ms | CPU s / 1,000 conns (user) | " +
		"Machine CPU s / 1,000 conns | Path manager CPU | Generator CPU (user) | Server CPU | Kernel threads CPU | Machine busy | Next step |\n" +
		"|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n" +
		"| mptcpgod | userspace | open | 11.3 | 3950 | 0.388 | 7.093 | 0.176 (0.075) | 0.432 | 34% | 31% (5%) | 14% | 2% | 85% | 4950/s offered: p99 270.4 ms |\n" +
		"| kernel | kernel | closed | 24.3 | 4207 | 0.091 | 9.900 | – | 0.474 | – | 32% (6%) | 17% | 10% | 99% | – |\n" +
		"| mptcpd | kernel | open | – | – | – | – | – | – | – | – | – | – | – | 2000/s offered: 3 of 3000 missed |\n" +
		"\nSocket cost: socket(AF_INET, SOCK_STREAM, 0) and close in a dynamically linked C loop, runs of each way interleaved.\n\n" +
		"| Way | Protocol | Calls × runs | Median µs | Lowest µs |\n" +
		"|---|---:|---:|---:|---:|\n" +
		"| tcp | 6 | 2000 × 7 | 2.5 | 2.2 |\n" +
		"| mptcpctl-run | 262 | 2000 × 7 | 41.5 | 35.0 |\n" +
		"\nDownload: static busybox wget from busybox httpd, both under mptcpctl run, over two shaped links.\n\n" +
		"| Paths | Mbit/s | Link Mbit/s | Of one link | Windows × s |\n" +
		"|---|---:|---:|---:|---:|\n" +
		"| one-path | 47.5 | 50 | 0.95× | 3 × 2 |\n" +
		"| meshed | 93.2 | 50 | 1.87× | 3 × 2 |\n"
	if diff := cmp.Diff(want, testReport.Markdown(false)); diff != "" {
		t.Errorf("Markdown(false) (-want +got):\n%s", diff)
	}
	plot := want + "\n![Latency CDF of established → extra subflow](latency-cdf.png)\n"
	if diff := cmp.Diff(plot, testReport.Markdown(true)); diff != "" {
		t.Errorf("Markdown(true) (-want +got):\n%s", diff)
	}
}

func TestWriteReport(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "results")
	cdf := []Series{{Label: "mptcpgod", Manager: "mptcpgod-userspace", InFlight: 1,
		Samples: []time.Duration{100 * time.Microsecond, time.Millisecond}}}
	if err := WriteReport(dir, testReport, cdf); err != nil {
		t.Fatalf("WriteReport: %v", err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, CDFFile)); err != nil {
		t.Errorf("plot: %v", err)
	}
	if diff := cmp.Diff(testReport.Markdown(true), string(md)); diff != "" {
		t.Errorf("results.md (-want +got):\n%s", diff)
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if diff := cmp.Diff(testReport, got); diff != "" {
		t.Errorf("results.json (-want +got):\n%s", diff)
	}
}

func TestParseLoadAvg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     float64
		wantErr  bool
	}{
		{name: "kernel format", in: "3.05 1.71 1.48 3/122 25286\n", want: 3.05},
		{name: "empty", in: "", wantErr: true},
		{name: "not a number", in: "x 1 1 1/1 1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseLoadAvg(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseLoadAvg(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseLoadAvg(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     float64
		wantErr  bool
	}{
		{name: "kernel format", in: "29938 (cat) R 29895 29895 9529 0 -1 4194304 101 0 0 0 150 25 0 0 20 0 1 0\n", want: 1.75},
		{name: "command with spaces and parens", in: "7 (a b) c) S 1 1 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0", want: 0.07},
		{name: "no command", in: "7 S 1", wantErr: true},
		{name: "short", in: "7 (x) S 1 2 3", wantErr: true},
		{name: "not a number", in: "7 (x) S 1 1 1 0 -1 0 0 0 0 0 x 4 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseStatCPU(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStatCPU(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseStatCPU(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseStatParent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     int
		wantErr  bool
	}{
		{name: "kworker", in: "41 (kworker/0:1-events) I 2 0 0 0 -1 69238880 0 0 0 0 0 12 0 0 20 0 1 0 9 0 0\n", want: 2},
		{name: "command with spaces and parens", in: "7 (a b) c) S 1234 1 1 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0", want: 1234},
		{name: "no command", in: "7 S 1", wantErr: true},
		{name: "short", in: "7 (x) S 1 2 3", wantErr: true},
		{name: "not a number", in: "7 (x) S p 1 1 0 -1 0 0 0 0 0 3 4 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseStatParent(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStatParent(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseStatParent(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseStatTimes(t *testing.T) {
	t.Parallel()
	type times struct{ User, System float64 }
	tests := []struct {
		name, in string
		want     times
		wantErr  bool
	}{
		{name: "kernel format", in: "29938 (cat) R 29895 29895 9529 0 -1 4194304 101 0 0 0 150 25 0 0 20 0 1 0\n",
			want: times{User: 1.5, System: 0.25}},
		{name: "no command", in: "7 S 1", wantErr: true},
		{name: "bad system time", in: "7 (x) S 1 1 1 0 -1 0 0 0 0 0 3 -4 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user, system, err := ParseStatTimes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStatTimes(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, times{user, system}); diff != "" {
				t.Errorf("ParseStatTimes(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseProcStatBusy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     float64
		wantErr  bool
	}{
		// user 100 nice 5 system 50 idle 1000 iowait 20 irq 3 softirq 40 steal 2: 200 ticks busy.
		{name: "kernel format", in: "cpu  100 5 50 1000 20 3 40 2 0 0\ncpu0 50 2 25 500 10 1 20 1 0 0\nintr 1\n", want: 2},
		{name: "cpu line not first", in: "cpu0 1 1 1 1 1 1 1 1\ncpu 100 0 0 0 0 0 0 0\n", want: 1},
		{name: "no cpu line", in: "intr 1\n", wantErr: true},
		{name: "short", in: "cpu 1 2 3\n", wantErr: true},
		{name: "not a number", in: "cpu 1 2 x 4 5 6 7 8\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseProcStatBusy(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseProcStatBusy(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseProcStatBusy(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestThisMachine(t *testing.T) {
	t.Parallel()
	m, err := ThisMachine()
	if err != nil {
		t.Fatalf("ThisMachine: %v", err)
	}
	if m.CPUs < 1 || m.Kernel == "" || !strings.HasPrefix(m.Go, "go") {
		t.Errorf("ThisMachine = %+v: want CPUs, a kernel release and a Go version", m)
	}
}
