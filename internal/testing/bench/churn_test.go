//go:build linux

package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
)

// The churn benchmark's steps: one closed-loop step of churnClosed
// connections kept in flight, then open-loop steps from churnFirstRate
// connections per second, each churnGrowth times the one before, until
// one fails twice or churnSteps have run. Each step starts connections
// for churnSeconds; a connection not meshed within churnDeadline is
// missed.
const (
	churnClosed    = 32
	churnFirstRate = 2000
	churnGrowth    = 1.25
	churnSteps     = 10
	churnSeconds   = 1.5
	churnDeadline  = time.Second
	// churnOpenInFlight bounds the connections in flight of an open-loop
	// step (a generator that reaches it is behind its schedule).
	churnOpenInFlight = 4096
	// churnP99Ms is the p99 (established → extra subflow) a step must
	// stay under, in milliseconds.
	churnP99Ms = 10
	// churnKeptUp is the fraction of the offered rate an open-loop step
	// must mesh: below it the machine did not keep up with the schedule.
	churnKeptUp = 0.95
)

// churnEnv, set in its environment to a JSON churnLoad, makes the test
// binary a churn load generator (churnMain) instead of running tests.
const churnEnv = "MPTCPGOD_BENCH_CHURN"

// churnLoad is one step of load, handed to the generator process.
type churnLoad struct {
	// Server is the address the connections go to.
	Server string `json:"server"`
	// Rate is the offered rate in connections per second; 0 makes the
	// step closed-loop: a connection starts whenever one is done.
	Rate float64 `json:"rate"`
	// InFlight is the most connections in flight at once.
	InFlight int `json:"in_flight"`
	// Seconds is how long connections are started.
	Seconds float64 `json:"seconds"`
	// Deadline is how long a connection may wait for its extra subflow.
	Deadline time.Duration `json:"deadline"`
}

// churnOutcome is what the generator measured of one step.
type churnOutcome struct {
	Started int `json:"started"`
	Meshed  int `json:"meshed"`
	Missed  int `json:"missed"`
	Failed  int `json:"failed"`
	// FirstError is the first connect or write error.
	FirstError string `json:"first_error,omitempty"`
	// Seconds is how long connections were started.
	Seconds float64 `json:"seconds"`
	// MeanInFlight is the time-weighted mean of connections in flight,
	// from the first start to the last connection done.
	MeanInFlight float64 `json:"mean_in_flight"`
	// Latencies are the established → extra subflow times, in
	// nanoseconds.
	Latencies []time.Duration `json:"latencies"`
}

// BenchmarkChurn measures, for each path manager of BenchmarkSubflow, the
// highest rate of new connections it keeps meshed with none missed and a
// p99 (established → extra subflow) under churnP99Ms. A generator process
// in the client namespace (this test binary with churnEnv set) opens
// non-blocking MPTCP sockets from an epoll loop per CPU, writes a byte on
// each, and resets each one (SO_LINGER 0) as soon as its own subscription
// to the namespace's events reads the SUB_ESTABLISHED of its extra
// subflow; the server end runs in a child process in the server
// namespace. A first step keeps churnClosed connections in flight (closed
// loop); then open-loop steps start connections on a schedule at a rising
// rate until one misses a connection, exceeds the p99, or meshes less
// than churnKeptUp of its rate, twice in a row. An iteration is the whole
// staircase.
func BenchmarkChurn(b *testing.B) {
	for _, c := range subflowCases {
		b.Run(c.manager+"-"+c.mode, func(b *testing.B) {
			tb, _ := testbed(b)
			server, serverPid := startServer(b, tb)
			pid := c.setup(b, tb)
			var rs []bench.Result
			for b.Loop() {
				rs = churnStairs(b, tb.Client, server, pid, serverPid, c)
			}
			for _, r := range rs {
				b.ReportMetric(r.ConnsPerSec, r.Churn.Load+"-conns/s")
				if r.Summary != nil {
					b.ReportMetric(r.P99, r.Churn.Load+"-p99-ms")
				}
			}
			record(b, rs...)
		})
	}
}

// churnStairs runs the closed-loop step and the open-loop staircase
// against the path manager of process pid (0: the kernel's) and returns
// the closed-loop result and the open-loop ceiling.
func churnStairs(b *testing.B, client *netnstest.Host, server netip.AddrPort, pid, serverPid int, c subflowCase) []bench.Result {
	b.Helper()
	closed := churnTry(b, client, server, pid, serverPid,
		churnLoad{Server: server.String(), InFlight: churnClosed, Seconds: churnSeconds, Deadline: churnDeadline})
	closedResult := churnResult(c, "closed", []measuredStep{closed})
	closedResult.InFlight = churnClosed

	var steps []measuredStep
	rate := float64(churnFirstRate)
	for range churnSteps {
		s := churnTry(b, client, server, pid, serverPid,
			churnLoad{Server: server.String(), Rate: rate, InFlight: churnOpenInFlight, Seconds: churnSeconds, Deadline: churnDeadline})
		steps = append(steps, s)
		if s.failure() != "" {
			break
		}
		rate = math.Round(rate*churnGrowth/50) * 50
	}
	return []bench.Result{closedResult, churnResult(c, "open", steps)}
}

// churnTry runs a step of load and, when it fails, runs it once more: a
// step fails when two tries in a row do, so that a burst of other work on
// the machine during one try does not end the staircase. It returns the
// last try.
func churnTry(b *testing.B, client *netnstest.Host, server netip.AddrPort, pid, serverPid int, load churnLoad) measuredStep {
	b.Helper()
	s := churnRunStep(b, client, server, pid, serverPid, load)
	s.tries = 1
	if s.failure() != "" {
		s = churnRunStep(b, client, server, pid, serverPid, load)
		s.tries = 2
	}
	return s
}

// measuredStep is a step's outcome with the CPU time spent during it.
type measuredStep struct {
	load    churnLoad
	out     churnOutcome
	summary *bench.Summary
	wall    float64 // seconds the generator process ran
	tries   int     // 2 when the first try failed
	// CPU seconds over the step, all and user: the path manager's (nil:
	// no process), the generator's, the server's; the kernel's threads'
	// and the machine's busy time.
	manager, managerUser                                         *float64
	generator, generatorUser, server, serverUser, kthreads, busy float64
	machineSeconds                                               float64 // wall seconds × CPUs
}

// failure says why the step does not count toward the ceiling, "" when
// it does.
func (s *measuredStep) failure() string {
	switch {
	case s.out.Failed > 0:
		return fmt.Sprintf("%d failed (%s)", s.out.Failed, s.out.FirstError)
	case s.out.Missed > 0:
		return fmt.Sprintf("%d of %d missed", s.out.Missed, s.out.Started)
	case s.summary == nil:
		return "no connection meshed"
	case s.summary.P99 > churnP99Ms:
		return fmt.Sprintf("p99 %.1f ms", s.summary.P99)
	case s.load.Rate > 0 && s.rate() < churnKeptUp*s.load.Rate:
		return fmt.Sprintf("%.0f/s meshed", s.rate())
	}
	return ""
}

// rate is the step's connections meshed per second.
func (s *measuredStep) rate() float64 {
	if s.out.Seconds == 0 {
		return 0
	}
	return float64(s.out.Meshed) / s.out.Seconds
}

// step converts s for the report.
func (s *measuredStep) step() bench.ChurnStep {
	cs := bench.ChurnStep{Offered: s.load.Rate, Rate: math.Round(s.rate()),
		MeanInFlight: math.Round(s.out.MeanInFlight*10) / 10, Missed: s.out.Missed, Failed: s.out.Failed,
		GeneratorCPU:     share(s.generator, s.machineSeconds),
		GeneratorUserCPU: share(s.generatorUser, s.machineSeconds),
		ServerCPU:        share(s.server, s.machineSeconds),
		KernelThreadsCPU: share(s.kthreads, s.machineSeconds),
		MachineBusy:      share(s.busy, s.machineSeconds),
		Failure:          s.failure(), Tries: s.tries}
	if s.summary != nil {
		cs.P50, cs.P99 = s.summary.P50, s.summary.P99
	}
	if s.manager != nil && s.out.Meshed > 0 {
		per1000 := math.Round(*s.manager*1000/float64(s.out.Meshed)*1000) / 1000
		cs.CPUPer1000 = &per1000
		m, u := share(*s.manager, s.machineSeconds), share(*s.managerUser, s.machineSeconds)
		cs.ManagerCPU, cs.ManagerUserCPU = &m, &u
	}
	if s.out.Meshed > 0 {
		cs.MachinePer1000 = math.Round(s.busy*1000/float64(s.out.Meshed)*1000) / 1000
	}
	return cs
}

// share is part/whole rounded to the thousandth.
func share(part, whole float64) float64 {
	if whole == 0 {
		return 0
	}
	return math.Round(part/whole*1000) / 1000
}

// churnResult is the report's row of the steps of one load, run in
// order: its ceiling is the last step that passed, its next step the
// first that failed.
func churnResult(c subflowCase, load string, steps []measuredStep) bench.Result {
	r := bench.Result{Figure: "churn", Manager: c.manager, Mode: c.mode, Churn: &bench.Churn{Load: load}}
	for i := range steps {
		s := steps[i].step()
		r.Churn.Steps = append(r.Churn.Steps, s)
		switch {
		case s.Failure == "":
			r.Churn.Ceiling = &s
			r.ConnsPerSec = s.Rate
			r.CPUPer1000 = s.CPUPer1000
			r.Summary = steps[i].summary
		case r.Churn.Next == nil:
			r.Churn.Next = &s
		}
	}
	return r
}

// churnRunStep runs one generator process in client's namespace with
// load and measures the CPU time the path manager (process pid, 0: none),
// the server (serverPid) and the machine spent meanwhile.
func churnRunStep(b *testing.B, client *netnstest.Host, server netip.AddrPort, pid, serverPid int, load churnLoad) measuredStep {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	arg, err := json.Marshal(load)
	if err != nil {
		b.Fatal(err)
	}
	cmd := client.Command(exe)
	cmd.Env = append(os.Environ(), churnEnv+"="+string(arg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	managerBefore, managerUserBefore := cpuTimes(b, pid)
	serverBefore, serverUserBefore := cpuTimes(b, serverPid)
	busyBefore, kthreadsBefore := machineBusy(b), kernelThreadsCPU(b)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("churn generator (%+v): %v\n%s", load, err, stderr.String())
	}
	s := measuredStep{load: load, wall: time.Since(start).Seconds()}
	s.busy = machineBusy(b) - busyBefore
	s.kthreads = kernelThreadsDelta(kthreadsBefore, kernelThreadsCPU(b))
	serverAll, serverUser := cpuTimes(b, serverPid)
	s.server, s.serverUser = serverAll-serverBefore, serverUser-serverUserBefore
	if pid != 0 {
		all, user := cpuTimes(b, pid)
		m, u := all-managerBefore, user-managerUserBefore
		s.manager, s.managerUser = &m, &u
	}
	s.generatorUser = cmd.ProcessState.UserTime().Seconds()
	s.generator = s.generatorUser + cmd.ProcessState.SystemTime().Seconds()
	s.machineSeconds = s.wall * float64(bench.CPUs())
	if err := json.Unmarshal(stdout.Bytes(), &s.out); err != nil {
		b.Fatalf("churn generator output %q: %v", stdout.String(), err)
	}
	if len(s.out.Latencies) > 0 {
		sum := summarize(b, s.out.Latencies)
		s.summary = &sum
	}
	b.Logf("%+v: started %d meshed %d missed %d failed %d in %.2fs (%.0f/s), mean in flight %.1f, %s; "+
		"cpu s: manager %v (user %v) generator %.2f (user %.2f) server %.2f (user %.2f) kernel threads %.2f machine %.2f of %.2f; %s",
		load, s.out.Started, s.out.Meshed, s.out.Missed, s.out.Failed, s.out.Seconds, s.rate(), s.out.MeanInFlight,
		latencyText(s.summary), fmtPtr(s.manager), fmtPtr(s.managerUser), s.generator, s.generatorUser,
		s.server, s.serverUser, s.kthreads, s.busy, s.machineSeconds, s.failure())
	return s
}

// latencyText is "p50 X p99 Y" in milliseconds, "no samples" for nil.
func latencyText(s *bench.Summary) string {
	if s == nil {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.3f p99 %.3f", s.P50, s.P99)
}

// fmtPtr is *f with two decimals, "–" for nil.
func fmtPtr(f *float64) string {
	if f == nil {
		return "–"
	}
	return strconv.FormatFloat(*f, 'f', 2, 64)
}

// cpuTimes returns the user plus system and the user CPU seconds of
// process pid, zeros for pid 0.
func cpuTimes(b *testing.B, pid int) (all, user float64) {
	b.Helper()
	if pid == 0 {
		return 0, 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	user, system, err := bench.ParseStatTimes(string(data))
	if err != nil {
		b.Fatal(err)
	}
	return user + system, user
}

// machineBusy is the machine's busy CPU seconds so far, all CPUs.
func machineBusy(b *testing.B) float64 {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	busy, err := bench.ParseProcStatBusy(string(data))
	if err != nil {
		b.Fatal(err)
	}
	return busy
}

// kernelThreadsCPU returns the CPU seconds each of the kernel's threads
// (children of kthreadd: kworkers, ksoftirqd) has used so far, by pid.
func kernelThreadsCPU(b *testing.B) map[int]float64 {
	b.Helper()
	dir, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	cpu := map[int]float64{}
	for _, e := range dir {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone since the listing
		}
		ppid, err := bench.ParseStatParent(string(data))
		if err != nil || (ppid != 2 && pid != 2) {
			continue
		}
		user, system, err := bench.ParseStatTimes(string(data))
		if err != nil {
			b.Fatal(err)
		}
		cpu[pid] = user + system
	}
	return cpu
}

// kernelThreadsDelta is the CPU seconds the kernel's threads used between
// two kernelThreadsCPU readings: threads that exited meanwhile are not
// counted, threads that started are counted whole.
func kernelThreadsDelta(before, after map[int]float64) float64 {
	d := 0.0
	for pid, s := range after {
		d += max(0, s-before[pid])
	}
	return d
}

// churnMain is the generator process: it runs the load of its
// environment's churnEnv and writes the churnOutcome as JSON to stdout.
func churnMain(arg string) int {
	var load churnLoad
	if err := json.Unmarshal([]byte(arg), &load); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", churnEnv, err)
		return 1
	}
	out, err := generate(load)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// meshed is a connection the watcher saw get its extra subflow: the
// local port of its first subflow and when its ESTABLISHED was read.
type meshed struct {
	port        uint16
	established time.Time
	latency     time.Duration
}

// inbox is where the watcher leaves the meshed connections for one
// generator loop, waking it through an eventfd.
type inbox struct {
	efd   int
	mu    sync.Mutex
	ready []meshed
	err   error
}

// put hands ms (or err) to the loop and wakes it.
func (in *inbox) put(ms []meshed, err error) {
	in.mu.Lock()
	in.ready = append(in.ready, ms...)
	if err != nil {
		in.err = err
	}
	in.mu.Unlock()
	_, _ = unix.Write(in.efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

// take returns what the watcher left since the last call.
func (in *inbox) take() ([]meshed, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	got := in.ready
	in.ready = nil
	return got, in.err
}

// watchMesh reads the namespace's mptcp_pm events until ctx is done and
// hands every loop's inbox each connection that got its extra subflow;
// a loop ignores the ports that are not its own.
func watchMesh(ctx context.Context, sub *genl.Subscription, inboxes []*inbox) {
	type est struct {
		at   time.Time
		port uint16
	}
	established := map[uint32]est{}
	for {
		evs, err := sub.Receive(ctx)
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				for _, in := range inboxes {
					in.put(nil, fmt.Errorf("bench: receive events: %w", err))
				}
			}
			return
		}
		var got []meshed
		for _, ev := range evs {
			switch ev.Type {
			case genl.EventEstablished:
				established[ev.Token] = est{at: now, port: ev.Local.Port()}
			case genl.EventSubEstablished:
				if e, ok := established[ev.Token]; ok {
					got = append(got, meshed{port: e.port, established: e.at, latency: now.Sub(e.at)})
					delete(established, ev.Token)
				}
			case genl.EventClosed:
				delete(established, ev.Token)
			}
		}
		if len(got) > 0 {
			for _, in := range inboxes {
				in.put(got, nil)
			}
		}
	}
}

// genConn is one connection of a generator loop.
type genConn struct {
	fd         int
	port       uint16
	start      time.Time
	connecting bool
	done       bool
}

// generate runs load from the calling process's namespace with
// runtime.GOMAXPROCS loops, each with its share of the rate and of the
// connections in flight (genLoop), and one subscription to the
// namespace's events that tells them which connections are meshed.
func generate(load churnLoad) (churnOutcome, error) {
	var out churnOutcome
	server, err := netip.ParseAddrPort(load.Server)
	if err != nil || !server.Addr().Is4() {
		return out, fmt.Errorf("bench: churn server %q: not an IPv4 address and port", load.Server)
	}
	loops := runtime.GOMAXPROCS(0)
	if load.InFlight < loops || load.Seconds <= 0 || load.Deadline <= 0 || load.Rate < 0 {
		return out, fmt.Errorf("bench: churn load %+v: in_flight must be at least %d, seconds and deadline positive, rate not negative", load, loops)
	}
	cli, err := genl.New(&genl.Config{})
	if err != nil {
		return out, err
	}
	defer cli.Close()
	sub, err := cli.Subscribe()
	if err != nil {
		return out, err
	}
	defer sub.Close()
	if err := sub.SetReadBuffer(16 << 20); err != nil {
		return out, err
	}
	inboxes := make([]*inbox, loops)
	for i := range inboxes {
		efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			return out, fmt.Errorf("bench: eventfd: %w", err)
		}
		defer unix.Close(efd)
		inboxes[i] = &inbox{efd: efd}
	}
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		watchMesh(ctx, sub, inboxes)
	}()
	defer func() {
		cancel()
		<-watched
	}()

	part := load
	part.Rate /= float64(loops)
	part.InFlight /= loops
	sa := &unix.SockaddrInet4{Port: int(server.Port()), Addr: server.Addr().As4()}
	outs := make([]churnOutcome, loops)
	errs := make([]error, loops)
	var wg sync.WaitGroup
	for i := range loops {
		wg.Go(func() { outs[i], errs[i] = genLoop(part, sa, inboxes[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	out.Seconds = load.Seconds
	for _, o := range outs {
		out.Started += o.Started
		out.Meshed += o.Meshed
		out.Missed += o.Missed
		out.Failed += o.Failed
		if out.FirstError == "" {
			out.FirstError = o.FirstError
		}
		out.MeanInFlight += o.MeanInFlight
		out.Latencies = append(out.Latencies, o.Latencies...)
	}
	return out, nil
}

// genLoop is one generator loop: an epoll loop that starts non-blocking
// MPTCP connections to sa (on load's schedule, or whenever fewer than
// load.InFlight are in flight), writes a byte on each once connected,
// and resets each (SO_LINGER 0) once in reports it meshed, or once
// load.Deadline passed (missed).
func genLoop(load churnLoad, sa *unix.SockaddrInet4, in *inbox) (churnOutcome, error) {
	var out churnOutcome
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return out, fmt.Errorf("bench: epoll: %w", err)
	}
	defer unix.Close(ep)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, in.efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(in.efd)}); err != nil {
		return out, fmt.Errorf("bench: epoll eventfd: %w", err)
	}
	linger := &unix.Linger{Onoff: 1, Linger: 0}
	byFD := map[int]*genConn{}
	byPort := map[uint16]*genConn{}
	var queue []*genConn // in start order, for the deadlines
	inFlight := 0
	defer func() {
		for fd := range byFD {
			_ = unix.Close(fd)
		}
	}()
	finish := func(c *genConn) {
		if c.done {
			panic(fmt.Sprintf("bench: churn generator: connection on port %d finished twice", c.port))
		}
		c.done = true
		_ = unix.Close(c.fd)
		delete(byFD, c.fd)
		if byPort[c.port] == c {
			delete(byPort, c.port)
		}
		inFlight--
	}
	fail := func(c *genConn, err error) {
		out.Failed++
		if out.FirstError == "" {
			out.FirstError = err.Error()
		}
		finish(c)
	}
	open := func(now time.Time) error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_MPTCP)
		if err != nil {
			return fmt.Errorf("bench: socket: %w", err)
		}
		c := &genConn{fd: fd, start: now, connecting: true}
		out.Started++
		inFlight++
		byFD[fd] = c
		queue = append(queue, c)
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, linger); err != nil {
			return fmt.Errorf("bench: SO_LINGER: %w", err)
		}
		if err := unix.Connect(fd, sa); err != nil && !errors.Is(err, unix.EINPROGRESS) {
			fail(c, fmt.Errorf("connect: %w", err))
			return nil
		}
		local, err := unix.Getsockname(fd)
		if err != nil {
			return fmt.Errorf("bench: getsockname: %w", err)
		}
		c.port = uint16(local.(*unix.SockaddrInet4).Port)
		byPort[c.port] = c
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("bench: epoll add: %w", err)
		}
		return nil
	}

	events := make([]unix.EpollEvent, 256)
	drain := make([]byte, 8)
	oneByte := []byte{0}
	start := time.Now()
	stopStarting := start.Add(time.Duration(load.Seconds * float64(time.Second)))
	last, area := start, 0.0
	for {
		now := time.Now()
		area += float64(inFlight) * now.Sub(last).Seconds()
		last = now
		starting := now.Before(stopStarting)
		if starting {
			due := math.MaxInt
			if load.Rate > 0 {
				due = int(load.Rate*now.Sub(start).Seconds()) + 1
			}
			for out.Started < due && inFlight < load.InFlight {
				if err := open(now); err != nil {
					return out, err
				}
			}
		} else if inFlight == 0 {
			break
		}
		for len(queue) > 0 && (queue[0].done || now.Sub(queue[0].start) > load.Deadline) {
			if c := queue[0]; !c.done {
				out.Missed++
				finish(c)
			}
			queue[0] = nil
			queue = queue[1:]
		}
		// Sleep until the next start is due, the oldest connection's
		// deadline, or an event.
		wait := time.Duration(math.MaxInt64)
		if len(queue) > 0 {
			wait = load.Deadline - now.Sub(queue[0].start)
		}
		if starting && inFlight < load.InFlight {
			next := stopStarting.Sub(now)
			if load.Rate > 0 {
				next = min(next, time.Duration(float64(out.Started)/load.Rate*float64(time.Second))-now.Sub(start))
			} else {
				next = 0
			}
			wait = min(wait, next)
		}
		if wait == time.Duration(math.MaxInt64) {
			return out, fmt.Errorf("bench: churn generator: nothing to wait for with %d in flight, %d queued, %d open, starting %v",
				inFlight, len(queue), len(byFD), starting)
		}
		n, err := unix.EpollWait(ep, events, int(max(0, (wait+time.Millisecond-1)/time.Millisecond)))
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return out, fmt.Errorf("bench: epoll wait: %w", err)
		}
		for _, e := range events[:n] {
			if int(e.Fd) == in.efd {
				_, _ = unix.Read(in.efd, drain)
				got, err := in.take()
				if err != nil {
					return out, err
				}
				for _, m := range got {
					c := byPort[m.port]
					if c == nil || c.start.After(m.established) {
						continue // another loop's, or reset already
					}
					out.Meshed++
					out.Latencies = append(out.Latencies, m.latency)
					finish(c)
				}
				continue
			}
			c := byFD[int(e.Fd)]
			if c == nil || !c.connecting {
				continue
			}
			c.connecting = false
			if _, err := unix.Write(c.fd, oneByte); err != nil {
				fail(c, fmt.Errorf("write: %w", err))
			}
		}
	}
	if total := time.Since(start).Seconds(); total > 0 {
		out.MeanInFlight = area / total
	}
	return out, nil
}

func TestChurnStepFailure(t *testing.T) {
	t.Parallel()
	fast := &bench.Summary{Samples: 3000, P50: 0.2, P99: 3}
	open := churnLoad{Rate: 2000, InFlight: churnOpenInFlight, Seconds: 1.5, Deadline: churnDeadline}
	closed := churnLoad{InFlight: churnClosed, Seconds: 1.5, Deadline: churnDeadline}
	tests := []struct {
		name string
		step measuredStep
		want string
	}{
		{"open passes", measuredStep{load: open, out: churnOutcome{Started: 3000, Meshed: 3000, Seconds: 1.5}, summary: fast}, ""},
		{"closed passes at any rate", measuredStep{load: closed, out: churnOutcome{Started: 30, Meshed: 30, Seconds: 1.5}, summary: fast}, ""},
		{"failed", measuredStep{load: open, out: churnOutcome{Started: 3000, Meshed: 2999, Failed: 1, FirstError: "connect: connection refused", Seconds: 1.5}, summary: fast},
			"1 failed (connect: connection refused)"},
		{"missed", measuredStep{load: open, out: churnOutcome{Started: 3000, Meshed: 2998, Missed: 2, Seconds: 1.5}, summary: fast}, "2 of 3000 missed"},
		{"none meshed", measuredStep{load: open, out: churnOutcome{Seconds: 1.5}}, "no connection meshed"},
		{"slow p99", measuredStep{load: open, out: churnOutcome{Started: 3000, Meshed: 3000, Seconds: 1.5},
			summary: &bench.Summary{Samples: 3000, P50: 1, P99: 10.5}}, "p99 10.5 ms"},
		{"behind the schedule", measuredStep{load: open, out: churnOutcome{Started: 2700, Meshed: 2700, Seconds: 1.5}, summary: fast}, "1800/s meshed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.step.failure()); diff != "" {
				t.Errorf("failure (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChurnResult(t *testing.T) {
	t.Parallel()
	step := func(rate, p99 float64, missed int) measuredStep {
		meshed := int(rate * 1.5)
		return measuredStep{load: churnLoad{Rate: rate, InFlight: churnOpenInFlight, Seconds: 1.5, Deadline: churnDeadline},
			out:     churnOutcome{Started: meshed + missed, Meshed: meshed, Missed: missed, Seconds: 1.5, MeanInFlight: 2},
			summary: &bench.Summary{Samples: meshed, P50: 0.25, P99: p99}, wall: 1.6, tries: 1,
			manager: ptrTo(0.6), managerUser: ptrTo(0.2), generator: 0.64, generatorUser: 0.16, server: 0.32, kthreads: 0.16, busy: 1.6, machineSeconds: 3.2}
	}
	c := subflowCase{manager: "mptcpgod", mode: "userspace"}
	tests := []struct {
		name  string
		steps []measuredStep
		want  bench.Result
	}{
		{
			name:  "the last passing step before the first failing one",
			steps: []measuredStep{step(2000, 1, 0), step(2500, 12, 0)},
			want: bench.Result{Figure: "churn", Manager: "mptcpgod", Mode: "userspace", ConnsPerSec: 2000, CPUPer1000: ptrTo(0.2),
				Summary: &bench.Summary{Samples: 3000, P50: 0.25, P99: 1},
				Churn: &bench.Churn{Load: "open",
					Ceiling: &bench.ChurnStep{Offered: 2000, Rate: 2000, MeanInFlight: 2, P50: 0.25, P99: 1, CPUPer1000: ptrTo(0.2),
						MachinePer1000: 0.533, ManagerCPU: ptrTo(0.187), ManagerUserCPU: ptrTo(0.063), GeneratorCPU: 0.2,
						GeneratorUserCPU: 0.05, ServerCPU: 0.1, KernelThreadsCPU: 0.05, MachineBusy: 0.5, Tries: 1},
					Next: &bench.ChurnStep{Offered: 2500, Rate: 2500, MeanInFlight: 2, P50: 0.25, P99: 12, CPUPer1000: ptrTo(0.16),
						MachinePer1000: 0.427, ManagerCPU: ptrTo(0.187), ManagerUserCPU: ptrTo(0.063), GeneratorCPU: 0.2,
						GeneratorUserCPU: 0.05, ServerCPU: 0.1, KernelThreadsCPU: 0.05, MachineBusy: 0.5, Failure: "p99 12.0 ms", Tries: 1}}},
		},
		{
			name:  "none passed",
			steps: []measuredStep{step(2000, 1, 3)},
			want: bench.Result{Figure: "churn", Manager: "mptcpgod", Mode: "userspace",
				Churn: &bench.Churn{Load: "open",
					Next: &bench.ChurnStep{Offered: 2000, Rate: 2000, MeanInFlight: 2, Missed: 3, P50: 0.25, P99: 1, CPUPer1000: ptrTo(0.2),
						MachinePer1000: 0.533, ManagerCPU: ptrTo(0.187), ManagerUserCPU: ptrTo(0.063), GeneratorCPU: 0.2,
						GeneratorUserCPU: 0.05, ServerCPU: 0.1, KernelThreadsCPU: 0.05, MachineBusy: 0.5, Failure: "3 of 3003 missed", Tries: 1}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := churnResult(c, "open", tt.steps)
			got.Churn.Steps = nil // every step, checked through Ceiling and Next
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("churnResult (-want +got):\n%s", diff)
			}
		})
	}
}

func ptrTo(f float64) *float64 { return &f }

func TestKernelThreadsDelta(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		before, after map[int]float64
		want          float64
	}{
		{"grown", map[int]float64{10: 1, 11: 2}, map[int]float64{10: 1.5, 11: 2.25}, 0.75},
		{"exited thread not negative", map[int]float64{10: 1, 11: 5}, map[int]float64{10: 1.5}, 0.5},
		{"new thread counted whole", map[int]float64{10: 1}, map[int]float64{10: 1, 12: 0.25}, 0.25},
		{"reused pid with less time", map[int]float64{10: 3}, map[int]float64{10: 0.5}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, kernelThreadsDelta(tt.before, tt.after)); diff != "" {
				t.Errorf("kernelThreadsDelta (-want +got):\n%s", diff)
			}
		})
	}
}
