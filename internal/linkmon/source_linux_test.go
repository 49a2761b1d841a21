//go:build linux

package linkmon

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

func TestUAPIConstants(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"AF_INET", afInet, unix.AF_INET},
		{"AF_INET6", afInet6, unix.AF_INET6},
		{"IFF_UP", iffUp, unix.IFF_UP},
		{"IFF_LOOPBACK", iffLoopback, unix.IFF_LOOPBACK},
		{"IFF_LOWER_UP", iffLowerUp, unix.IFF_LOWER_UP},
		{"RTN_UNICAST", rtnUnicast, unix.RTN_UNICAST},
		{"RT_TABLE_LOCAL", rtTableLocal, unix.RT_TABLE_LOCAL},
		{"RTPROT_KERNEL", rtprotKernel, unix.RTPROT_KERNEL},
		{"IF_OPER_UP", operUp, int(netlink.OperUp)},
		{"IF_OPER_UNKNOWN", operUnknown, int(netlink.OperUnknown)},
		{"IFA_F_TENTATIVE", int(AddrTentative), unix.IFA_F_TENTATIVE},
		{"IFA_F_STABLE_PRIVACY", int(AddrStablePrivacy), unix.IFA_F_STABLE_PRIVACY},
		{"RT_SCOPE_LINK", int(ScopeLink), unix.RT_SCOPE_LINK},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestLinkFromNetlink(t *testing.T) {
	t.Parallel()
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{
		Index: 4, Name: "eth0", MTU: 1500, HardwareAddr: hw, EncapType: "ether",
		RawFlags: unix.IFF_UP | unix.IFF_LOWER_UP, OperState: netlink.OperUp, ParentIndex: 9,
	}}
	got := linkFromNetlink(l, true)
	want := linkMsg{del: true, index: 4, name: "eth0", typ: "veth", encap: "ether", flags: iffUp | iffLowerUp, oper: operUp, mtu: 1500, hw: hw, parent: 9}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(linkMsg{})); diff != "" {
		t.Fatalf("linkFromNetlink (-want +got):\n%s", diff)
	}
	hw[0] = 0xff
	if got.hw[0] != 2 {
		t.Fatal("link message shares the hardware address with netlink's")
	}
}

func TestAddrFromNetlink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   net.IPNet
		want string // prefix; "" = rejected
	}{
		{"ipv4 in 4 bytes", net.IPNet{IP: net.IP{192, 0, 2, 1}, Mask: net.CIDRMask(24, 32)}, "192.0.2.1/24"},
		{"ipv4 in 16 bytes", net.IPNet{IP: net.ParseIP("192.0.2.1"), Mask: net.CIDRMask(24, 32)}, "192.0.2.1/24"},
		{"ipv6", net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(64, 128)}, "2001:db8::1/64"},
		{"ipv6 with an ipv4 mask", net.IPNet{IP: net.ParseIP("2001:db8::1"), Mask: net.CIDRMask(24, 32)}, ""},
		{"no address", net.IPNet{Mask: net.CIDRMask(24, 32)}, ""},
		{"bad mask", net.IPNet{IP: net.IP{192, 0, 2, 1}, Mask: net.IPMask{255, 0, 255, 0}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := addrFromNetlink(tt.in, 3, unix.IFA_F_NODAD, unix.RT_SCOPE_UNIVERSE, false)
			if tt.want == "" {
				if ok {
					t.Fatalf("accepted as %v", m.prefix)
				}
				return
			}
			want := addrMsg{link: 3, prefix: netip.MustParsePrefix(tt.want), flags: AddrNoDAD, scope: ScopeGlobal}
			if !ok || m != want {
				t.Fatalf("addrFromNetlink = %+v, %v; want %+v", m, ok, want)
			}
		})
	}
}

func TestRouteFromNetlink(t *testing.T) {
	t.Parallel()
	v4 := func(s string) net.IP { return net.ParseIP(s).To4() }
	tests := []struct {
		name    string
		r       netlink.Route
		typ     uint16
		nlFlags uint16
		want    routeMsg
		ok      bool
	}{
		{
			name: "ipv4 default as the library makes it",
			r:    netlink.Route{Family: unix.AF_INET, Table: 101, Type: unix.RTN_UNICAST, Protocol: unix.RTPROT_BOOT, LinkIndex: 2, Gw: v4("192.0.2.2"), Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}},
			typ:  unix.RTM_NEWROUTE,
			want: routeMsg{family: afInet, table: 101, typ: rtnUnicast, protocol: unix.RTPROT_BOOT, dst: netip.MustParsePrefix("0.0.0.0/0"), hops: []nexthop{{2, netip.MustParseAddr("192.0.2.2")}}},
			ok:   true,
		},
		{
			name: "ipv6 default without dst, replaced",
			r:    netlink.Route{Family: unix.AF_INET6, Table: 254, Type: unix.RTN_UNICAST, Priority: 1024, LinkIndex: 2, Gw: net.ParseIP("2001:db8::2")},
			typ:  unix.RTM_NEWROUTE, nlFlags: unix.NLM_F_REPLACE,
			want: routeMsg{replace: true, family: afInet6, table: 254, typ: rtnUnicast, priority: 1024, dst: netip.MustParsePrefix("::/0"), hops: []nexthop{{2, netip.MustParseAddr("2001:db8::2")}}},
			ok:   true,
		},
		{
			name: "deleted connected route",
			r:    netlink.Route{Family: unix.AF_INET, Table: 254, Type: unix.RTN_UNICAST, Protocol: unix.RTPROT_KERNEL, LinkIndex: 3, Dst: &net.IPNet{IP: v4("198.51.100.0"), Mask: net.CIDRMask(24, 32)}},
			typ:  unix.RTM_DELROUTE,
			want: routeMsg{del: true, family: afInet, table: 254, typ: rtnUnicast, protocol: rtprotKernel, dst: netip.MustParsePrefix("198.51.100.0/24"), hops: []nexthop{{link: 3}}},
			ok:   true,
		},
		{
			name: "multipath with an ipv6 next hop via",
			r: netlink.Route{Family: unix.AF_INET, Table: 254, Type: unix.RTN_UNICAST, Flags: unix.RTM_F_CLONED, MultiPath: []*netlink.NexthopInfo{
				{LinkIndex: 2, Gw: v4("192.0.2.2")},
				{LinkIndex: 3, Via: &netlink.Via{AddrFamily: unix.AF_INET6, Addr: net.ParseIP("2001:db8::2")}},
			}},
			typ:  unix.RTM_NEWROUTE,
			want: routeMsg{family: afInet, table: 254, typ: rtnUnicast, cloned: true, dst: netip.MustParsePrefix("0.0.0.0/0"), hops: []nexthop{{2, netip.MustParseAddr("192.0.2.2")}, {3, netip.MustParseAddr("2001:db8::2")}}},
			ok:   true,
		},
		{
			name: "mpls",
			r:    netlink.Route{Family: unix.AF_MPLS, LinkIndex: 2},
			typ:  unix.RTM_NEWROUTE,
		},
		{
			name: "dst of the wrong family",
			r:    netlink.Route{Family: unix.AF_INET, LinkIndex: 2, Dst: &net.IPNet{IP: net.ParseIP("2001:db8::"), Mask: net.CIDRMask(32, 128)}},
			typ:  unix.RTM_NEWROUTE,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := routeFromNetlink(tt.r, tt.typ, tt.nlFlags)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tt.ok, got)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(routeMsg{}, nexthop{}), cmpOpts); diff != "" {
				t.Fatalf("routeFromNetlink (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSourceResyncsAfterOverflow makes the kernel drop messages (ENOBUFS) on
// a subscription with a tiny receive buffer that nobody reads, and checks
// that the source sends a new, complete snapshot.
func TestSourceResyncsAfterOverflow(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "overflow")
	ns := netns.NsHandle(h.NetNS())
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	src := newNLSource(ns, nh, log, 1, 0) // the smallest buffer, unbuffered channels

	msgs := make(chan msg)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := src.Receive()
			if err != nil {
				errc <- err
				return
			}
			msgs <- m
		}
	}()
	defer func() {
		src.Close()
		for {
			select {
			case <-msgs:
				continue
			case err := <-errc:
				if err != errSourceClosed {
					t.Errorf("Receive after Close = %v", err)
				}
			}
			return
		}
	}()
	if m := <-msgs; m == nil {
		t.Fatal("no snapshot")
	} else if _, ok := m.(snapshotMsg); !ok {
		t.Fatalf("first message %T, want a snapshot", m)
	}

	lo, err := nh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32)
		if err := nh.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatalf("add %v: %v", p, err)
		}
	}
	// The snapshot may come while the addresses are still being added, and
	// the new subscription may overflow again: what counts is that a resync
	// happened and that the messages converge on the kernel's state.
	tb := newTable(testConfig(t, nil), nil)
	resyncs := 0
	count := func() int {
		c := 0
		for k := range tb.addrs {
			if netip.MustParsePrefix("198.51.100.0/24").Contains(k.prefix.Addr()) {
				c++
			}
		}
		return c
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-msgs:
			tb.apply(m)
			if _, ok := m.(snapshotMsg); ok {
				resyncs++
			}
			if resyncs > 0 && count() == n {
				t.Logf("converged after %d resyncs", resyncs)
				return
			}
		case err := <-errc:
			t.Fatalf("Receive: %v", err)
		case <-deadline:
			t.Fatalf("after 10s: %d resyncs, %d of the %d addresses", resyncs, count(), n)
		}
	}
}

// TestSourceRelistsRoutesAfterAddrDelete checks that the source re-lists
// the routes after an IPv4 address is deleted, which may take routes the
// kernel never reports deleted with it, and not after an IPv6 one.
func TestSourceRelistsRoutesAfterAddrDelete(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "relist")
	ns := netns.NsHandle(h.NetNS())
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	src := newNLSource(ns, nh, slog.New(slog.NewTextHandler(t.Output(), nil)), defaultRcvBuf, defaultChanLen)
	// Receive runs on the test's goroutine, so that the test decides what
	// the kernel does between two calls; a watchdog ends a Receive that
	// waits for a message that never comes.
	watchdog := time.AfterFunc(10*time.Second, func() { src.Close() })
	defer watchdog.Stop()
	defer src.Close()
	receive := func() msg {
		t.Helper()
		m, err := src.Receive()
		if err != nil {
			t.Fatalf("Receive: %v (the watchdog closes the source after 10s)", err)
		}
		return m
	}
	if _, ok := receive().(snapshotMsg); !ok {
		t.Fatal("first message is not a snapshot")
	}
	lo, err := nh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	nlAddr := func(p netip.Prefix) *netlink.Addr {
		return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, Flags: unix.IFA_F_NODAD}
	}
	// change adds or deletes p and returns the messages up to the one of
	// p, one letter each: a (address), r (route), R (routes re-listed),
	// l (link).
	change := func(p netip.Prefix, del bool) string {
		t.Helper()
		op := nh.AddrAdd
		if del {
			op = nh.AddrDel
		}
		if err := op(lo, nlAddr(p)); err != nil {
			t.Fatalf("add (%v) or delete (%v) %s: %v", !del, del, p, err)
		}
		var kinds []byte
		for range 1000 {
			switch m := receive().(type) {
			case addrMsg:
				if m.prefix == p && m.del == del {
					return string(kinds)
				}
				kinds = append(kinds, 'a')
			case routeMsg:
				kinds = append(kinds, 'r')
			case routesMsg:
				kinds = append(kinds, 'R')
			case linkMsg:
				kinds = append(kinds, 'l')
			}
		}
		t.Fatalf("no message for %s in 1000", p)
		return ""
	}
	// untilRelist returns the messages up to the next routes re-list.
	untilRelist := func() string {
		t.Helper()
		var kinds []byte
		for range 1000 {
			switch receive().(type) {
			case routesMsg:
				return string(kinds)
			case addrMsg:
				kinds = append(kinds, 'a')
			case routeMsg:
				kinds = append(kinds, 'r')
			case linkMsg:
				kinds = append(kinds, 'l')
			}
		}
		t.Fatal("no routes re-listed in 1000 messages")
		return ""
	}
	// relisting reports whether the source is about to list the routes
	// again, or is listing them.
	relisting := func() bool { return src.relistRoutes || src.relisted != nil }
	v4, v6 := netip.MustParsePrefix("192.0.2.9/32"), netip.MustParsePrefix("2001:db8::9/128")
	for _, p := range []netip.Prefix{v4, v6} {
		change(p, false)
	}
	if relisting() {
		t.Fatal("routes re-listed after adding addresses")
	}
	if got := change(v6, true); strings.Contains(got, "R") || relisting() {
		t.Fatalf("routes re-listed after an IPv6 deletion (messages %q)", got)
	}
	if got := change(v4, true); strings.Contains(got, "R") {
		t.Fatalf("routes re-listed before the IPv4 deletion: %q", got)
	}
	if !relisting() {
		t.Fatal("no re-list due after an IPv4 deletion")
	}
	untilRelist()
	if relisting() {
		t.Fatal("a re-list still due after the routes were sent")
	}
}
