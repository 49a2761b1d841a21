//go:build linux

package soak_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"golang.org/x/sys/unix"
)

// writeChunk is the size of a join-case transfer's writes.
const writeChunk = 64 << 10

// joinPoint is when the join case opens a connection's extra subflow: a
// time after connect() returned or a count of bytes the connection has
// sent (the sender's mptcpi_bytes_sent), drawn uniformly in [lo, hi].
type joinPoint struct {
	bytes  bool
	lo, hi int64 // nanoseconds, or bytes
}

// parseJoinPoint parses "time:D", "time:LO-HI", "bytes:N" or
// "bytes:LO-HI" (durations as time.ParseDuration, byte counts as
// parseSize).
func parseJoinPoint(s string) (joinPoint, error) {
	const want = "want time:D, time:LO-HI, bytes:N or bytes:LO-HI"
	kind, val, ok := strings.Cut(s, ":")
	var p joinPoint
	var parse func(string) (int64, error)
	switch {
	case !ok:
		return p, fmt.Errorf("join point %q: %s", s, want)
	case kind == "time":
		parse = func(v string) (int64, error) {
			d, err := time.ParseDuration(v)
			return int64(d), err
		}
	case kind == "bytes":
		p.bytes, parse = true, parseSize
	default:
		return p, fmt.Errorf("join point %q: unknown kind %q: %s", s, kind, want)
	}
	lo, hi, isRange := strings.Cut(val, "-")
	var err error
	if p.lo, err = parse(lo); err != nil {
		return p, fmt.Errorf("join point %q: %w", s, err)
	}
	p.hi = p.lo
	if isRange {
		if p.hi, err = parse(hi); err != nil {
			return p, fmt.Errorf("join point %q: %w", s, err)
		}
	}
	if p.lo < 0 || p.hi < p.lo {
		return p, fmt.Errorf("join point %q: want 0 <= LO <= HI", s)
	}
	return p, nil
}

// draw returns a point in [lo, hi].
func (p joinPoint) draw(rng *rand.Rand) int64 { return p.lo + rng.Int64N(p.hi-p.lo+1) }

// parseSize parses a byte count with an optional KiB, MiB or GiB suffix.
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if t, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = t, u.mult
			break
		}
	}
	var n int64
	if _, err := fmt.Sscanf(num, "%d", &n); err != nil || fmt.Sprint(n) != num || n < 0 {
		return 0, fmt.Errorf("byte count %q: want a non-negative integer with an optional KiB, MiB or GiB suffix", s)
	}
	return n * mult, nil
}

// joinConfig is the join case's setting, from the -soak.corrupt flags.
type joinConfig struct {
	at       joinPoint
	point    string // at, as given
	receiver bool   // the receiver (the server) opens the subflow or announces its address
	kernelPM bool   // the in-kernel path manager joins, told by an endpoint added at the moment
	workers  int
	size     int
	csum     bool
	flood    bool   // short connections are flooded alongside
	out      string // file the records are appended to, if any
}

// pmName and sideName name the setting in records and logs.
func (c *joinConfig) pmName() string {
	if c.kernelPM {
		return "kernel"
	}
	return "userspace"
}

func (c *joinConfig) sideName() string {
	if c.receiver {
		return "receiver"
	}
	return "sender"
}

// joinSample is the sender's side of a connection at one moment: the
// MPTCP-level counters and the initial subflow's TCP state.
type joinSample struct {
	Age      time.Duration `json:"age_ns"`   // since connect() returned
	Written  int64         `json:"written"`  // bytes write() had taken
	Sent     int64         `json:"sent"`     // mptcpi_bytes_sent
	Acked    int64         `json:"acked"`    // mptcpi_bytes_acked
	Subflows int           `json:"subflows"` // all subflows, the initial one included
	Cwnd     uint32        `json:"cwnd"`     // the initial subflow's snd_cwnd (segments)
	Ssthresh uint32        `json:"ssthresh"` // its snd_ssthresh; infiniteSsthresh during its first slow start
	CAState  uint8         `json:"ca_state"` // its congestion-avoidance state (0 open, 1 disorder, 2 CWR, 3 recovery, 4 loss)
	Unacked  uint32        `json:"unacked"`  // its segments in flight
	SndWnd   uint32        `json:"snd_wnd"`  // the peer's window on it, bytes
	RTT      time.Duration `json:"rtt_ns"`
	Retrans  uint32        `json:"retrans"` // its total retransmissions
}

// infiniteSsthresh is TCP_INFINITE_SSTHRESH: a subflow still in its first
// slow start (cubic sets a finite one at the first loss, BBR when it
// leaves STARTUP).
const infiniteSsthresh = 0x7fffffff

// stateWindow is how long the stream is watched before its join at
// least (or since connect() returned): one whose data-level
// acknowledgement did not advance in it is stalled.
const stateWindow = 5 * time.Millisecond

// Stream states at the join, from the data-level acknowledgements seen
// before it and the initial subflow's TCP state.
const (
	stateOpening   = "opening"    // nothing acknowledged yet at the data level
	stateStalled   = "stalled"    // no data acknowledged for stateWindow or more
	stateSlowStart = "slow-start" // moving, the initial subflow in its first slow start
	stateSteady    = "steady"     // moving, the initial subflow past its first slow start
)

// badBlock is a range of a transfer the server received wrong.
type badBlock struct {
	Start int `json:"start"`
	End   int `json:"end"`
	// From is where in the sent stream the received bytes come from; -1
	// from nowhere, too short to trace, or zeros.
	From int `json:"from"`
}

// joinRecord is one transfer of the join case, as -soak.corrupt.out
// writes it (one JSON object a line).
type joinRecord struct {
	Time      time.Time  `json:"time"`
	PM        string     `json:"pm"`
	Side      string     `json:"side"`
	Point     string     `json:"point"`
	Csum      bool       `json:"csum"`
	Flood     bool       `json:"flood,omitempty"` // short connections flooded alongside
	Size      int        `json:"size"`
	Workers   int        `json:"workers"`
	Seed      uint64     `json:"seed"`
	Requested bool       `json:"requested"` // the join was asked for before the writes ended
	Tries     int        `json:"tries,omitempty"`
	JoinErr   string     `json:"join_err,omitempty"`
	At        joinSample `json:"at"` // when the join was asked for
	// AckIdle is how long the data-level acknowledgement (mptcpi_bytes_acked)
	// had not advanced when the join was asked for, as far as the samples
	// since Watched before it show.
	AckIdle time.Duration `json:"ack_idle_ns"`
	Watched time.Duration `json:"watched_ns"`
	Joined  bool          `json:"joined"`
	Corrupt bool          `json:"corrupt"`
	Failed  string        `json:"failed,omitempty"`
	Blocks  []badBlock    `json:"blocks,omitempty"`
	Load1   float64       `json:"load1"` // the 1-minute load average when the transfer ended
}

// counted reports whether the record is a join of the tables: asked for,
// accepted, the subflow up when the writes ended, the transfer verified.
func (r *joinRecord) counted() bool {
	return r.Requested && r.JoinErr == "" && r.Joined && r.Failed == ""
}

// state is the stream's state when the join was asked for.
func (r *joinRecord) state() string {
	switch {
	case r.At.Acked == 0:
		return stateOpening
	case r.AckIdle >= stateWindow:
		return stateStalled
	case r.At.Ssthresh >= infiniteSsthresh:
		return stateSlowStart
	default:
		return stateSteady
	}
}

// joinEnv is a running join case.
type joinEnv struct {
	cfg  joinConfig
	tb   *netnstest.Testbed
	srv  netip.AddrPort // the server's listener: the initial subflow's destination
	k    *keeper
	pm   *genl.Client   // in the namespace that joins (userspace) or gets the endpoint (kernel)
	from genl.Endpoint  // the joining side's address on link 1, or the endpoint to add
	to   netip.AddrPort // the extra subflow's destination (userspace PM)

	mu      sync.Mutex
	records []joinRecord
	out     *os.File
}

// flow is one transfer of the join case.
type flow struct {
	s         *stream
	seed      uint64
	connected time.Time
	written   atomic.Int64
	done      chan struct{} // closed when the writes have ended
}

// sample reads the flow's state now.
func (f *flow) sample() joinSample {
	j := joinSample{Age: time.Since(f.connected), Written: f.written.Load()}
	info, subs, err := sockdiag.SockInfo(f.s.conn)
	if err != nil {
		return j
	}
	j.Sent, j.Acked, j.Subflows = int64(info.BytesSent), int64(info.BytesAcked), info.Subflows()
	if len(subs) > 0 {
		s := subs[0]
		j.Cwnd, j.Ssthresh, j.CAState, j.Unacked, j.SndWnd, j.RTT, j.Retrans = s.SndCwnd, s.SndSsthresh, s.CAState, s.Unacked, s.SndWnd, s.RTT, s.TotalRetrans
	}
	return j
}

// ended reports whether the flow's writes have ended.
func (f *flow) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// setupJoin prepares tb for the join case: path managers, limits, the
// client's announced port for joins from the server, and the genl client
// of the side that joins.
func setupJoin(t *testing.T, tb *netnstest.Testbed, cfg joinConfig, srv netip.AddrPort, k *keeper) *joinEnv {
	t.Helper()
	e := &joinEnv{cfg: cfg, tb: tb, srv: srv, k: k}
	l1 := tb.Links[1]
	joiner, peer, ifname := tb.Client, tb.Server, l1.ClientIf
	from := genl.Endpoint{ID: 1, Addr: l1.Client4}
	e.to = srv
	if cfg.receiver {
		joiner, peer, ifname = tb.Server, tb.Client, l1.ServerIf
		from.Addr = l1.Server4
	}
	ifi, err := interfaceIndex(joiner, ifname)
	if err != nil {
		t.Fatal(err)
	}
	from.IfIndex = ifi
	switch {
	case cfg.kernelPM && cfg.receiver:
		// The server announces its link-1 address; the client's in-kernel
		// path manager joins it.
		from.Flags = genl.FlagSignal
		peer.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	case cfg.kernelPM:
		from.Flags = genl.FlagSubflow
		joiner.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	case cfg.receiver:
		// The server opens a subflow to the client's link-1 address. A
		// join to a port other than the connection's must go to one the
		// client announced: a signal endpoint with a port makes the
		// client's in-kernel path manager listen on it and announce it to
		// every connection; it accepts the server's joins there.
		joiner.SetPathManager("userspace")
		peer.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
		e.to = netip.AddrPortFrom(l1.Client4, clientJoinPort)
		peer.MustExec("ip", "mptcp", "endpoint", "add", l1.Client4.String(), "dev", l1.ClientIf, "port", fmt.Sprint(clientJoinPort), "signal")
	default:
		joiner.SetPathManager("userspace")
	}
	e.from = from
	if e.pm, err = genl.New(&genl.Config{NetNS: joiner.NetNS()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.pm.Close() })
	if !cfg.kernelPM {
		// A userspace path manager listens to the events, as mptcpgod does.
		sub, err := e.pm.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				if _, err := sub.Receive(ctx); err != nil && !errors.Is(err, genl.ErrEventsLost) {
					return
				}
			}
		})
		t.Cleanup(func() { cancel(); _ = sub.Close(); wg.Wait() })
	}
	if cfg.out != "" {
		if e.out, err = os.OpenFile(cfg.out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			t.Fatalf("soak: -soak.corrupt.out: %v", err)
		}
		t.Cleanup(func() { _ = e.out.Close() })
	}
	return e
}

// clientJoinPort is the port of the client's signal endpoint, where the
// server's joins go (receiver side, userspace PM).
const clientJoinPort = 7000

// interfaceIndex returns the index of h's interface name.
func interfaceIndex(h *netnstest.Host, name string) (int32, error) {
	var idx int32
	err := h.Do(func() error {
		ifi, err := net.InterfaceByName(name)
		if err == nil {
			idx = int32(ifi.Index)
		}
		return err
	})
	return idx, err
}

// run runs the join case until ctx is done.
func (e *joinEnv) run(ctx context.Context) {
	var seeds atomic.Uint64
	var wg sync.WaitGroup
	if e.cfg.kernelPM {
		rng := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
		for !ended(ctx) {
			e.wave(ctx, &seeds, rng)
		}
		return
	}
	for w := range e.cfg.workers {
		rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
		wg.Go(func() {
			for !ended(ctx) {
				e.one(ctx, seeds.Add(1), rng)
			}
		})
	}
	wg.Wait()
}

// newRecord starts the record of a transfer.
func (e *joinEnv) newRecord(seed uint64) joinRecord {
	return joinRecord{PM: e.cfg.pmName(), Side: e.cfg.sideName(), Point: e.cfg.point, Csum: e.cfg.csum, Flood: e.cfg.flood,
		Size: e.cfg.size, Workers: e.cfg.workers, Seed: seed}
}

// open dials a flow; nil (and the record of the failure, unless ctx
// ended) when the dial fails.
func (e *joinEnv) open(ctx context.Context, seed uint64) *flow {
	s, err := openStream(ctx, e.tb.Client, e.srv, seed, writeChunk)
	if err != nil {
		if !ended(ctx) {
			r := e.newRecord(seed)
			r.Failed = err.Error()
			e.record(r)
		}
		return nil
	}
	return &flow{s: s, seed: seed, connected: time.Now(), done: make(chan struct{})}
}

// transfer writes the flow's bytes, then gets and records the server's
// verdict in r.
func (e *joinEnv) transfer(f *flow, r *joinRecord) {
	var err error
	for sent := 0; sent < e.cfg.size && err == nil; sent += writeChunk {
		err = f.s.send()
		f.written.Store(int64(f.s.sent))
	}
	r.Joined = f.sample().Subflows > 1
	close(f.done)
	if err != nil {
		_ = f.s.conn.Close()
		r.Failed = fmt.Sprintf("write after %d bytes: %v", f.s.sent, err)
		return
	}
	err = f.s.finish()
	switch {
	case errors.Is(err, errCorrupt):
		r.Corrupt = true
		r.Blocks = e.k.blocks(f.seed, f.s.local, e.cfg.size, writeChunk)
	case err != nil:
		r.Failed = err.Error()
	}
	e.k.forget(f.s.local)
}

// one runs one transfer whose extra subflow the userspace path manager
// opens at the join point.
func (e *joinEnv) one(ctx context.Context, seed uint64, rng *rand.Rand) {
	f := e.open(ctx, seed)
	if f == nil {
		return
	}
	r := e.newRecord(seed)
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		e.joinUserspace(f, &r, rng)
	}()
	var verdict joinRecord
	e.transfer(f, &verdict)
	<-joined
	r.Joined, r.Corrupt, r.Failed, r.Blocks = verdict.Joined, verdict.Corrupt, verdict.Failed, verdict.Blocks
	e.record(r)
}

// joinUserspace waits for the flow's join point and asks the userspace
// path manager of the joining side for the subflow, again while the
// connection is not yet fully established (ENOTCONN), for up to
// enotconnWait.
func (e *joinEnv) joinUserspace(f *flow, r *joinRecord, rng *rand.Rand) {
	token, ok := e.token(f)
	if !ok {
		return
	}
	ws, ok := e.await([]*flow{f}, e.cfg.at.draw(rng))
	if !ok {
		return
	}
	r.Requested = true
	giveUp := time.Now().Add(enotconnWait)
	for {
		ws[0].fill(r)
		r.Tries++
		err := e.pm.CreateSubflow(token, e.from, e.to)
		if err == nil {
			return
		}
		if !errors.Is(err, unix.ENOTCONN) || time.Now().After(giveUp) || f.ended() {
			r.JoinErr = err.Error()
			return
		}
		time.Sleep(pollEvery)
		ws[0].observe(time.Now())
	}
}

// Polling of the join case: pollEvery between two samples of a byte join
// point or two tries of a join refused with ENOTCONN, for up to
// enotconnWait.
const (
	pollEvery    = 250 * time.Microsecond
	enotconnWait = 200 * time.Millisecond
)

// token returns the token of the flow's connection on the joining side:
// the client's, or the server's once it has accepted the connection.
func (e *joinEnv) token(f *flow) (uint32, bool) {
	c := f.s.conn
	if e.cfg.receiver {
		select {
		case c = <-e.k.accepted(f.s.local):
		case <-f.done:
			return 0, false
		}
	}
	info, _, err := sockdiag.SockInfo(c)
	return info.Token, err == nil
}

// watch follows a flow's data-level acknowledgement before its join.
type watch struct {
	f     *flow
	since time.Time  // first sample
	moved time.Time  // when the acknowledgement was first seen at its current value
	last  joinSample // latest sample
}

// observe samples the flow at now.
func (w *watch) observe(now time.Time) {
	s := w.f.sample()
	if w.since.IsZero() {
		w.since, w.moved = now, now
	} else if s.Acked != w.last.Acked {
		w.moved = now
	}
	w.last = s
}

// fill sets the join's sample and the acknowledgement's idle time in r.
func (w *watch) fill(r *joinRecord) {
	r.At = w.last
	end := w.f.connected.Add(w.last.Age)
	r.AckIdle, r.Watched = end.Sub(w.moved), end.Sub(w.since)
}

// await waits for the join point p, counted from the earliest connect()
// of flows (time) or reached when the first of them has sent p bytes,
// watching each flow for stateWindow before it at least (or since
// connect()); false if every flow's writes ended first.
func (e *joinEnv) await(flows []*flow, p int64) ([]*watch, bool) {
	ws := make([]*watch, len(flows))
	origin := flows[0].connected
	for i, f := range flows {
		ws[i] = &watch{f: f, since: f.connected, moved: f.connected}
		if f.connected.Before(origin) {
			origin = f.connected
		}
	}
	allEnded := func() bool {
		for _, f := range flows {
			if !f.ended() {
				return false
			}
		}
		return true
	}
	reached := func(now, first time.Time) bool {
		if e.cfg.at.bytes {
			return slices.ContainsFunc(ws, func(w *watch) bool { return w.last.Sent >= p })
		}
		return !now.Before(origin.Add(time.Duration(p))) && (now.Sub(first) >= stateWindow || first.Equal(origin))
	}
	first := origin
	if !e.cfg.at.bytes {
		if start := origin.Add(time.Duration(p) - stateWindow); start.After(origin) {
			time.Sleep(time.Until(start))
			first = time.Now()
			for _, w := range ws {
				w.since, w.moved = time.Time{}, time.Time{}
			}
		}
	}
	for {
		now := time.Now()
		for _, w := range ws {
			w.observe(now)
		}
		if reached(now, first) {
			return ws, !allEnded()
		}
		if allEnded() {
			return ws, false
		}
		time.Sleep(pollEvery)
	}
}

// wave runs one wave of the in-kernel path manager's join case: workers
// transfers start together; at the join point the endpoint is added,
// which joins every live connection of the wave at once; once all have
// ended, it is deleted again, so that the next wave starts without it.
func (e *joinEnv) wave(ctx context.Context, seeds *atomic.Uint64, rng *rand.Rand) {
	flows := make([]*flow, e.cfg.workers)
	verdicts := make([]joinRecord, e.cfg.workers)
	var dialed, finished sync.WaitGroup
	for i := range flows {
		dialed.Add(1)
		finished.Go(func() {
			flows[i] = e.open(ctx, seeds.Add(1))
			dialed.Done()
			if flows[i] != nil {
				e.transfer(flows[i], &verdicts[i])
			}
		})
	}
	dialed.Wait()
	var live []*flow
	var index []int // of each live flow in flows
	for i, f := range flows {
		if f != nil {
			live, index = append(live, f), append(index, i)
		}
	}
	if len(live) == 0 {
		finished.Wait()
		return
	}
	ws, ok := e.await(live, e.cfg.at.draw(rng))
	requested := make([]bool, len(live))
	var addErr error
	if ok {
		for i, f := range live {
			requested[i] = !f.ended()
		}
		addErr = e.pm.AddEndpoint(e.from)
	}
	finished.Wait()
	if ok && addErr == nil {
		if err := e.pm.DelEndpoint(e.from.ID); err != nil {
			addErr = fmt.Errorf("delete the endpoint: %w", err)
		}
	}
	for i, f := range live {
		r := e.newRecord(f.seed)
		r.Requested = requested[i]
		ws[i].fill(&r)
		if addErr != nil {
			r.JoinErr = addErr.Error()
		}
		v := verdicts[index[i]]
		r.Joined, r.Corrupt, r.Failed, r.Blocks = v.Joined, v.Corrupt, v.Failed, v.Blocks
		e.record(r)
	}
}

// record keeps r and appends it to the output file.
func (e *joinEnv) record(r joinRecord) {
	r.Time = time.Now()
	r.Load1 = loadavg()[0]
	e.mu.Lock()
	defer e.mu.Unlock()
	e.records = append(e.records, r)
	if e.out != nil {
		b, _ := json.Marshal(r)
		_, _ = e.out.Write(append(b, '\n'))
	}
}
