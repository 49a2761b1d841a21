package backupcell_test

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/plugins/backupcell"
	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// chain returns fullmesh then backup-cellular with config, as the engine
// runs them.
func chain(t *testing.T, config string) *policy.Chain {
	t.Helper()
	return policytest.Chain(t, policy.Spec{Name: "fullmesh"}, policy.Spec{Name: backupcell.Name, Config: json.RawMessage(config)})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	def := backupcell.DefaultConfig()
	with := policytest.With(backupcell.DefaultConfig)
	policytest.RunConfigs(t, []policytest.ConfigCase[backupcell.Config]{
		{Config: ``, Want: def},
		{Config: `{}`, Want: def},
		{Config: `null`, Want: def},
		{Config: `{"cellular_names": ["wwan*", "usb0"]}`, Want: with(func(c *backupcell.Config) { c.CellularNames = []string{"wwan*", "usb0"} })},
		{Config: `{"cellular_names": null}`, Want: def},
		{Config: `{"hold_time": "500ms", "close_dead": false}`, Want: with(func(c *backupcell.Config) { c.HoldTime, c.CloseDead = 500*time.Millisecond, false })},
		{Config: `{"hold_time": "0s"}`, Want: with(func(c *backupcell.Config) { c.HoldTime = 0 })},
		{Config: `{"hold": "1s"}`, Err: `policy/backup-cellular: unknown option "hold"`},
		{Config: `{"hold_time": "2"}`, Err: `policy/backup-cellular: option "hold_time": "2" is not a duration (like "500ms" or "2s")`},
		{Config: `{"hold_time": 2000000000}`, Err: `policy/backup-cellular: option "hold_time": cannot use number as string`},
		{Config: `{"hold_time": "-1s"}`, Err: `policy/backup-cellular: option "hold_time": -1s is negative`},
		{Config: `{"cellular_names": ["wwan["]}`, Err: `policy/backup-cellular: option "cellular_names": "wwan[" is not a glob of interface names`},
		{Config: `{"cellular_names": [""]}`, Err: `policy/backup-cellular: option "cellular_names": "" is not a glob of interface names`},
		{Config: `{"cellular_names": "wwan*"}`, Err: `policy/backup-cellular: option "cellular_names": cannot use string as []string`},
		{Config: `{"close_dead": "yes"}`, Err: `policy/backup-cellular: option "close_dead": cannot use string as bool`},
		{Config: `{"backup_at_once": true}`, Want: with(func(c *backupcell.Config) { c.BackupAtOnce = true })},
		{Config: `{"backup_at_once": 1}`, Err: `policy/backup-cellular: option "backup_at_once": cannot use number as bool`},
		{Config: `["wwan0"]`, Err: `policy/backup-cellular: config must be a JSON object`},
	}, policytest.Configured[*backupcell.BackupCell](backupcell.Name))
}

func TestNewCopiesConfig(t *testing.T) {
	t.Parallel()
	cfg := backupcell.DefaultConfig()
	cfg.CellularNames = []string{"wwan*"}
	b, err := backupcell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.CellularNames[0] = "eth*"
	b.Config().CellularNames[0] = "eth*"
	if got := b.Config().CellularNames; !slices.Equal(got, []string{"wwan*"}) {
		t.Errorf("cellular_names = %q after changing the caller's copies", got)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d, got := policytest.Defaults(t, backupcell.Name)
	want := map[string]any{"cellular_names": []string{}, "hold_time": "2s", "close_dead": true, "backup_at_once": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("option defaults (-want +got):\n%s", diff)
	}
	if d.Name != "backup-cellular" || d.Summary == "" {
		t.Errorf("Describe = %+v", d)
	}
}

// The test host: eth0 (index 2) and eth1 (index 3) are wired, wwan0
// (index 4) is cellular by kind, usb0 (index 5) only by name.
var (
	t0   = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	a4   = policytest.Addr("192.0.2.1")     // eth0
	b4   = policytest.Addr("198.51.100.1")  // eth1
	c4   = policytest.Addr("203.0.113.1")   // wwan0
	d6   = policytest.Addr("2001:db8:5::1") // usb0
	r0   = policytest.AddrPort("203.0.113.7:443")
	r6   = policytest.AddrPort("[2001:db8:9::7]:443")
	eth0 = policy.Link{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true}
	eth1 = policy.Link{Name: "eth1", Index: 3, Kind: policy.LinkWired, Up: true, Usable: true}
	wwan = policy.Link{Name: "wwan0", Index: 4, Kind: policy.LinkCellular, Up: true, Usable: true}
	usb0 = policy.Link{Name: "usb0", Index: 5, Kind: policy.LinkUnknown, Up: true, Usable: true}
)

// newHost returns the test host with links and their addresses.
func newHost(links ...policy.Link) policytest.Host {
	h := policytest.Host{Links: slices.Clone(links)}
	for _, l := range links {
		switch l.Name {
		case "eth0":
			h.Addrs = append(h.Addrs, policytest.Local(a4, l))
		case "eth1":
			h.Addrs = append(h.Addrs, policytest.Local(b4, l))
		case "wwan0":
			h.Addrs = append(h.Addrs, policytest.Local(c4, l))
		case "usb0":
			h.Addrs = append(h.Addrs, policytest.Local(d6, l))
		}
	}
	return h
}

func stalledSince(at time.Duration) policy.Health {
	return policy.Health{Unacked: 20, LastAckRecv: 250 * time.Millisecond, Stalled: true, StalledChanged: t0.Add(at)}
}

func recoveredAt(at time.Duration) policy.Health {
	return policy.Health{Unacked: 2, StalledChanged: t0.Add(at)}
}

func TestKernel(t *testing.T) {
	t.Parallel()
	ep := func(a netip.Addr, l policy.Link, backup bool) policy.Endpoint {
		return policy.Endpoint{Addr: a, Dev: l.Name, IfIndex: l.Index, Subflow: true, Fullmesh: true, Backup: backup}
	}
	base := newHost(eth0, wwan)
	tests := []struct {
		name   string
		config string
		host   policytest.Host
		now    time.Duration
		want   []policy.Endpoint
	}{
		{name: "primary works: cellular is backup", host: base, now: time.Hour,
			want: []policy.Endpoint{ep(a4, eth0, false), ep(c4, wwan, true)}},
		{name: "primary up since the start (unknown time)", host: base,
			want: []policy.Endpoint{ep(a4, eth0, false), ep(c4, wwan, true)}},
		{name: "primary address gone: promoted", now: time.Hour,
			host: base.Addr(a4, func(a *policy.LocalAddr) { a.Usable, a.Reason, a.Changed = false, "deprecated", t0.Add(time.Minute) }),
			want: []policy.Endpoint{ep(c4, wwan, false)}},
		{name: "primary link down: promoted", now: time.Hour,
			host: base.Link("eth0", func(l *policy.Link) { l.Up, l.Usable, l.Changed = false, false, t0.Add(time.Minute) }),
			want: []policy.Endpoint{ep(c4, wwan, false)}},
		{name: "primary link stalled: promoted", now: time.Hour,
			host: base.Link("eth0", func(l *policy.Link) { l.Health = stalledSince(time.Hour - time.Second) }),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(c4, wwan, false)}},
		{name: "primary recovered within hold_time: still promoted", now: 10 * time.Second,
			host: base.Link("eth0", func(l *policy.Link) { l.Health = recoveredAt(8*time.Second + time.Millisecond) }),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(c4, wwan, false)}},
		{name: "primary recovered hold_time ago: demoted", now: 10 * time.Second,
			host: base.Link("eth0", func(l *policy.Link) { l.Health = recoveredAt(8 * time.Second) }),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(c4, wwan, true)}},
		{name: "primary link came up within hold_time", now: 10 * time.Second,
			host: base.Link("eth0", func(l *policy.Link) { l.Changed = t0.Add(9 * time.Second) }),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(c4, wwan, false)}},
		{name: "primary address usable within hold_time", now: 10 * time.Second, config: `{"hold_time":"500ms"}`,
			host: base.Addr(a4, func(a *policy.LocalAddr) { a.Changed = t0.Add(9600 * time.Millisecond) }),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(c4, wwan, false)}},
		{name: "hold_time 0 demotes at once", now: 10 * time.Second, config: `{"hold_time":"0s"}`,
			host: base.Link("eth0", func(l *policy.Link) { l.Health = recoveredAt(10 * time.Second) }),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(c4, wwan, true)}},
		{name: "one of two primaries stalled: the other holds", now: time.Hour,
			host: newHost(eth0, eth1, wwan).Link("eth0", func(l *policy.Link) { l.Health = stalledSince(time.Hour - time.Second) }),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(b4, eth1, false), ep(c4, wwan, true)}},
		{name: "cellular by name", config: `{"cellular_names":["usb*"]}`, now: time.Hour,
			host: newHost(eth0, usb0),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(d6, usb0, true)}},
		{name: "not cellular without the name", now: time.Hour, host: newHost(eth0, usb0),
			want: []policy.Endpoint{ep(a4, eth0, false), ep(d6, usb0, false)}},
		{name: "only cellular: promoted", now: time.Hour, host: newHost(wwan),
			want: []policy.Endpoint{ep(c4, wwan, false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := chain(t, tt.config).Kernel(tt.host.View(policy.ModeKernel, t0.Add(tt.now)), policy.KernelPlan{})
			if diff := cmp.Diff(tt.want, got.Endpoints, policytest.NetOpts); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("invalid plan: %v", err)
			}
		})
	}
}

// A client connection from eth0 (the initial subflow) with a subflow over
// wwan0, both established at t0.
var (
	initial  = policy.Subflow{Local: netip.AddrPortFrom(a4, 40000), Remote: r0, Established: true, EstablishedAt: t0}
	cellSub  = policy.Subflow{Local: netip.AddrPortFrom(c4, 40001), Remote: r0, LocalID: 2, Established: true, EstablishedAt: t0, IfIndex: 4}
	eth1Sub  = policy.Subflow{Local: netip.AddrPortFrom(b4, 40002), Remote: r0, LocalID: 1, Established: true, EstablishedAt: t0, IfIndex: 3}
	baseConn = policy.Conn{Token: 1, Side: policy.SideClient, Local: initial.Local, Remote: r0,
		PeerAddrs: []policy.PeerAddr{{Addr: r0}}, Subflows: []policy.Subflow{initial, cellSub}}
)

func conn(subs ...policy.Subflow) policy.Conn {
	c := baseConn
	c.Subflows = subs
	return c
}

func with(s policy.Subflow, f func(*policy.Subflow)) policy.Subflow {
	f(&s)
	return s
}

func path(a netip.Addr, l policy.Link, backup bool) policy.Path {
	return policy.Path{Local: a, Dev: l.Name, IfIndex: l.Index, Remote: r0, Backup: backup}
}

func TestConn(t *testing.T) {
	t.Parallel()
	base := newHost(eth0, wwan)
	stalledInitial := with(initial, func(s *policy.Subflow) { s.Health = stalledSince(10 * time.Second) })
	tests := []struct {
		name   string
		config string
		host   policytest.Host
		conn   policy.Conn
		now    time.Duration
		want   []policy.Path
	}{
		{name: "primary works: cellular path is backup", host: base, conn: baseConn, now: time.Second,
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, true)}},
		{name: "a new connection's cellular subflow is created backup", host: base, conn: conn(initial),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, true)}},
		{name: "primary stalled: promoted and the dead subflow dropped", host: base, now: 10 * time.Second,
			conn: conn(stalledInitial, cellSub),
			want: []policy.Path{path(c4, wwan, false)}},
		{name: "primary stalled, close_dead off: promoted, kept", host: base, config: `{"close_dead":false}`, now: 10 * time.Second,
			conn: conn(stalledInitial, cellSub),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, false)}},
		{name: "primary stalled, cellular not up yet: promoted, kept", host: base, now: 10 * time.Second,
			conn: conn(stalledInitial, with(cellSub, func(s *policy.Subflow) { s.Established = false })),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, false)}},
		{name: "primary stalled, cellular stalled too: kept", host: base, now: 10 * time.Second,
			conn: conn(stalledInitial, with(cellSub, func(s *policy.Subflow) { s.Health = stalledSince(10 * time.Second) })),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, false)}},
		{name: "primary subflow closed: promoted, re-created", host: base, now: 10 * time.Second, conn: conn(cellSub),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, false)}},
		{name: "primary address gone: promoted", now: 10 * time.Second, conn: baseConn,
			host: base.Addr(a4, func(a *policy.LocalAddr) { a.Usable, a.Reason = false, "deprecated" }),
			want: []policy.Path{path(c4, wwan, false)}},
		{name: "primary link down: promoted", now: 10 * time.Second, conn: baseConn,
			host: base.Link("eth0", func(l *policy.Link) { l.Up, l.Usable = false, false }),
			want: []policy.Path{path(c4, wwan, false)}},
		{name: "primary link stalled, subflow idle: promoted, not dropped", now: 10 * time.Second, conn: baseConn,
			host: base.Link("eth0", func(l *policy.Link) { l.Health = stalledSince(10 * time.Second) }),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, false)}},
		{name: "new primary subflow within hold_time: promoted", host: base, now: 11 * time.Second,
			conn: conn(cellSub, with(initial, func(s *policy.Subflow) {
				s.Local, s.EstablishedAt = netip.AddrPortFrom(a4, 40005), t0.Add(9*time.Second+time.Millisecond)
			})),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, false)}},
		{name: "new primary subflow hold_time ago: demoted", host: base, now: 11 * time.Second,
			conn: conn(cellSub, with(initial, func(s *policy.Subflow) {
				s.Local, s.EstablishedAt = netip.AddrPortFrom(a4, 40005), t0.Add(9*time.Second)
			})),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, true)}},
		{name: "subflow recovered within hold_time: promoted", host: base, now: 11 * time.Second,
			conn: conn(with(initial, func(s *policy.Subflow) { s.Health = recoveredAt(10 * time.Second) }), cellSub),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, false)}},
		{name: "link recovered within hold_time: promoted", conn: baseConn, now: 11 * time.Second,
			host: base.Link("eth0", func(l *policy.Link) { l.Health = recoveredAt(10 * time.Second) }),
			want: []policy.Path{path(a4, eth0, false), path(c4, wwan, false)}},
		{name: "one of two primaries stalled: the other holds, the dead one dropped", now: 11 * time.Second,
			host: newHost(eth0, eth1, wwan), conn: conn(stalledInitial, eth1Sub, cellSub),
			want: []policy.Path{path(b4, eth1, false), path(c4, wwan, true)}},
		{name: "cellular by name", config: `{"cellular_names":["usb?"]}`, now: time.Second,
			host: newHost(eth0, usb0), conn: policy.Conn{Side: policy.SideClient, Local: policytest.AddrPort("[2001:db8:1::1]:40000"), Remote: r6,
				Subflows: []policy.Subflow{{Local: policytest.AddrPort("[2001:db8:1::1]:40000"), Remote: r6, Established: true}}},
			want: []policy.Path{{Local: policytest.Addr("2001:db8:1::1"), Remote: r6}, {Local: d6, Dev: "usb0", IfIndex: 5, Remote: r6, Backup: true}}},
		{name: "IPv4-mapped subflows", host: base, now: 10 * time.Second,
			conn: policy.Conn{Side: policy.SideClient, Local: policytest.AddrPort("[::ffff:192.0.2.1]:40000"), Remote: policytest.AddrPort("[::ffff:203.0.113.7]:443"),
				Subflows: []policy.Subflow{
					with(stalledInitial, func(s *policy.Subflow) {
						s.Local, s.Remote = policytest.AddrPort("[::ffff:192.0.2.1]:40000"), policytest.AddrPort("[::ffff:203.0.113.7]:443")
					}),
					with(cellSub, func(s *policy.Subflow) { s.Local = policytest.AddrPort("[::ffff:203.0.113.1]:40001") }),
				}},
			want: []policy.Path{path(c4, wwan, false)}},
		{name: "server side: backup bits, nothing dropped", host: base, now: 10 * time.Second,
			conn: policy.Conn{Side: policy.SideServer, Local: policytest.AddrPort("192.0.2.1:443"), Remote: policytest.AddrPort("203.0.113.50:50000"),
				Subflows: []policy.Subflow{
					{Local: policytest.AddrPort("192.0.2.1:443"), Remote: policytest.AddrPort("203.0.113.50:50000"), Established: true, Health: stalledSince(9 * time.Second)},
					{Local: policytest.AddrPort("203.0.113.1:443"), Remote: policytest.AddrPort("203.0.113.51:50001"), Established: true, IfIndex: 4},
				}},
			want: []policy.Path{
				{Local: a4, Dev: "eth0", IfIndex: 2, Remote: policytest.AddrPort("203.0.113.50:50000")},
				{Local: c4, Dev: "wwan0", IfIndex: 4, Remote: policytest.AddrPort("203.0.113.51:50001")},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := chain(t, tt.config).Conn(tt.host.View(policy.ModeUserspace, t0.Add(tt.now)), tt.conn, policy.ConnPlan{})
			if diff := cmp.Diff(tt.want, got.Paths, policytest.NetOpts); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("invalid plan: %v", err)
			}
		})
	}
}

// TestFailoverTimeline walks one connection through a failover as the
// engine would present it, with a fake clock: stall, promotion and
// closing, a probe over the dead link, a flapping recovery, and the
// demotion hold_time after the primary has worked without interruption.
func TestFailoverTimeline(t *testing.T) {
	t.Parallel()
	c := chain(t, `{"hold_time":"1s"}`)
	h := newHost(eth0, wwan)
	s := time.Second
	ms := time.Millisecond
	probe := func(port uint16, est time.Duration, health policy.Health) policy.Subflow {
		return policy.Subflow{Local: netip.AddrPortFrom(a4, port), Remote: r0, Established: true,
			EstablishedAt: t0.Add(est), Health: health}
	}
	type step struct {
		at     time.Duration
		host   policytest.Host
		subs   []policy.Subflow
		backup bool // the cellular path's bit
		dead   bool // the primary path left out
	}
	steps := []step{
		{at: 0, subs: []policy.Subflow{initial}, backup: true},
		{at: s, subs: []policy.Subflow{initial, cellSub}, backup: true},
		{at: 5 * s, subs: []policy.Subflow{with(initial, func(s *policy.Subflow) { s.Health.Unacked = 30 }), cellSub}, backup: true},
		// The path went silent at 5 s; the sampler reports the stall.
		{at: 5*s + 205*ms, subs: []policy.Subflow{with(initial, func(x *policy.Subflow) { x.Health = stalledSince(5*s + 205*ms) }), cellSub},
			backup: false, dead: true},
		// The engine closed it; the base policy proposes the path again
		// (a probe) while the cellular path stays promoted.
		{at: 5*s + 210*ms, subs: []policy.Subflow{cellSub}, backup: false},
		{at: 7 * s, subs: []policy.Subflow{cellSub}, backup: false},
		// The probe comes up when the link works again...
		{at: 8 * s, subs: []policy.Subflow{cellSub, probe(40010, 8*s, policy.Health{})}, backup: false},
		// ...stalls once more within hold_time...
		{at: 8*s + 600*ms, subs: []policy.Subflow{cellSub, probe(40010, 8*s, stalledSince(8*s+600*ms))}, backup: false, dead: true},
		{at: 8*s + 610*ms, subs: []policy.Subflow{cellSub}, backup: false},
		// ...and a new probe that keeps working.
		{at: 9 * s, subs: []policy.Subflow{cellSub, probe(40011, 9*s, policy.Health{})}, backup: false},
		{at: 9*s + 999*ms, subs: []policy.Subflow{cellSub, probe(40011, 9*s, policy.Health{})}, backup: false},
		{at: 10 * s, subs: []policy.Subflow{cellSub, probe(40011, 9*s, policy.Health{})}, backup: true},
		// A short stall recovered by the kernel itself (no close) restarts
		// the hold time from its end.
		{at: 12 * s, subs: []policy.Subflow{cellSub, probe(40011, 9*s, stalledSince(12*s))}, backup: false, dead: true},
		{at: 12*s + 100*ms, subs: []policy.Subflow{cellSub, probe(40011, 9*s, recoveredAt(12*s+100*ms))}, backup: false},
		{at: 13*s + 99*ms, subs: []policy.Subflow{cellSub, probe(40011, 9*s, recoveredAt(12*s+100*ms))}, backup: false},
		{at: 13*s + 100*ms, subs: []policy.Subflow{cellSub, probe(40011, 9*s, recoveredAt(12*s+100*ms))}, backup: true},
		// The link goes down: promoted at once, back hold_time after it
		// is up again.
		{at: 20 * s, host: h.Link("eth0", func(l *policy.Link) { l.Up, l.Usable, l.Changed = false, false, t0.Add(20*s) }),
			subs: []policy.Subflow{cellSub}, backup: false, dead: true},
		{at: 21 * s, host: h.Link("eth0", func(l *policy.Link) { l.Changed = t0.Add(21 * s) }),
			subs: []policy.Subflow{cellSub, probe(40012, 21*s, policy.Health{})}, backup: false},
		{at: 22 * s, host: h.Link("eth0", func(l *policy.Link) { l.Changed = t0.Add(21 * s) }),
			subs: []policy.Subflow{cellSub, probe(40012, 21*s, policy.Health{})}, backup: true},
	}
	for _, st := range steps {
		hs := st.host
		if hs.Links == nil {
			hs = h
		}
		got := c.Conn(hs.View(policy.ModeUserspace, t0.Add(st.at)), conn(st.subs...), policy.ConnPlan{})
		want := []policy.Path{path(c4, wwan, st.backup)}
		if !st.dead {
			want = append([]policy.Path{path(a4, eth0, false)}, want...)
		}
		if diff := cmp.Diff(want, got.Paths, policytest.NetOpts); diff != "" {
			t.Errorf("at %v: paths (-want +got):\n%s", st.at, diff)
		}
	}
}

// TestConnDeferral: behind fullmesh with a join_delay, a young
// connection's cellular path kept as backup stays deferred unless
// backup_at_once; a promoted one is never deferred; a primary path keeps
// its deferral.
func TestConnDeferral(t *testing.T) {
	t.Parallel()
	young := conn(initial)
	young.Created = t0
	held := policy.Deferral{NotBefore: t0.Add(time.Second)}
	tests := []struct {
		name   string
		config string
		host   policytest.Host
		now    time.Duration
		want   map[netip.Addr]policy.Deferral
	}{
		{"backup deferred", `{"hold_time":"0s"}`, newHost(eth0, eth1, wwan), 0,
			map[netip.Addr]policy.Deferral{a4: {}, b4: held, c4: held}},
		{"backup at once", `{"hold_time":"0s","backup_at_once":true}`, newHost(eth0, eth1, wwan), 0,
			map[netip.Addr]policy.Deferral{a4: {}, b4: held, c4: {}}},
		{"promoted", `{}`, newHost(eth0, eth1, wwan).Addr(a4, func(a *policy.LocalAddr) { a.Usable = false }), 0,
			map[netip.Addr]policy.Deferral{b4: held, c4: {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := policytest.Chain(t,
				policy.Spec{Name: "fullmesh", Config: json.RawMessage(`{"join_delay":"1s","join_bytes":0}`)},
				policy.Spec{Name: backupcell.Name, Config: json.RawMessage(tt.config)})
			plan := c.Conn(tt.host.View(policy.ModeUserspace, t0.Add(tt.now)), young, policy.ConnPlan{})
			got := map[netip.Addr]policy.Deferral{}
			for _, p := range plan.Paths {
				got[p.Local] = p.Deferral
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("deferrals by local address (-want +got):\n%s", diff)
			}
		})
	}
}
