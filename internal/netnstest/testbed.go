package netnstest

import (
	"fmt"
	"net"
	"net/netip"
)

// MaxLinks is the largest number of links NewTestbed builds.
const MaxLinks = 3

// firstTable is the routing table of link 0; link i uses firstTable+i.
const firstTable = 100

// linkNets4 are the IPv4 networks of the links, one documentation range each.
var linkNets4 = [MaxLinks]string{"192.0.2", "198.51.100", "203.0.113"}

// Link is one veth link of a Testbed: interface names and addresses on the
// client and the server side.
type Link struct {
	ClientIf, ServerIf string
	Client4, Server4   netip.Addr
	Client6, Server6   netip.Addr
}

// Testbed is a client and a server host joined by veth links; see the
// package documentation for addresses and routing.
type Testbed struct {
	Client, Server *Host
	Links          []Link
}

// NewTestbed builds hosts "cli" and "srv" joined by links (1 to MaxLinks)
// veth links with addresses and per-link routing.
func NewTestbed(t TB, links int) *Testbed {
	t.Helper()
	if links < 1 || links > MaxLinks {
		t.Fatalf("netnstest: testbed links %d: want 1 to %d", links, MaxLinks)
	}
	tb := &Testbed{
		Client: NewHost(t, "cli"),
		Server: NewHost(t, "srv"),
	}
	for i := range links {
		l := Link{
			ClientIf: fmt.Sprintf("eth%d", i),
			ServerIf: fmt.Sprintf("eth%d", i),
			Client4:  netip.MustParseAddr(linkNets4[i] + ".1"),
			Server4:  netip.MustParseAddr(linkNets4[i] + ".2"),
			Client6:  netip.MustParseAddr(fmt.Sprintf("2001:db8:%d::1", i+1)),
			Server6:  netip.MustParseAddr(fmt.Sprintf("2001:db8:%d::2", i+1)),
		}
		connect(tb.Client, l.ClientIf, testbedMAC(clientSide, i), tb.Server, l.ServerIf, testbedMAC(serverSide, i))
		tb.Links = append(tb.Links, l)
	}
	tb.Client.route(tb.Links, func(l Link) side {
		return side{l.ClientIf, l.Client4, l.Server4, l.Client6, l.Server6, serverSide, false}
	})
	tb.Server.route(tb.Links, func(l Link) side {
		return side{l.ServerIf, l.Server4, l.Client4, l.Server6, l.Client6, clientSide, true}
	})
	return tb
}

// Testbed sides, as they appear in the MAC addresses.
const (
	clientSide = 1
	serverSide = 2
)

// testbedMAC is the fixed MAC address of a testbed interface: locally
// administered, 02:6d:67 ("mg"), the side and the link number.
func testbedMAC(side, link int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x6d, 0x67, byte(side), 0x00, byte(link)}
}

// side is one host's view of a link.
type side struct {
	ifname      string
	own4, peer4 netip.Addr
	own6, peer6 netip.Addr
	peerMACSide int
	// byPeer routes traffic to the peer's address on a link through that
	// link whatever its source address, as a server's replies reach a
	// multihomed client through the client's provider on that link.
	byPeer bool
}

// Rule preferences: the server's "to <client address>" rules come before
// every host's "from" and "oif" rules. Both are explicit: a rule added
// without one gets the preference just below the first rule's, which
// would put later links' rules in front of the byPeer ones.
const (
	byPeerPref = 1000
	linkPref   = 2000
)

// route configures the addresses, permanent neighbours and routes of one
// side of a testbed. The permanent neighbour entries for the peer keep ARP
// and neighbour discovery out of the way: a link's two directions fail
// independently (Blackhole on one end), and traffic resumes at once when
// a qdisc is cleared.
func (h *Host) route(links []Link, view func(Link) side) {
	h.t.Helper()
	var v4, v6 []string
	for i, l := range links {
		s := view(l)
		table := firstTable + i
		mac := testbedMAC(s.peerMACSide, i)
		v4 = append(v4,
			fmt.Sprintf("addr add %s/24 dev %s", s.own4, s.ifname),
			fmt.Sprintf("neigh replace %s lladdr %s dev %s nud permanent", s.peer4, mac, s.ifname),
			fmt.Sprintf("route add default via %s dev %s table %d", s.peer4, s.ifname, table),
			fmt.Sprintf("rule add from %s table %d pref %d", s.own4, table, linkPref),
			fmt.Sprintf("rule add oif %s table %d pref %d", s.ifname, table, linkPref))
		v6 = append(v6,
			fmt.Sprintf("addr add %s/64 dev %s nodad", s.own6, s.ifname),
			fmt.Sprintf("neigh replace %s lladdr %s dev %s nud permanent", s.peer6, mac, s.ifname),
			fmt.Sprintf("route add default via %s dev %s table %d", s.peer6, s.ifname, table),
			fmt.Sprintf("rule add from %s table %d pref %d", s.own6, table, linkPref),
			fmt.Sprintf("rule add oif %s table %d pref %d", s.ifname, table, linkPref))
		if s.byPeer {
			v4 = append(v4, fmt.Sprintf("rule add to %s table %d pref %d", s.peer4, table, byPeerPref))
			v6 = append(v6, fmt.Sprintf("rule add to %s table %d pref %d", s.peer6, table, byPeerPref))
		}
		if i == 0 {
			v4 = append(v4, fmt.Sprintf("route add default via %s dev %s", s.peer4, s.ifname))
			v6 = append(v6, fmt.Sprintf("route add default via %s dev %s", s.peer6, s.ifname))
		}
	}
	h.ipBatch("-4", v4)
	h.ipBatch("-6", v6)
}
