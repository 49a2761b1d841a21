//go:build linux

package bench_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
)

// rrEnv, set in its environment, makes the test binary the request and
// response server of BenchmarkDeferral (rrMain).
const rrEnv = "MPTCPGOD_BENCH_RR"

// The workloads of BenchmarkDeferral: requests with replies of rrReplies
// bytes, one at a time (rrConns1 of them) and 32 at once (rrConns32),
// and a download of bulkFor.
var rrReplies = []int{2_000, 20_000}

const (
	rrConns1  = 200
	rrConns32 = 1_000
	bulkFor   = 4 * time.Second
)

// deferCase is a path manager of BenchmarkDeferral: setup makes it give
// connections a subflow from the client's eth1 address, and returns the
// id of its process (0: the kernel's).
type deferCase struct {
	manager string
	// bulkOnly: run the bulk download only.
	bulkOnly bool
	setup    func(b *testing.B, tb *netnstest.Testbed) int
}

// deferCases are the in-kernel path manager and mptcpgod joining at once
// (the references), mptcpgod with its defaults (join_delay, min_join_age),
// with a byte threshold too (whose reads cost CPU), and, for the
// download, with DSS checksums.
var deferCases = []deferCase{
	{manager: "kernel", setup: func(b *testing.B, tb *netnstest.Testbed) int {
		tb.Client.SetPathManager("kernel")
		limits(tb.Client)
		tb.Client.MustExec("ip", "mptcp", "endpoint", "add", tb.Links[1].Client4.String(), "dev", tb.Links[1].ClientIf, "subflow")
		return 0
	}},
	{manager: "mptcpgod-at-once", setup: func(b *testing.B, tb *netnstest.Testbed) int {
		return startDaemon(b, tb.Client, "userspace")
	}},
	{manager: "mptcpgod-defaults", setup: func(b *testing.B, tb *netnstest.Testbed) int {
		return daemontest.Start(b, tb.Client, daemonConfig("userspace", "")).Pid()
	}},
	{manager: "mptcpgod-bytes-256k", setup: func(b *testing.B, tb *netnstest.Testbed) int {
		return daemontest.Start(b, tb.Client, daemonConfig("userspace",
			"\n[[policy.chain]]\nname = \"fullmesh\"\nconfig = { join_delay = \"1s\", join_bytes = 262144 }\n")).Pid()
	}},
	{manager: "mptcpgod-defaults-checksums", bulkOnly: true, setup: func(b *testing.B, tb *netnstest.Testbed) int {
		return daemontest.Start(b, tb.Client, daemonConfig("userspace", "\n[mitigation]\nchecksums = \"on\"\n")).Pid()
	}},
}

// deferBed is a testbed with the request and response server and a path
// manager of deferCases in its client namespace.
type deferBed struct {
	c              deferCase
	tb             *netnstest.Testbed
	server         netip.AddrPort
	pid, serverPid int
}

func newDeferBed(b *testing.B, c deferCase) *deferBed {
	b.Helper()
	d := &deferBed{c: c}
	d.tb, _ = testbed(b)
	d.server, d.serverPid = startRRServer(b, d.tb)
	d.pid = c.setup(b, d.tb)
	return d
}

// BenchmarkDeferral measures, side by side, what deferred joins save:
// for each path manager of deferCases, requests on short connections
// (2 KB and 20 KB replies, one at a time and 32 at once), with the joins
// per connection, the SYNs the server received, the completion times and
// the CPU of the client, the server and the path manager. An iteration is
// the four workloads. BenchmarkDeferralBulk measures what deferral costs
// a download.
func BenchmarkDeferral(b *testing.B) {
	for _, c := range deferCases {
		if c.bulkOnly {
			continue
		}
		b.Run(c.manager, func(b *testing.B) {
			d := newDeferBed(b, c)
			var rs []bench.Result
			for b.Loop() {
				rs = rs[:0]
				for _, reply := range rrReplies {
					for _, inFlight := range []int{1, 32} {
						rs = append(rs, runRR(b, d, reply, inFlight))
					}
				}
			}
			record(b, rs...)
		})
	}
}

// BenchmarkDeferralBulk runs, for every path manager of deferCases at
// once, each on a testbed of its own, bulkRounds rounds of one download
// each, the path managers taking turns, so that the machine's other work
// weighs on all of them alike; it reports each one's throughput over the
// download, from its first byte, as a fraction of the links' sum, and
// its CPU per GB. An iteration is all the rounds.
func BenchmarkDeferralBulk(b *testing.B) {
	beds := make([]*deferBed, len(deferCases))
	for i, c := range deferCases {
		beds[i] = newDeferBed(b, c)
	}
	var rs []bench.Result
	for b.Loop() {
		totals := make([]bulkTotal, len(beds))
		for range bulkRounds {
			for i, d := range beds {
				totals[i].add(runBulk(b, d))
			}
		}
		rs = rs[:0]
		for i, d := range beds {
			r := totals[i].result(d)
			b.ReportMetric(r.Deferral.Aggregation.Fraction*100, "%-of-links-"+d.c.manager)
			rs = append(rs, r)
		}
	}
	record(b, rs...)
}

// bulkRounds is how many downloads each path manager of
// BenchmarkDeferralBulk makes.
const bulkRounds = 3

// bulkRun is one download: the bytes read, the seconds it took and the
// counters around it.
type bulkRun struct {
	bytes         int64
	secs          float64
	before, after counters
}

// bulkTotal sums a path manager's downloads.
type bulkTotal struct {
	bytes         int64
	secs          float64
	runs          int
	before, after counters // the sums of the runs' differences, in after
}

func (t *bulkTotal) add(r bulkRun) {
	t.bytes += r.bytes
	t.secs += r.secs
	t.runs++
	t.after.joins += r.after.joins - r.before.joins
	t.after.serverSYNs += r.after.serverSYNs - r.before.serverSYNs
	t.after.client += r.after.client - r.before.client
	t.after.server += r.after.server - r.before.server
	t.after.manager += r.after.manager - r.before.manager
}

func (t *bulkTotal) result(d *deferBed) bench.Result {
	mbps := round(float64(t.bytes)*8/t.secs/1e6, 100)
	links := float64(len(d.tb.Links) * linkMbit)
	def := deferralOf(t.before, t.after, t.runs, float64(t.bytes)/1e9, d.pid)
	def.Workload = "bulk"
	def.Aggregation = &bench.Aggregation{Seconds: round(t.secs, 10), Mbps: mbps, LinksMbps: links, Fraction: round(mbps/links, 1000)}
	return bench.Result{Figure: "deferral", Manager: d.c.manager, Mode: modeOf(d.c), Deferral: &def}
}

// counters are what a workload is measured by, read before and after.
type counters struct {
	joins, serverSYNs       uint64
	client, server, manager float64
}

func readCounters(b *testing.B, tb *netnstest.Testbed, pid, serverPid int) counters {
	b.Helper()
	var c counters
	c.joins = tb.Client.Nstat("MPTcpExtMPJoinSynTx")
	c.serverSYNs = tb.Server.Nstat("MPTcpExtMPCapableSYNRX") + tb.Server.Nstat("MPTcpExtMPJoinSynRx")
	c.client, _ = cpuTimes(b, os.Getpid())
	c.server, _ = cpuTimes(b, serverPid)
	c.manager, _ = cpuTimes(b, pid)
	return c
}

// deferralOf fills in a Deferral's counts from the counters around a run
// of conns connections; per is the CPU's divisor (1,000 connections, or
// GB).
func deferralOf(before, after counters, conns int, per float64, pid int) bench.Deferral {
	d := bench.Deferral{
		Conns:             conns,
		JoinsPerConn:      round(float64(after.joins-before.joins)/float64(conns), 100),
		ServerSYNsPerConn: round(float64(after.serverSYNs-before.serverSYNs)/float64(conns), 100),
		ClientCPU:         round((after.client-before.client)/per, 1000),
		ServerCPU:         round((after.server-before.server)/per, 1000),
	}
	if pid != 0 {
		m := round((after.manager-before.manager)/per, 1000)
		d.ManagerCPU = &m
	}
	return d
}

func round(f, to float64) float64 { return math.Round(f*to) / to }

// runRR makes the requests of one workload and returns its result.
func runRR(b *testing.B, bed *deferBed, reply, inFlight int) bench.Result {
	b.Helper()
	tb, server, c, pid, serverPid := bed.tb, bed.server, bed.c, bed.pid, bed.serverPid
	conns := rrConns1
	if inFlight > 1 {
		conns = rrConns32
	}
	before := readCounters(b, tb, pid, serverPid)
	var (
		next      atomic.Int64
		mu        sync.Mutex
		durations []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	for range inFlight {
		wg.Go(func() {
			for next.Add(1) <= int64(conns) {
				d, err := request(tb.Client, server, reply)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				durations = append(durations, d)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	// The joins of the last connections may still be on their way.
	time.Sleep(100 * time.Millisecond)
	after := readCounters(b, tb, pid, serverPid)
	s := summarize(b, durations)
	d := deferralOf(before, after, conns, float64(conns)/1000, pid)
	d.Workload, d.ReplyBytes = "rr", reply
	b.ReportMetric(d.JoinsPerConn, fmt.Sprintf("joins/conn-%dB-x%d", reply, inFlight))
	b.ReportMetric(s.P99, fmt.Sprintf("p99-ms-%dB-x%d", reply, inFlight))
	return bench.Result{Figure: "deferral", Manager: c.manager, Mode: modeOf(c), InFlight: inFlight, Summary: &s, Deferral: &d}
}

func modeOf(c deferCase) string {
	if c.manager == "kernel" {
		return "kernel"
	}
	return "userspace"
}

// request makes one request for reply bytes on a connection of its own
// and returns the time from the dial to the reply's last byte.
func request(h *netnstest.Host, server netip.AddrPort, reply int) (time.Duration, error) {
	start := time.Now()
	c, err := h.Dial("tcp", "", server.String())
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(waitLimit))
	if _, err := fmt.Fprintf(c, "%d\n", reply); err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	if _, err := io.ReadFull(c, make([]byte, reply)); err != nil {
		return 0, fmt.Errorf("reply: %w", err)
	}
	return time.Since(start), nil
}

// runBulk downloads for bulkFor on one connection.
func runBulk(b *testing.B, d *deferBed) bulkRun {
	b.Helper()
	var r bulkRun
	r.before = readCounters(b, d.tb, d.pid, d.serverPid)
	conn, err := d.tb.Client.Dial("tcp", "", d.server.String())
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := fmt.Fprintf(conn, "bulk\n"); err != nil {
		b.Fatal(err)
	}
	_ = conn.SetReadDeadline(start.Add(bulkFor))
	r.bytes, err = io.Copy(io.Discard, conn)
	r.secs = time.Since(start).Seconds()
	_ = conn.Close()
	if ne, ok := errors.AsType[net.Error](err); err != nil && (!ok || !ne.Timeout()) {
		b.Fatalf("download: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	r.after = readCounters(b, d.tb, d.pid, d.serverPid)
	return r
}

// startRRServer runs this test binary as the request and response server
// (rrMain) in tb's server namespace until the benchmark ends and returns
// its address on the server's eth0 and its process id.
func startRRServer(b *testing.B, tb *netnstest.Testbed) (netip.AddrPort, int) {
	b.Helper()
	return startChild(b, tb, rrEnv)
}

// rrMain is the request and response server (childMain): "N\n" gets N
// bytes, "bulk\n" as many as the connection takes until the client closes
// it.
func rrMain() int { return childMain(serveRR) }

// serveRR answers one request on c.
func serveRR(c net.Conn) {
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	line = strings.TrimSpace(line)
	if line == "bulk" {
		_, _ = io.Copy(c, zeros{})
		return
	}
	n, err := strconv.Atoi(line)
	if err != nil || n < 0 || n > 1<<30 {
		return
	}
	if _, err := c.Write(make([]byte, n)); err != nil {
		return
	}
	// Wait for the client to close first, as a browser's server does
	// when the client ends the connection.
	_, _ = io.Copy(io.Discard, c)
}
