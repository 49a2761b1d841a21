package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Summary is a latency distribution in milliseconds.
type Summary struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

// Summarize returns the nearest-rank percentiles of ds; ds is not
// modified. It returns an error if ds is empty.
func Summarize(ds []time.Duration) (Summary, error) {
	if len(ds) == 0 {
		return Summary{}, fmt.Errorf("bench: summarize: no samples")
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[max(i, 0)])
	}
	return Summary{
		Samples: len(s),
		P50:     rank(0.50),
		P90:     rank(0.90),
		P99:     rank(0.99),
		Max:     ms(s[len(s)-1]),
	}, nil
}

// ms converts d to milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// Result is one measured figure of one path manager. Latency figures
// carry a Summary; the failover, aggregation and memory figures carry
// their own fields instead.
type Result struct {
	// Figure is what was measured: "subflow" (established → extra
	// subflow established), "add" (address added → endpoint listed),
	// "delete" (address removed → endpoint gone), "add6" and "delete6"
	// (the same with an IPv6 address), "mesh" (address added → a subflow
	// from it on every one of Conns established connections), "mesh-conn"
	// (the same, each connection a sample), "unmesh" (address removed →
	// every such subflow closed), "link-down" (the link set down → the
	// subflows over it closed on every one of Conns connections),
	// "link-up" (the link usable again → those subflows back on every
	// one), "failover" (stalls when the primary link dies),
	// "aggregation" (throughput over both links) or "memory" (the path
	// manager process's resident memory).
	Figure string `json:"figure"`
	// Manager is the path manager: "mptcpgod" (the binary),
	// "mptcpgod-engine" (failover: the engine and the health sampler in
	// the benchmark process), "kernel" (the in-kernel path manager with a
	// subflow endpoint; "kernel-backup" with a subflow backup endpoint) or
	// "mptcpd".
	Manager string `json:"manager"`
	// Mode is the kernel's path manager mode: "userspace" or "kernel".
	Mode string `json:"mode"`
	// InFlight is how many connections were dialled at once (subflow).
	InFlight int `json:"in_flight,omitempty"`
	// Conns is how many established connections the address or link
	// changed under (mesh, mesh-conn, unmesh, link-down, link-up).
	Conns int `json:"conns,omitempty"`
	// ConnsPerSec is how many connections per second the run opened and
	// saw meshed, every one of them (subflow).
	ConnsPerSec float64 `json:"conns_per_sec,omitempty"`
	// CPUPer1000 is the path manager process's user and system CPU
	// seconds per 1,000 connections (subflow; nil for the kernel's, which
	// has no process), to the 10 ms tick of /proc/PID/stat.
	CPUPer1000 *float64 `json:"cpu_s_per_1000_conns,omitempty"`
	*Summary
	Failover    *Failover    `json:"failover,omitempty"`
	Aggregation *Aggregation `json:"aggregation,omitempty"`
	Memory      *Memory      `json:"memory,omitempty"`
	Churn       *Churn       `json:"churn,omitempty"`
	Socket      *Socket      `json:"socket,omitempty"`
	Download    *Download    `json:"download,omitempty"`
	Deferral    *Deferral    `json:"deferral,omitempty"`
}

// Socket is the cost of one socket(AF_INET, SOCK_STREAM, 0) and its close
// in a dynamically linked C loop, for one way of getting the socket
// (figure "socket"; Result.Manager names the way).
type Socket struct {
	// Protocol is SO_PROTOCOL of the sockets the loop got: 6 TCP, 262
	// MPTCP.
	Protocol int `json:"protocol"`
	// Calls is how many sockets one run of the loop opened, Runs how many
	// runs were taken, interleaved with the other ways'.
	Calls int `json:"calls"`
	Runs  int `json:"runs"`
	// MedianUs and MinUs are the median and the lowest over the runs of
	// the microseconds per socket and close.
	MedianUs float64 `json:"median_us"`
	MinUs    float64 `json:"min_us"`
}

// Download is busybox wget downloading from busybox httpd, both unmodified
// under mptcpctl run, over two shaped links (figure "download";
// Result.Manager is "one-path" before mptcpgod runs, "meshed" after).
type Download struct {
	// Mbps is the best rate over Windows windows of Seconds each, after
	// one window of slow start.
	Mbps      float64 `json:"mbps"`
	LinkMbps  float64 `json:"link_mbps"`
	Windows   int     `json:"windows"`
	Seconds   float64 `json:"window_seconds"`
	OfOneLink float64 `json:"of_one_link"`
}

// Deferral is one workload of BenchmarkDeferral under one path manager:
// short request/response connections (the Result's Summary is their
// completion time, dial to the reply's last byte) or one bulk download.
type Deferral struct {
	// Workload is "rr" (requests, each on a connection of its own, with
	// ReplyBytes replies, Result.InFlight at once) or "bulk" (one
	// connection downloading for Seconds).
	Workload   string `json:"workload"`
	ReplyBytes int    `json:"reply_bytes,omitempty"`
	Conns      int    `json:"conns"`
	// JoinsPerConn are the MP_JOIN SYNs the client sent per connection
	// (MPTcpExtMPJoinSynTx); ServerSYNsPerConn the SYNs the server
	// received per connection, MP_CAPABLE and MP_JOIN.
	JoinsPerConn      float64 `json:"joins_per_conn"`
	ServerSYNsPerConn float64 `json:"server_syns_per_conn"`
	// ClientCPU, ServerCPU and ManagerCPU are the CPU seconds (user and
	// system, with the kernel's network work done in their context) of
	// the client (the benchmark process), of the server process and of
	// the path manager process (nil: the kernel's), per 1,000
	// connections (rr) or per GB received (bulk).
	ClientCPU  float64  `json:"client_cpu_s"`
	ServerCPU  float64  `json:"server_cpu_s"`
	ManagerCPU *float64 `json:"manager_cpu_s,omitempty"`
	// Aggregation is the bulk download's throughput from its first byte
	// on, slow start and the joins included (bulk).
	Aggregation *Aggregation `json:"aggregation,omitempty"`
}

// Churn is the churn figure of one path manager: the highest rate of new
// connections it kept meshed, none missed and the p99 (established →
// extra subflow) in bounds. The Result's Summary, ConnsPerSec and
// CPUPer1000 are those of the Ceiling step.
type Churn struct {
	// Load is "closed" (a step that keeps Result.InFlight connections in
	// flight, each replaced when it is meshed) or "open" (steps that
	// start connections on a schedule at a rising rate, however many are
	// in flight).
	Load string `json:"load"`
	// Ceiling is the highest step that passed (nil: none did); for a
	// closed load, its one step when it passed.
	Ceiling *ChurnStep `json:"ceiling,omitempty"`
	// Next is the first step that failed (nil: none did).
	Next *ChurnStep `json:"next,omitempty"`
	// Steps are all the open-loop steps run, in order.
	Steps []ChurnStep `json:"steps,omitempty"`
}

// ChurnStep is one step of load of the churn figure.
type ChurnStep struct {
	// Offered is the rate connections were started at (0: closed loop).
	Offered float64 `json:"offered_conns_per_sec,omitempty"`
	// Rate is the connections meshed per second.
	Rate         float64 `json:"conns_per_sec"`
	MeanInFlight float64 `json:"mean_in_flight"`
	// Missed connections got no extra subflow within the deadline;
	// Failed ones did not connect.
	Missed int     `json:"missed"`
	Failed int     `json:"failed"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	// CPUPer1000 is the path manager process's CPU seconds per 1,000
	// connections meshed (nil: the kernel's, no process).
	CPUPer1000 *float64 `json:"cpu_s_per_1000_conns,omitempty"`
	// MachinePer1000 is the whole machine's busy CPU seconds per 1,000
	// connections meshed: with a quiet machine, the cost of a connection
	// end to end (both ends' kernel, the generator, the server and the
	// path manager), comparable between path managers.
	MachinePer1000 float64 `json:"machine_cpu_s_per_1000_conns"`
	// ManagerCPU, GeneratorCPU, ServerCPU, KernelThreadsCPU and
	// MachineBusy are the path manager process's, the load generator's,
	// the server's, the kernel's threads' (kworkers, where the in-kernel
	// path manager opens subflows, and ksoftirqd) and all the machine's
	// busy CPU time over the step, as shares of the machine's (every
	// CPU's) time, 0 to 1. A process's system time includes the
	// kernel's network work (softirq) done while it ran, which on veth
	// links is most of both ends' TCP and MPTCP work; GeneratorUserCPU
	// is the generator's own (user) part, ManagerUserCPU the path
	// manager's.
	ManagerCPU       *float64 `json:"manager_cpu,omitempty"`
	ManagerUserCPU   *float64 `json:"manager_user_cpu,omitempty"`
	GeneratorCPU     float64  `json:"generator_cpu"`
	GeneratorUserCPU float64  `json:"generator_user_cpu"`
	ServerCPU        float64  `json:"server_cpu"`
	KernelThreadsCPU float64  `json:"kernel_threads_cpu"`
	MachineBusy      float64  `json:"machine_busy"`
	// Failure says why the step did not pass ("" when it did).
	Failure string `json:"failure,omitempty"`
	// Tries is 2 when the step's first try failed and these are the
	// figures of the second (a step fails when both do).
	Tries int `json:"tries"`
}

// Failover is what the failover scenario (package internal/testing/failover)
// measured over its runs: the gaps of 50 ms or more between two reads of
// the receiver.
type Failover struct {
	Runs int `json:"runs"`
	// LongestStallMs is the longest stall of any run.
	LongestStallMs float64 `json:"longest_stall_ms"`
	// RepeatStalls is the number of stalls after the first one of each
	// run, over all runs.
	RepeatStalls int `json:"repeat_stalls"`
	// StallMsPerRun is the stall time of a run, on average.
	StallMsPerRun float64 `json:"stall_ms_per_run"`
	// PromoteMs is how long after the cut the backup subflow stopped
	// being backup, on average (nil: the path manager never promoted it).
	PromoteMs *float64 `json:"promote_ms,omitempty"`
}

// Aggregation is the throughput of one connection over both links.
type Aggregation struct {
	Seconds float64 `json:"seconds"`
	// Mbps is what the receiver read, in Mbit/s.
	Mbps float64 `json:"mbps"`
	// LinksMbps is the sum of the links' rates.
	LinksMbps float64 `json:"links_mbps"`
	// Fraction is Mbps / LinksMbps.
	Fraction float64 `json:"fraction"`
}

// Memory is the path manager process's resident memory (VmRSS), idle and
// with Conns connections open.
type Memory struct {
	IdleKB int `json:"idle_kb"`
	Conns  int `json:"conns"`
	// LoadedKB is the resident memory with Conns connections open.
	LoadedKB int `json:"loaded_kb"`
	// BytesPerConn is (LoadedKB - IdleKB) / Conns, in bytes.
	BytesPerConn float64 `json:"bytes_per_conn"`
	// SetupSeconds is how long opening the Conns connections took, every
	// one with its extra subflow.
	SetupSeconds float64 `json:"setup_seconds"`
}

// Machine describes where the benchmarks ran.
type Machine struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
	// LoadBefore and LoadAfter are the 1-minute load averages when the
	// run started and ended: other work on the machine shows in the tails.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
}

// Report is one run's results.
type Report struct {
	Date    time.Time `json:"date"`
	Machine Machine   `json:"machine"`
	Results []Result  `json:"results"`
}

// ThisMachine describes the running machine: the CPUs the Go runtime
// sees, the CPU model from /proc/cpuinfo, the kernel release and the
// load average now (LoadAfter).
func ThisMachine() (Machine, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Machine{}, fmt.Errorf("bench: uname: %w", err)
	}
	load, err := LoadAvg()
	if err != nil {
		return Machine{}, err
	}
	m := Machine{
		CPUs:      runtime.NumCPU(),
		Kernel:    unix.ByteSliceToString(u.Release[:]),
		Go:        runtime.Version(),
		LoadAfter: load,
	}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return Machine{}, fmt.Errorf("bench: cpu model: %w", err)
	}
	defer f.Close()
	m.CPU = cpuModel(f)
	return m, nil
}

// LoadAvg returns the 1-minute load average from /proc/loadavg.
func LoadAvg() (float64, error) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, fmt.Errorf("bench: load average: %w", err)
	}
	return parseLoadAvg(string(data))
}

// parseLoadAvg returns the first field of a /proc/loadavg.
func parseLoadAvg(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, fmt.Errorf("bench: load average: empty /proc/loadavg")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("bench: load average: %w", err)
	}
	return v, nil
}

// CPUs is the number of CPUs the machine's time is shared by in
// ChurnStep: the CPUs the Go runtime sees.
func CPUs() int { return runtime.NumCPU() }

// ParseProcStatBusy returns the busy CPU seconds of all CPUs from a
// /proc/stat: the "cpu" line's user, nice, system, irq, softirq and steal
// time (everything but idle and iowait; guest time is inside user).
func ParseProcStatBusy(stat string) (float64, error) {
	for line := range strings.Lines(stat) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return 0, fmt.Errorf("bench: /proc/stat: %d cpu fields, want at least 8", len(f)-1)
		}
		var ticks uint64
		for i, s := range f[1:9] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("bench: /proc/stat: cpu field %d: %w", i+1, err)
			}
			if i != 3 && i != 4 { // idle, iowait
				ticks += v
			}
		}
		return float64(ticks) / clockTicks, nil
	}
	return 0, fmt.Errorf("bench: /proc/stat: no cpu line")
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// ParseStatCPU returns the user plus system CPU seconds of a
// /proc/PID/stat line (ParseStatTimes).
func ParseStatCPU(stat string) (float64, error) {
	user, system, err := ParseStatTimes(stat)
	return user + system, err
}

// ParseStatTimes returns the user and the system CPU seconds of a
// /proc/PID/stat line (fields 14 and 15, after the parenthesised command
// name, which may hold spaces).
func ParseStatTimes(stat string) (user, system float64, err error) {
	f, err := statFields(stat)
	if err != nil {
		return 0, 0, err
	}
	var ticks [2]uint64
	for j, s := range f[11:13] {
		if ticks[j], err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("bench: stat: cpu time: %w", err)
		}
	}
	return float64(ticks[0]) / clockTicks, float64(ticks[1]) / clockTicks, nil
}

// ParseStatParent returns the parent process id of a /proc/PID/stat line
// (field 4): 2, kthreadd, for the kernel's threads (kworkers, ksoftirqd).
func ParseStatParent(stat string) (int, error) {
	f, err := statFields(stat)
	if err != nil {
		return 0, err
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("bench: stat: parent: %w", err)
	}
	return ppid, nil
}

// statFields returns the fields of a /proc/PID/stat line after the
// parenthesised command name (which may hold spaces), from the state
// (field 3) on, at least 13 of them.
func statFields(stat string) ([]string, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, fmt.Errorf("bench: stat: no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return nil, fmt.Errorf("bench: stat: %d fields after the command name, want at least 13", len(f))
	}
	return f, nil
}

// cpuModel returns the first "model name" of a /proc/cpuinfo, or
// "unknown".
func cpuModel(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// Markdown renders r as Markdown tables of its results (latency, then
// failover, aggregation and memory, each when present) preceded by the
// machine, the kernel and the date, and followed by the latency CDF plot
// when withPlot.
func (r Report) Markdown(withPlot bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %d CPUs (%s), Linux %s, %s; load average %.2f before, %.2f after.\n",
		r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Machine.CPUs, r.Machine.CPU, r.Machine.Kernel, r.Machine.Go,
		r.Machine.LoadBefore, r.Machine.LoadAfter)
	var latency, failover, aggregation, memory, churn, socket, download, deferral []Result
	for _, x := range r.Results {
		switch {
		case x.Socket != nil:
			socket = append(socket, x)
		case x.Download != nil:
			download = append(download, x)
		case x.Deferral != nil:
			deferral = append(deferral, x)
		case x.Churn != nil:
			churn = append(churn, x)
		case x.Summary != nil:
			latency = append(latency, x)
		case x.Failover != nil:
			failover = append(failover, x)
		case x.Aggregation != nil:
			aggregation = append(aggregation, x)
		case x.Memory != nil:
			memory = append(memory, x)
		}
	}
	if len(latency) > 0 {
		b.WriteString("\n| Figure | Path manager | Mode | In flight | Samples | p50 ms | p90 ms | p99 ms | max ms | conns/s | CPU s / 1,000 conns |\n")
		b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	}
	for _, x := range latency {
		inFlight, rate, cpu := "–", "–", "–"
		if x.InFlight > 0 {
			inFlight = fmt.Sprint(x.InFlight)
		}
		if x.ConnsPerSec > 0 {
			rate = fmt.Sprint(x.ConnsPerSec)
		}
		if x.CPUPer1000 != nil {
			cpu = fmt.Sprintf("%.3f", *x.CPUPer1000)
		}
		figure := figureText[x.Figure]
		if x.Conns > 0 {
			figure = fmt.Sprintf(figure, x.Conns)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %.3f | %.3f | %.3f | %.3f | %s | %s |\n",
			figure, x.Manager, x.Mode, inFlight, x.Samples, x.P50, x.P90, x.P99, x.Max, rate, cpu)
	}
	if len(failover) > 0 {
		b.WriteString("\nFailover: stalls (gaps of 50 ms or more between reads) while the primary link is silent in both directions.\n\n")
		b.WriteString("| Path manager | Mode | Runs | Longest stall ms | Stalls after the first | Stall ms / run | Backup promoted after ms |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	}
	for _, x := range failover {
		f, promote := x.Failover, "–"
		if f.PromoteMs != nil {
			promote = fmt.Sprintf("%.0f", *f.PromoteMs)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %d | %.0f | %s |\n",
			x.Manager, x.Mode, f.Runs, f.LongestStallMs, f.RepeatStalls, f.StallMsPerRun, promote)
	}
	if len(aggregation) > 0 {
		b.WriteString("\nAggregation: one connection's throughput over both shaped links.\n\n")
		b.WriteString("| Path manager | Mode | Seconds | Mbit/s | Links Mbit/s | Fraction of the sum |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|\n")
	}
	for _, x := range aggregation {
		a := x.Aggregation
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.0f | %.1f%% |\n",
			x.Manager, x.Mode, a.Seconds, a.Mbps, a.LinksMbps, a.Fraction*100)
	}
	if len(memory) > 0 {
		b.WriteString("\nMemory: the path manager process's VmRSS, idle and with connections open.\n\n")
		b.WriteString("| Path manager | Mode | Idle MB | Connections | With them MB | Bytes / connection | Setup s |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	}
	for _, x := range memory {
		m := x.Memory
		fmt.Fprintf(&b, "| %s | %s | %.1f | %d | %.1f | %.0f | %.1f |\n",
			x.Manager, x.Mode, float64(m.IdleKB)/1024, m.Conns, float64(m.LoadedKB)/1024, m.BytesPerConn, m.SetupSeconds)
	}
	if len(churn) > 0 {
		writeChurn(&b, churn)
	}
	writeTransparent(&b, socket, download)
	if len(deferral) > 0 {
		writeDeferral(&b, deferral)
	}
	if withPlot {
		fmt.Fprintf(&b, "\n![Latency CDF of established → extra subflow](%s)\n", CDFFile)
	}
	return b.String()
}

// writeTransparent writes the tables of the socket and download figures.
func writeTransparent(b *strings.Builder, socket, download []Result) {
	if len(socket) > 0 {
		b.WriteString("\nSocket cost: socket(AF_INET, SOCK_STREAM, 0) and close in a dynamically linked C loop, runs of each way interleaved.\n\n")
		b.WriteString("| Way | Protocol | Calls × runs | Median µs | Lowest µs |\n")
		b.WriteString("|---|---:|---:|---:|---:|\n")
	}
	for _, x := range socket {
		s := x.Socket
		fmt.Fprintf(b, "| %s | %d | %d × %d | %.1f | %.1f |\n", x.Manager, s.Protocol, s.Calls, s.Runs, s.MedianUs, s.MinUs)
	}
	if len(download) > 0 {
		b.WriteString("\nDownload: static busybox wget from busybox httpd, both under mptcpctl run, over two shaped links.\n\n")
		b.WriteString("| Paths | Mbit/s | Link Mbit/s | Of one link | Windows × s |\n")
		b.WriteString("|---|---:|---:|---:|---:|\n")
	}
	for _, x := range download {
		d := x.Download
		fmt.Fprintf(b, "| %s | %.1f | %.0f | %.2f× | %d × %.0f |\n", x.Manager, d.Mbps, d.LinkMbps, d.OfOneLink, d.Windows, d.Seconds)
	}
}

// writeChurn writes the churn table of rs.
func writeChurn(b *strings.Builder, rs []Result) {
	b.WriteString("\nChurn: the most new connections per second kept meshed, none missed, p99 (established → extra subflow) " +
		"under 10 ms; closed: 32 kept in flight, each replaced when meshed; open: connections started on a schedule, " +
		"the highest rate step that passed. CPU shares are of both CPUs' time over the step; a process's system time " +
		"holds the kernel's network work done while it ran.\n\n")
	b.WriteString("| Path manager | Mode | Load | Mean in flight | conns/s | p50 ms | p99 ms | CPU s / 1,000 conns (user) | " +
		"Machine CPU s / 1,000 conns | Path manager CPU | Generator CPU (user) | Server CPU | Kernel threads CPU | Machine busy | Next step |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	pct := func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
	for _, x := range rs {
		c := x.Churn
		next := "–"
		if n := c.Next; n != nil {
			next = n.Failure
			if n.Offered > 0 {
				next = fmt.Sprintf("%.0f/s offered: %s", n.Offered, n.Failure)
			}
		}
		s := c.Ceiling
		if s == nil {
			fmt.Fprintf(b, "| %s | %s | %s | – | – | – | – | – | – | – | – | – | – | – | %s |\n", x.Manager, x.Mode, c.Load, next)
			continue
		}
		cpu, manager := "–", "–"
		if s.CPUPer1000 != nil && s.ManagerUserCPU != nil && s.ManagerCPU != nil {
			user := 0.0
			if *s.ManagerCPU > 0 {
				user = *s.CPUPer1000 * *s.ManagerUserCPU / *s.ManagerCPU
			}
			cpu = fmt.Sprintf("%.3f (%.3f)", *s.CPUPer1000, user)
			manager = pct(*s.ManagerCPU)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.1f | %.0f | %.3f | %.3f | %s | %.3f | %s | %s (%s) | %s | %s | %s | %s |\n",
			x.Manager, x.Mode, c.Load, s.MeanInFlight, s.Rate, s.P50, s.P99, cpu, s.MachinePer1000, manager,
			pct(s.GeneratorCPU), pct(s.GeneratorUserCPU), pct(s.ServerCPU), pct(s.KernelThreadsCPU), pct(s.MachineBusy), next)
	}
}

// writeDeferral writes the deferral tables of rs: request/response, then
// bulk.
func writeDeferral(b *strings.Builder, rs []Result) {
	cpu := func(f *float64) string {
		if f == nil {
			return "–"
		}
		return fmt.Sprintf("%.3f", *f)
	}
	b.WriteString("\nDeferred joins, short connections: requests each on a connection of its own, the reply's size, " +
		"in flight at once; joins the client sent and SYNs the server received per connection; completion from dial " +
		"to the reply's last byte; CPU seconds per 1,000 connections.\n\n")
	b.WriteString("| Path manager | Reply | In flight | Conns | Joins / conn | Server SYNs / conn | p50 ms | p99 ms | " +
		"Client CPU | Server CPU | Path manager CPU |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range rs {
		d := x.Deferral
		if d.Workload != "rr" || x.Summary == nil {
			continue
		}
		fmt.Fprintf(b, "| %s | %d KB | %d | %d | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f | %s |\n",
			x.Manager, d.ReplyBytes/1000, x.InFlight, d.Conns, d.JoinsPerConn, d.ServerSYNsPerConn, x.P50, x.P99,
			d.ClientCPU, d.ServerCPU, cpu(d.ManagerCPU))
	}
	b.WriteString("\nDeferred joins, bulk: one download over both shaped links, from its first byte; CPU seconds per GB.\n\n")
	b.WriteString("| Path manager | Seconds | Mbit/s | Fraction of the links | Joins | Client CPU | Server CPU | Path manager CPU |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range rs {
		d := x.Deferral
		if d.Workload != "bulk" || d.Aggregation == nil {
			continue
		}
		a := d.Aggregation
		fmt.Fprintf(b, "| %s | %.1f | %.1f | %.1f%% | %.0f | %.3f | %.3f | %s |\n",
			x.Manager, a.Seconds, a.Mbps, a.Fraction*100, d.JoinsPerConn*float64(d.Conns), d.ClientCPU, d.ServerCPU, cpu(d.ManagerCPU))
	}
}

// figureText names each Result.Figure in the table; %d is Result.Conns.
var figureText = map[string]string{
	"subflow":   "established → extra subflow",
	"add":       "address added → endpoint",
	"delete":    "address removed → endpoint gone",
	"add6":      "IPv6 address added → endpoint",
	"delete6":   "IPv6 address removed → endpoint gone",
	"mesh":      "address added → subflow on all %d connections",
	"mesh-conn": "address added → subflow, each of %d connections",
	"unmesh":    "address removed → subflows gone on all %d connections",
	"link-down": "link down → its subflows gone on all %d connections",
	"link-up":   "link usable again → subflows on all %d connections",
	// The burst figures time new connections one at a time before and
	// right after %d connections are opened at once.
	"burst-quiet":       "established → extra subflow, quiet, before a burst of %d",
	"burst-after":       "established → extra subflow, right after a burst of %d",
	"burst-after-small": "established → extra subflow, right after a burst of %d, 2 KiB event buffer (events lost)",
}

// WriteReport writes r to dir as results.md (Markdown) and results.json,
// and, when cdf has series, their latency CDF plot as CDFFile (WriteCDF).
func WriteReport(dir string, r Report, cdf []Series) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	if len(cdf) > 0 {
		if err := WriteCDF(filepath.Join(dir, CDFFile), cdf); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.Markdown(len(cdf) > 0)), 0o644); err != nil {
		return fmt.Errorf("bench: report: %w", err)
	}
	return nil
}
