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
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

var netOpts = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

func addr(s string) netip.Addr         { return netip.MustParseAddr(s) }
func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// build returns fullmesh with the config in a chain, as the engine runs it.
func build(t *testing.T, config string) *policy.Chain {
	t.Helper()
	c, err := policy.NewChain([]policy.Spec{{Name: "fullmesh", Config: json.RawMessage(config)}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestConfig checks options with one-line configurations, good and bad.
func TestConfig(t *testing.T) {
	t.Parallel()
	def := fullmesh.DefaultConfig()
	with := func(f func(*fullmesh.Config)) fullmesh.Config {
		c := fullmesh.DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		config string
		want   fullmesh.Config
		err    string
	}{
		{``, def, ""},
		{`{}`, def, ""},
		{`null`, def, ""},
		{`{"role": "server"}`, with(func(c *fullmesh.Config) { c.Role = fullmesh.RoleServer }), ""},
		{`{"role": "both", "families": "ipv6"}`, with(func(c *fullmesh.Config) { c.Role, c.Families = fullmesh.RoleBoth, fullmesh.FamiliesIPv6 }), ""},
		{`{"families": "ipv4"}`, with(func(c *fullmesh.Config) { c.Families = fullmesh.FamiliesIPv4 }), ""},
		{`{"max_subflows": 1, "announce": false}`, with(func(c *fullmesh.Config) { c.MaxSubflows, c.Announce = 1, false }), ""},
		{`{"limits": {"subflows": 4}}`, with(func(c *fullmesh.Config) { c.Limits.Subflows = new(uint32(4)) }), ""},
		{`{"limits": {"add_addr_accepted": null}}`, with(func(c *fullmesh.Config) { c.Limits.AddAddrAccepted = nil }), ""},
		{`{"limits": {"subflows": 0, "add_addr_accepted": 0}}`,
			with(func(c *fullmesh.Config) {
				c.Limits = policy.Limits{Subflows: new(uint32(0)), AddAddrAccepted: new(uint32(0))}
			}), ""},
		{`{"join_delay": "0s", "join_bytes": 0}`, with(func(c *fullmesh.Config) { c.JoinDelay, c.JoinBytes = 0, 0 }), ""},
		{`{"join_delay": "1.5s", "join_bytes": 1000000}`, with(func(c *fullmesh.Config) { c.JoinDelay, c.JoinBytes = 1500*time.Millisecond, 1000000 }), ""},
		{`{"join_delay": "1h"}`, with(func(c *fullmesh.Config) { c.JoinDelay = time.Hour }), ""},
		{`{"join_delay": "0s"}`, with(func(c *fullmesh.Config) { c.JoinDelay = 0 }), ""},
		{`{"join_delay": "0s", "join_bytes": 1}`, def, `policy/fullmesh: option "join_bytes": 1 needs a join_delay (0s opens every path at once)`},
		{`{"join_delay": "61m"}`, def, `policy/fullmesh: option "join_delay": 1h1m0s is longer than 1h0m0s`},
		{`{"join_delay": "-1ms"}`, def, `policy/fullmesh: option "join_delay": -1ms is negative`},
		{`{"join_delay": "soon"}`, def, `policy/fullmesh: option "join_delay": "soon" is not a duration (like "50ms" or "1s")`},
		{`{"join_delay": 50}`, def, `policy/fullmesh: option "join_delay": cannot use number as string`},
		{`{"join_bytes": -1}`, def, `policy/fullmesh: option "join_bytes": cannot use number -1 as uint64`},
		{`{"max_subflow": 4}`, def, `policy/fullmesh: unknown option "max_subflow"`},
		{`{"limits": {"subflow": 4}}`, def, `policy/fullmesh: unknown option "subflow"`},
		{`{"role": "sever"}`, def, `policy/fullmesh: option "role": "sever" is not client, server or both`},
		{`{"role": ""}`, def, `policy/fullmesh: option "role": "" is not client, server or both`},
		{`{"families": "inet"}`, def, `policy/fullmesh: option "families": "inet" is not both, ipv4 or ipv6`},
		{`{"max_subflows": 0}`, def, `policy/fullmesh: option "max_subflows": 0 is not in 1..8`},
		{`{"max_subflows": 9}`, def, `policy/fullmesh: option "max_subflows": 9 is not in 1..8`},
		{`{"max_subflows": "8"}`, def, `policy/fullmesh: option "max_subflows": cannot use string as int`},
		{`{"announce": 1}`, def, `policy/fullmesh: option "announce": cannot use number as bool`},
		{`{"limits": {"subflows": 9}}`, def, `policy/fullmesh: option "limits.subflows": 9 is above the kernel's maximum 8`},
		{`{"limits": {"add_addr_accepted": 20}}`, def, `policy/fullmesh: option "limits.add_addr_accepted": 20 is above the kernel's maximum 8`},
		{`{"limits": {"subflows": -1}}`, def, `policy/fullmesh: option "limits.subflows": cannot use number -1 as uint32`},
		{`{"limits": 8}`, def, `policy/fullmesh: option "limits": cannot use number as policy.Limits`},
		{`"client"`, def, `policy/fullmesh: config must be a JSON object`},
	}
	for _, tt := range tests {
		t.Run(tt.config, func(t *testing.T) {
			t.Parallel()
			p, err := policy.New("fullmesh", json.RawMessage(tt.config))
			if diff := cmp.Diff(tt.err, errString(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, p.(*fullmesh.FullMesh).Config()); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
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
	d, err := policy.Describe("fullmesh")
	if err != nil {
		t.Fatal(err)
	}
	def := fullmesh.DefaultConfig()
	want := map[string]any{
		"role": string(def.Role), "families": string(def.Families), "max_subflows": def.MaxSubflows,
		"announce": def.Announce, "limits.subflows": *def.Limits.Subflows, "limits.add_addr_accepted": *def.Limits.AddAddrAccepted,
		"join_delay": def.JoinDelay.String(), "join_bytes": def.JoinBytes,
	}
	got := make(map[string]any)
	for _, o := range d.Options {
		got[o.Name] = o.Default
		if o.Help == "" || o.Type == "" {
			t.Errorf("option %s lacks help or type", o.Name)
		}
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
	a4  = addr("192.0.2.1")
	a6  = addr("2001:db8:1::1")
	b4  = addr("198.51.100.1")
	b6  = addr("2001:db8:2::1")
	c4  = addr("203.0.113.1")
	r0  = addrPort("203.0.113.7:443")
	r1  = addrPort("203.0.113.8:443")
	r6  = addrPort("[2001:db8:9::7]:443")
	loc = func(a netip.Addr, dev string, idx int32) policy.LocalAddr {
		return policy.LocalAddr{Addr: a, Link: dev, IfIndex: idx, Usable: true}
	}
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
	many := func(n int, prefix string, dev string, idx int32) []policy.LocalAddr {
		var as []policy.LocalAddr
		for i := range n {
			as = append(as, loc(addr(prefix+string(rune('1'+i))), dev, idx))
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
			addrs: []policy.LocalAddr{loc(a4, "eth0", 2), loc(a6, "eth0", 2), loc(b4, "eth1", 3)},
			want:  policy.KernelPlan{Endpoints: []policy.Endpoint{ep(a4, "eth0", 2), ep(b4, "eth1", 3), ep(a6, "eth0", 2)}, Limits: limits},
		},
		{
			name:   "server",
			config: `{"role":"server","limits":{"add_addr_accepted":0}}`,
			addrs:  []policy.LocalAddr{loc(a4, "eth0", 2), loc(b4, "eth1", 3)},
			want: policy.KernelPlan{
				Endpoints: []policy.Endpoint{{Addr: a4, Dev: "eth0", IfIndex: 2, Signal: true}, {Addr: b4, Dev: "eth1", IfIndex: 3, Signal: true}},
				Limits:    policy.Limits{Subflows: new(uint32(8)), AddAddrAccepted: new(uint32(0))},
			},
		},
		{
			name:   "both",
			config: `{"role":"both","limits":{"subflows":null,"add_addr_accepted":null}}`,
			addrs:  []policy.LocalAddr{loc(a4, "eth0", 2)},
			want:   policy.KernelPlan{Endpoints: []policy.Endpoint{{Addr: a4, Dev: "eth0", IfIndex: 2, Signal: true, Subflow: true}}},
		},
		{
			name: "unusable skipped",
			addrs: []policy.LocalAddr{
				loc(a4, "eth0", 2),
				{Addr: b4, Link: "eth1", IfIndex: 3, Reason: "tentative"},
				loc(c4, "wwan0", 4), // link down
				loc(addr("fe80::1"), "eth0", 2),
				loc(addr("127.0.0.1"), "lo", 1),
				loc(addr("::ffff:198.51.100.9"), "eth1", 3), // unmapped
				loc(a4, "eth0", 2),                          // twice
				{Link: "eth1", IfIndex: 3, Usable: true},    // invalid
			},
			want: policy.KernelPlan{Endpoints: []policy.Endpoint{ep(a4, "eth0", 2), ep(addr("198.51.100.9"), "eth1", 3)}, Limits: limits},
		},
		{
			name:   "ipv6 only",
			config: `{"families":"ipv6"}`,
			addrs:  []policy.LocalAddr{loc(a4, "eth0", 2), loc(a6, "eth0", 2), loc(b6, "eth1", 3)},
			want:   policy.KernelPlan{Endpoints: []policy.Endpoint{ep(a6, "eth0", 2), ep(b6, "eth1", 3)}, Limits: limits},
		},
		{
			name:  "at most 8, spread over the links",
			addrs: append(many(6, "2001:db8:1::", "eth0", 2), many(4, "2001:db8:2::", "eth1", 3)...),
			want: policy.KernelPlan{Endpoints: []policy.Endpoint{
				ep(addr("2001:db8:1::1"), "eth0", 2), ep(addr("2001:db8:1::2"), "eth0", 2), ep(addr("2001:db8:1::3"), "eth0", 2),
				ep(addr("2001:db8:1::4"), "eth0", 2), ep(addr("2001:db8:2::1"), "eth1", 3), ep(addr("2001:db8:2::2"), "eth1", 3),
				ep(addr("2001:db8:2::3"), "eth1", 3), ep(addr("2001:db8:2::4"), "eth1", 3),
			}, Limits: limits},
		},
		{
			name:  "a link's IPv4 address first",
			addrs: append(many(7, "2001:db8:1::", "eth0", 2), loc(a4, "eth0", 2), loc(b6, "eth1", 3)),
			want: policy.KernelPlan{Endpoints: []policy.Endpoint{
				ep(a4, "eth0", 2), ep(addr("2001:db8:1::1"), "eth0", 2), ep(addr("2001:db8:1::2"), "eth0", 2),
				ep(addr("2001:db8:1::3"), "eth0", 2), ep(addr("2001:db8:1::4"), "eth0", 2), ep(addr("2001:db8:1::5"), "eth0", 2),
				ep(addr("2001:db8:1::6"), "eth0", 2), ep(b6, "eth1", 3),
			}, Limits: limits},
		},
		{
			name:  "next kept and counted",
			addrs: many(8, "2001:db8:1::", "eth0", 2),
			next: policy.KernelPlan{Endpoints: []policy.Endpoint{
				{Addr: addr("2001:db8:1::1"), Port: 8443, Signal: true}, {Addr: a4}, {Addr: b4}, {Addr: c4},
				{Addr: addr("192.0.2.2")}, {Addr: addr("192.0.2.3")},
			}, Limits: policy.Limits{Subflows: new(uint32(2))}},
			want: policy.KernelPlan{Endpoints: []policy.Endpoint{
				{Addr: a4}, {Addr: addr("192.0.2.2")}, {Addr: addr("192.0.2.3")}, {Addr: b4}, {Addr: c4},
				{Addr: addr("2001:db8:1::1"), Port: 8443, Signal: true},
				ep(addr("2001:db8:1::2"), "eth0", 2), ep(addr("2001:db8:1::3"), "eth0", 2),
			}, Limits: limits},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := build(t, tt.config)
			got := c.Kernel(view(policy.ModeKernel, tt.addrs...), tt.next)
			if diff := cmp.Diff(tt.want, got, netOpts); diff != "" {
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
				if again := c.Kernel(view(policy.ModeKernel, addrs...), next); !cmp.Equal(got, again, netOpts) {
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
	two := []policy.LocalAddr{loc(a4, "eth0", 2), loc(b4, "eth1", 3)}

	server := policy.Conn{
		Token: 2, Side: policy.SideServer, Local: netip.AddrPortFrom(a4, 443), Remote: addrPort("203.0.113.50:51000"),
		PeerAddrs: []policy.PeerAddr{{Addr: addrPort("203.0.113.50:51000")}},
		Subflows: []policy.Subflow{
			{Local: netip.AddrPortFrom(a4, 443), Remote: addrPort("203.0.113.50:51000"), Established: true},
			{Local: netip.AddrPortFrom(b4, 443), Remote: addrPort("203.0.113.51:52000"), Backup: true, Established: true, LocalID: 1},
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
			addrs: []policy.LocalAddr{loc(a4, "eth0", 2), loc(a6, "eth0", 2), loc(b4, "eth1", 3)},
			conn:  announced(client, r6Ann),
			want:  policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r0), path(a6, r6)}},
		},
		{
			name:   "families ipv4",
			config: `{"families":"ipv4"}`,
			addrs:  []policy.LocalAddr{loc(a4, "eth0", 2), loc(a6, "eth0", 2), loc(b4, "eth1", 3)},
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
			addrs: []policy.LocalAddr{{Addr: a4, Link: "eth0", IfIndex: 2, Reason: "deprecated"}, loc(b4, "eth1", 3)},
			conn:  announced(client, r1Ann),
			want:  policy.ConnPlan{Paths: []policy.Path{path(b4, r0), path(b4, r1)}},
		},
		{
			name:  "unusable addresses skipped",
			addrs: []policy.LocalAddr{loc(a4, "eth0", 2), {Addr: b4, Link: "eth1", IfIndex: 3, Reason: "tentative"}, loc(c4, "wwan0", 4)},
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
				Side: policy.SideClient, Local: addrPort("[::ffff:192.0.2.1]:40000"), Remote: addrPort("[::ffff:203.0.113.7]:443"),
				Subflows: []policy.Subflow{{Local: addrPort("[::ffff:192.0.2.1]:40000"), Remote: addrPort("[::ffff:203.0.113.7]:443")}},
			},
			want: policy.ConnPlan{Paths: []policy.Path{path(a4, r0), path(b4, r0)}},
		},
		{
			name:  "loopback connection left alone",
			addrs: two,
			conn: policy.Conn{
				Side: policy.SideClient, Local: addrPort("127.0.0.1:40000"), Remote: addrPort("127.0.0.1:8080"),
				Subflows: []policy.Subflow{{Local: addrPort("127.0.0.1:40000"), Remote: addrPort("127.0.0.1:8080")}},
			},
			want: policy.ConnPlan{Paths: []policy.Path{{Local: addr("127.0.0.1"), Remote: addrPort("127.0.0.1:8080")}}},
		},
		{
			name:  "server announces and keeps the peer's subflows",
			addrs: []policy.LocalAddr{loc(a4, "eth0", 2), loc(a6, "eth0", 2), loc(b4, "eth1", 3), loc(c4, "wwan0", 4)},
			conn:  server,
			want: policy.ConnPlan{
				Paths: []policy.Path{
					path(a4, addrPort("203.0.113.50:51000")),
					{Local: b4, Dev: "eth1", IfIndex: 3, Remote: addrPort("203.0.113.51:52000"), Backup: true},
				},
				Announces: []policy.Announce{{Addr: b4, Dev: "eth1", IfIndex: 3}, {Addr: a6, Dev: "eth0", IfIndex: 2}},
			},
		},
		{
			name:   "server without announce",
			config: `{"announce":false}`,
			addrs:  []policy.LocalAddr{loc(a4, "eth0", 2), {Addr: b4, Link: "eth1", IfIndex: 3}},
			conn:   server,
			next:   policy.ConnPlan{Announces: []policy.Announce{{Addr: c4}}},
			want: policy.ConnPlan{
				Paths:     []policy.Path{path(a4, addrPort("203.0.113.50:51000"))},
				Announces: []policy.Announce{{Addr: c4}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := build(t, tt.config)
			got := c.Conn(view(policy.ModeUserspace, tt.addrs...), tt.conn, tt.next)
			if diff := cmp.Diff(tt.want, got, netOpts); diff != "" {
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
				if again := c.Conn(view(policy.ModeUserspace, addrs...), conn, next); !cmp.Equal(got, again, netOpts) {
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
		addrs = append(addrs, loc(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), "eth0", 2))
	}
	c := policy.Conn{Side: policy.SideClient, Local: addrPort("192.0.2.1:40000"), Remote: r0}
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
		Token: 2, Side: policy.SideServer, Local: netip.AddrPortFrom(a4, 443), Remote: addrPort("203.0.113.50:51000"),
		Created:  created,
		Subflows: []policy.Subflow{{Local: netip.AddrPortFrom(a4, 443), Remote: addrPort("203.0.113.50:51000"), Established: true}},
	}
	two := []policy.LocalAddr{loc(a4, "eth0", 2), loc(b4, "eth1", 3)}
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
