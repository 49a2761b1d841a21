package fullmesh_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// build returns fullmesh with the config in a chain, as the engine runs it.
func build(t *testing.T, config string) *policy.Chain {
	t.Helper()
	return policytest.Chain(t, policy.Spec{Name: fullmesh.Name, Config: json.RawMessage(config)})
}

// TestConfig checks options with one-line configurations, good and bad.
func TestConfig(t *testing.T) {
	t.Parallel()
	def := fullmesh.DefaultConfig()
	with := policytest.With(fullmesh.DefaultConfig)
	policytest.RunConfigs(t, []policytest.ConfigCase[fullmesh.Config]{
		{Config: ``, Want: def},
		{Config: `{}`, Want: def},
		{Config: `null`, Want: def},
		{Config: `{"role": "server"}`, Want: with(func(c *fullmesh.Config) { c.Role = fullmesh.RoleServer })},
		{Config: `{"role": "both", "families": "ipv6"}`, Want: with(func(c *fullmesh.Config) { c.Role, c.Families = fullmesh.RoleBoth, fullmesh.FamiliesIPv6 })},
		{Config: `{"families": "ipv4"}`, Want: with(func(c *fullmesh.Config) { c.Families = fullmesh.FamiliesIPv4 })},
		{Config: `{"max_subflows": 1, "announce": false}`, Want: with(func(c *fullmesh.Config) { c.MaxSubflows, c.Announce = 1, false })},
		{Config: `{"limits": {"subflows": 4}}`, Want: with(func(c *fullmesh.Config) { c.Limits.Subflows = new(uint32(4)) })},
		{Config: `{"limits": {"add_addr_accepted": null}}`, Want: with(func(c *fullmesh.Config) { c.Limits.AddAddrAccepted = nil })},
		{Config: `{"limits": {"subflows": 0, "add_addr_accepted": 0}}`, Want: with(func(c *fullmesh.Config) {
			c.Limits = policy.Limits{Subflows: new(uint32(0)), AddAddrAccepted: new(uint32(0))}
		})},
		{Config: `{"join_delay": "0s", "join_bytes": 0}`, Want: with(func(c *fullmesh.Config) { c.JoinDelay, c.JoinBytes = 0, 0 })},
		{Config: `{"join_delay": "1.5s", "join_bytes": 1000000}`, Want: with(func(c *fullmesh.Config) { c.JoinDelay, c.JoinBytes = 1500*time.Millisecond, 1000000 })},
		{Config: `{"join_delay": "1h"}`, Want: with(func(c *fullmesh.Config) { c.JoinDelay = time.Hour })},
		{Config: `{"join_delay": "0s"}`, Want: with(func(c *fullmesh.Config) { c.JoinDelay = 0 })},
		{Config: `{"join_delay": "0s", "join_bytes": 1}`, Err: `policy/fullmesh: option "join_bytes": 1 needs a join_delay (0s opens every path at once)`},
		{Config: `{"join_delay": "61m"}`, Err: `policy/fullmesh: option "join_delay": 1h1m0s is longer than 1h0m0s`},
		{Config: `{"join_delay": "-1ms"}`, Err: `policy/fullmesh: option "join_delay": -1ms is negative`},
		{Config: `{"join_delay": "soon"}`, Err: `policy/fullmesh: option "join_delay": "soon" is not a duration (like "50ms" or "1s")`},
		{Config: `{"join_delay": 50}`, Err: `policy/fullmesh: option "join_delay": cannot use number as string`},
		{Config: `{"join_bytes": -1}`, Err: `policy/fullmesh: option "join_bytes": cannot use number -1 as uint64`},
		{Config: `{"max_subflow": 4}`, Err: `policy/fullmesh: unknown option "max_subflow"`},
		{Config: `{"limits": {"subflow": 4}}`, Err: `policy/fullmesh: unknown option "limits.subflow"`},
		{Config: `{"role": "sever"}`, Err: `policy/fullmesh: option "role": "sever" is not client, server or both`},
		{Config: `{"role": ""}`, Err: `policy/fullmesh: option "role": "" is not client, server or both`},
		{Config: `{"families": "inet"}`, Err: `policy/fullmesh: option "families": "inet" is not both, ipv4 or ipv6`},
		{Config: `{"max_subflows": 0}`, Err: `policy/fullmesh: option "max_subflows": 0 is not in 1..8`},
		{Config: `{"max_subflows": 9}`, Err: `policy/fullmesh: option "max_subflows": 9 is not in 1..8`},
		{Config: `{"max_subflows": "8"}`, Err: `policy/fullmesh: option "max_subflows": cannot use string as int`},
		{Config: `{"announce": 1}`, Err: `policy/fullmesh: option "announce": cannot use number as bool`},
		{Config: `{"limits": {"subflows": 9}}`, Err: `policy/fullmesh: option "limits.subflows": 9 is above the kernel's maximum 8`},
		{Config: `{"limits": {"add_addr_accepted": 20}}`, Err: `policy/fullmesh: option "limits.add_addr_accepted": 20 is above the kernel's maximum 8`},
		{Config: `{"limits": {"subflows": -1}}`, Err: `policy/fullmesh: option "limits.subflows": cannot use number -1 as uint32`},
		{Config: `{"limits": 8}`, Err: `policy/fullmesh: option "limits": cannot use number as policy.Limits`},
		{Config: `"client"`, Err: `policy/fullmesh: config must be a JSON object`},
	}, policytest.Configured[*fullmesh.FullMesh](fullmesh.Name))
}

func TestNewCopiesConfig(t *testing.T) {
	t.Parallel()
	cfg := fullmesh.DefaultConfig()
	f, err := fullmesh.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	*cfg.Limits.Subflows = 1
	got := f.Kernel(policy.View{}, policy.KernelPlan{})
	*got.Limits.Subflows = 2
	if l := *f.Config().Limits.Subflows; l != 8 {
		t.Errorf("limits.subflows = %d after changing the caller's copies, want 8", l)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d, got := policytest.Defaults(t, fullmesh.Name)
	def := fullmesh.DefaultConfig()
	want := map[string]any{
		"role": string(def.Role), "families": string(def.Families), "max_subflows": def.MaxSubflows,
		"announce": def.Announce, "limits.subflows": *def.Limits.Subflows, "limits.add_addr_accepted": *def.Limits.AddAddrAccepted,
		"join_delay": def.JoinDelay.String(), "join_bytes": def.JoinBytes,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("option defaults (-want +got):\n%s", diff)
	}
	if d.Name != "fullmesh" || d.Summary == "" {
		t.Errorf("Describe = %+v", d)
	}
}

// Addresses of the tests: eth0 (index 2) and eth1 (index 3) are wired,
// wwan0 (index 4) is cellular and down.
var (
	a4   = policytest.Addr("192.0.2.1")
	a6   = policytest.Addr("2001:db8:1::1")
	b4   = policytest.Addr("198.51.100.1")
	b6   = policytest.Addr("2001:db8:2::1")
	c4   = policytest.Addr("203.0.113.1")
	r0   = policytest.AddrPort("203.0.113.7:443")
	r1   = policytest.AddrPort("203.0.113.8:443")
	r6   = policytest.AddrPort("[2001:db8:9::7]:443")
	eth0 = policy.Link{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true}
	eth1 = policy.Link{Name: "eth1", Index: 3, Kind: policy.LinkWired, Up: true, Usable: true}
	wwan = policy.Link{Name: "wwan0", Index: 4, Kind: policy.LinkCellular}
)

func view(mode policy.Mode, addrs ...policy.LocalAddr) policy.View {
	return policy.View{Mode: mode, Links: []policy.Link{eth0, eth1, wwan}, Addrs: addrs}
}

func TestKernel(t *testing.T) {
	t.Parallel()
	ep := func(a netip.Addr, dev string, idx int32) policy.Endpoint {
		return policy.Endpoint{Addr: a, Dev: dev, IfIndex: idx, Subflow: true, Fullmesh: true}
	}
	limits := policy.Limits{Subflows: new(uint32(8)), AddAddrAccepted: new(uint32(8))}
	many := func(n int, prefix string, l policy.Link) []policy.LocalAddr {
		var as []policy.LocalAddr
		for i := range n {
			as = append(as, policytest.Local(policytest.Addr(prefix+string(rune('1'+i))), l))
		}
		return as
	}
	tests := []struct {
		name   string
		config string
		addrs  []policy.LocalAddr
		next   policy.KernelPlan
		want   policy.KernelPlan
	}{
		{
			name:  "client",
			addrs: []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(a6, eth0), policytest.Local(b4, eth1)},
			want:  policy.KernelPlan{Endpoints: []policy.Endpoint{ep(a4, "eth0", 2), ep(b4, "eth1", 3), ep(a6, "eth0", 2)}, Limits: limits},
		},
		{
			name:   "server",
			config: `{"role":"server","limits":{"add_addr_accepted":0}}`,
			addrs:  []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(b4, eth1)},
			want: policy.KernelPlan{
				Endpoints: []policy.Endpoint{{Addr: a4, Dev: "eth0", IfIndex: 2, Signal: true}, {Addr: b4, Dev: "eth1", IfIndex: 3, Signal: true}},
				Limits:    policy.Limits{Subflows: new(uint32(8)), AddAddrAccepted: new(uint32(0))},
			},
		},
		{
			name:   "both",
			config: `{"role":"both","limits":{"subflows":null,"add_addr_accepted":null}}`,
			addrs:  []policy.LocalAddr{policytest.Local(a4, eth0)},
			want:   policy.KernelPlan{Endpoints: []policy.Endpoint{{Addr: a4, Dev: "eth0", IfIndex: 2, Signal: true, Subflow: true}}},
		},
		{
			name: "unusable skipped",
			addrs: []policy.LocalAddr{
				policytest.Local(a4, eth0),
				{Addr: b4, Link: "eth1", IfIndex: 3, Reason: "tentative"},
				policytest.Local(c4, wwan), // link down
				policytest.Local(policytest.Addr("fe80::1"), eth0),
				policytest.Local(policytest.Addr("127.0.0.1"), policy.Link{Name: "lo", Index: 1}),
				policytest.Local(policytest.Addr("::ffff:198.51.100.9"), eth1), // unmapped
				policytest.Local(a4, eth0),                                     // twice
				{Link: "eth1", IfIndex: 3, Usable: true},                       // invalid
			},
			want: policy.KernelPlan{Endpoints: []policy.Endpoint{ep(a4, "eth0", 2), ep(policytest.Addr("198.51.100.9"), "eth1", 3)}, Limits: limits},
		},
		{
			name:   "ipv6 only",
			config: `{"families":"ipv6"}`,
			addrs:  []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(a6, eth0), policytest.Local(b6, eth1)},
			want:   policy.KernelPlan{Endpoints: []policy.Endpoint{ep(a6, "eth0", 2), ep(b6, "eth1", 3)}, Limits: limits},
		},
		{
			name:  "at most 8, spread over the links",
			addrs: append(many(6, "2001:db8:1::", eth0), many(4, "2001:db8:2::", eth1)...),
			want: policy.KernelPlan{Endpoints: []policy.Endpoint{
				ep(policytest.Addr("2001:db8:1::1"), "eth0", 2), ep(policytest.Addr("2001:db8:1::2"), "eth0", 2), ep(policytest.Addr("2001:db8:1::3"), "eth0", 2),
				ep(policytest.Addr("2001:db8:1::4"), "eth0", 2), ep(policytest.Addr("2001:db8:2::1"), "eth1", 3), ep(policytest.Addr("2001:db8:2::2"), "eth1", 3),
				ep(policytest.Addr("2001:db8:2::3"), "eth1", 3), ep(policytest.Addr("2001:db8:2::4"), "eth1", 3),
			}, Limits: limits},
		},
		{
			name:  "a link's IPv4 address first",
			addrs: append(many(7, "2001:db8:1::", eth0), policytest.Local(a4, eth0), policytest.Local(b6, eth1)),
			want: policy.KernelPlan{Endpoints: []policy.Endpoint{
				ep(a4, "eth0", 2), ep(policytest.Addr("2001:db8:1::1"), "eth0", 2), ep(policytest.Addr("2001:db8:1::2"), "eth0", 2),
				ep(policytest.Addr("2001:db8:1::3"), "eth0", 2), ep(policytest.Addr("2001:db8:1::4"), "eth0", 2), ep(policytest.Addr("2001:db8:1::5"), "eth0", 2),
				ep(policytest.Addr("2001:db8:1::6"), "eth0", 2), ep(b6, "eth1", 3),
			}, Limits: limits},
		},
		{
			name:  "next kept and counted",
			addrs: many(8, "2001:db8:1::", eth0),
			next: policy.KernelPlan{Endpoints: []policy.Endpoint{
				{Addr: policytest.Addr("2001:db8:1::1"), Port: 8443, Signal: true}, {Addr: a4}, {Addr: b4}, {Addr: c4},
				{Addr: policytest.Addr("192.0.2.2")}, {Addr: policytest.Addr("192.0.2.3")},
			}, Limits: policy.Limits{Subflows: new(uint32(2))}},
			want: policy.KernelPlan{Endpoints: []policy.Endpoint{
				{Addr: a4}, {Addr: policytest.Addr("192.0.2.2")}, {Addr: policytest.Addr("192.0.2.3")}, {Addr: b4}, {Addr: c4},
				{Addr: policytest.Addr("2001:db8:1::1"), Port: 8443, Signal: true},
				ep(policytest.Addr("2001:db8:1::2"), "eth0", 2), ep(policytest.Addr("2001:db8:1::3"), "eth0", 2),
			}, Limits: limits},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := build(t, tt.config)
			got := c.Kernel(view(policy.ModeKernel, tt.addrs...), tt.next)
			if diff := cmp.Diff(tt.want, got, policytest.NetOpts); diff != "" {
				t.Errorf("Kernel (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("invalid plan: %v", err)
			}
			// The result depends on the set of addresses, not their order.
			r := rand.New(rand.NewPCG(1, 2))
			for range 10 {
				addrs := slices.Clone(tt.addrs)
				r.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
				next := tt.next
				next.Endpoints = slices.Clone(tt.next.Endpoints)
				if again := c.Kernel(view(policy.ModeKernel, addrs...), next); !cmp.Equal(got, again, policytest.NetOpts) {
					t.Fatalf("addresses %v gave %v", addrs, again)
				}
			}
		})
	}
}

func TestConn(t *testing.T) {
	t.Parallel()
	la := netip.AddrPortFrom(a4, 40000)
	client := policy.Conn{
		Token: 1, Side: policy.SideClient, Local: la, Remote: r0,
		PeerAddrs: []policy.PeerAddr{{ID: 0, Addr: r0, Source: policy.SourceInitial}},
		Subflows:  []policy.Subflow{{Local: la, Remote: r0, Established: true}},
	}
	announced := func(c policy.Conn, ps ...policy.PeerAddr) policy.Conn {
		c.PeerAddrs = append(slices.Clone(c.PeerAddrs), ps...)
		return c
	}
	withSubflows := func(c policy.Conn, ss ...policy.Subflow) policy.Conn {
		c.Subflows = ss
		return c
	}
	deny := func(c policy.Conn) policy.Conn {
		c.DenyJoinID0 = true
		return c
	}
	// r1 announced without a port: the initial port.
	r1Ann := policy.PeerAddr{ID: 1, Addr: netip.AddrPortFrom(r1.Addr(), 0), Source: policy.SourceAnnounced}
	r6Ann := policy.PeerAddr{ID: 2, Addr: r6, Source: policy.SourceAnnounced}
	path := func(l netip.Addr, r netip.AddrPort) policy.Path {
		p := policy.Path{Local: l, Remote: r}
		switch l {
		case a4, a6:
			p.Dev, p.IfIndex = "eth0", 2
		case b4, b6:
			p.Dev, p.IfIndex = "eth1", 3
		}
		return p
	}
	two := []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(b4, eth1)}

	server := policy.Conn{
		Token: 2, Side: policy.SideServer, Local: netip.AddrPortFrom(a4, 443), Remote: policytest.AddrPort("203.0.113.50:51000"),
		PeerAddrs: []policy.PeerAddr{{Addr: policytest.AddrPort("203.0.113.50:51000")}},
		Subflows: []policy.Subflow{
			{Local: netip.AddrPortFrom(a4, 443), Remote: policytest.AddrPort("203.0.113.50:51000"), Established: true},
			{Local: netip.AddrPortFrom(b4, 443), Remote: policytest.AddrPort("203.0.113.51:52000"), Backup: true, Established: true, LocalID: 1},
		},
	}

	tests := []struct {
		name   string
		config string
		addrs  []policy.LocalAddr
		conn   policy.Conn
		next   policy.ConnPlan
		want   policy.ConnPlan
	}{
		{
			name:  "2x1",
			addrs: two, conn: client,
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r0)}},
		},
		{
			name:  "2x2 after an announce",
			addrs: two, conn: announced(client, r1Ann),
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(a4, r1), path(b4, r0), path(b4, r1)}},
		},
		{
			name:  "IPv4 and IPv6 never mixed",
			addrs: []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(a6, eth0), policytest.Local(b4, eth1)},
			conn:  announced(client, r6Ann),
			want:  policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r0), path(a6, r6)}},
		},
		{
			name:   "families ipv4",
			config: `{"families":"ipv4"}`,
			addrs:  []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(a6, eth0), policytest.Local(b4, eth1)},
			conn:   announced(client, r6Ann),
			want:   policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r0)}},
		},
		{
			name:  "deny-join-id0",
			addrs: two, conn: deny(announced(client, r1Ann)),
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(a4, r1), path(b4, r1)}},
		},
		{
			name:  "deny-join-id0, initial subflow gone",
			addrs: two, conn: withSubflows(deny(announced(client, r1Ann))),
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r1), path(b4, r1)}},
		},
		{
			name:  "initial subflow gone, re-created",
			addrs: two, conn: withSubflows(client),
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r0)}},
		},
		{
			name:  "initial address unusable",
			addrs: []policy.LocalAddr{{Addr: a4, Link: "eth0", IfIndex: 2, Reason: "deprecated"}, policytest.Local(b4, eth1)},
			conn:  announced(client, r1Ann),
			want:  policy.ConnPlan{Paths: []policy.Path{path(b4, r0), path(b4, r1)}},
		},
		{
			name:  "unusable addresses skipped",
			addrs: []policy.LocalAddr{policytest.Local(a4, eth0), {Addr: b4, Link: "eth1", IfIndex: 3, Reason: "tentative"}, policytest.Local(c4, wwan)},
			conn:  client,
			want:  policy.ConnPlan{Paths: []policy.Path{path(a4, r0)}},
		},
		{
			name:   "max 1: a new local and a new peer address",
			config: `{"max_subflows":1}`,
			addrs:  two, conn: announced(client, r1Ann),
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r1)}},
		},
		{
			name:   "max 2",
			config: `{"max_subflows":2}`,
			addrs:  two, conn: announced(client, r1Ann),
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(a4, r1), path(b4, r1)}},
		},
		{
			name:   "max 1 keeps the live subflow",
			config: `{"max_subflows":1}`,
			addrs:  two,
			conn: withSubflows(announced(client, r1Ann),
				policy.Subflow{Local: la, Remote: r0, Established: true},
				policy.Subflow{Local: netip.AddrPortFrom(a4, 40001), Remote: r1, LocalID: 0, RemoteID: 1, Established: true}),
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(a4, r1)}},
		},
		{
			name:   "max counts the paths in next",
			config: `{"max_subflows":2}`,
			addrs:  two, conn: announced(client, r1Ann),
			next: policy.ConnPlan{Paths: []policy.Path{{Local: b4, Remote: r0, Backup: true}}},
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(a4, r1), {Local: b4, Remote: r0, Backup: true}}},
		},
		{
			name:  "subflow to a removed peer address dropped",
			addrs: two,
			conn: withSubflows(client,
				policy.Subflow{Local: la, Remote: r0, Established: true},
				policy.Subflow{Local: netip.AddrPortFrom(b4, 40001), Remote: r1, Established: true}),
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r0)}},
		},
		{
			name:  "IPv4-mapped connection",
			addrs: two,
			conn: policy.Conn{
				Side: policy.SideClient, Local: policytest.AddrPort("[::ffff:192.0.2.1]:40000"), Remote: policytest.AddrPort("[::ffff:203.0.113.7]:443"),
				Subflows: []policy.Subflow{{Local: policytest.AddrPort("[::ffff:192.0.2.1]:40000"), Remote: policytest.AddrPort("[::ffff:203.0.113.7]:443")}},
			},
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r0)}},
		},
		{
			name:  "loopback connection left alone",
			addrs: two,
			conn: policy.Conn{
				Side: policy.SideClient, Local: policytest.AddrPort("127.0.0.1:40000"), Remote: policytest.AddrPort("127.0.0.1:8080"),
				Subflows: []policy.Subflow{{Local: policytest.AddrPort("127.0.0.1:40000"), Remote: policytest.AddrPort("127.0.0.1:8080")}},
			},
			want: policy.ConnPlan{Paths: []policy.Path{{Local: policytest.Addr("127.0.0.1"), Remote: policytest.AddrPort("127.0.0.1:8080")}}},
		},
		{
			name:  "server announces and keeps the peer's subflows",
			addrs: []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(a6, eth0), policytest.Local(b4, eth1), policytest.Local(c4, wwan)},
			conn:  server,
			want: policy.ConnPlan{
				Paths: []policy.Path{
					path(a4, policytest.AddrPort("203.0.113.50:51000")),
					{Local: b4, Dev: "eth1", IfIndex: 3, Remote: policytest.AddrPort("203.0.113.51:52000"), Backup: true},
				},
				Announces: []policy.Announce{{Addr: b4, Dev: "eth1", IfIndex: 3}, {Addr: a6, Dev: "eth0", IfIndex: 2}},
			},
		},
		{
			name:   "server without announce",
			config: `{"announce":false}`,
			addrs:  []policy.LocalAddr{policytest.Local(a4, eth0), {Addr: b4, Link: "eth1", IfIndex: 3}},
			conn:   server,
			next:   policy.ConnPlan{Announces: []policy.Announce{{Addr: c4}}},
			want: policy.ConnPlan{
				Paths:     []policy.Path{path(a4, policytest.AddrPort("203.0.113.50:51000"))},
				Announces: []policy.Announce{{Addr: c4}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := build(t, tt.config)
			got := c.Conn(view(policy.ModeUserspace, tt.addrs...), tt.conn, tt.next)
			if diff := cmp.Diff(tt.want, got, policytest.NetOpts); diff != "" {
				t.Errorf("Conn (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("invalid plan: %v", err)
			}
			r := rand.New(rand.NewPCG(3, 4))
			for range 10 {
				addrs, conn := slices.Clone(tt.addrs), tt.conn
				conn.PeerAddrs, conn.Subflows = slices.Clone(conn.PeerAddrs), slices.Clone(conn.Subflows)
				r.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
				r.Shuffle(len(conn.PeerAddrs), func(i, j int) { conn.PeerAddrs[i], conn.PeerAddrs[j] = conn.PeerAddrs[j], conn.PeerAddrs[i] })
				r.Shuffle(len(conn.Subflows), func(i, j int) { conn.Subflows[i], conn.Subflows[j] = conn.Subflows[j], conn.Subflows[i] })
				next := policy.ConnPlan{Paths: slices.Clone(tt.next.Paths), Announces: slices.Clone(tt.next.Announces)}
				if again := c.Conn(view(policy.ModeUserspace, addrs...), conn, next); !cmp.Equal(got, again, policytest.NetOpts) {
					t.Fatalf("shuffled input gave %v", again)
				}
			}
		})
	}
}

// TestConnCap checks max_subflows over larger meshes: never more paths
// than the cap besides the initial one, and every local and peer address
// in use before any is used twice.
func TestConnCap(t *testing.T) {
	t.Parallel()
	var addrs []policy.LocalAddr
	for i := range 4 {
		addrs = append(addrs, policytest.Local(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), eth0))
	}
	c := policy.Conn{Side: policy.SideClient, Local: policytest.AddrPort("192.0.2.1:40000"), Remote: r0}
	c.Subflows = []policy.Subflow{{Local: c.Local, Remote: c.Remote}}
	for i := range 4 {
		c.PeerAddrs = append(c.PeerAddrs, policy.PeerAddr{ID: uint8(i + 1), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + i)}), 443), Source: policy.SourceAnnounced})
	}
	for n := 1; n <= 8; n++ {
		p := build(t, fmt.Sprintf(`{"max_subflows":%d}`, n)).Conn(view(policy.ModeUserspace, addrs...), c, policy.ConnPlan{})
		if len(p.Paths) != n+1 {
			t.Errorf("max %d: %d paths, want %d", n, len(p.Paths), n+1)
		}
		locals, peers := map[netip.Addr]bool{}, map[netip.AddrPort]bool{}
		for _, pa := range p.Paths {
			locals[pa.Local], peers[pa.Remote] = true, true
		}
		// 4 locals and 5 peers: the initial path plus n diverse pairs.
		if wl := min(4, n+1); len(locals) != wl {
			t.Errorf("max %d: %d local addresses in use, want %d", n, len(locals), wl)
		}
		if wp := min(5, n+1); len(peers) != wp {
			t.Errorf("max %d: %d peer addresses in use, want %d", n, len(peers), wp)
		}
	}
}

// TestConnDeferral: with join_delay, a client's new extra paths and a
// server's announces carry the deferral from the connection's creation;
// the initial path, the paths with a live subflow and connections of
// unknown age carry none, and "0s" defers nothing.
func TestConnDeferral(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	la, lb := netip.AddrPortFrom(a4, 40000), netip.AddrPortFrom(b4, 40001)
	client := policy.Conn{
		Token: 1, Side: policy.SideClient, Local: la, Remote: r0, Created: created,
		PeerAddrs: []policy.PeerAddr{{Addr: r0}, {ID: 1, Addr: r1, Source: policy.SourceAnnounced}},
		Subflows:  []policy.Subflow{{Local: la, Remote: r0, Established: true}, {Local: lb, Remote: r1, Established: true}},
	}
	server := policy.Conn{
		Token: 2, Side: policy.SideServer, Local: netip.AddrPortFrom(a4, 443), Remote: policytest.AddrPort("203.0.113.50:51000"),
		Created:  created,
		Subflows: []policy.Subflow{{Local: netip.AddrPortFrom(a4, 443), Remote: policytest.AddrPort("203.0.113.50:51000"), Established: true}},
	}
	two := []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(b4, eth1)}
	held := policy.Deferral{NotBefore: created.Add(2 * time.Second), AfterBytes: 4096}
	deferrals := func(p policy.ConnPlan) map[string]policy.Deferral {
		out := map[string]policy.Deferral{}
		for _, pa := range p.Paths {
			out[pa.Local.String()+" -> "+pa.Remote.String()] = pa.Deferral
		}
		for _, an := range p.Announces {
			out["announce "+an.Addr.String()] = an.Deferral
		}
		return out
	}
	unknownAge := client
	unknownAge.Created = time.Time{}
	tests := []struct {
		name   string
		config string
		conn   policy.Conn
		want   map[string]policy.Deferral
	}{
		{"client", `{"join_delay": "2s", "join_bytes": 4096}`, client, map[string]policy.Deferral{
			"192.0.2.1 -> 203.0.113.7:443":    {},
			"192.0.2.1 -> 203.0.113.8:443":    held,
			"198.51.100.1 -> 203.0.113.7:443": held,
			"198.51.100.1 -> 203.0.113.8:443": {},
		}},
		{"server", `{"join_delay": "2s", "join_bytes": 4096}`, server, map[string]policy.Deferral{
			"192.0.2.1 -> 203.0.113.50:51000": {},
			"announce 198.51.100.1":           held,
		}},
		{"at once", `{"join_delay": "0s", "join_bytes": 0}`, client, map[string]policy.Deferral{
			"192.0.2.1 -> 203.0.113.7:443":    {},
			"192.0.2.1 -> 203.0.113.8:443":    {},
			"198.51.100.1 -> 203.0.113.7:443": {},
			"198.51.100.1 -> 203.0.113.8:443": {},
		}},
		{"unknown age", `{"join_delay": "2s"}`, unknownAge, map[string]policy.Deferral{
			"192.0.2.1 -> 203.0.113.7:443":    {},
			"192.0.2.1 -> 203.0.113.8:443":    {},
			"198.51.100.1 -> 203.0.113.7:443": {},
			"198.51.100.1 -> 203.0.113.8:443": {},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := build(t, tt.config).Conn(view(policy.ModeUserspace, two...), tt.conn, policy.ConnPlan{})
			if diff := cmp.Diff(tt.want, deferrals(got)); diff != "" {
				t.Errorf("deferrals (-want +got):\n%s", diff)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("invalid plan: %v", err)
			}
		})
	}
}
