package pm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// fakeNS is a fake network namespace shared by the fake Kernels: it
// records the commands in the order the kernel got them and keeps the
// endpoints like the kernel does.
type fakeNS struct {
	mu        sync.Mutex
	calls     []string
	endpoints []genl.Endpoint
	limits    genl.Limits
	dumps     int
	// addrs are the connections' local address lists; kernelPM lists
	// the tokens the in-kernel path manager runs.
	addrs    map[uint32][]genl.Endpoint
	kernelPM map[uint32]bool
	// fail returns the error for a call, or nil.
	fail func(call string) error
	// gate blocks the calls of a token until it is closed.
	gate    map[uint32]chan struct{}
	opened  int
	closed  int
	changed chan struct{}
}

func newFakeNS() *fakeNS {
	return &fakeNS{
		limits:   genl.Limits{AddAddrAccepted: 0, Subflows: 2},
		addrs:    make(map[uint32][]genl.Endpoint),
		kernelPM: make(map[uint32]bool),
		gate:     make(map[uint32]chan struct{}),
		changed:  make(chan struct{}, 1),
	}
}

func (ns *fakeNS) kernel() (Kernel, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.opened++
	return &fakeKernel{ns: ns}, nil
}

// Calls returns the recorded calls.
func (ns *fakeNS) Calls() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return slices.Clone(ns.calls)
}

// record appends call and returns its scripted error, after waiting at the
// token's gate.
func (ns *fakeNS) record(token uint32, call string) error {
	ns.mu.Lock()
	ns.calls = append(ns.calls, call)
	g := ns.gate[token]
	fail := ns.fail
	ns.mu.Unlock()
	select {
	case ns.changed <- struct{}{}:
	default:
	}
	if g != nil {
		<-g
	}
	if fail != nil {
		return fail(call)
	}
	return nil
}

func kerr(op string, errno unix.Errno, msg string) error {
	return &genl.Error{Op: op, Err: errno, Message: msg}
}

type fakeKernel struct {
	ns *fakeNS
}

func flagStr(f genl.EndpointFlags) string { return strings.ReplaceAll(f.String(), " ", ",") }

func (k *fakeKernel) Endpoints() ([]genl.Endpoint, error) {
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	k.ns.dumps++
	return slices.Clone(k.ns.endpoints), nil
}

func (k *fakeKernel) Limits() (genl.Limits, error) {
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	return k.ns.limits, nil
}

func epStr(ep genl.Endpoint) string {
	a := ep.Addr.String()
	if ep.Port != 0 {
		a = netip.AddrPortFrom(ep.Addr, ep.Port).String()
	}
	return fmt.Sprintf("id=%d %s flags=%s if=%d", ep.ID, a, flagStr(ep.Flags), ep.IfIndex)
}

func (k *fakeKernel) AddEndpoint(ep genl.Endpoint) error {
	if err := k.ns.record(0, "add_endpoint "+epStr(ep)); err != nil {
		return err
	}
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	if len(k.ns.endpoints) >= genl.MaxLimit {
		return kerr("add endpoint", unix.ERANGE, "too many addresses or duplicate one: -34")
	}
	for i, o := range k.ns.endpoints {
		switch {
		case ep.ID != 0 && o.ID == ep.ID:
			return kerr("add endpoint", unix.EBUSY, "too many addresses or duplicate one: -16")
		case o.Addr != ep.Addr || o.Port != ep.Port:
		case o.Flags&genl.FlagImplicit != 0 && ep.ID == 0:
			// As the kernel does: an add without an id replaces an
			// implicit endpoint of the address, keeping its id.
			ep.ID = o.ID
			k.ns.endpoints[i] = ep
			return nil
		default:
			return kerr("add endpoint", unix.EEXIST, "too many addresses or duplicate one: -17")
		}
	}
	if ep.ID == 0 {
		for id := uint8(1); ep.ID == 0; id++ {
			if !slices.ContainsFunc(k.ns.endpoints, func(o genl.Endpoint) bool { return o.ID == id }) {
				ep.ID = id
			}
		}
	}
	k.ns.endpoints = append(k.ns.endpoints, ep)
	return nil
}

func (k *fakeKernel) DelEndpoint(id uint8) error {
	if err := k.ns.record(0, fmt.Sprintf("del_endpoint id=%d", id)); err != nil {
		return err
	}
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	i := slices.IndexFunc(k.ns.endpoints, func(o genl.Endpoint) bool { return o.ID == id })
	if i < 0 {
		return kerr("delete endpoint", unix.EINVAL, "address not found")
	}
	k.ns.endpoints = slices.Delete(k.ns.endpoints, i, i+1)
	return nil
}

func (k *fakeKernel) SetEndpointFlags(ep genl.Endpoint) error {
	if err := k.ns.record(0, "set_endpoint_flags "+epStr(ep)); err != nil {
		return err
	}
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	for i, o := range k.ns.endpoints {
		if o.Addr == ep.Addr && o.Port == ep.Port {
			k.ns.endpoints[i].Flags = o.Flags&^changeableFlags | ep.Flags&changeableFlags
			return nil
		}
	}
	return kerr("set endpoint flags", unix.EINVAL, "address not found")
}

func optStr(p *uint32) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func (k *fakeKernel) SetLimits(u genl.LimitsUpdate) error {
	if err := k.ns.record(0, fmt.Sprintf("set_limits subflows=%s add_addr_accepted=%s",
		optStr(u.Subflows), optStr(u.AddAddrAccepted))); err != nil {
		return err
	}
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	if u.Subflows != nil {
		k.ns.limits.Subflows = *u.Subflows
	}
	if u.AddAddrAccepted != nil {
		k.ns.limits.AddAddrAccepted = *u.AddAddrAccepted
	}
	return nil
}

func (k *fakeKernel) userspace(token uint32, op string) error {
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	if k.ns.kernelPM[token] {
		return kerr(op, unix.EINVAL, "userspace PM not selected")
	}
	return nil
}

func (k *fakeKernel) Announce(token uint32, ep genl.Endpoint) error {
	if err := k.ns.record(token, fmt.Sprintf("announce %08x %s", token, epStr(ep))); err != nil {
		return err
	}
	if err := k.userspace(token, "announce"); err != nil {
		return err
	}
	k.ns.learn(token, ep)
	return nil
}

// learn adds ep to the local address list of the connection token, as the
// kernel does for a subflow created or an address announced with an id.
func (ns *fakeNS) learn(token uint32, ep genl.Endpoint) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ep.ID == 0 || slices.ContainsFunc(ns.addrs[token], func(x genl.Endpoint) bool { return x.ID == ep.ID }) {
		return
	}
	ns.addrs[token] = append(ns.addrs[token], ep)
}

func (k *fakeKernel) Remove(token uint32, id uint8) error {
	if err := k.ns.record(token, fmt.Sprintf("remove %08x id=%d", token, id)); err != nil {
		return err
	}
	if err := k.userspace(token, "remove"); err != nil {
		return err
	}
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	k.ns.addrs[token] = slices.DeleteFunc(k.ns.addrs[token], func(x genl.Endpoint) bool { return x.ID == id })
	return nil
}

func (k *fakeKernel) CreateSubflow(token uint32, local genl.Endpoint, remote netip.AddrPort) error {
	if err := k.ns.record(token, fmt.Sprintf("create %08x %s -> %s flags=%s if=%d id=%d",
		token, local.Addr, remote, flagStr(local.Flags), local.IfIndex, local.ID)); err != nil {
		return err
	}
	if err := k.userspace(token, "create subflow"); err != nil {
		return err
	}
	k.ns.learn(token, genl.Endpoint{ID: local.ID, Addr: local.Addr})
	return nil
}

func (k *fakeKernel) DestroySubflow(token uint32, local, remote netip.AddrPort) error {
	if err := k.ns.record(token, fmt.Sprintf("destroy %08x %s -> %s", token, local, remote)); err != nil {
		return err
	}
	return k.userspace(token, "destroy subflow")
}

func (k *fakeKernel) SetSubflowBackup(token uint32, local, remote netip.AddrPort, backup bool) error {
	if err := k.ns.record(token, fmt.Sprintf("backup %08x %s -> %s %v", token, local, remote, backup)); err != nil {
		return err
	}
	return k.userspace(token, "set subflow backup")
}

func (k *fakeKernel) ConnectionAddrs(token uint32) ([]genl.Endpoint, error) {
	if err := k.ns.record(token, fmt.Sprintf("addrs %08x", token)); err != nil {
		return nil, err
	}
	if err := k.userspace(token, "dump connection addresses"); err != nil {
		return nil, err
	}
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	return slices.Clone(k.ns.addrs[token]), nil
}

func (k *fakeKernel) Close() error {
	k.ns.mu.Lock()
	defer k.ns.mu.Unlock()
	k.ns.closed++
	return nil
}

// fakeEvents is an EventSource fed by the test.
type fakeEvents struct {
	ch     chan fakeBatch
	mu     sync.Mutex
	pushed int
}

type fakeBatch struct {
	evs []genl.Event
	err error
}

func newFakeEvents() *fakeEvents { return &fakeEvents{ch: make(chan fakeBatch, 16)} }

func (f *fakeEvents) Receive(ctx context.Context) ([]genl.Event, error) {
	select {
	case b := <-f.ch:
		return b.evs, b.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeEvents) push(b fakeBatch) {
	f.mu.Lock()
	f.pushed++
	f.mu.Unlock()
	f.ch <- b
}

func (f *fakeEvents) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pushed
}

// fakeLister is a ConnLister returning what the test set.
type fakeLister struct {
	mu    sync.Mutex
	conns []ExistingConn
	calls int
}

func (f *fakeLister) ListConns() ([]ExistingConn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return slices.Clone(f.conns), nil
}

// count returns the number of listings.
func (f *fakeLister) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeLister) set(cs ...ExistingConn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = cs
}

// fakeClock is a manual clock whose timers fire on Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t.c, func() {}
	}
	c.timers = append(c.timers, t)
	return t.c, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		t.stopped = true
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.c <- c.now
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness runs an Engine against the fakes. A test that uses one runs in
// a synctest bubble (synctest.Test), where settle waits for the engine to
// be idle rather than polling it.
type harness struct {
	t      *testing.T
	e      *Engine
	ns     *fakeNS
	ev     *fakeEvents
	lister *fakeLister
	clock  *fakeClock
	logs   *logBuffer
	run    *runtest.Running
	// seen is how many calls the test has looked at.
	seen int
}

type harnessOpt func(*Config)

func withWorkers(n int) harnessOpt { return func(c *Config) { c.Workers = n } }

func withPolicy(p policy.Policy) harnessOpt { return func(c *Config) { c.Policy = p } }

func withWithdraw() harnessOpt { return func(c *Config) { c.WithdrawOnExit = true } }

func defaultPolicy(t testing.TB) policy.Policy {
	t.Helper()
	fm, err := fullmesh.New(joinAtOnce())
	if err != nil {
		t.Fatal(err)
	}
	return policy.Compose(fm)
}

func newHarness(t *testing.T, mode policy.Mode, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{
		t: t, ns: newFakeNS(), ev: newFakeEvents(), lister: &fakeLister{}, clock: newFakeClock(),
		logs: &logBuffer{},
	}
	cfg := Config{
		Mode:      mode,
		Policy:    defaultPolicy(t),
		NewKernel: h.ns.kernel,
		Workers:   1,
		Events:    h.ev,
		Conns:     h.lister,
		Logger:    slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       h.clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.after = h.clock.After
	e.jitter = func(d time.Duration) time.Duration { return d }
	h.e = e
	return h
}

// start runs the engine; the test's cleanup stops it.
func (h *harness) start() { h.run = runtest.Start(h.t, "engine", h.e.Run) }

// stop stops the engine and returns Run's error.
func (h *harness) stop() error { return h.run.Stop() }

// ready waits until the engine is ready, and fails the test if Run
// returns first.
func (h *harness) ready() {
	h.t.Helper()
	h.run.WaitReady(h.t, h.e.Ready())
}

// events feeds one batch of events.
func (h *harness) events(evs ...genl.Event) { h.ev.push(fakeBatch{evs: evs}) }

// lost feeds an events-lost error.
func (h *harness) lost() {
	h.ev.push(fakeBatch{err: fmt.Errorf("%w: %w", genl.ErrEventsLost, unix.ENOBUFS)})
}

// settle waits until every goroutine of the test's bubble is blocked
// (synctest.Wait): the engine processed every batch fed, and what it
// queued either ran or waits on something only the test can release (a
// gate, the fake clock). It returns the status then, and fails the test
// unless the engine has no command queued or in flight and no resync or
// repair listing running.
func (h *harness) settle() engineStatus {
	h.t.Helper()
	synctest.Wait()
	st := statusOf(h.t, h.e)
	processed := int(st.Counters.EventBatches + st.Counters.Resyncs)
	if processed != h.ev.count() || st.InFlight != 0 || st.Queued != 0 || st.Resyncing || st.RepairListing {
		h.t.Fatalf("engine did not settle: processed %d of %d batches, %d in flight, %d queued, resyncing %v, repair listing %v",
			processed, h.ev.count(), st.InFlight, st.Queued, st.Resyncing, st.RepairListing)
	}
	return st
}

// engineStatus is the engine's Status with every connection.
type engineStatus struct {
	pmstate.Status
	Conns []pmstate.Conn
}

// statusOf returns e's Status and every connection, page by page, and
// fails the test unless the Status counts what the connections show.
func statusOf(t testing.TB, e *Engine) engineStatus {
	t.Helper()
	st, err := e.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var conns []pmstate.Conn
	for q := (pmstate.ConnQuery{Limit: 7}); ; {
		p, err := e.Conns(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, p.Conns...)
		if p.Next == 0 {
			break
		}
		q.From = p.Next
	}
	checkTotals(t, st, conns)
	return engineStatus{Status: st, Conns: conns}
}

// checkTotals fails the test unless st's counts of connections, paths by
// state and the addresses' use are those of conns.
func checkTotals(t testing.TB, st pmstate.Status, conns []pmstate.Conn) {
	t.Helper()
	paths := map[pmstate.PathState]int{}
	addrs := map[netip.Addr]pmstate.AddrUse{}
	for _, c := range conns {
		for _, p := range c.Paths {
			paths[p.State]++
			a := addrs[p.Local]
			a.Addr = p.Local
			if p.Desired {
				a.Wanted++
				if p.State == pmstate.PathBackoff {
					a.Backoff++
				}
			}
			for _, s := range p.Subflows {
				if s.Established {
					a.Subflows++
				}
			}
			addrs[p.Local] = a
		}
	}
	var want []pmstate.AddrUse
	for _, a := range addrs {
		if a.Subflows+a.Wanted+a.Backoff > 0 {
			want = append(want, a)
		}
	}
	slices.SortFunc(want, func(a, b pmstate.AddrUse) int { return a.Addr.Compare(b.Addr) })
	got := slices.Clone(st.Addrs)
	for i := range got {
		got[i].LastFailure = nil
	}
	if st.Connections != len(conns) {
		t.Errorf("status counts %d connections, the pages list %d", st.Connections, len(conns))
	}
	if diff := cmp.Diff(paths, st.Paths, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("status's paths by state against the connections' (-listed +counted):\n%s", diff)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("status's addresses against the connections' (-listed +counted):\n%s", diff)
	}
}

// waitCall waits until the kernel got call.
func (h *harness) waitCall(call string) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for !slices.Contains(h.ns.Calls(), call) {
		select {
		case <-h.ns.changed:
		case <-deadline:
			h.t.Fatalf("no call %q after 5s; calls: %q", call, h.ns.Calls())
		}
	}
}

// expect checks the calls made since the last expect.
func (h *harness) expect(want ...string) {
	h.t.Helper()
	h.settle()
	calls := h.ns.Calls()
	got := calls[h.seen:]
	h.seen = len(calls)
	if diff := cmp.Diff(want, got, cmpEmpty); diff != "" {
		h.t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })

// joinAtOnce is fullmesh's default configuration without deferral: the
// unit tests that do not test deferral see every path opened at once.
func joinAtOnce() fullmesh.Config {
	cfg := fullmesh.DefaultConfig()
	cfg.JoinDelay, cfg.JoinBytes = 0, 0
	return cfg
}
