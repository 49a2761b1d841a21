//go:build linux

package soak_test

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

var (
	soakOn       = flag.Bool("soak", false, "run the soak test (opt-in: make soak)")
	soakDuration = flag.Duration("soak.duration", 5*time.Minute, "total time of the soak, shared by the modes")
	soakModes    = flag.String("soak.modes", "kernel,userspace", "comma-separated path-manager modes to soak, one after the other")
	soakFlaps    = flag.Int("soak.flaps", 1000, "link flaps per mode (fewer if the flap phase's time runs out)")
	soakRestart  = flag.Duration("soak.restart-every", 3*time.Second, "time between two kill -9 of the daemon")
	soakRSS      = flag.Float64("soak.rss-tolerance", 1.5, "final RSS may be at most this factor of the baseline, plus 16 MiB")
	soakGor      = flag.Int("soak.goroutine-tolerance", 10, "final goroutines may exceed the baseline by at most this many")
	soakRace     = flag.Bool("soak.race", false, "build the daemon with the race detector and fail on any race it reports")

	soakCorrupt         = flag.Bool("soak.corrupt", false, "run TestCorrupt, the subflow-churn corruption reproducer (opt-in)")
	soakCorruptDuration = flag.Duration("soak.corrupt.duration", time.Minute, "time of each TestCorrupt case")
	soakCorruptCases    = flag.String("soak.corrupt.cases", "none,create,destroy", "comma-separated TestCorrupt cases (none, create, create-early, destroy, destroy-once, destroy-initial, backup, resubscribe, duplicate, kernel-pm, all, join); none is the control")
	soakCorruptCsum     = flag.Bool("soak.corrupt.csum", false, "TestCorrupt: set net.mptcp.checksum_enabled=1 on both hosts")
	soakCorruptWorkers  = flag.Int("soak.corrupt.workers", 8, "TestCorrupt: concurrent transfers (the join case with the in-kernel PM: connections per wave)")
	soakCorruptSize     = flag.String("soak.corrupt.size", "8MiB", "TestCorrupt: bytes per transfer (KiB, MiB, GiB allowed)")
	soakCorruptJoinAt   = flag.String("soak.corrupt.join-at", "time:0-200ms", "TestCorrupt join case: when each connection gets its extra subflow: time:D or time:LO-HI after connect() returned, bytes:N or bytes:LO-HI sent (drawn uniformly)")
	soakCorruptJoinSide = flag.String("soak.corrupt.join-side", "sender", "TestCorrupt join case: who makes the join: sender (the client opens the subflow) or receiver (the server opens it, or with -soak.corrupt.join-pm kernel announces the address the client joins)")
	soakCorruptJoinPM   = flag.String("soak.corrupt.join-pm", "userspace", "TestCorrupt join case: userspace (MPTCP_PM_CMD_SUBFLOW_CREATE for each connection) or kernel (an in-kernel PM endpoint added at the join point, for a wave of connections at a time)")
	soakCorruptFlood    = flag.Bool("soak.corrupt.flood", false, "TestCorrupt: alongside, bursts of 300 short connections (4 KiB each, 64 at a time) every 100 ms, as in the soak's flood phase")
	soakCorruptOut      = flag.String("soak.corrupt.out", "", "TestCorrupt join case: append one JSON record per transfer to this file (see -soak.corrupt.report)")
	soakCorruptReport   = flag.String("soak.corrupt.report", "", "TestCorruptReport: comma-separated files of -soak.corrupt.out records to tabulate")
)

// longStreams is how many connections stay open for the whole soak of a
// mode; bulkWorkers how many repeat long transfers under the stress.
const (
	longStreams  = 3
	bulkWorkers  = 2
	bulkSize     = 8 << 20
	floodBurst   = 300
	floodWorkers = 64
)

// TestSoak runs the soak in each mode of -soak.modes, one after the
// other; see docs/soak.md.
func TestSoak(t *testing.T) {
	if !*soakOn {
		t.Skip("soak: opt-in; run with -soak (make soak)")
	}
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "soak: needs root to build network namespaces")
	}
	modes := strings.Split(*soakModes, ",")
	for _, m := range modes {
		if m != "kernel" && m != "userspace" {
			t.Fatalf("soak: -soak.modes: unknown mode %q: want kernel or userspace", m)
		}
	}
	bin := build(t, *soakRace)
	budget := *soakDuration / time.Duration(len(modes))
	var reports []*report
	for _, mode := range modes {
		r := &report{mode: mode, baseGor: -1, finalGor: -1}
		reports = append(reports, r)
		t.Run(mode, func(t *testing.T) { soak(t, bin, r, budget) })
	}
	printReports(reports)
}

// report is what one mode's soak did and measured.
type report struct {
	mode                          string
	took                          time.Duration
	flaps, restarts, bursts       int
	seconds                       int // second instances started beside the daemon
	connections, transfers        int64
	bytes, corrupt                int64
	failures                      int
	badSent, badAnswered, badDown int64
	// hostile counts the connections to the hostile server, hostileTries
	// the tries of its failing address that reached it.
	hostile, hostileTries int
	baseRSS, finalRSS     int64
	baseGor, finalGor     int // -1: not exported
}

// soak runs every phase in r.mode within budget, checks the end state and
// fills in r as it goes.
func soak(t *testing.T, bin string, r *report, budget time.Duration) {
	start := time.Now()
	mode := r.mode
	st := &stats{}
	bad := &badStats{}
	defer func() {
		r.took = time.Since(start)
		r.connections, r.transfers = st.connections.Load(), st.transfers.Load()
		r.bytes, r.corrupt = st.bytes.Load(), st.corrupt.Load()
		r.badSent, r.badAnswered, r.badDown = bad.sent.Load(), bad.answered.Load(), bad.unreachable.Load()
	}()
	tb := netnstest.NewTestbed(t, 3)
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	// Tens of thousands of short connections leave as many subflows in
	// TIME_WAIT on the client, which closes first: let new connections
	// reuse their ports.
	tb.Client.Sysctl("net.ipv4.tcp_tw_reuse", "1")
	tb.Client.Sysctl("net.ipv4.ip_local_port_range", "1024 65000")
	ln := tb.Server.Listen("tcp", netip.AddrPortFrom(tb.Links[0].Server4, 0).String())
	go serveSums(ln)
	srv := netip.MustParseAddrPort(ln.Addr().String())
	srv = netip.AddrPortFrom(srv.Addr().Unmap(), srv.Port())
	var locals4 []netip.Addr
	var locals []netip.Addr
	for _, l := range tb.Links {
		locals4 = append(locals4, l.Client4)
		locals = append(locals, l.Client4, l.Client6)
	}
	mesh := pathSet(locals4, srv)
	evil := newHostile(t, tb)
	defer func() { r.hostile = int(evil.conns.Load()) }()

	d := newDaemon(t, tb.Client, bin, mode)
	if mode == "kernel" && !waitFor(t, d, "endpoints for every address", func() (bool, string) {
		p := checkEndpoints(t, tb.Client, d, locals)
		return p == "", p
	}) {
		t.FailNow()
	}
	var long []*longStream
	for i := range longStreams {
		l, err := openLong(tb.Client, srv, uint64(1_000_000+i))
		if err != nil {
			t.Fatal(err)
		}
		long = append(long, l)
	}
	closed := false
	closeLong := func() {
		if closed {
			return
		}
		closed = true
		for _, l := range long {
			if err := l.close(); err != nil {
				r.failures++
				t.Errorf("long stream from %s: %v", l.local, err)
			}
		}
	}
	t.Cleanup(closeLong)

	var seeds atomic.Uint64
	// stress runs the bulk transfers, the bad requests and the hostile
	// peer's connections until its stop function is called, or the test
	// ends (a restart that fails ends it).
	stress := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		waitBulk := bulk(ctx, tb.Client, srv, bulkWorkers, bulkSize, &seeds, st)
		waitBad := badLoop(ctx, d, bad)
		waitEvil := evil.loop(ctx, tb.Client, st)
		stop = sync.OnceFunc(func() {
			cancel()
			waitBulk()
			waitBad()
			waitEvil()
		})
		t.Cleanup(stop)
		return stop
	}

	// Phase 1: kill -9 and restart under traffic.
	phase := budget * 25 / 100
	stop := stress()
	for end := time.Now().Add(phase); time.Now().Before(end); {
		time.Sleep(*soakRestart)
		d.kill()
		time.Sleep(time.Duration(seeds.Load()%5) * 100 * time.Millisecond)
		d.start()
		r.restarts++
		if msg := d.second(); msg != "" {
			t.Errorf("second instance after restart %d: %s", r.restarts, msg)
		}
		r.seconds++
	}
	stop()
	t.Logf("%s: %d restarts in %v, until %s", mode, r.restarts, phase, time.Now().Format("15:04:05.000"))

	// Warm-up, then the baseline, quiet but for the long streams.
	if !settle(t, d, tb.Client, mode, locals, long, mesh) {
		t.FailNow()
	}
	baseRSS, baseGor := measure(t, d)
	r.baseRSS, r.baseGor = baseRSS, baseGor

	// Phase 2: link flaps of eth1; phase 3: floods of short
	// connections; the bulk transfers and bad requests throughout.
	stop = stress()
	fl := newFlapper(t, tb.Client, tb.Links[1])
	ctx, cancel := context.WithTimeout(context.Background(), budget*40/100)
	n, err := fl.flaps(ctx, *soakFlaps)
	cancel()
	r.flaps = n
	if err != nil {
		stop()
		t.Fatalf("flap %d: %v", n, err)
	}
	t.Logf("%s: %d flaps, until %s", mode, n, time.Now().Format("15:04:05.000"))
	ctx, cancel = context.WithTimeout(context.Background(), budget*15/100)
	for ctx.Err() == nil {
		flood(ctx, tb.Client, srv, floodBurst, floodWorkers, &seeds, st)
		r.bursts++
		if msg := d.second(); msg != "" {
			t.Errorf("second instance after burst %d: %s", r.bursts, msg)
		}
		r.seconds++
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	stop()
	if dead, why := d.exited(); dead {
		t.Fatalf("mptcpgod died during the soak: %s", why)
	}

	// The end state.
	settle(t, d, tb.Client, mode, locals, long, mesh)
	r.finalRSS, r.finalGor = waitBaseline(t, d, baseRSS, baseGor)
	closeLong()
	fails := st.failed()
	r.failures += len(fails)
	for i, f := range fails {
		if i == 20 {
			t.Errorf("... and %d more failed transfers", len(fails)-20)
			break
		}
		t.Errorf("transfer failed: %s", f)
	}
	if n := st.corrupt.Load(); n > 0 {
		t.Errorf("%d transfers corrupted (checksum mismatch)", n)
	}
	for _, w := range bad.unexpected() {
		t.Errorf("control socket: %s", w)
	}
	for _, race := range d.races() {
		t.Errorf("the race detector found a data race in mptcpgod, %s", race)
	}
	if bad.goodOK.Load() == 0 {
		t.Errorf("control socket: no GET /v1/status between the bad requests succeeded")
	}
	r.hostileTries = evil.check(t, mode)
	if st, err := d.status(); err == nil && mode == "userspace" && len(st.Counters.PeerAddrsRefused) == 0 {
		t.Errorf("hostile peer: %d connections, but the daemon counted no refused announce", evil.conns.Load())
	}
}

// settle waits until the daemon answers and the kernel's state is the
// desired one: the endpoints (kernel mode), exactly the mesh on each long
// stream, no other connection or subflow left, and the daemon tracking
// exactly the live connections (userspace mode). It reports whether the
// state settled; when it did not, the test has failed.
func settle(t *testing.T, d *daemon, h *netnstest.Host, mode string, locals []netip.Addr, long []*longStream, mesh []string) bool {
	t.Helper()
	return waitFor(t, d, "the desired kernel state", func() (bool, string) {
		ok, desc := desired(t, d, h, mode, locals, long, mesh)
		if !ok {
			desc += "\n" + h.MPTCPDump()
		}
		return ok, desc
	})
}

// desired reports whether the kernel's state is the desired one, and if
// not, what differs.
func desired(t *testing.T, d *daemon, h *netnstest.Host, mode string, locals []netip.Addr, long []*longStream, mesh []string) (bool, string) {
	st, err := d.status()
	if err != nil {
		return false, fmt.Sprintf("GET /v1/status: %v", err)
	}
	if !st.Ready {
		return false, "daemon not ready"
	}
	var problems []string
	if mode == "kernel" {
		if p := checkEndpoints(t, h, d, locals); p != "" {
			problems = append(problems, p)
		}
	}
	kc := readConns(t, h)
	var want []netip.AddrPort
	for _, l := range long {
		want = append(want, l.local)
		if diff := cmp.Diff(mesh, kc.conns[l.local]); diff != "" {
			problems = append(problems, fmt.Sprintf("subflows of %s (-want +got):\n%s", l.local, diff))
		}
	}
	var got []netip.AddrPort
	for c := range kc.conns {
		got = append(got, c)
	}
	slices.SortFunc(want, netip.AddrPort.Compare)
	slices.SortFunc(got, netip.AddrPort.Compare)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		problems = append(problems, fmt.Sprintf("established MPTCP connections, leaked ones included (-want +got):\n%s", diff))
	}
	if len(kc.orphans) > 0 {
		problems = append(problems, fmt.Sprintf("subflows without a connection: %v", kc.orphans))
	}
	if mode == "userspace" && st.Connections != len(long) {
		problems = append(problems, fmt.Sprintf("daemon tracks %d connections, want the %d live ones (resyncs %d, events for unknown tokens %d, events %v):\n%s",
			st.Connections, len(long), st.Counters.Resyncs, st.Counters.UnknownToken, st.Counters.Events, trackedConns(d, kc)))
	}
	return len(problems) == 0, strings.Join(problems, "\n")
}

// trackedConns describes the connections the daemon tracks that the
// kernel does not have established.
func trackedConns(d *daemon, kc kernelConns) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	for c, err := range d.ctl.AllConns(ctx, ctlapi.PathsQuery{}) {
		if err != nil {
			return fmt.Sprintf("GET /v1/paths: %v", err)
		}
		if _, ok := kc.conns[c.Local]; ok {
			continue
		}
		fmt.Fprintf(&b, "  token %08x %s %s->%s since %s established %v pm %s paths %d; its events in ip mptcp monitor (which may miss some):\n",
			c.Token, c.Side, c.Local, c.Remote, c.Since.Format(time.RFC3339Nano), c.Established, c.PathManager, len(c.Paths))
		tok := fmt.Sprintf("token=%08x ", c.Token)
		for line := range strings.Lines(d.monitor.String()) {
			if strings.Contains(line, tok) {
				b.WriteString("    " + line)
			}
		}
	}
	return b.String()
}

// checkEndpoints compares h's endpoints with the policy's wish, fullmesh
// on every usable address: one endpoint per address in mptcpgod's id
// range, none duplicated, none outside it, and the daemon's desired
// endpoints the same set, each in state ok. It returns "" when they
// match, else what differs.
func checkEndpoints(t *testing.T, h *netnstest.Host, d *daemon, locals []netip.Addr) string {
	t.Helper()
	var problems []string
	var got []netip.Addr
	for _, ep := range endpoints(t, h) {
		if ep.id < 100 || ep.id > 199 {
			problems = append(problems, "endpoint outside mptcpgod's ids: "+ep.line)
		}
		got = append(got, ep.addr)
	}
	want := slices.Clone(locals)
	slices.SortFunc(want, netip.Addr.Compare)
	slices.SortFunc(got, netip.Addr.Compare)
	addrCmp := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	if diff := cmp.Diff(want, got, addrCmp); diff != "" {
		problems = append(problems, fmt.Sprintf("kernel endpoints, duplicates included (-want +got):\n%s", diff))
	}
	st, err := d.status()
	if err != nil {
		return fmt.Sprintf("GET /v1/status: %v", err)
	}
	var desired []netip.Addr
	for _, ep := range st.Endpoints {
		if ep.Desired {
			desired = append(desired, ep.Addr)
		}
		if ep.Desired && ep.State != "ok" {
			problems = append(problems, fmt.Sprintf("daemon's endpoint %s: state %s %s %s", ep.Addr, ep.State, ep.Reason, ep.LastError))
		}
	}
	slices.SortFunc(desired, netip.Addr.Compare)
	if diff := cmp.Diff(want, desired, addrCmp); diff != "" {
		problems = append(problems, fmt.Sprintf("daemon's desired endpoints (-want +got):\n%s", diff))
	}
	return strings.Join(problems, "\n")
}

// measure returns the daemon's RSS and goroutines (-1 when it does not
// export go_goroutines).
func measure(t *testing.T, d *daemon) (rss int64, gor int) {
	t.Helper()
	rss, err := d.rss()
	if err != nil {
		t.Fatal(err)
	}
	n, ok, err := d.goroutines()
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	if !ok {
		t.Log("soak: the daemon does not export go_goroutines; the goroutine check is skipped")
		return rss, -1
	}
	return rss, n
}

// waitBaseline waits until the daemon's RSS and goroutines are back
// within the tolerances of the baseline (idle connections and half-open
// clients take a few seconds to time out), fails the test if they are not
// within waitLimit, and returns the last measure. With -soak.race the RSS
// is not checked: the race detector's shadow memory grows with every
// allocation and is never given back (157 MiB against a 42 MiB baseline
// in a 2-minute userspace soak).
func waitBaseline(t *testing.T, d *daemon, baseRSS int64, baseGor int) (rss int64, gor int) {
	t.Helper()
	maxRSS := int64(float64(baseRSS)**soakRSS) + 16<<20
	if *soakRace {
		t.Log("soak: -soak.race: the daemon's RSS is measured but not checked")
	}
	deadline := time.Now().Add(waitLimit)
	for {
		rss, gor = measure(t, d)
		okRSS := rss <= maxRSS || *soakRace
		okGor := baseGor < 0 || gor <= baseGor+*soakGor
		if okRSS && okGor {
			return rss, gor
		}
		if time.Now().After(deadline) {
			if !okRSS {
				t.Errorf("daemon RSS %d KiB, baseline %d KiB: more than the %d KiB allowed", rss>>10, baseRSS>>10, maxRSS>>10)
			}
			if !okGor {
				t.Errorf("daemon goroutines %d, baseline %d: more than %d over", gor, baseGor, *soakGor)
			}
			return rss, gor
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitFor polls check until it reports true; after waitLimit it fails
// the test with the last description and returns false. It stops the test
// at once if the daemon died.
func waitFor(t *testing.T, d *daemon, what string, check func() (bool, string)) bool {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		if dead, why := d.exited(); dead {
			t.Fatalf("mptcpgod died: %s", why)
		}
		ok, desc := check()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: not within %v; last:\n%s", what, waitLimit, desc)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// printReports prints the summary table to standard output.
func printReports(rs []*report) {
	if len(rs) == 0 {
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\ttook\tflaps\trestarts\t2nd\tbursts\tconns\ttransfers\tMiB\tcorrupt\tfailed\tbad sent\tbad answered\tsocket down\thostile conns\thostile tries\tRSS base KiB\tRSS final KiB\tgoroutines base\tgoroutines final\t")
	for _, r := range rs {
		gor := func(n int) string {
			if n < 0 {
				return "n/a"
			}
			return fmt.Sprint(n)
		}
		fmt.Fprintf(w, "%s\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n",
			r.mode, r.took.Round(time.Second), r.flaps, r.restarts, r.seconds, r.bursts, r.connections, r.transfers, r.bytes>>20,
			r.corrupt, r.failures, r.badSent, r.badAnswered, r.badDown, r.hostile, r.hostileTries, r.baseRSS>>10,
			r.finalRSS>>10, gor(r.baseGor), gor(r.finalGor))
	}
	_ = w.Flush()
}
