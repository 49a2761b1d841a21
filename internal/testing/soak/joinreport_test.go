//go:build linux

package soak_test

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// describeJoinCase says what the join case does.
func describeJoinCase(jc joinConfig) string {
	how := "SUBFLOW_CREATE"
	if jc.kernelPM {
		how = "an in-kernel PM endpoint added then, in waves"
		if jc.receiver {
			how += " (a signal endpoint on the server: the client joins its ADD_ADDR)"
		}
	}
	csum := "off"
	if jc.csum {
		csum = "on"
	}
	return fmt.Sprintf("one join per connection at %s by the %s through the %s PM (%s); %d workers × %d bytes; checksums %s",
		jc.point, jc.sideName(), jc.pmName(), how, jc.workers, jc.size, csum)
}

// loadavg returns /proc/loadavg's three load averages (zeros if
// unreadable).
func loadavg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	for i, f := range strings.Fields(string(b))[:3] {
		l[i], _ = strconv.ParseFloat(f, 64)
	}
	return l
}

// cpuTimes returns the busy and total jiffies of all CPUs (/proc/stat).
func cpuTimes() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// load is the machine's load over a run.
type load struct {
	start       time.Time
	avg         [3]float64
	busy, total uint64
}

// startLoad notes the load at the start of a run.
func startLoad() load {
	l := load{start: time.Now(), avg: loadavg()}
	l.busy, l.total = cpuTimes()
	return l
}

// end describes the load from the start to now: the load averages at both
// ends and how busy the CPUs were (all of the machine's processes).
func (l load) end() string {
	busy, total := cpuTimes()
	pct := 0.0
	if total > l.total {
		pct = 100 * float64(busy-l.busy) / float64(total-l.total)
	}
	now := loadavg()
	return fmt.Sprintf("load average %.2f %.2f %.2f at the start, %.2f %.2f %.2f at the end; CPUs %.0f%% busy over %v",
		l.avg[0], l.avg[1], l.avg[2], now[0], now[1], now[2], pct, time.Since(l.start).Round(time.Second))
}

// serverCounterNames are the server's MPTcpExt counters that tell of bad
// mappings, always printed.
var serverCounterNames = []string{"MPJoinSynRx", "MPJoinAckRx", "DSSNotMatching", "MPRstTx", "MPFailRx", "MPFailTx", "DataCsumErr"}

// serverCounters returns serverCounterNames of h as "name=value" pairs.
func serverCounters(h *netnstest.Host) string {
	out, err := h.Exec("nstat", "-asz")
	if err != nil {
		return fmt.Sprintf("nstat: %v: %s", err, out)
	}
	vals := map[string]string{}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 2 {
			vals[strings.TrimPrefix(f[0], "MPTcpExt")] = f[1]
		}
	}
	var b strings.Builder
	for _, n := range serverCounterNames {
		v := vals[n]
		if v == "" {
			v = "0"
		}
		fmt.Fprintf(&b, " %s=%s", n, v)
	}
	return strings.TrimSpace(b.String())
}

// poissonUpper returns the one-sided upper confidence bound, at level
// 1-alpha, of the mean of a Poisson count that came out k: the λ with
// P(X <= k; λ) = alpha. For k = 0 and alpha = 0.05 it is 3.0 (the rule of
// three).
func poissonUpper(k int, alpha float64) float64 {
	cdf := func(lambda float64) float64 {
		term, sum := math.Exp(-lambda), 0.0
		for i := 0; i <= k; i++ {
			sum += term
			term *= lambda / float64(i+1)
		}
		return sum
	}
	lo, hi := float64(k), float64(k)+10+10*math.Sqrt(float64(k)+1)
	for range 100 {
		mid := (lo + hi) / 2
		if cdf(mid) > alpha {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// tally counts joins and corrupted transfers.
type tally struct{ joins, corrupt int }

// row formats t: joins, corrupted, per 1,000 joins and its one-sided 95%
// upper bound.
func (t tally) row() string {
	return fmt.Sprintf("%d\t%d\t%.2f\t%.2f", t.joins, t.corrupt,
		1000*float64(t.corrupt)/float64(t.joins), 1000*poissonUpper(t.corrupt, 0.05)/float64(t.joins))
}

// bin is a half-open range [lo, hi) of a quantity.
type bin struct {
	label  string
	lo, hi float64
}

// bins returns the bins between the edges, the last one open.
func bins(unit string, edges ...float64) []bin {
	var bs []bin
	for i, lo := range edges {
		b := bin{lo: lo, hi: math.Inf(1), label: fmt.Sprintf("%g+ %s", lo, unit)}
		if i+1 < len(edges) {
			b.hi, b.label = edges[i+1], fmt.Sprintf("%g-%g %s", lo, edges[i+1], unit)
		}
		bs = append(bs, b)
	}
	return bs
}

// Bins of the join tables: the moment in ms after connect(), and the
// bytes the connection had sent, in KiB.
var (
	momentBins = bins("ms", 0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
	sentBins   = bins("KiB", 0, 16, 64, 128, 256, 512, 1024, 4096, 16384)
	// stateBands split the state table by moment, in ms.
	stateBands = bins("ms", 0, 10, 200)
)

// binOf returns the index of the bin holding v.
func binOf(bs []bin, v float64) int {
	for i, b := range bs {
		if v < b.hi {
			return i
		}
	}
	return len(bs) - 1
}

// summarizeJoins tabulates records: totals, the joins and corruptions by
// the moment of the join, by the bytes sent then and by the stream's
// state then, with per-1,000 rates and their upper bounds, and every bad
// block placed against the join.
func summarizeJoins(records []joinRecord) string {
	var (
		b                                    strings.Builder
		requested, refused, counted, corrupt int
		corruptUncounted, failed             int
		byMoment                             = make([]tally, len(momentBins))
		bySent                               = make([]tally, len(sentBins))
		byState                              = map[string]tally{}
		minLoad, maxLoad                     = math.Inf(1), 0.0
	)
	for _, r := range records {
		minLoad, maxLoad = min(minLoad, r.Load1), max(maxLoad, r.Load1)
		if r.Requested {
			requested++
			if r.JoinErr != "" {
				refused++
			}
		}
		if r.Failed != "" {
			failed++
		}
		if r.Corrupt {
			corrupt++
		}
		if !r.counted() {
			if r.Corrupt {
				corruptUncounted++
			}
			continue
		}
		counted++
		add := func(t *tally) {
			t.joins++
			if r.Corrupt {
				t.corrupt++
			}
		}
		moment := ms(r.At.Age)
		add(&byMoment[binOf(momentBins, moment)])
		add(&bySent[binOf(sentBins, float64(r.At.Sent)/1024)])
		key := stateBands[binOf(stateBands, moment)].label + "\t" + r.state()
		t := byState[key]
		add(&t)
		byState[key] = t
	}
	if len(records) == 0 {
		return "no transfers"
	}
	fmt.Fprintf(&b, "%d transfers: %d joins requested (%d refused), %d counted (joined and verified); %d corrupted (%d of them not counted), %d failed; 1-minute load average %.1f to %.1f\n",
		len(records), requested, refused, counted, corrupt, corruptUncounted, failed, minLoad, maxLoad)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	table := func(title string, bs []bin, ts []tally) {
		fmt.Fprintf(w, "%s\tjoins\tcorrupted\tper 1,000\t95%% upper\t\n", title)
		for i, t := range ts {
			if t.joins > 0 {
				fmt.Fprintf(w, "%s\t%s\t\n", bs[i].label, t.row())
			}
		}
	}
	table("join moment after connect()", momentBins, byMoment)
	table("bytes sent at the join", sentBins, bySent)
	fmt.Fprintf(w, "moment\tstream state\tjoins\tcorrupted\tper 1,000\t95%% upper\t\n")
	keys := slices.SortedFunc(maps.Keys(byState), func(a, c string) int {
		ai, _, _ := strings.Cut(a, "\t")
		ci, _, _ := strings.Cut(c, "\t")
		return cmp.Or(cmp.Compare(bandIndex(ai), bandIndex(ci)), strings.Compare(a, c))
	})
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\t\n", k, byState[k].row())
	}
	_ = w.Flush()
	for _, r := range records {
		if !r.Corrupt {
			continue
		}
		fmt.Fprintf(&b, "corrupted %d: join by the %s at %.3f ms (requested %v), sent %d, acked %d, written %d; %s (data ack idle %.1f ms of %.1f watched; cwnd %d, ssthresh %s, ca_state %d, unacked %d, snd_wnd %d)%s\n",
			r.Seed, r.Side, ms(r.At.Age), r.Requested, r.At.Sent, r.At.Acked, r.At.Written, r.state(),
			ms(r.AckIdle), ms(r.Watched), r.At.Cwnd, ssthresh(r.At.Ssthresh), r.At.CAState, r.At.Unacked, r.At.SndWnd,
			failedNote(r.Failed))
		for _, bl := range r.Blocks {
			from := "from nowhere in the stream"
			if bl.From >= 0 {
				from = fmt.Sprintf("= sent bytes at %d (%+d)", bl.From, bl.From-bl.Start)
			}
			fmt.Fprintf(&b, "  [%d, %d) %d bytes: start %+d from sent at the join, %+d from acked; start %% 64 KiB = %d, end %% 64 KiB = %d; %s\n",
				bl.Start, bl.End, bl.End-bl.Start, int64(bl.Start)-r.At.Sent, int64(bl.Start)-r.At.Acked, bl.Start%writeChunk, bl.End%writeChunk, from)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// bandIndex is the position of a stateBands label.
func bandIndex(label string) int {
	return slices.IndexFunc(stateBands, func(b bin) bool { return b.label == label })
}

// ssthresh formats a snd_ssthresh.
func ssthresh(v uint32) string {
	if v >= infiniteSsthresh {
		return "infinite"
	}
	return strconv.FormatUint(uint64(v), 10)
}

// failedNote is "; failed: why" or nothing.
func failedNote(why string) string {
	if why == "" {
		return ""
	}
	return "; failed: " + why
}

// readRecords reads the join records of the -soak.corrupt.out files.
func readRecords(files []string) ([]joinRecord, error) {
	var rs []joinRecord
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		line := 0
		for sc.Scan() {
			line++
			var r joinRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				_ = f.Close()
				return nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			rs = append(rs, r)
		}
		err = sc.Err()
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return rs, nil
}

// groupKey is what records of one table share: everything but the join
// point (the tables bin by the actual moment) and the load.
func groupKey(r *joinRecord) string {
	csum := "checksums off"
	if r.Csum {
		csum = "checksums on"
	}
	key := fmt.Sprintf("%s PM, %s side, %d workers × %d bytes, %s", r.PM, r.Side, r.Workers, r.Size, csum)
	if r.Flood {
		key += ", floods alongside"
	}
	return key
}

// TestCorruptReport tabulates the join records of the files in
// -soak.corrupt.report, one set of tables for each path manager, side,
// workers, size and checksum setting.
func TestCorruptReport(t *testing.T) {
	if *soakCorruptReport == "" {
		t.Skip("soak: run with -soak.corrupt.report FILE[,FILE...] (records of -soak.corrupt.out)")
	}
	rs, err := readRecords(strings.Split(*soakCorruptReport, ","))
	if err != nil {
		t.Fatalf("soak: -soak.corrupt.report: %v", err)
	}
	groups := map[string][]joinRecord{}
	for _, r := range rs {
		groups[groupKey(&r)] = append(groups[groupKey(&r)], r)
	}
	for _, k := range slices.Sorted(maps.Keys(groups)) {
		points := map[string]bool{}
		for _, r := range groups[k] {
			points[r.Point] = true
		}
		t.Logf("%s; join points %s:\n%s", k, strings.Join(slices.Sorted(maps.Keys(points)), ", "), summarizeJoins(groups[k]))
	}
}

// TestParseJoinPoint: the join point's forms, and errors that name the
// form wanted.
func TestParseJoinPoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want joinPoint
		err  string
	}{
		{in: "time:0", want: joinPoint{}},
		{in: "time:20ms", want: joinPoint{lo: int64(20 * time.Millisecond), hi: int64(20 * time.Millisecond)}},
		{in: "time:0-200ms", want: joinPoint{lo: 0, hi: int64(200 * time.Millisecond)}},
		{in: "bytes:100KiB", want: joinPoint{bytes: true, lo: 100 << 10, hi: 100 << 10}},
		{in: "bytes:0-1MiB", want: joinPoint{bytes: true, lo: 0, hi: 1 << 20}},
		{in: "20ms", err: "want time:D, time:LO-HI, bytes:N or bytes:LO-HI"},
		{in: "size:1", err: `unknown kind "size"`},
		{in: "time:200ms-20ms", err: "want 0 <= LO <= HI"},
		{in: "time:soon", err: `invalid duration "soon"`},
		{in: "bytes:1.5MiB", err: "non-negative integer"},
		{in: "bytes:-1", err: `byte count ""`},
	}
	for _, tt := range tests {
		got, err := parseJoinPoint(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseJoinPoint(%q): err %v, want one containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseJoinPoint(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestPoissonUpper: the one-sided 95% upper bounds of a Poisson mean,
// against the tabulated values (rule of three for zero).
func TestPoissonUpper(t *testing.T) {
	t.Parallel()
	for k, want := range []float64{2.996, 4.744, 6.296, 7.754, 9.154} {
		if got := poissonUpper(k, 0.05); math.Abs(got-want) > 0.001 {
			t.Errorf("poissonUpper(%d, 0.05) = %.4f, want %.3f", k, got, want)
		}
	}
}

// TestSummarizeJoins: joins are binned by moment, bytes and state; only
// accepted, established, verified joins count; bad blocks are placed
// against the join.
func TestSummarizeJoins(t *testing.T) {
	t.Parallel()
	at := func(age time.Duration, sent, acked int64, ssthresh uint32) joinSample {
		return joinSample{Age: age, Sent: sent, Acked: acked, Ssthresh: ssthresh, Subflows: 2}
	}
	rs := []joinRecord{
		{Seed: 1, Requested: true, Joined: true, At: at(500*time.Microsecond, 0, 0, infiniteSsthresh), Load1: 3},
		{Seed: 2, Requested: true, Joined: true, At: at(3*time.Millisecond, 88752, 49840, infiniteSsthresh), AckIdle: 6 * time.Millisecond, Watched: 8 * time.Millisecond,
			Corrupt: true, Blocks: []badBlock{{Start: 88752, End: 102184, From: 89560}}, Load1: 5},
		{Seed: 3, Requested: true, Joined: true, At: at(30*time.Millisecond, 1<<20, 1<<19, 100), AckIdle: time.Millisecond, Watched: 5 * time.Millisecond, Load1: 4},
		{Seed: 4, Requested: true, JoinErr: "refused", At: at(time.Millisecond, 0, 0, 0), Load1: 4},
		{Seed: 5, Failed: "dial: refused", Load1: 4},
	}
	// Compared with the table's padding squeezed to one space.
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	got := squeeze(summarizeJoins(rs))
	for _, want := range []string{
		"5 transfers: 4 joins requested (1 refused), 3 counted (joined and verified); 1 corrupted (0 of them not counted), 1 failed; 1-minute load average 3.0 to 5.0",
		"0-1 ms      1          0       0.00    2995.73",
		"2-5 ms      1          1    1000.00    4743.86",
		"20-50 ms    1          0",
		"64-128 KiB  1          1",
		"0-10 ms       opening",
		"0-10 ms       stalled      1          1",
		"10-200 ms        steady",
		"corrupted 2: join by the at 3.000 ms (requested true), sent 88752, acked 49840, written 0; stalled (data ack idle 6.0 ms of 8.0 watched",
		"[88752, 102184) 13432 bytes: start +0 from sent at the join, +38912 from acked; start % 64 KiB = 23216, end % 64 KiB = 36648; = sent bytes at 89560 (+808)",
	} {
		if !strings.Contains(got, squeeze(want)) {
			t.Errorf("summarizeJoins: no %q in\n%s", want, got)
		}
	}
}
