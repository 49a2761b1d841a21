package linkmon

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Synthetic messages for the unit tests.

var hwA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}

// upLink is an operationally up Ethernet device.
func upLink(index int, name string) linkMsg {
	return linkMsg{index: index, name: name, typ: "device", encap: "ether", flags: iffUp | iffLowerUp, oper: operUp, mtu: 1500, hw: hwA}
}

func downLink(index int, name string) linkMsg {
	l := upLink(index, name)
	l.flags, l.oper = 0, 2 // IF_OPER_DOWN
	return l
}

func addr(link int, prefix string) addrMsg {
	return addrMsg{link: link, prefix: netip.MustParsePrefix(prefix), flags: AddrPermanent}
}

func delAddr(link int, prefix string) addrMsg {
	a := addr(link, prefix)
	a.del = true
	return a
}

// defaultRoute is a default route via a gateway on link in table.
func defaultRoute(link, table int, gw string) routeMsg {
	g := netip.MustParseAddr(gw)
	r := routeMsg{family: afInet, table: table, typ: rtnUnicast, protocol: 3, hops: []nexthop{{link: link, gw: g}}}
	r.dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if g.Is6() {
		r.family, r.dst = afInet6, netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return r
}

// connected is the prefix route the kernel adds for an address.
func connected(link int, prefix string) routeMsg {
	p := netip.MustParsePrefix(prefix).Masked()
	r := routeMsg{family: afInet, table: 254, typ: rtnUnicast, protocol: rtprotKernel, dst: p, hops: []nexthop{{link: link}}}
	if p.Addr().Is6() {
		r.family = afInet6
	}
	return r
}

func del(r routeMsg) routeMsg {
	r.del = true
	return r
}

func testConfig(t testing.TB, c *Config) *config {
	t.Helper()
	cfg, err := newConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// tableWith applies msgs to a fresh table.
func tableWith(t testing.TB, c *Config, msgs ...msg) *table {
	t.Helper()
	tb := newTable(testConfig(t, c), nil)
	for _, m := range msgs {
		tb.apply(m)
	}
	return tb
}

// addrOf returns the address p of link from the table's state.
func addrOf(t testing.TB, s State, link int, p string) Addr {
	t.Helper()
	for _, a := range s.Addrs {
		if a.LinkIndex == link && a.Prefix == netip.MustParsePrefix(p) {
			return a
		}
	}
	t.Fatalf("no address %s on link %d in %+v", p, link, s.Addrs)
	return Addr{}
}

func TestUsability(t *testing.T) {
	t.Parallel()
	gw4 := defaultRoute(2, 254, "192.0.2.254")
	gw6 := defaultRoute(2, 254, "2001:db8:1::fe")
	flagged := func(a addrMsg, f AddrFlags) addrMsg { a.flags |= f; return a }
	scoped := func(a addrMsg, s Scope) addrMsg { a.scope = s; return a }
	veth := upLink(2, "veth0")
	veth.typ = "veth"
	unknownOper := upLink(2, "tun0")
	unknownOper.oper = operUnknown
	noCarrier := upLink(2, "eth0")
	noCarrier.oper, noCarrier.flags = operUnknown, iffUp

	tests := []struct {
		name   string
		cfg    Config
		msgs   []msg
		prefix string
		want   string // reason; "" = usable
	}{
		{"usable ipv4", Config{}, []msg{upLink(2, "eth0"), addr(2, "192.0.2.1/24"), gw4}, "192.0.2.1/24", ""},
		{"usable ipv6", Config{}, []msg{upLink(2, "eth0"), addr(2, "2001:db8:1::1/64"), gw6}, "2001:db8:1::1/64", ""},
		{"unknown link", Config{}, []msg{addr(2, "192.0.2.1/24"), gw4}, "192.0.2.1/24", "unknown link"},
		{"excluded by kind", Config{}, []msg{veth, addr(2, "192.0.2.1/24"), gw4}, "192.0.2.1/24", "excluded by kind virtual"},
		{"included virtual", Config{IncludeKinds: []Kind{KindVirtual}}, []msg{veth, addr(2, "192.0.2.1/24"), gw4}, "192.0.2.1/24", ""},
		{"excluded by name", Config{ExcludeNames: []string{"eth*"}}, []msg{upLink(2, "eth0"), addr(2, "192.0.2.1/24"), gw4}, "192.0.2.1/24", "excluded by name"},
		{"loopback", Config{ExcludeKinds: []Kind{}}, []msg{upLink(2, "eth0"), scoped(addr(2, "127.0.0.1/8"), ScopeHost), gw4}, "127.0.0.1/8", "loopback"},
		{"link-local ipv6", Config{}, []msg{upLink(2, "eth0"), scoped(addr(2, "fe80::1/64"), ScopeLink), gw6}, "fe80::1/64", "link-local"},
		{"link-local ipv4", Config{}, []msg{upLink(2, "eth0"), scoped(addr(2, "169.254.7.1/16"), ScopeLink), gw4}, "169.254.7.1/16", "link-local"},
		{"ula", Config{}, []msg{upLink(2, "eth0"), addr(2, "fd00::1/64"), gw6}, "fd00::1/64", "ula"},
		{"ula included", Config{IncludeULA: true}, []msg{upLink(2, "eth0"), addr(2, "fd00::1/64"), gw6}, "fd00::1/64", ""},
		{"temporary", Config{}, []msg{upLink(2, "eth0"), flagged(addr(2, "2001:db8:1::99/64"), AddrTemporary), gw6}, "2001:db8:1::99/64", "temporary"},
		{"temporary included", Config{IncludeTemporary: true}, []msg{upLink(2, "eth0"), flagged(addr(2, "2001:db8:1::99/64"), AddrTemporary), gw6}, "2001:db8:1::99/64", ""},
		{"multicast", Config{}, []msg{upLink(2, "eth0"), addr(2, "ff0e::1/128"), gw6}, "ff0e::1/128", "not unicast"},
		{"link scope", Config{}, []msg{upLink(2, "eth0"), scoped(addr(2, "192.0.2.1/24"), ScopeLink), gw4}, "192.0.2.1/24", "scope link"},
		{"host scope", Config{}, []msg{upLink(2, "eth0"), scoped(addr(2, "192.0.2.1/24"), ScopeHost), gw4}, "192.0.2.1/24", "scope host"},
		{"site scope", Config{}, []msg{upLink(2, "eth0"), scoped(addr(2, "2001:db8:1::1/64"), ScopeSite), gw6}, "2001:db8:1::1/64", "scope site"},
		{"link down", Config{}, []msg{downLink(2, "eth0"), addr(2, "192.0.2.1/24"), gw4}, "192.0.2.1/24", "link down"},
		{"no carrier", Config{}, []msg{noCarrier, addr(2, "192.0.2.1/24"), gw4}, "192.0.2.1/24", "link down"},
		{"oper unknown but up with carrier", Config{}, []msg{unknownOper, addr(2, "192.0.2.1/24"), gw4}, "192.0.2.1/24", ""},
		{"dad failed", Config{}, []msg{upLink(2, "eth0"), flagged(addr(2, "2001:db8:1::1/64"), AddrDADFailed|AddrTentative), gw6}, "2001:db8:1::1/64", "dad failed"},
		{"tentative", Config{}, []msg{upLink(2, "eth0"), flagged(addr(2, "2001:db8:1::1/64"), AddrTentative), gw6}, "2001:db8:1::1/64", "tentative"},
		{"optimistic", Config{}, []msg{upLink(2, "eth0"), flagged(addr(2, "2001:db8:1::1/64"), AddrOptimistic), gw6}, "2001:db8:1::1/64", "tentative"},
		{"deprecated", Config{}, []msg{upLink(2, "eth0"), flagged(addr(2, "192.0.2.1/24"), AddrDeprecated), gw4}, "192.0.2.1/24", "deprecated"},
		{"no route", Config{}, []msg{upLink(2, "eth0"), addr(2, "192.0.2.1/24")}, "192.0.2.1/24", "no route"},
		{"connected route is not a way out", Config{}, []msg{upLink(2, "eth0"), addr(2, "192.0.2.1/24"), connected(2, "192.0.2.1/24")}, "192.0.2.1/24", "no route"},
		{"connected route counts when asked", Config{ConnectedRoutes: true}, []msg{upLink(2, "eth0"), addr(2, "192.0.2.1/24"), connected(2, "192.0.2.1/24")}, "192.0.2.1/24", ""},
		{"ipv6 route does not serve ipv4", Config{}, []msg{upLink(2, "eth0"), addr(2, "192.0.2.1/24"), gw6}, "192.0.2.1/24", "no route"},
		{"another link's route does not serve", Config{}, []msg{upLink(2, "eth0"), upLink(3, "eth1"), addr(2, "192.0.2.1/24"), defaultRoute(3, 254, "198.51.100.254")}, "192.0.2.1/24", "no route"},
		{"default route in a policy table", Config{}, []msg{upLink(2, "eth0"), addr(2, "192.0.2.1/24"), defaultRoute(2, 101, "192.0.2.254")}, "192.0.2.1/24", ""},
		{"excluded beats link down", Config{ExcludeNames: []string{"eth0"}}, []msg{downLink(2, "eth0"), addr(2, "192.0.2.1/24")}, "192.0.2.1/24", "excluded by name"},
		{"link down beats tentative", Config{}, []msg{downLink(2, "eth0"), flagged(addr(2, "2001:db8:1::1/64"), AddrTentative)}, "2001:db8:1::1/64", "link down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tableWith(t, &tt.cfg, tt.msgs...).state()
			a := addrOf(t, s, 2, tt.prefix)
			if a.Reason != tt.want || a.Usable != (tt.want == "") {
				t.Fatalf("%s: usable %v reason %q, want reason %q", tt.prefix, a.Usable, a.Reason, tt.want)
			}
		})
	}
}

func TestRouteRule(t *testing.T) {
	t.Parallel()
	onLink := func(prefix string, proto int) routeMsg {
		r := connected(2, prefix)
		r.protocol = proto
		return r
	}
	withType := func(r routeMsg, typ int) routeMsg { r.typ = typ; return r }
	inTable := func(r routeMsg, table int) routeMsg { r.table = table; return r }
	cloned := func(r routeMsg) routeMsg { r.cloned = true; return r }
	multipath := defaultRoute(3, 254, "198.51.100.254")
	multipath.hops = append(multipath.hops, nexthop{link: 2, gw: netip.MustParseAddr("192.0.2.254")})
	replaced := defaultRoute(3, 254, "198.51.100.254")
	replaced.replace = true

	tests := []struct {
		name string
		msgs []msg
		want bool // link 2 has an IPv4 route
	}{
		{"default via gateway", []msg{defaultRoute(2, 254, "192.0.2.254")}, true},
		{"on-link default", []msg{onLink("0.0.0.0/0", rtprotKernel)}, true},
		{"static on-link subnet", []msg{onLink("203.0.113.0/24", 4)}, true},
		{"kernel prefix route", []msg{onLink("192.0.2.0/24", rtprotKernel)}, false},
		{"gateway route to a subnet", []msg{func() routeMsg {
			r := connected(2, "203.0.113.0/24")
			r.hops[0].gw = netip.MustParseAddr("192.0.2.254")
			return r
		}()}, true},
		{"local table", []msg{inTable(defaultRoute(2, 254, "192.0.2.254"), rtTableLocal)}, false},
		{"unreachable type", []msg{withType(defaultRoute(2, 254, "192.0.2.254"), 7)}, false},
		{"cloned", []msg{cloned(defaultRoute(2, 254, "192.0.2.254"))}, false},
		{"multipath next hop", []msg{multipath}, true},
		{"deleted", []msg{defaultRoute(2, 254, "192.0.2.254"), del(defaultRoute(2, 254, "192.0.2.254"))}, false},
		{"delete of another next hop keeps it", []msg{defaultRoute(2, 254, "192.0.2.254"), defaultRoute(2, 254, "192.0.2.253"), del(defaultRoute(2, 254, "192.0.2.253"))}, true},
		{"delete of one multipath hop", []msg{multipath, del(defaultRoute(2, 254, "192.0.2.254"))}, false},
		{"replace moves the route away", []msg{defaultRoute(2, 254, "192.0.2.254"), replaced}, false},
		{"two tables, one deleted", []msg{defaultRoute(2, 254, "192.0.2.254"), defaultRoute(2, 101, "192.0.2.254"), del(defaultRoute(2, 254, "192.0.2.254"))}, true},
		{"duplicate add counted once", []msg{defaultRoute(2, 254, "192.0.2.254"), defaultRoute(2, 254, "192.0.2.254"), del(defaultRoute(2, 254, "192.0.2.254"))}, false},
		{"link set down flushes ipv4", []msg{defaultRoute(2, 254, "192.0.2.254"), downLink(2, "eth0"), upLink(2, "eth0")}, false},
		{"link set down keeps multipath ipv4", []msg{multipath, downLink(2, "eth0"), upLink(2, "eth0")}, true},
		{"link removed", []msg{defaultRoute(2, 254, "192.0.2.254"), linkMsg{del: true, index: 2}, upLink(2, "eth0")}, false},
		{"snapshot replaces", []msg{defaultRoute(2, 254, "192.0.2.254"), snapshotMsg{links: []linkMsg{upLink(2, "eth0")}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := append([]msg{upLink(2, "eth0"), upLink(3, "eth1")}, tt.msgs...)
			tb := tableWith(t, nil, msgs...)
			if got := tb.state().Links[2].HasRoute4; got != tt.want {
				t.Fatalf("HasRoute4 = %v, want %v (routes %v)", got, tt.want, tb.routes)
			}
		})
	}
}

func TestLinkDownKeepsIPv6Routes(t *testing.T) {
	t.Parallel()
	// IPv6 announces its own deletions; only IPv4 is flushed silently.
	tb := tableWith(t, nil, upLink(2, "eth0"), defaultRoute(2, 254, "2001:db8:1::fe"), downLink(2, "eth0"), upLink(2, "eth0"))
	if !tb.state().Links[2].HasRoute6 {
		t.Fatal("IPv6 default route lost on link down")
	}
}

func TestLinkRemovedDropsAddrs(t *testing.T) {
	t.Parallel()
	tb := tableWith(t, nil, upLink(2, "eth0"), addr(2, "192.0.2.1/24"), addr(3, "198.51.100.1/24"), linkMsg{del: true, index: 2})
	s := tb.state()
	if len(s.Addrs) != 1 || s.Addrs[0].LinkIndex != 3 {
		t.Fatalf("addresses after removing link 2: %+v", s.Addrs)
	}
	tb.apply(delAddr(3, "198.51.100.1/24"))
	if s := tb.state(); len(s.Addrs) != 0 {
		t.Fatalf("addresses after delete: %+v", s.Addrs)
	}
}

func TestStateLinks(t *testing.T) {
	t.Parallel()
	veth := upLink(3, "eth1")
	veth.typ = "veth"
	vlan := upLink(4, "eth0.7")
	vlan.typ, vlan.parent = "vlan", 2
	lo := linkMsg{index: 1, name: "lo", typ: "device", encap: "loopback", flags: iffUp | iffLowerUp | iffLoopback, mtu: 65536}
	tb := tableWith(t, nil, lo, upLink(2, "eth0"), veth, vlan, defaultRoute(2, 254, "192.0.2.254"))
	want := map[int]Link{
		1: {Index: 1, Name: "lo", Kind: KindLoopback, Type: "device", Up: true, MTU: 65536, Reason: "excluded by kind loopback"},
		2: {Index: 2, Name: "eth0", Kind: KindWired, Type: "device", Up: true, MTU: 1500, HardwareAddr: hwA, Included: true, HasRoute4: true},
		3: {Index: 3, Name: "eth1", Kind: KindVirtual, Type: "veth", Up: true, MTU: 1500, HardwareAddr: hwA, Reason: "excluded by kind virtual"},
		4: {Index: 4, Name: "eth0.7", Kind: KindWired, Type: "vlan", Up: true, MTU: 1500, HardwareAddr: hwA, Included: true},
	}
	if diff := cmp.Diff(want, tb.state().Links); diff != "" {
		t.Fatalf("links (-want +got):\n%s", diff)
	}
}

func TestSysfsFacts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sys  sysInfo
		err  error
		want Kind
	}{
		{"matching wifi", sysInfo{ifindex: 2, addr: hwA.String(), devType: "wlan"}, nil, KindWifi},
		{"matching wwan", sysInfo{ifindex: 2, addr: hwA.String(), devType: "wwan"}, nil, KindCellular},
		{"another namespace's device: index", sysInfo{ifindex: 5, addr: hwA.String(), devType: "wlan"}, nil, KindWired},
		{"another namespace's device: address", sysInfo{ifindex: 2, addr: "02:00:00:00:00:99", devType: "wlan"}, nil, KindWired},
		{"no sysfs entry", sysInfo{}, errors.New("no such file"), KindWired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			tb := newTable(testConfig(t, nil), func(name string) (sysInfo, error) {
				calls++
				if name != "wlan0" {
					t.Errorf("sysfs read for %q", name)
				}
				return tt.sys, tt.err
			})
			tb.apply(upLink(2, "wlan0"))
			tb.apply(downLink(2, "wlan0")) // same name, type and address: no new read
			if got := tb.state().Links[2].Kind; got != tt.want {
				t.Fatalf("kind = %v, want %v", got, tt.want)
			}
			if calls != 1 {
				t.Fatalf("sysfs read %d times, want 1", calls)
			}
		})
	}
}

// TestRoutesRelistAfterReorder: the route socket delivered the route a
// flapping link got back before the link socket delivered the link's
// down, so the table dropped it (IPv4 routes are flushed silently on
// down). The routes re-listed after the link message restore the truth.
func TestRoutesRelistAfterReorder(t *testing.T) {
	t.Parallel()
	route := defaultRoute(2, 101, "192.0.2.2")
	tb := tableWith(t, nil, upLink(2, "eth0"), addr(2, "192.0.2.1/24"), route,
		// Reordered: the route's return, then the down and the up.
		route, downLink(2, "eth0"), upLink(2, "eth0"))
	if a := addrOf(t, tb.state(), 2, "192.0.2.1/24"); a.Reason != "no route" {
		t.Fatalf("before the re-list: %+v, want no route (the reordering this guards against)", a)
	}
	tb.apply(routesMsg{routes: []routeMsg{route, connected(2, "192.0.2.1/24")}})
	if a := addrOf(t, tb.state(), 2, "192.0.2.1/24"); !a.Usable {
		t.Fatalf("after the re-list: %+v, want usable", a)
	}
	// The re-list replaces the routes: one that is gone is dropped.
	tb.apply(routesMsg{routes: []routeMsg{connected(2, "192.0.2.1/24")}})
	if a := addrOf(t, tb.state(), 2, "192.0.2.1/24"); a.Reason != "no route" {
		t.Fatalf("after a re-list without the default route: %+v, want no route", a)
	}
}

// TestAddrDeleteDropsRoutes: deleting a link's last IPv4 address flushes
// its IPv4 routes as silently as setting it down; deleting one of several
// does not, and IPv6 routes stay either way.
func TestAddrDeleteDropsRoutes(t *testing.T) {
	t.Parallel()
	gw4, gw6 := defaultRoute(2, 101, "192.0.2.254"), defaultRoute(2, 101, "2001:db8:1::fe")
	multi := routeMsg{family: afInet, table: 254, typ: rtnUnicast, protocol: 3, dst: netip.MustParsePrefix("203.0.113.0/24"),
		hops: []nexthop{{link: 2, gw: netip.MustParseAddr("192.0.2.254")}, {link: 3, gw: netip.MustParseAddr("198.51.100.254")}}}
	base := []msg{upLink(2, "eth0"), upLink(3, "eth1"), gw4, gw6}
	tests := []struct {
		name       string
		msgs       []msg
		want4      bool // HasRoute4 of link 2 after msgs
		wantReason string
	}{
		{"last ipv4 address deleted and added back", []msg{addr(2, "192.0.2.1/24"), delAddr(2, "192.0.2.1/24"), addr(2, "192.0.2.1/24")}, false, "no route"},
		{"one of two ipv4 addresses deleted", []msg{addr(2, "192.0.2.1/24"), addr(2, "192.0.2.9/24"), delAddr(2, "192.0.2.9/24")}, true, ""},
		{"ipv4 address of another link deleted", []msg{addr(2, "192.0.2.1/24"), addr(3, "198.51.100.1/24"), delAddr(3, "198.51.100.1/24")}, true, ""},
		{"unknown ipv4 address deleted", []msg{addr(2, "192.0.2.1/24"), delAddr(2, "192.0.2.9/24")}, true, ""},
		{"last ipv6 address deleted", []msg{addr(2, "192.0.2.1/24"), addr(2, "2001:db8:1::1/64"), delAddr(2, "2001:db8:1::1/64")}, true, ""},
		{"multipath route keeps its next hop", []msg{del(gw4), multi, addr(2, "192.0.2.1/24"), delAddr(2, "192.0.2.1/24"), addr(2, "192.0.2.1/24")}, true, ""},
		{"routes restored after the address", []msg{addr(2, "192.0.2.1/24"), delAddr(2, "192.0.2.1/24"), addr(2, "192.0.2.1/24"), gw4}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := tableWith(t, nil, append(base, tt.msgs...)...)
			s := tb.state()
			if l := s.Links[2]; l.HasRoute4 != tt.want4 || !l.HasRoute6 {
				t.Fatalf("link 2 HasRoute4 %v HasRoute6 %v, want %v true (routes %v)", l.HasRoute4, l.HasRoute6, tt.want4, tb.routes)
			}
			if a := addrOf(t, s, 2, "192.0.2.1/24"); a.Reason != tt.wantReason {
				t.Fatalf("192.0.2.1/24: %+v, want reason %q", a, tt.wantReason)
			}
		})
	}
}

// TestApplyEffect: a message that cannot change the State needs no settle;
// one that is complete by itself (no message the kernel sends with it can
// undo or complete it) needs a short one; any other the whole window.
func TestApplyEffect(t *testing.T) {
	t.Parallel()
	gw := defaultRoute(2, 101, "192.0.2.254")
	other := defaultRoute(2, 102, "192.0.2.253")
	local := routeMsg{family: afInet, table: rtTableLocal, typ: 2, protocol: rtprotKernel,
		dst: netip.MustParsePrefix("192.0.2.9/32"), hops: []nexthop{{link: 2}}}
	v6eth1 := defaultRoute(3, 101, "2001:db8:2::fe")
	tests := []struct {
		name string
		c    *Config
		m    msg
		want effect
		pre  []msg // after the base table
	}{
		{"same routes listed", nil, routesMsg{routes: []routeMsg{gw, connected(2, "192.0.2.1/24")}}, effectNone, nil},
		{"another route listed, same links", nil, routesMsg{routes: []routeMsg{other}}, effectNone, nil},
		{"a route more listed", nil, routesMsg{routes: []routeMsg{gw, other}}, effectNone, nil},
		{"route of an up link listed", nil, routesMsg{routes: []routeMsg{gw, defaultRoute(2, 101, "2001:db8:1::fe")}}, effectPartial, nil},
		{"route of a down link gone from the listing", nil, routesMsg{routes: []routeMsg{gw}}, effectComplete, []msg{v6eth1}},
		{"route gone from the listing", nil, routesMsg{routes: []routeMsg{connected(2, "192.0.2.1/24")}}, effectPartial, nil},
		{"known route", nil, gw, effectNone, nil},
		{"second route of a routed link", nil, other, effectNone, nil},
		{"local route of an address", nil, local, effectNone, nil},
		{"connected route", nil, connected(2, "192.0.2.9/24"), effectNone, nil},
		{"connected route counted", &Config{ConnectedRoutes: true}, connected(2, "2001:db8:1::/64"), effectComplete, nil},
		{"first route of a family on an up link", nil, defaultRoute(2, 101, "2001:db8:1::fe"), effectComplete, nil},
		{"first route on a down link", nil, defaultRoute(3, 101, "198.51.100.254"), effectPartial, nil},
		{"only route deleted", nil, del(gw), effectPartial, nil},
		{"route of a down link deleted", nil, del(v6eth1), effectComplete, []msg{v6eth1}},
		{"route replaced", nil, routeMsg{replace: true, family: afInet, table: 101, typ: rtnUnicast, protocol: 3,
			dst: gw.dst, hops: []nexthop{{link: 2, gw: netip.MustParseAddr("192.0.2.253")}}}, effectNone, nil},
		{"address added usable", nil, addr(2, "192.0.2.9/24"), effectComplete, nil},
		{"address added without a route", nil, addr(2, "2001:db8:1::9/64"), effectPartial, nil},
		{"address added on a down link", nil, addr(3, "198.51.100.1/24"), effectPartial, nil},
		{"address added on an unknown link", nil, addr(4, "203.0.113.1/24"), effectPartial, nil},
		{"address deleted", nil, delAddr(2, "192.0.2.1/24"), effectComplete, nil},
		{"usable ipv6 address deleted", nil, delAddr(2, "2001:db8:1::1/64"), effectPartial,
			[]msg{defaultRoute(2, 101, "2001:db8:1::fe"), addr(2, "2001:db8:1::1/64")}},
		{"unusable ipv6 address deleted", nil, delAddr(2, "2001:db8:1::1/64"), effectComplete, []msg{addr(2, "2001:db8:1::1/64")}},
		{"link set down", nil, downLink(2, "eth0"), effectComplete, nil},
		{"link removed", nil, linkMsg{del: true, index: 2}, effectComplete, nil},
		{"link set up", nil, upLink(3, "eth1"), effectPartial, nil},
		{"link changed while up", nil, upLink(2, "eth0"), effectPartial, nil},
		{"snapshot", nil, snapshotMsg{}, effectPartial, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := tableWith(t, tt.c, append([]msg{upLink(2, "eth0"), downLink(3, "eth1"), addr(2, "192.0.2.1/24"), gw}, tt.pre...)...)
			if got := tb.apply(tt.m); got != tt.want {
				t.Fatalf("apply = %d, want %d", got, tt.want)
			}
		})
	}
}
