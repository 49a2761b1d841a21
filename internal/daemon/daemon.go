package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/health"
	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/safefile"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// Options are what a Daemon needs besides its Config.
type Options struct {
	// NetNS is a file descriptor of the network namespace to manage; 0
	// means the namespace of the thread that calls New.
	NetNS int
	// Logger receives the logs; nil discards them.
	Logger *slog.Logger
	// Level, when set, is set to Config.LogLevel by New and Reload; it
	// should be the level of Logger's handler.
	Level *slog.LevelVar
	// ProcDir is where processes are looked up to detect other MPTCP
	// managers; "" means /proc.
	ProcDir string
	// LockDir is the directory of the single-instance lock of the
	// network namespace; "" means DefaultLockDir.
	LockDir string
	// Version is the program's version, for the control socket.
	Version string
	// ConfigFile names the configuration file, for the control socket;
	// LoadConfig loads it again for a reload over the socket (nil: such
	// reloads are refused).
	ConfigFile string
	LoadConfig func() (*Config, error)
	// StateDir keeps the units forced with mptcpctl force unit; "" means
	// systemd's $STATE_DIRECTORY, else /var/lib/mptcpgod.
	StateDir string
}

// Daemon is mptcpgod in one network namespace: the link monitor, the
// kernel's events and the engine, run by Run.
type Daemon struct {
	log   *slog.Logger
	level *slog.LevelVar
	netns int
	mode  policy.Mode
	// kernel is the running kernel and what it lacks.
	kernel genl.Kernel

	sub    *genl.Subscription // userspace mode
	conns  *connLister        // userspace mode
	owners *ownerLookup       // userspace mode
	bytes  *byteReader        // userspace mode
	engine *pm.Engine
	linksC chan linkmon.Config // one slot, latest wins
	ready  chan struct{}
	// running is set when Run starts and stopped when it returns; Reload
	// needs the engine's loop in between.
	running, stopped atomic.Bool

	mu      sync.Mutex // serialises Reload and guards what follows
	cfg     *Config
	router  *policy.Router
	members []policy.Policy  // the policies of router's chains
	retired []*policy.Router // replaced routers not known to be unused yet
	runCtx  context.Context  // Run's, for the policies' children

	// current is router, for the policies' goroutines (reask).
	current atomic.Pointer[policy.Router]
	reaskC  chan struct{} // one slot: the engine should decide again

	// health samples path health when a policy reads it; nil otherwise.
	health *health.Sampler
	// usage counts the traffic of metered links; nil when [usage] lists
	// no link.
	usage *accounting

	ctl *control // the control socket and the metrics
	// mitigation applies [mitigation] and watches the kernel's mapping
	// errors.
	mitigation *mitigation

	// force keeps the BPF program's maps equal to the forced units'
	// cgroups ([force], mptcpctl force unit).
	force *forcing

	// lock makes this daemon the only one of its network namespace.
	lock *safefile.Lock
}

// New prepares a daemon for the namespace: it takes the namespace's
// single-instance lock before anything else (another daemon of the
// namespace makes it fail, naming that daemon's pid, with nothing
// changed), opens the mptcp_pm family,
// fails when MPTCP is unavailable or disabled, sets or checks the path
// manager, builds the policy, subscribes to the kernel's events
// (userspace mode) and logs a warning, with the fix, for every other
// MPTCP manager it finds (findManagers). Run runs it.
func New(cfg *Config, opts Options) (_ *Daemon, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Level != nil {
		opts.Level.Set(cfg.LogLevel)
	}
	d := &Daemon{
		log:    log,
		level:  opts.Level,
		netns:  opts.NetNS,
		linksC: make(chan linkmon.Config, 1),
		reaskC: make(chan struct{}, 1),
		ready:  make(chan struct{}),
		cfg:    cfg,
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	lockDir := opts.LockDir
	if lockDir == "" {
		lockDir = DefaultLockDir
	}
	if d.lock, err = lockNetNS(lockDir, opts.NetNS); err != nil {
		return nil, err
	}

	client, err := genl.New(&genl.Config{NetNS: opts.NetNS})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	defer client.Close()
	if err := client.CheckEnabled(); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d.kernel = client.Kernel()
	logKernel(log, d.kernel)
	if d.mode, err = d.pathManager(client, cfg); err != nil {
		return nil, err
	}
	checksums, err := applyChecksums(client, cfg.Mitigation.Checksums, log)
	if err != nil {
		return nil, err
	}
	if d.mode == policy.ModeKernel {
		warnUserspaceOptions(log, cfg.Policy)
	}
	if d.router, d.members, err = cfg.buildPolicies(); err != nil {
		return nil, err
	}
	d.current.Store(d.router)
	d.preparePolicies(d.members)
	if readsHealth(d.members) {
		if d.health, err = health.New(health.Config{NetNS: opts.NetNS, Logger: log}); err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
	}

	procDir := opts.ProcDir
	if procDir == "" {
		procDir = "/proc"
	}
	// Before the daemon subscribes itself.
	found := findManagers(log, procDir, opts.NetNS, client.EventsGroup())

	// The lister serves both modes: userspace mode adopts connections
	// from it, kernel mode keeps the endpoints that carry live subflows
	// when it withdraws on exit.
	if d.conns, err = newConnLister(opts.NetNS); err != nil {
		return nil, err
	}
	var events pm.EventSource
	if d.mode == policy.ModeUserspace {
		if d.sub, err = subscribe(client, cfg.EventBuffer, d.log); err != nil {
			return nil, err
		}
		events = d.sub
		// Without byte counters (before 6.5) they read 0: deferrals
		// wait for their time alone, as logKernel said.
		if d.kernel.Has(genl.CapConnBytes) {
			if d.bytes, err = newByteReader(opts.NetNS); err != nil {
				return nil, err
			}
		}
	}

	var foreign []genl.Endpoint
	if d.mode == policy.ModeKernel {
		eps, err := client.Endpoints()
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		foreign = foreignEndpoints(eps, cfg.OwnedIDs)
	}
	warnCoexistence(log, d.mode, found, foreign)

	if d.usage, err = newAccounting(cfg, log); err != nil {
		return nil, err
	}
	if d.force, err = newForcing(log, cfg.Force, stateDir(opts)); err != nil {
		return nil, err
	}
	if d.ctl, err = newControl(d, cfg, opts); err != nil {
		return nil, err
	}
	d.mitigation = newMitigation(log, d.mode, cfg.Mitigation, checksums, d.ctl.metrics.MPTcpExt)
	var owners pm.OwnerLookup
	if d.mode == policy.ModeUserspace {
		d.owners = newOwnerLookup(opts.NetNS, log)
		owners = d.owners
	}
	pcfg := pm.Config{
		Observe:        d.ctl.observe,
		Mode:           d.mode,
		Policy:         d.router,
		NewKernel:      func() (pm.Kernel, error) { return genl.New(&genl.Config{NetNS: opts.NetNS}) },
		Kernel:         d.kernel,
		Workers:        cfg.Workers,
		Events:         events,
		Conns:          d.conns,
		Owners:         owners,
		OwnedIDs:       cfg.OwnedIDs,
		WithdrawOnExit: cfg.WithdrawOnExit,
		Backoff:        cfg.Backoff,
		Peers:          cfg.Peers,
		MinJoinAge:     cfg.Mitigation.MinJoinAge,
		Logger:         log,
	}
	if !cfg.AcceptAnnounces {
		// The in-kernel path manager follows every announce up to
		// add_addr_accepted, to any address and port (loopback
		// included): a peer could steer this host at third parties.
		pcfg.AddAddrAcceptedMax = new(uint32(0))
	}
	if d.bytes != nil {
		pcfg.Bytes = d.bytes
	}
	d.engine, err = pm.New(pcfg)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return d, nil
}

// pathManager returns the mode to run in: the sysctl's path manager for
// ModeAuto, else cfg.Mode, which the sysctl must equal unless
// cfg.SetPathManager sets it.
func (d *Daemon) pathManager(client *genl.Client, cfg *Config) (policy.Mode, error) {
	if !d.kernel.Has(genl.CapUserspacePM) {
		// Only the in-kernel path manager exists: nothing to choose.
		if cfg.Mode == policy.ModeUserspace {
			return "", fmt.Errorf("daemon: mode \"userspace\" needs the kernel's userspace path manager, which "+
				"Linux %s brought and this kernel (%s) lacks: set mode = \"kernel\" or \"auto\"",
				genl.CapUserspacePM.Since, d.kernel.Release)
		}
		return policy.ModeKernel, nil
	}
	cur, err := client.PathManager()
	if err != nil {
		return "", fmt.Errorf("daemon: %w", err)
	}
	switch {
	case cfg.Mode == ModeAuto:
		return policy.Mode(cur), nil
	case policy.Mode(cur) == cfg.Mode:
		return cfg.Mode, nil
	case cfg.SetPathManager:
		if err := client.SetPathManager(genl.PathManager(cfg.Mode)); err != nil {
			return "", fmt.Errorf("daemon: set_path_manager: %w", err)
		}
		name, _ := pathManagerSysctl(d.kernel, cfg.Mode)
		d.log.Info("path manager set", "sysctl", "net.mptcp."+name, "old", cur, "new", cfg.Mode)
		return cfg.Mode, nil
	}
	name, value := pathManagerSysctl(d.kernel, cfg.Mode)
	return "", fmt.Errorf("daemon: mode %q, but the path manager (net.mptcp.%s) is %q, so new connections would not be "+
		"mptcpgod's: set set_path_manager = true, set mode = \"auto\", or run "+
		"\"sysctl -w net.mptcp.%s=%s\"", cfg.Mode, name, cur, name, value)
}

// pathManagerSysctl returns the sysctl that selects the path manager on
// this kernel and its value for mode: path_manager since 6.15, pm_type
// (0 kernel, 1 userspace) before.
func pathManagerSysctl(k genl.Kernel, mode policy.Mode) (name, value string) {
	if k.Has(genl.CapPathManagerSysctl) {
		return "path_manager", string(mode)
	}
	if mode == policy.ModeUserspace {
		return "pm_type", "1"
	}
	return "pm_type", "0"
}

// logKernel logs the kernel's release and every capability it lacks,
// with the release that brings it and what the daemon does instead.
func logKernel(log *slog.Logger, k genl.Kernel) {
	log.Info("kernel", "release", k.Release, "missing_capabilities", len(k.Missing))
	for _, c := range k.Missing {
		log.Info("kernel lacks a capability", "capability", c.Name, "since", "Linux "+c.Since, "mptcpgod", c.Without)
	}
}

// subscribe joins the kernel's event group on a socket of its own, with a
// receive buffer of bufSize bytes, DefaultEventBuffer when it is 0.
// Without CAP_NET_ADMIN the kernel caps the buffer at net.core.rmem_max,
// which is logged.
func subscribe(client *genl.Client, bufSize int, log *slog.Logger) (*genl.Subscription, error) {
	sub, err := client.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	bufSize = cmp.Or(bufSize, DefaultEventBuffer)
	if err := sub.SetReadBuffer(bufSize); err != nil {
		_ = sub.Close()
		return nil, fmt.Errorf("daemon: engine.event_buffer: %w", err)
	}
	// The kernel reports twice what it granted.
	if got, err := sub.ReadBuffer(); err == nil && got/2 < bufSize {
		log.Warn("the event socket's receive buffer is smaller than engine.event_buffer: bursts of connections will lose events",
			"want", bufSize, "got", got/2, "fix", "run mptcpgod with CAP_NET_ADMIN (the systemd unit does), or raise net.core.rmem_max")
	}
	return sub, nil
}

// Mode returns the path manager the daemon drives: policy.ModeKernel or
// policy.ModeUserspace.
func (d *Daemon) Mode() policy.Mode { return d.mode }

// Ready returns a channel closed once the engine has adopted what exists
// and reconciled it with the first links and addresses.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Status returns the engine's state; it fails with pm.ErrNotRunning
// unless Run runs.
func (d *Daemon) Status(ctx context.Context) (pmstate.Status, error) { return d.engine.Status(ctx) }

// Conns returns a page of the engine's connections (userspace mode).
func (d *Daemon) Conns(ctx context.Context, q pmstate.ConnQuery) (pmstate.ConnPage, error) {
	return d.engine.Conns(ctx, q)
}

// Run runs the daemon until ctx is done, then stops (in kernel mode,
// withdrawing the owned endpoints when so configured), releases what New
// opened (Close) and returns nil; or until a task fails, and returns its
// error. Run may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("daemon: run called twice")
	}
	defer d.Close()
	defer d.stopped.Store(true)
	g, gctx := errgroup.WithContext(ctx)
	d.mu.Lock()
	links := d.cfg.Links
	d.runCtx = gctx
	d.startPolicies(gctx, d.members)
	d.mu.Unlock()

	g.Go(func() error { return d.engine.Run(gctx) })
	g.Go(func() error { return d.runReask(gctx) })
	if d.health != nil {
		g.Go(func() error { return d.runHealth(gctx) })
	}
	g.Go(func() error { return d.runLinks(gctx, links) })
	g.Go(func() error { return d.ctl.run(gctx) })
	g.Go(func() error { return d.force.run(gctx) })
	g.Go(func() error { return d.mitigation.run(gctx) })
	g.Go(func() error {
		select {
		case <-d.engine.Ready():
		case <-gctx.Done():
			return nil
		}
		d.settle(gctx)
		if gctx.Err() != nil || !d.ctl.wait(gctx) {
			return nil
		}
		// A unit ordered after mptcpgod.service is forced from its
		// first socket: the program is attached and the forced units'
		// cgroups that exist are in its maps before READY=1.
		select {
		case <-d.force.synced:
		case <-gctx.Done():
			return nil
		}
		close(d.ready)
		d.log.Info("mptcpgod ready", "mode", d.mode)
		notify(d.log, sd.SdNotifyReady)
		if w := newWatchdog(d.log, d.alive); w != nil {
			w.run(gctx)
		}
		return nil
	})
	return g.Wait()
}

// alive returns nil when the engine's loop answers a question.
func (d *Daemon) alive(ctx context.Context) error { return d.engine.Sync(ctx) }

// settleLimit bounds how long settle waits for the first commands.
const settleLimit = 2 * time.Second

// settle waits until the engine's first commands have completed, at most
// settleLimit: the engine is ready once it has decided, and a connection
// opened before the in-kernel path manager has an endpoint never gets a
// subflow from it.
func (d *Daemon) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, settleLimit)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := d.engine.Status(ctx)
		if err != nil || st.InFlight+st.Queued == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// runLinks runs the link monitor and hands every state it reports to the
// engine. A new links configuration (Reload) restarts the monitor; its
// first state replaces the old one.
func (d *Daemon) runLinks(ctx context.Context, cfg linkmon.Config) error {
	hv := newHostView()
	for {
		cfg.NetNS, cfg.Logger = d.netns, d.log
		m, err := linkmon.New(&cfg)
		if err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
		mctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- m.Run(mctx) }()

		next, restart := d.feed(ctx, m, hv)
		cancel()
		for range m.Events() {
		}
		err = errors.Join(<-done, m.Close())
		if !restart || err != nil {
			return err
		}
		d.log.Info("link monitor restarted with the new [links] configuration")
		cfg = next
	}
}

// feed hands m's states to the engine until m stops or ctx is done
// (restart false), or Reload sends a new links configuration (restart
// true). With usage accounting, it samples the counters at every state
// and every [usage] interval, and hands the engine the links annotated
// with their usage; a sample that changed nothing is not handed on.
func (d *Daemon) feed(ctx context.Context, m *linkmon.Monitor, hv *hostView) (next linkmon.Config, restart bool) {
	tick, tickC := d.usage.ticker()
	if tick != nil {
		defer tick.Stop()
	}
	var st linkmon.State
	var last []policy.Link
	for {
		changed := true
		select {
		case dl, ok := <-m.Events():
			if !ok {
				return next, false
			}
			if !dl.Initial && (dl.AddrsChanged() || dl.LinksChanged()) {
				d.log.Info("links changed", "change", dl.String())
			}
			st = dl.State
		case <-tickC:
			if last == nil {
				continue
			}
			changed = false
		case next = <-d.linksC:
			return next, true
		case <-ctx.Done():
			return next, false
		}
		last = d.setHost(m, st, hv, last, changed)
	}
}

// setHost samples the usage of the accounted links (when there are any)
// and hands the engine the view of st, unless changed is false and the
// links are those of last. It returns the links.
func (d *Daemon) setHost(m *linkmon.Monitor, st linkmon.State, hv *hostView, last []policy.Link, changed bool) []policy.Link {
	if d.usage != nil {
		d.usage.poll(m)
	}
	links, addrs := hv.convert(st, time.Now())
	if d.usage != nil {
		d.usage.acct.Annotate(links)
	}
	if !changed && reflect.DeepEqual(links, last) {
		return last
	}
	d.ctl.setHost(st, links)
	d.engine.SetHost(links, addrs)
	return links
}

// Reload applies cfg to the running daemon: the policy (to existing
// connections too), the [links] filters, the [usage] links and the log
// level. A
// configuration whose policies do not build is refused with the error,
// and the old one stays. Keys that only take effect at start are logged
// when they changed.
func (d *Daemon) Reload(ctx context.Context, cfg *Config) error {
	if !d.running.Load() || d.stopped.Load() {
		return errors.New("daemon: reload: the daemon is not running")
	}
	router, members, err := cfg.buildPolicies()
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.preparePolicies(members)
	d.startPolicies(d.runCtx, members)
	if d.health == nil && readsHealth(members) {
		d.log.Warn("the new policies read path health, which is sampled only when they are configured at start: restart mptcpgod")
	}
	notify(d.log, sd.SdNotifyReloading+"\nMONOTONIC_USEC="+monotonicUsec())
	defer notify(d.log, sd.SdNotifyReady)

	old := d.cfg
	for _, key := range append(restartKeys(old, cfg), usageRestartKeys(old, cfg)...) {
		d.log.Warn("config change needs a restart to take effect", "key", key)
	}
	d.reloadUsage(old, cfg)
	d.force.setConfig(cfg.Force)
	if d.level != nil {
		d.level.Set(cfg.LogLevel)
	}
	if !reflect.DeepEqual(old.Links, cfg.Links) {
		select {
		case <-d.linksC:
		default:
		}
		d.linksC <- cfg.Links
	}
	d.current.Store(router)
	d.engine.SetPolicy(router)
	d.retired = append(d.retired, d.router)
	d.router, d.members, d.cfg = router, members, cfg
	// Once the engine's loop answers after SetPolicy, it no longer uses
	// the routers it replaced.
	if err := d.engine.Sync(ctx); err == nil {
		d.closeRetired()
	}
	d.log.Info("configuration reloaded", "policy", router.Name())
	return nil
}

// restartKeys names the keys whose change a running daemon cannot apply.
func restartKeys(old, cfg *Config) []string {
	var keys []string
	add := func(changed bool, key string) {
		if changed {
			keys = append(keys, key)
		}
	}
	add(old.Mode != cfg.Mode, "mode")
	add(old.SetPathManager != cfg.SetPathManager, "set_path_manager")
	add(old.OwnedIDs != cfg.OwnedIDs, "kernel.owned_ids")
	add(old.WithdrawOnExit != cfg.WithdrawOnExit, "kernel.withdraw_on_exit")
	add(old.AcceptAnnounces != cfg.AcceptAnnounces, "kernel.accept_announces")
	add(old.Workers != cfg.Workers, "engine.workers")
	add(old.Backoff.Initial != cfg.Backoff.Initial, "engine.backoff_initial")
	add(old.Backoff.Max != cfg.Backoff.Max, "engine.backoff_max")
	add(old.EventBuffer != cfg.EventBuffer, "engine.event_buffer")
	add(!reflect.DeepEqual(old.Peers, cfg.Peers), "peers")
	add(old.Control.Socket != cfg.Control.Socket, "control.socket")
	add(old.Control.Group != cfg.Control.Group, "control.group")
	add(old.MetricsListen != cfg.MetricsListen, "metrics.listen")
	add(old.Mitigation.Checksums != cfg.Mitigation.Checksums, "mitigation.checksums")
	add(old.Mitigation.MinJoinAge != cfg.Mitigation.MinJoinAge, "mitigation.min_join_age")
	return keys
}

// closeRetired closes the replaced routers; d.mu is held.
func (d *Daemon) closeRetired() {
	for _, r := range d.retired {
		if err := r.Close(); err != nil {
			d.log.Warn("close replaced policy", "error", err)
		}
	}
	d.retired = nil
}

// Close releases what New opened; Run calls it when it returns, so only
// a Daemon that is never run needs it. Later calls do nothing.
func (d *Daemon) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.router != nil {
		d.retired = append(d.retired, d.router)
		d.router = nil
	}
	d.closeRetired()
	var errs []error
	if d.sub != nil {
		errs = append(errs, d.sub.Close())
		d.sub = nil
	}
	if d.conns != nil {
		errs = append(errs, d.conns.Close())
		d.conns = nil
	}
	if d.owners != nil {
		errs = append(errs, d.owners.Close())
		d.owners = nil
	}
	if d.bytes != nil {
		errs = append(errs, d.bytes.Close())
		d.bytes = nil
	}
	if d.ctl != nil {
		errs = append(errs, d.ctl.close())
	}
	if d.health != nil {
		errs = append(errs, d.health.Close())
		d.health = nil
	}
	if d.usage != nil {
		if err := d.usage.close(); err != nil {
			d.log.Warn("usage file not written", "error", err)
		}
		d.usage = nil
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Debug("close kernel sockets", "error", err)
	}
	// Last: the next daemon may start changing the kernel now.
	if err := d.lock.Release(); err != nil {
		d.log.Warn("single-instance lock not removed", "error", err)
	}
}

// notify sends state to systemd; without NOTIFY_SOCKET it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		log.Debug("sd_notify", "state", state, "error", err)
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1.
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "0"
	}
	return strconv.FormatInt(ts.Nano()/1000, 10)
}
