package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon/ctlhttp"
	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/metrics"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/policy"
)

// DefaultSocket is the control socket unless [control] socket says
// otherwise.
const DefaultSocket = ctlapi.DefaultSocket

// ControlConfig is the [control] table, checked.
type ControlConfig struct {
	// Socket is the control socket's path; "" turns it off.
	Socket string
	// Group may read the daemon's state over the socket; "" means root
	// and the daemon's own user only.
	Group string
}

// fillControl checks the [control] and [metrics] tables and sets c from
// them.
func (c *Config) fillControl(k *checker, f *File) {
	c.Control = ControlConfig{Socket: f.Control.Socket, Group: f.Control.Group}
	switch s := f.Control.Socket; {
	case s != "" && !filepath.IsAbs(s):
		k.fail("control.socket", "%q is not an absolute path (\"\" turns the socket off)", s)
	case len(s) > MaxSocketPath:
		k.fail("control.socket", "%q is %d bytes long; a Unix socket's path has at most %d", s, len(s), MaxSocketPath)
	}
	c.MetricsListen = f.Metrics.Listen
	if l := f.Metrics.Listen; l != "" {
		host, port, err := net.SplitHostPort(l)
		if err == nil {
			_, err = strconv.ParseUint(port, 10, 16)
		}
		switch {
		case err != nil || (host != "" && net.ParseIP(host) == nil && host != "localhost"):
			k.fail("metrics.listen", "%q is not an address such as \"127.0.0.1:9464\" or \"[::1]:9464\"", l)
		case !loopback(host) && !f.Metrics.AllowRemote:
			k.warn("metrics.listen", "%q serves the metrics (addresses, peers, traffic) beyond this host, to anyone who can reach it; "+
				"listen on 127.0.0.1 or [::1] and scrape through a proxy that authenticates, or keep a firewall in front "+
				"(metrics.allow_remote = true says it is meant)", l)
		}
	}
}

// MaxSocketPath is the longest path a Unix socket can be bound to: the
// 108 bytes of sun_path less the terminating NUL.
const MaxSocketPath = 107

// loopback reports whether the metrics listener's host is this host only.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// control is the daemon's control socket, its metrics and the fan-out of
// the engine's decisions. It implements ctlhttp.Backend.
type control struct {
	d       *Daemon
	opts    Options
	feed    *ctlhttp.Feed
	metrics *metrics.Metrics
	server  *ctlhttp.Server   // nil when [control] socket is ""
	listen  string            // [metrics] listen
	acct    *usage.Accounting // nil without usage accounting
	host    atomic.Pointer[hostSnapshot]
	closed  sync.Once
}

var (
	_ ctlhttp.Backend      = (*control)(nil)
	_ ctlhttp.ForceBackend = (*control)(nil)
)

// hostSnapshot is what the engine was last told about the host, with the
// link monitor's reasons.
type hostSnapshot struct {
	state linkmon.State
	links []policy.Link
}

// newControl opens the metrics' kernel interfaces and prepares the control
// socket of d. A [control] group that does not exist is logged, and then
// only root and the daemon's own user may read.
func newControl(d *Daemon, cfg *Config, opts Options) (*control, error) {
	c := &control{d: d, opts: opts, feed: ctlhttp.NewFeed(0), listen: cfg.MetricsListen}
	mcfg := metrics.Config{NetNS: opts.NetNS, Engine: d, Plugins: c, Logger: d.log}
	if d.usage != nil {
		c.acct = d.usage.acct
		mcfg.Usage = c.acct
	}
	var err error
	c.metrics, err = metrics.New(mcfg)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if cfg.Control.Socket == "" {
		return c, nil
	}
	group := cfg.Control.Group
	if group != "" {
		if _, err := ctlhttp.LookupGroup(group); err != nil {
			d.log.Warn("control.group does not exist: only root may use the control socket",
				"group", group, "error", err, "fix", "systemd-sysusers (creates the group mptcpgod), or set [control] group")
			group = ""
		}
	}
	c.server, err = ctlhttp.NewServer(ctlhttp.ServerConfig{Socket: cfg.Control.Socket, Group: group, Backend: c,
		Metrics: c.metrics.Handler(), Logger: d.log})
	if err != nil {
		_ = c.metrics.Close()
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return c, nil
}

// observe hands a decision of the engine to the metrics and the event
// streams; it never blocks (pm.Config.Observe).
func (c *control) observe(dec pmstate.Decision) {
	c.metrics.Observe(dec)
	c.feed.Publish(dec)
}

// setHost records what the engine is told about the host.
func (c *control) setHost(st linkmon.State, links []policy.Link) {
	c.host.Store(&hostSnapshot{state: st, links: links})
	c.metrics.SetHost(st)
}

// Plugins implements metrics.PluginSource: the programs of the current
// policies.
func (c *control) Plugins() []metrics.Plugin {
	c.d.mu.Lock()
	members := c.d.members
	c.d.mu.Unlock()
	return pluginMetrics(members, c.d.mode)
}

// run serves the control socket and the metrics listener until ctx is
// done.
func (c *control) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	if c.server != nil {
		g.Go(func() error { return c.server.Run(gctx) })
	}
	if c.listen != "" {
		g.Go(func() error { return metrics.Serve(gctx, c.d.netns, c.listen, c.metrics.Handler(), c.d.log) })
	}
	return g.Wait()
}

// wait waits until the control socket listens (at once when it is off);
// false when ctx is done first.
func (c *control) wait(ctx context.Context) bool {
	if c.server == nil {
		return true
	}
	select {
	case <-c.server.Ready():
		return true
	case <-ctx.Done():
		return false
	}
}

// close releases what newControl opened; later calls do nothing.
func (c *control) close() error {
	var err error
	c.closed.Do(func() { err = c.metrics.Close() })
	return err
}

// Status implements ctlhttp.Backend.
func (c *control) Status(ctx context.Context) (pmstate.Status, error) { return c.d.engine.Status(ctx) }

// Conn implements ctlhttp.Backend.
func (c *control) Conn(ctx context.Context, token uint32) (pmstate.Conn, error) {
	return c.d.engine.Conn(ctx, token)
}

// Conns implements ctlhttp.Backend.
func (c *control) Conns(ctx context.Context, q pmstate.ConnQuery) (pmstate.ConnPage, error) {
	return c.d.engine.Conns(ctx, q)
}

// Info implements ctlhttp.Backend.
func (c *control) Info(context.Context) (ctlhttp.Info, error) {
	c.d.mu.Lock()
	pol := c.d.cfg.Policy
	c.d.mu.Unlock()
	info := ctlhttp.Info{Version: c.opts.Version, Mode: pmstate.Mode(c.d.mode), ConfigFile: c.opts.ConfigFile, Policy: pol,
		Kernel: wireKernel(c.d.kernel), Mitigation: c.d.mitigation.status()}
	if h := c.host.Load(); h != nil {
		info.Links = h.apiLinks()
	}
	return info, nil
}

// apiLinks returns the links with their addresses, as the control socket
// shows them.
func (h *hostSnapshot) apiLinks() []pmstate.Link {
	metered := map[int32]bool{}
	for _, l := range h.links {
		metered[l.Index] = l.Metered
	}
	out := make([]pmstate.Link, 0, len(h.state.Links))
	for _, l := range h.state.Links {
		al := pmstate.Link{Name: l.Name, Index: int32(l.Index), Kind: pmstate.LinkKind(l.Kind.String()), Up: l.Up,
			Usable: l.Up && l.Included, Reason: l.Reason, Metered: metered[int32(l.Index)], Addrs: []pmstate.Addr{}}
		if !l.Up && al.Reason == "" {
			al.Reason = "link down"
		}
		for _, pl := range h.links {
			if pl.Index == al.Index {
				al.Changed = pl.Changed
			}
		}
		for _, a := range h.state.Addrs {
			if a.LinkIndex == l.Index {
				al.Addrs = append(al.Addrs, pmstate.Addr{Addr: a.Prefix.Addr().Unmap(), Usable: a.Usable, Reason: a.Reason})
			}
		}
		out = append(out, al)
	}
	slices.SortFunc(out, func(a, b pmstate.Link) int { return cmp.Compare(a.Index, b.Index) })
	return out
}

// Reload implements ctlhttp.Backend: it loads the configuration as at
// start (Options.LoadConfig) and applies it.
func (c *control) Reload(ctx context.Context) error {
	if c.opts.LoadConfig == nil {
		return errors.New("daemon: reload: this daemon has no configuration file to read again")
	}
	cfg, err := c.opts.LoadConfig()
	if err != nil {
		return err
	}
	return c.d.Reload(ctx, cfg)
}

// Force implements ctlhttp.ForceBackend.
func (c *control) Force(context.Context) (ctlapi.Force, error) { return c.d.force.status(), nil }

// ForceUnit implements ctlhttp.ForceBackend.
func (c *control) ForceUnit(ctx context.Context, unit string, off bool) (ctlapi.Force, error) {
	return c.d.force.forceUnit(ctx, unit, off)
}

// Events implements ctlhttp.Backend.
func (c *control) Events(ctx context.Context) (<-chan ctlapi.Event, error) {
	return c.feed.Subscribe(ctx), nil
}

// wireKernel converts the kernel's capabilities for the control socket.
func wireKernel(k genl.Kernel) ctlapi.Kernel {
	out := ctlapi.Kernel{Release: k.Release, Missing: make([]ctlapi.Capability, 0, len(k.Missing))}
	for _, c := range k.Missing {
		out.Missing = append(out.Missing, ctlapi.Capability{ID: c.ID, Name: c.Name, Since: c.Since, Without: c.Without})
	}
	return out
}
