package costaware_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/plugins/costaware"
	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// build returns fullmesh then cost-aware with the config, as the daemon
// runs them.
func build(t testing.TB, config string) *policy.Chain {
	t.Helper()
	return policytest.Chain(t, policy.Spec{Name: "fullmesh"}, policy.Spec{Name: costaware.Name, Config: json.RawMessage(config)})
}

func TestConfig(t *testing.T) {
	t.Parallel()
	def := costaware.DefaultConfig()
	with := policytest.With(costaware.DefaultConfig)
	policytest.RunConfigs(t, []policytest.ConfigCase[costaware.Config]{
		{Config: ``, Want: def},
		{Config: `{}`, Want: def},
		{Config: `null`, Want: def},
		{Config: `{"standby": "backup", "at_quota": "backup"}`,
			Want: with(func(c *costaware.Config) { c.Standby, c.AtQuota = costaware.Backup, costaware.Backup })},
		{Config: `{"aggregate_budget": "500MB", "aggregate_cost": 1.5}`,
			Want: with(func(c *costaware.Config) { c.AggregateBudget, c.AggregateCost = "500MB", 1.5 })},
		{Config: `{"links": [{"name": "wwan*", "standby": "backup", "aggregate_budget": "0", "aggregate_cost": 0}]}`,
			Want: with(func(c *costaware.Config) {
				c.Links = []costaware.LinkConfig{{Name: "wwan*", Standby: costaware.Backup, AggregateBudget: "0", AggregateCost: new(0.0)}}
			})},
		{Config: `{"standby": "drop"}`, Err: `policy/cost-aware: option "standby": "drop" is not withdraw or backup`},
		{Config: `{"at_quota": ""}`, Err: `policy/cost-aware: option "at_quota": "" is not withdraw or backup`},
		{Config: `{"aggregate_budget": "lots"}`, Err: `policy/cost-aware: option "aggregate_budget": "lots" is not a size such as "500MB" or "1GiB"`},
		{Config: `{"aggregate_budget": 500}`, Err: `policy/cost-aware: option "aggregate_budget": cannot use number as string`},
		{Config: `{"aggregate_cost": -1}`, Err: `policy/cost-aware: option "aggregate_cost": -1 is not a cost of 0 or more`},
		{Config: `{"quota": "2MB"}`, Err: `policy/cost-aware: unknown option "quota"`},
		{Config: `{"links": [{"standby": "backup"}]}`, Err: `policy/cost-aware: option "links[0].name": missing`},
		{Config: `{"links": [{"name": "wwan["}]}`, Err: `policy/cost-aware: option "links[0].name": "wwan[" is not a valid glob: syntax error in pattern`},
		{Config: `{"links": [{"name": "a"}, {"name": "b", "at_quota": "stop"}]}`, Err: `policy/cost-aware: option "links[1].at_quota": "stop" is not withdraw or backup`},
		{Config: `{"links": [{"name": "a", "aggregate_budget": "1XB"}]}`, Err: `policy/cost-aware: option "links[0].aggregate_budget": "1XB" is not a size such as "500MB" or "1GiB"`},
		{Config: `{"links": [{"name": "a", "aggregate_cost": -0.5}]}`, Err: `policy/cost-aware: option "links[0].aggregate_cost": -0.5 is not a cost of 0 or more`},
		{Config: `{"links": [{"name": "a", "metered": "yes"}]}`, Err: `policy/cost-aware: unknown option "links[0].metered"`},
		{Config: `["withdraw"]`, Err: `policy/cost-aware: config must be a JSON object`},
	}, policytest.Configured[*costaware.CostAware](costaware.Name))
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d, got := policytest.Defaults(t, costaware.Name)
	want := map[string]any{"standby": "withdraw", "at_quota": "withdraw", "aggregate_budget": "", "aggregate_cost": 0.0, "links": []any{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("option defaults (-want +got):\n%s", diff)
	}
	if d.Name != "cost-aware" || d.Summary == "" {
		t.Errorf("Describe = %+v", d)
	}
}

// The test host: eth0 (index 2) is wired and free with IPv4 and IPv6,
// wwan0 (index 3) is cellular and metered with a 2 MB quota and IPv4 and
// IPv6, wwan1 (index 4) is metered with IPv4 only.
var (
	eth4, eth6   = policytest.Addr("192.0.2.1"), policytest.Addr("2001:db8:1::1")
	wwan4, wwan6 = policytest.Addr("198.51.100.1"), policytest.Addr("2001:db8:2::1")
	wwan14       = policytest.Addr("203.0.113.1")
)

// now is the time of the test host's views.
var now = time.Date(2025, 2, 10, 12, 0, 0, 0, time.UTC)

func newHost() policytest.Host {
	eth0 := policy.Link{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true}
	wwan0 := policy.Link{Name: "wwan0", Index: 3, Kind: policy.LinkCellular, Up: true, Usable: true, Metered: true, CostPerGB: 10,
		QuotaBytes: 2_000_000, UsageSince: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)}
	wwan1 := policy.Link{Name: "wwan1", Index: 4, Kind: policy.LinkCellular, Up: true, Usable: true, Metered: true}
	return policytest.Host{
		Links: []policy.Link{eth0, wwan0, wwan1},
		Addrs: []policy.LocalAddr{
			policytest.Local(eth4, eth0), policytest.Local(eth6, eth0),
			policytest.Local(wwan4, wwan0), policytest.Local(wwan6, wwan0),
			policytest.Local(wwan14, wwan1),
		},
	}
}

// freeLinkDown is the test host with eth0 down and its addresses
// unusable.
func freeLinkDown() policytest.Host {
	return newHost().Link("eth0", down).Addr(eth4, unusable).Addr(eth6, unusable)
}

func down(l *policy.Link) { l.Up, l.Usable = false, false }

func unusable(a *policy.LocalAddr) { a.Usable = false }

func usedBytes(n uint64) func(*policy.Link) { return func(l *policy.Link) { l.UsedBytes = n } }

// ep is the fullmesh client endpoint of a, with backup.
func ep(a netip.Addr, backup bool) policy.Endpoint {
	e := policy.Endpoint{Addr: a, Subflow: true, Fullmesh: true, Backup: backup}
	switch a {
	case eth4, eth6:
		e.Dev, e.IfIndex = "eth0", 2
	case wwan4, wwan6:
		e.Dev, e.IfIndex = "wwan0", 3
	case wwan14:
		e.Dev, e.IfIndex = "wwan1", 4
	}
	return e
}

func TestKernel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		host   policytest.Host
		want   []policy.Endpoint
	}{
		{
			name: "metered links withdrawn while a free link is usable",
			host: newHost(),
			want: []policy.Endpoint{ep(eth4, false), ep(eth6, false)},
		},
		{
			name:   "standby backup",
			config: `{"standby":"backup"}`,
			host:   newHost(),
			want:   []policy.Endpoint{ep(eth4, false), ep(wwan4, true), ep(wwan14, true), ep(eth6, false), ep(wwan6, true)},
		},
		{
			name: "all metered links used when the free link is down",
			host: freeLinkDown(),
			want: []policy.Endpoint{ep(wwan4, false), ep(wwan14, false), ep(wwan6, false)},
		},
		{
			name: "a stalled free link is no alternative",
			host: newHost().Link("eth0", func(l *policy.Link) { l.Health.Stalled = true }),
			want: []policy.Endpoint{ep(eth4, false), ep(wwan4, false), ep(wwan14, false), ep(eth6, false), ep(wwan6, false)},
		},
		{
			name: "a metered free link is no alternative",
			host: newHost().Link("eth0", func(l *policy.Link) { l.Metered = true }),
			want: []policy.Endpoint{ep(eth4, false), ep(wwan4, false), ep(wwan14, false), ep(eth6, false), ep(wwan6, false)},
		},
		{
			name: "the free link is an alternative for its family only",
			host: newHost().Addr(eth4, unusable),
			want: []policy.Endpoint{ep(wwan4, false), ep(wwan14, false), ep(eth6, false)},
		},
		{
			name: "at the quota: withdrawn",
			host: freeLinkDown().Link("wwan0", usedBytes(2_000_000)),
			want: []policy.Endpoint{ep(wwan14, false)},
		},
		{
			name: "just below the quota: used",
			host: freeLinkDown().Link("wwan0", usedBytes(1_999_999)),
			want: []policy.Endpoint{ep(wwan4, false), ep(wwan14, false), ep(wwan6, false)},
		},
		{
			name:   "at the quota: backup",
			config: `{"at_quota":"backup"}`,
			host:   freeLinkDown().Link("wwan0", usedBytes(3_000_000)),
			want:   []policy.Endpoint{ep(wwan4, true), ep(wwan14, false), ep(wwan6, true)},
		},
		{
			name: "a free link at its quota is withdrawn and no alternative",
			host: newHost().Link("eth0", func(l *policy.Link) { l.QuotaBytes, l.UsedBytes = 100, 100 }),
			want: []policy.Endpoint{ep(wwan4, false), ep(wwan14, false), ep(wwan6, false)},
		},
		{
			name:   "within the aggregation budget",
			config: `{"aggregate_budget":"1MB"}`,
			host:   newHost().Link("wwan0", usedBytes(999_999)),
			want:   []policy.Endpoint{ep(eth4, false), ep(wwan4, false), ep(wwan14, false), ep(eth6, false), ep(wwan6, false)},
		},
		{
			name:   "aggregation budget spent",
			config: `{"aggregate_budget":"1MB"}`,
			host:   newHost().Link("wwan0", usedBytes(1_000_000)),
			want:   []policy.Endpoint{ep(eth4, false), ep(wwan14, false), ep(eth6, false)},
		},
		{
			// wwan0 costs 10 per GB: 0.0099 for 990 kB.
			// wwan1 has no price: no aggregation by cost.
			name:   "within the aggregation cost",
			config: `{"aggregate_cost":0.01}`,
			host:   newHost().Link("wwan0", usedBytes(990_000)),
			want:   []policy.Endpoint{ep(eth4, false), ep(wwan4, false), ep(eth6, false), ep(wwan6, false)},
		},
		{
			name:   "aggregation cost spent",
			config: `{"aggregate_cost":0.01}`,
			host:   newHost().Link("wwan0", usedBytes(1_000_000)),
			want:   []policy.Endpoint{ep(eth4, false), ep(eth6, false)},
		},
		{
			// wwan1, without a price, has the byte budget only.
			name:   "the first budget spent ends the aggregation",
			config: `{"aggregate_budget":"5MB","aggregate_cost":0.01}`,
			host:   newHost().Link("wwan0", usedBytes(1_000_000)),
			want:   []policy.Endpoint{ep(eth4, false), ep(wwan14, false), ep(eth6, false)},
		},
		{
			name:   "per-link overrides, first match",
			config: `{"links":[{"name":"wwan1","standby":"backup"},{"name":"wwan*","aggregate_budget":"1GB"}]}`,
			host:   newHost(),
			want:   []policy.Endpoint{ep(eth4, false), ep(wwan4, false), ep(wwan14, true), ep(eth6, false), ep(wwan6, false)},
		},
		{
			name:   "per-link override disables the budget",
			config: `{"aggregate_budget":"1GB","links":[{"name":"wwan0","aggregate_budget":"0"}]}`,
			host:   newHost(),
			want:   []policy.Endpoint{ep(eth4, false), ep(wwan14, false), ep(eth6, false)},
		},
		{
			name: "links the view does not list are left alone",
			host: func() policytest.Host {
				h := newHost()
				h.Links = h.Links[:1]
				return h
			}(),
			want: []policy.Endpoint{ep(eth4, false), ep(wwan4, false), ep(wwan14, false), ep(eth6, false), ep(wwan6, false)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := build(t, tt.config).Kernel(tt.host.View(policy.ModeKernel, now), policy.KernelPlan{})
			if diff := cmp.Diff(tt.want, got.Endpoints, policytest.NetOpts); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("invalid plan: %v", err)
			}
		})
	}
}

// TestKernelFindsLinks: endpoints proposed without an interface index are
// matched to their link by device name or by address.
func TestKernelFindsLinks(t *testing.T) {
	t.Parallel()
	p, err := costaware.New(costaware.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	next := policy.KernelPlan{Endpoints: []policy.Endpoint{
		{Addr: eth4, Subflow: true}, {Addr: wwan4, Dev: "wwan0", Subflow: true}, {Addr: wwan14, Subflow: true},
		{Addr: policytest.Addr("192.0.2.99"), Subflow: true},
	}}
	got := p.Kernel(newHost().View(policy.ModeKernel, now), next)
	want := []policy.Endpoint{{Addr: eth4, Subflow: true}, {Addr: policytest.Addr("192.0.2.99"), Subflow: true}}
	if diff := cmp.Diff(want, got.Endpoints, policytest.NetOpts); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
}

var (
	peer  = policytest.AddrPort("203.0.113.80:443")
	peer6 = policytest.AddrPort("[2001:db8:99::1]:443")
)

func path(local netip.Addr, remote netip.AddrPort, backup bool) policy.Path {
	e := ep(local, false)
	return policy.Path{Local: local, Dev: e.Dev, IfIndex: e.IfIndex, Remote: remote, Backup: backup}
}

func TestConn(t *testing.T) {
	t.Parallel()
	client := func(local netip.Addr) policy.Conn {
		la := netip.AddrPortFrom(local, 40000)
		return policy.Conn{Side: policy.SideClient, Local: la, Remote: peer,
			PeerAddrs: []policy.PeerAddr{{ID: 1, Addr: peer6, Source: policy.SourceAnnounced}},
			Subflows:  []policy.Subflow{{Local: la, Remote: peer, Established: true}}}
	}
	server := policy.Conn{Side: policy.SideServer, Local: netip.AddrPortFrom(eth4, 443), Remote: policytest.AddrPort("203.0.113.9:50000"),
		Subflows: []policy.Subflow{
			{Local: netip.AddrPortFrom(eth4, 443), Remote: policytest.AddrPort("203.0.113.9:50000"), Established: true},
			{Local: netip.AddrPortFrom(wwan4, 443), Remote: policytest.AddrPort("203.0.113.9:50001"), Established: true},
		}}
	srv := func(local netip.Addr, port uint16, backup bool) policy.Path {
		return path(local, netip.AddrPortFrom(policytest.Addr("203.0.113.9"), port), backup)
	}
	announce := func(a netip.Addr) policy.Announce {
		e := ep(a, false)
		return policy.Announce{Addr: a, Dev: e.Dev, IfIndex: e.IfIndex}
	}
	tests := []struct {
		name   string
		config string
		host   policytest.Host
		conn   policy.Conn
		want   policy.ConnPlan
	}{
		{
			name: "metered paths dropped while a free path exists",
			host: newHost(), conn: client(eth4),
			want: policy.ConnPlan{Paths: []policy.Path{path(eth4, peer, false), path(eth6, peer6, false)}},
		},
		{
			name: "standby backup",
			host: newHost(), conn: client(eth4), config: `{"standby":"backup"}`,
			want: policy.ConnPlan{Paths: []policy.Path{
				path(eth4, peer, false), path(wwan4, peer, true), path(wwan14, peer, true), path(eth6, peer6, false), path(wwan6, peer6, true),
			}},
		},
		{
			name: "metered paths used while the free link is down",
			host: freeLinkDown(), conn: client(wwan4),
			want: policy.ConnPlan{Paths: []policy.Path{path(wwan4, peer, false), path(wwan14, peer, false), path(wwan6, peer6, false)}},
		},
		{
			name: "a metered initial path is dropped too",
			host: newHost(), conn: client(wwan4),
			want: policy.ConnPlan{Paths: []policy.Path{path(eth4, peer, false), path(eth6, peer6, false)}},
		},
		{
			name: "at the quota: paths dropped and their addresses withdrawn, the last subflow's too",
			host: freeLinkDown().Link("wwan0", usedBytes(2_000_000)), conn: client(wwan4),
			want: policy.ConnPlan{Paths: []policy.Path{path(wwan14, peer, false)}, Withdraw: []netip.Addr{wwan4, wwan6}},
		},
		{
			name: "at the quota: backup",
			host: freeLinkDown().Link("wwan0", usedBytes(2_000_000)), conn: client(wwan14),
			config: `{"at_quota":"backup"}`,
			want:   policy.ConnPlan{Paths: []policy.Path{path(wwan4, peer, true), path(wwan14, peer, false), path(wwan6, peer6, true)}},
		},
		{
			name: "within the aggregation budget",
			host: newHost().Link("wwan0", usedBytes(10)), conn: client(eth4), config: `{"links":[{"name":"wwan0","aggregate_budget":"1MB"}]}`,
			want: policy.ConnPlan{Paths: []policy.Path{path(eth4, peer, false), path(wwan4, peer, false), path(eth6, peer6, false), path(wwan6, peer6, false)}},
		},
		{
			name: "server: subflows the peer opened are made backup, announces withdrawn",
			host: newHost(), conn: server,
			want: policy.ConnPlan{
				Paths:     []policy.Path{srv(eth4, 50000, false), srv(wwan4, 50001, true)},
				Announces: []policy.Announce{announce(eth6)},
			},
		},
		{
			name: "server, standby backup: announces kept",
			host: newHost(), conn: server, config: `{"standby":"backup"}`,
			want: policy.ConnPlan{
				Paths:     []policy.Path{srv(eth4, 50000, false), srv(wwan4, 50001, true)},
				Announces: []policy.Announce{announce(wwan4), announce(wwan14), announce(eth6), announce(wwan6)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := build(t, tt.config).Conn(tt.host.View(policy.ModeUserspace, now), tt.conn, policy.ConnPlan{})
			if diff := cmp.Diff(tt.want, got, policytest.NetOpts, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("invalid plan: %v", err)
			}
		})
	}
}

// TestQuotaTransition follows a metered link with a 2 MB quota through
// the story of the issue, as the daemon's views would tell it: the free
// link goes down, the metered link carries the traffic until its quota,
// then it is withdrawn (or made backup) and stays so when the free link
// returns, until a new period starts.
func TestQuotaTransition(t *testing.T) {
	t.Parallel()
	type step struct {
		name   string
		ethUp  bool
		used   uint64
		period int // months after February
		want   string
	}
	steps := []step{
		{"free link up", true, 0, 0, "standby"},
		{"free link down", false, 0, 0, "used"},
		{"carrying", false, 1_500_000, 0, "used"},
		{"quota reached", false, 2_000_000, 0, "quota"},
		{"past the quota", false, 2_100_000, 0, "quota"},
		{"free link back", true, 2_100_000, 0, "quota"},
		{"new period, free link up", true, 0, 1, "standby"},
		{"new period, free link down", false, 0, 1, "used"},
	}
	for _, atQuota := range []costaware.Action{costaware.Withdraw, costaware.Backup} {
		t.Run(string(atQuota), func(t *testing.T) {
			t.Parallel()
			c := build(t, `{"at_quota":"`+string(atQuota)+`"}`)
			for _, s := range steps {
				h := newHost()
				if !s.ethUp {
					h = freeLinkDown()
				}
				h = h.Link("wwan0", func(l *policy.Link) {
					l.UsedBytes = s.used
					l.UsageSince = time.Date(2025, time.Month(2+s.period), 1, 0, 0, 0, 0, time.UTC)
				})
				var got string
				e, ok := find(c.Kernel(h.View(policy.ModeKernel, now), policy.KernelPlan{}).Endpoints, wwan4)
				switch {
				case !ok && s.ethUp && s.used < 2_000_000:
					got = "standby"
				case ok && !e.Backup && !s.ethUp && s.used < 2_000_000:
					got = "used"
				case !ok && atQuota == costaware.Withdraw, ok && e.Backup && atQuota == costaware.Backup:
					got = "quota"
				default:
					got = "unexpected: present " + map[bool]string{true: "yes", false: "no"}[ok]
				}
				if got != s.want {
					t.Errorf("%s: wwan0's endpoint is %s, want %s", s.name, got, s.want)
				}
			}
		})
	}
}

func find(eps []policy.Endpoint, a netip.Addr) (policy.Endpoint, bool) {
	for _, e := range eps {
		if e.Addr == a {
			return e, true
		}
	}
	return policy.Endpoint{}, false
}

// TestConnDeferral: cost-aware keeps the deferral the base policy gave
// the paths it keeps, backup ones included.
func TestConnDeferral(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 2, 10, 11, 59, 59, 990e6, time.UTC)
	la := netip.AddrPortFrom(eth4, 40000)
	c := policy.Conn{Side: policy.SideClient, Local: la, Remote: peer, Created: created,
		PeerAddrs: []policy.PeerAddr{{ID: 1, Addr: peer6, Source: policy.SourceAnnounced}},
		Subflows:  []policy.Subflow{{Local: la, Remote: peer, Established: true}}}
	ch := policytest.Chain(t,
		policy.Spec{Name: "fullmesh", Config: json.RawMessage(`{"join_delay":"1s","join_bytes":1000}`)},
		policy.Spec{Name: costaware.Name, Config: json.RawMessage(`{"standby":"backup"}`)})
	plan := ch.Conn(newHost().View(policy.ModeUserspace, now), c, policy.ConnPlan{})
	held := policy.Deferral{NotBefore: created.Add(time.Second), AfterBytes: 1000}
	kept := 0
	for _, p := range plan.Paths {
		want := held
		if p.Local == eth4 && p.Remote == peer {
			want = policy.Deferral{}
		}
		if p.Deferral != want {
			t.Errorf("path %s -> %s: deferral %+v, want %+v", p.Local, p.Remote, p.Deferral, want)
		}
		if p.Backup {
			kept++
		}
	}
	if kept == 0 {
		t.Errorf("no metered path kept as backup in %+v: the test proves nothing", plan.Paths)
	}
}
