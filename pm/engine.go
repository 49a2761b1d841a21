package pm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"

	"github.com/mptcpgod/mptcpgod/internal/peeraddr"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// Engine is the path-manager engine. One goroutine, Run, owns its state;
// the other methods talk to it over channels and are safe to call from
// any goroutine.
type Engine struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	// after and jitter are the timer and the backoff jitter; tests
	// replace them.
	after  func(time.Duration) (<-chan time.Time, func())
	jitter func(time.Duration) time.Duration

	hostC   chan hostUpdate    // one slot, latest wins
	healthC chan Health        // one slot, latest wins
	policyC chan policy.Policy // one slot, latest wins
	queryC  chan query         // status queries
	eventsC chan batch         // from the event reader
	results chan result        // from the workers
	work    chan command       // to the workers
	resyncC chan resyncResult  // from a resync
	repairC chan repairListing // from a repair listing
	bytesC  chan bytesResult   // from a byte read
	readyC  chan struct{}      // closed when ready
	doneC   chan struct{}      // closed when Run returns
	running atomic.Bool
	// sets counts the SetHost, SetHealth and SetPolicy calls; board is
	// what Status reads, posted by the loop.
	sets  atomic.Uint64
	board board
	// busySince is when the loop's current iteration began, in
	// nanoseconds since epoch plus one; 0 while the loop waits for an
	// input. A loop stuck in an iteration posts nothing new; busySince
	// tells it from one with nothing to do, and Status waits for it
	// (stuckAfter).
	busySince atomic.Int64
	epoch     time.Time

	// Everything below belongs to Run.
	ctx        context.Context
	policy     policy.Policy
	policyName string
	// readsOwner: the policy reads connections' owners, which the engine
	// then looks up (Config.Owners) before a connection's first plan.
	readsOwner bool
	view       policy.View
	haveHost   bool
	isReady    bool
	ifByName   map[string]int32
	addrs      map[netip.Addr]policy.LocalAddr
	usable     map[netip.Addr]bool
	// usableAddrs lists usable's addresses for Status; replaced, never
	// changed in place.
	usableAddrs []netip.Addr
	// host is the host's addresses and broadcasts, for the peer-address
	// policy.
	host *peeraddr.Host
	// haveHealth: a health report arrived; linkHealth and subHealth are
	// the last one's.
	haveHealth bool
	linkHealth map[int32]policy.Health
	subHealth  map[subflowKey]policy.Health

	// runnable lists the lanes that may have a command for a worker.
	runnable  runQueue
	wakes     wakeHeap
	timerC    <-chan time.Time
	timerStop func()
	timerAt   time.Time

	conns map[uint32]*conn
	// order holds the connections by token, for the pages of Conns.
	order *btree.BTreeG[*conn]
	dirty []*conn
	// totals sum the tallies of the connections; recount lists those to
	// count again at the end of the iteration; addrBuf and lastAddrs are
	// tallyOf's buffer and the addresses it stored last.
	totals    totals
	recount   []*conn
	addrBuf   []addrTally
	lastAddrs []addrTally
	// queries measure the loop's time answering queries.
	queries pmstate.QueryStats
	// owners are the connections' owners, each recorded once.
	owners map[policy.Owner]*policy.Owner
	// connView, cmdBuf and wantBuf are buffers reconcileConn reuses for
	// every connection; lastWant is the wanted paths it stored last
	// (keepPlan).
	connView   policy.Conn
	refusalBuf []refusal
	cmdBuf     []command
	wantBuf    []wantPath
	lastWant   []wantPath
	kernelMode kernelState
	// kernelDirty: reconcile kernel mode at the end of the iteration.
	kernelDirty bool
	// seq counts the events applied.
	seq uint64

	resyncing, resyncAgain bool
	// listings counts the listings begun; merging is the one being
	// merged, a chunk per iteration.
	listings uint32
	merging  *merging
	// byteWatch holds the connections with a path or announce that bytes
	// can bring forward, by token; bytesWake is the next read of
	// their counters (Config.Bytes), scheduled while there are any and
	// no read runs (bytesReading).
	byteWatch    map[uint32]*watched
	bytesWake    wake
	bytesReading bool
	// loopKernel is the Kernel of the loop's own calls (adoption,
	// resync listings, withdrawal); the workers have theirs.
	loopKernel Kernel

	started  time.Time
	counters counters
	// postedSets is sets as the last post read it.
	postedSets uint64
	// recent are the last failed commands; recentChanged: since the
	// loop last posted them.
	recent        errRing
	recentChanged bool
	warned        map[string]bool
	// sweep is the connection sweep's wake; sweeping is set while the
	// resync it started runs, so that it logs quietly.
	sweep    wake
	sweeping bool
	// lost counts the event losses since the last log line (warnLost).
	lost struct {
		count  uint64
		logged time.Time
	}
	// trigger is when the input being applied arrived; zero between
	// iterations. retryAt is the retry time the last failure got.
	trigger, retryAt time.Time
}

type hostUpdate struct {
	links []policy.Link
	addrs []policy.LocalAddr
	at    time.Time
}

// New returns an Engine for cfg, or an error naming the first bad field.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "pm"),
		now:        cfg.Now,
		after:      realAfter,
		jitter:     realJitter,
		hostC:      make(chan hostUpdate, 1),
		healthC:    make(chan Health, 1),
		policyC:    make(chan policy.Policy, 1),
		queryC:     make(chan query),
		eventsC:    make(chan batch, 64),
		results:    make(chan result, cfg.Workers),
		work:       make(chan command),
		resyncC:    make(chan resyncResult, 1),
		repairC:    make(chan repairListing, 1),
		bytesC:     make(chan bytesResult, 1),
		readyC:     make(chan struct{}),
		doneC:      make(chan struct{}),
		policy:     cfg.Policy,
		policyName: cfg.Policy.Name(),
		conns:      make(map[uint32]*conn),
		order:      btree.NewG(32, func(a, b *conn) bool { return a.token < b.token }),
		owners:     make(map[policy.Owner]*policy.Owner),
		byteWatch:  make(map[uint32]*watched),
		warned:     make(map[string]bool),
		ctx:        context.Background(),
		epoch:      time.Now(),
	}
	e.view.Mode = cfg.Mode
	e.bytesWake = wake{heapIndex: -1, bytes: true}
	e.totals.addrs = make(map[netip.Addr]*addrTotal)
	e.setReadsOwner()
	e.kernelMode.wake.heapIndex = -1
	e.kernelMode.changed = true
	e.kernelMode.retries = make(map[netip.AddrPort]*retry)
	e.kernelMode.notes = make(map[netip.AddrPort]string)
	e.kernelMode.repair.wake = wake{heapIndex: -1, repair: true}
	e.kernelMode.repair.endpoints = make(map[netip.AddrPort]*repairEP)
	return e, nil
}

// Ready returns a channel that is closed once Run has adopted the
// kernel's state, received the first SetHost and reconciled everything.
func (e *Engine) Ready() <-chan struct{} { return e.readyC }

// SetHost replaces the host's links and addresses the policies decide
// from. It never blocks: when the engine has not picked up the previous
// update yet, this one replaces it. Run reconciles nothing before the
// first SetHost. The slices are copied.
func (e *Engine) SetHost(links []policy.Link, addrs []policy.LocalAddr) {
	u := hostUpdate{links: slices.Clone(links), addrs: slices.Clone(addrs), at: e.now()}
	for {
		select {
		case e.hostC <- u:
			e.sets.Add(1)
			return
		default:
		}
		select {
		case <-e.hostC:
		default:
		}
	}
}

// SetPolicy replaces the policy; the engine applies it to every existing
// connection too. It never blocks; once a Sync (or a Status) that began
// after SetPolicy returns, the engine reports the new policy and no longer
// uses the old one (so the caller may close it).
func (e *Engine) SetPolicy(p policy.Policy) {
	if p == nil {
		return
	}
	for {
		select {
		case e.policyC <- p:
			e.sets.Add(1)
			return
		default:
		}
		select {
		case <-e.policyC:
		default:
		}
	}
}

// Run opens the kernels, adopts the kernel's state, and then reconciles
// until ctx is done, when it stops the workers, withdraws the owned
// endpoints if so configured, and returns nil. It returns an error when it
// cannot open a Kernel, cannot read the kernel's endpoints (kernel mode),
// or the event source fails for good.
func (e *Engine) Run(ctx context.Context) (err error) {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("pm: run: already running or done")
	}
	defer close(e.doneC)
	e.ctx = ctx
	e.started = e.now()

	var kernels []Kernel
	defer func() {
		for _, k := range kernels {
			if cerr := k.Close(); cerr != nil {
				e.log.Debug("close kernel", "error", cerr)
			}
		}
	}()
	for i := range e.cfg.Workers + 1 {
		k, err := e.cfg.NewKernel()
		if err != nil {
			return fmt.Errorf("pm: open kernel %d of %d: %w", i+1, e.cfg.Workers+1, err)
		}
		kernels = append(kernels, k)
	}
	e.loopKernel = kernels[0]

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var readers, workers sync.WaitGroup
	if e.cfg.Events != nil {
		readers.Go(func() { e.readEvents(runCtx) })
	}
	for _, k := range kernels[1:] {
		workers.Go(func() { worker(k, e.cfg.Owners, e.now, e.work, e.results) })
	}

	adopted := false
	err = e.adopt()
	if err == nil {
		adopted = true
		err = e.loop(ctx)
	}

	cancel()
	close(e.work)
	stopped := make(chan struct{})
	go func() { workers.Wait(); close(stopped) }()
	for draining := true; draining; {
		select {
		case <-e.results:
		case <-stopped:
			draining = false
		}
	}
	if e.resyncing && e.merging == nil {
		<-e.resyncC
	}
	if e.kernelMode.repair.listing {
		<-e.repairC
	}
	if e.bytesReading {
		<-e.bytesC
	}
	readers.Wait()
	if e.timerStop != nil {
		e.timerStop()
	}
	if adopted && e.cfg.Mode == policy.ModeKernel && e.cfg.WithdrawOnExit {
		e.withdraw(e.loopKernel)
	}
	return err
}

// loop is the engine's event loop.
func (e *Engine) loop(ctx context.Context) error {
	e.publish()
	if e.cfg.Mode == policy.ModeUserspace && e.cfg.Conns != nil && e.cfg.SweepEvery > 0 {
		e.sweep = wake{heapIndex: -1, sweep: true}
		e.setWake(&e.sweep, e.now().Add(e.cfg.SweepEvery))
	}
	for {
		e.armTimer()
		var workC chan command
		var next command
		l := e.runnable.peek()
		if l != nil {
			workC, next = e.work, l.queue[0]
		}
		// A listing being merged goes on between the other inputs.
		var mergeC <-chan struct{}
		if e.merging != nil {
			mergeC = alwaysReady
		}
		var asked *query
		select {
		case <-ctx.Done():
			return nil
		case workC <- next:
			e.begin()
			e.runnable.pop()
			cmd := l.take()
			e.sent(&cmd)
		case r := <-e.results:
			e.begin()
			e.applyResult(&r)
		case b := <-e.eventsC:
			e.begin()
			if b.fatal {
				return fmt.Errorf("pm: events: %w", b.err)
			}
			e.applyBatch(&b)
		case u := <-e.hostC:
			e.begin()
			e.applyHost(u)
		case h := <-e.healthC:
			e.begin()
			e.applyHealth(h)
		case p := <-e.policyC:
			e.begin()
			e.applyPolicy(p)
		case q := <-e.queryC:
			e.begin()
			// A question sees the wakes that are due.
			select {
			case <-e.timerC:
				e.fire()
			default:
			}
			asked = &q
		case <-e.timerC:
			e.begin()
			e.fire()
		case r := <-e.resyncC:
			e.begin()
			e.applyResync(r)
		case l := <-e.repairC:
			e.begin()
			e.applyRepairListing(l)
		case <-mergeC:
			e.begin()
			e.mergeStep(e.merging)
		case r := <-e.bytesC:
			e.begin()
			e.applyBytes(r)
		}
		e.publish()
		if asked != nil {
			e.answer(*asked)
		}
		e.busySince.Store(0)
	}
}

// begin notes that an iteration began: the loop took an input.
func (e *Engine) begin() { e.busySince.Store(int64(time.Since(e.epoch)) + 1) }

// busy returns how long the loop has been in its current iteration; 0
// while it waits for an input.
func (e *Engine) busy() time.Duration {
	since := e.busySince.Load()
	if since == 0 {
		return 0
	}
	return max(time.Since(e.epoch)-time.Duration(since-1), 0)
}

// publish takes what was set before it, reconciles what the iteration
// made dirty, and posts the counts Status reads.
func (e *Engine) publish() {
	sets := e.sets.Load()
	if sets != e.postedSets {
		e.takeSlots()
	}
	e.flush()
	e.post(sets)
	e.postedSets = sets
}

// alwaysReady is a channel a receive from never waits on.
var alwaysReady = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// takeSlots applies a pending host update, health report and policy;
// every iteration ends with it, so that a question, and the counts the
// iteration posts, reflect what was set before them.
func (e *Engine) takeSlots() {
	select {
	case u := <-e.hostC:
		e.applyHost(u)
	default:
	}
	select {
	case h := <-e.healthC:
		e.applyHealth(h)
	default:
	}
	select {
	case p := <-e.policyC:
		e.applyPolicy(p)
	default:
	}
}

// flush reconciles what the iteration made dirty. The commands it queues
// carry the time of the input that made their owner dirty, until the
// owner's lane runs empty.
func (e *Engine) flush() {
	if e.kernelDirty {
		e.kernelDirty = false
		e.kernelMode.changed = true
		e.kernelMode.trigger = earliest(e.kernelMode.trigger, e.trigger)
		e.reconcileKernel()
		if e.kernelMode.lane.idle() {
			e.kernelMode.trigger = time.Time{}
		}
	}
	for i, c := range e.dirty {
		c.queued = false
		e.dirty[i] = nil
		e.reconcileConn(c)
		if c.lane.idle() {
			c.trigger = time.Time{}
		}
	}
	e.dirty = e.dirty[:0]
	e.trigger = time.Time{}
	e.recountTouched()
	if e.haveHost && !e.isReady {
		e.isReady = true
		close(e.readyC)
		e.log.Info("ready", "mode", e.cfg.Mode, "policy", e.policy.Name(), "connections", len(e.conns),
			"endpoints", len(e.kernelMode.actual))
	}
}

// reconcileAll marks everything for reconciliation, connections in token
// order.
func (e *Engine) reconcileAll() {
	if e.cfg.Mode == policy.ModeKernel {
		e.kernelDirty = true
		return
	}
	e.order.Ascend(func(c *conn) bool {
		e.markDirty(c)
		return true
	})
}

func (e *Engine) applyHost(u hostUpdate) {
	slices.SortStableFunc(u.links, func(a, b policy.Link) int { return int(a.Index) - int(b.Index) })
	e.withLinkHealth(u.links)
	e.view = policy.View{Mode: e.cfg.Mode, Links: u.links, Addrs: u.addrs}
	e.ifByName = make(map[string]int32, len(u.links))
	for _, l := range u.links {
		e.ifByName[l.Name] = l.Index
	}
	e.addrs = make(map[netip.Addr]policy.LocalAddr, len(u.addrs))
	for _, a := range u.addrs {
		e.addrs[a.Addr.Unmap()] = a
	}
	e.usable = make(map[netip.Addr]bool, len(u.addrs))
	e.usableAddrs = nil
	for _, a := range e.view.UsableAddrs() {
		e.usable[a.Addr.Unmap()] = true
		e.usableAddrs = append(e.usableAddrs, a.Addr)
	}
	e.host = peerHost(u.addrs)
	if !e.haveHost {
		e.log.Debug("first host state", "links", len(u.links), "addrs", len(u.addrs))
	}
	e.trigger = earliest(e.trigger, u.at)
	e.haveHost = true
	e.counters.hostUpdates++
	e.reconcileAll()
}

// peerHost returns the host's addresses as the peer-address policy
// needs them: with their subnet prefixes (a host route when unknown).
func peerHost(addrs []policy.LocalAddr) *peeraddr.Host {
	prefixes := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		bits := a.PrefixLen
		if bits <= 0 || bits > a.Addr.BitLen() {
			bits = a.Addr.BitLen()
		}
		prefixes = append(prefixes, netip.PrefixFrom(a.Addr, bits))
	}
	return peeraddr.NewHost(prefixes)
}

func (e *Engine) applyPolicy(p policy.Policy) {
	e.log.Info("policy replaced", "old", e.policy.Name(), "new", p.Name())
	now := e.now()
	e.observe(pmstate.Decision{Time: now, Kind: pmstate.DecisionPolicy, Detail: e.policy.Name() + " -> " + p.Name()})
	e.trigger = earliest(e.trigger, now)
	e.policy, e.policyName = p, p.Name()
	e.setReadsOwner()
	e.counters.policySwaps++
	e.reconcileAll()
}

// setReadsOwner notes whether the policy reads connections' owners; a
// policy that does without Config.Owners sees none.
func (e *Engine) setReadsOwner() {
	r, ok := e.policy.(policy.OwnerReader)
	e.readsOwner = ok && r.ReadsOwner() && e.cfg.Mode == policy.ModeUserspace
	if e.readsOwner && e.cfg.Owners == nil {
		e.readsOwner = false
		e.log.Warn("the policy selects connections by owner (unit, uid), but the engine cannot look owners up: those rules match nothing",
			"policy", e.policy.Name())
	}
}

// devIndex returns ifindex, else the index of the device named dev, else 0.
func (e *Engine) devIndex(dev string, ifindex int32) int32 {
	if ifindex != 0 || dev == "" {
		return ifindex
	}
	return e.ifByName[dev]
}

// fire reconciles the owners of the wakes that are due; the timer fired.
func (e *Engine) fire() {
	e.timerC, e.timerStop, e.timerAt = nil, nil, time.Time{}
	now := e.now()
	for len(e.wakes) > 0 && !e.wakes[0].at.After(now) {
		w := e.wakes[0]
		due := w.at
		e.setWake(w, time.Time{})
		if w.sweep {
			e.sweeping = true
			e.resync()
			e.setWake(w, now.Add(e.cfg.SweepEvery))
			continue
		}
		if w.repair {
			e.repairList()
			continue
		}
		if w.bytes {
			e.readBytes()
			continue
		}
		if w.conn == nil {
			e.kernelDirty = true
		} else {
			w.conn.wake = nil
			if w.conn.held {
				// A deferral may be due: its commands' latency counts
				// from its deadline.
				w.conn.trigger = earliest(w.conn.trigger, due)
			}
			e.markDirty(w.conn)
		}
	}
}

// warnOnce logs msg at warning level once per msg and arguments.
func (e *Engine) warnOnce(msg string, args ...any) {
	key := fmt.Sprint(append([]any{msg}, args...)...)
	if e.warned[key] {
		return
	}
	if len(e.warned) > 1024 {
		clear(e.warned)
	}
	e.warned[key] = true
	e.log.Warn(msg, args...)
}

// hexToken logs a token as eight hex digits.
type hexToken uint32

// LogValue implements slog.LogValuer.
func (t hexToken) LogValue() slog.Value { return slog.StringValue(fmt.Sprintf("%08x", uint32(t))) }
