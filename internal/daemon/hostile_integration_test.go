//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/hostiletest"
)

// hostileTries is the tries the client's configuration allows an
// announced address that fails.
const hostileTries = 2

// thirdPort25 is the other port of the third host a server announces.
const thirdPort25 = uint16(25)

// hostileFamily is a hostile bed in one address family: the server's
// second address, the third host's link, the prefix the client's
// configuration denies, and the addresses of the family's own classes
// the client must refuse.
type hostileFamily struct {
	name string
	// legit is the server's second address, on the subnet of the
	// testbed's link.
	legit netip.Prefix
	// gateway is the server's address on the third host's link; third
	// and denied are the third host's, in its subnet, and deny the
	// denied prefix, which holds denied and not third.
	gateway       netip.Prefix
	third, denied netip.Addr
	deny          netip.Prefix
	// serverSysctls are the server's sysctls, keys and values: those
	// that make it a router, and what else the family needs.
	serverSysctls [][2]string
	// classes are announced on the connection's port, after the
	// announces both families share.
	classes []addrClass
}

// addrClass is an address and the class it is an example of.
type addrClass struct {
	class string
	addr  netip.Addr
}

// hostileFamilies are the families a hostile peer is tried in: real
// hosts have documentation addresses only. The third host's link has
// the numbers of a testbed's third link, which a bed of one link lacks.
// The IPv6 initial address, a documentation one, is public to the
// peer-address policy, so a unique local address is more private.
var hostileFamilies = []hostileFamily{
	{
		name:          "ipv4",
		legit:         netip.MustParsePrefix("192.0.2.3/24"),
		gateway:       netip.MustParsePrefix("203.0.113.1/24"),
		third:         netip.MustParseAddr("203.0.113.2"),
		denied:        netip.MustParseAddr("203.0.113.66"),
		deny:          netip.MustParsePrefix("203.0.113.64/26"),
		serverSysctls: [][2]string{{"net.ipv4.ip_forward", "1"}},
		classes: []addrClass{
			{"loopback", netip.MustParseAddr("127.0.0.1")},
			{"directed broadcast", netip.MustParseAddr("192.0.2.255")},
			{"limited broadcast", netip.MustParseAddr("255.255.255.255")},
			{"multicast", netip.MustParseAddr("224.0.0.1")},
			{"unspecified", netip.MustParseAddr("0.0.0.0")},
		},
	},
	{
		name:    "ipv6",
		legit:   netip.MustParsePrefix("2001:db8:1::3/64"),
		gateway: netip.MustParsePrefix("2001:db8:3::1/64"),
		third:   netip.MustParseAddr("2001:db8:3::2"),
		denied:  netip.MustParseAddr("2001:db8:3::66"),
		deny:    netip.MustParsePrefix("2001:db8:3::40/122"),
		// An IPv6 announce that names a port takes 30 bytes of the
		// 40 of TCP options, and the timestamps 12: the server's
		// kernel would drop it (AddAddrTxDrop). A hostile peer turns
		// them off to have it sent.
		serverSysctls: [][2]string{{"net.ipv6.conf.all.forwarding", "1"}, {"net.ipv4.tcp_timestamps", "0"}},
		classes: []addrClass{
			{"loopback", netip.MustParseAddr("::1")},
			{"link-local", netip.MustParseAddr("fe80::1")},
			{"multicast", netip.MustParseAddr("ff02::1")},
			{"unspecified", netip.MustParseAddr("::")},
			{"IPv4-mapped loopback", netip.MustParseAddr("::ffff:127.0.0.1")},
			{"unique local (more private)", netip.MustParseAddr("fd00::1")},
		},
	},
}

// initial returns the client's and the server's addresses of l in f.
func (f hostileFamily) initial(l netnstest.Link) (client, server netip.Addr) {
	if f.legit.Addr().Is6() {
		return l.Client6, l.Server6
	}
	return l.Client4, l.Server4
}

// listen returns the network and address of a listener on every address
// of f.
func (f hostileFamily) listen() (network, addr string) {
	if f.legit.Addr().Is6() {
		return "tcp6", "[::]:0"
	}
	return "tcp4", "0.0.0.0:0"
}

// hostileBed is a client, a hostile server in userspace mode that
// announces what it likes on the client's connections, and a third host
// behind the server, which counts the segments it receives, in one
// address family.
type hostileBed struct {
	family  hostileFamily
	tb      *netnstest.Testbed
	third   *netnstest.Host
	server  *hostiletest.Server
	counter *hostiletest.Counter
	port    uint16
}

// announce is one address the hostile server announces: the class it is
// an example of, and the address and port.
type announce struct {
	class string
	addr  netip.AddrPort
}

func newHostileBed(t *testing.T, f hostileFamily) *hostileBed {
	t.Helper()
	tb := netnstest.NewTestbed(t, 1)
	b := &hostileBed{family: f, tb: tb, third: netnstest.NewHost(t, "third")}
	srv := tb.Server
	srv.AddAddr("eth0", f.legit)
	// The third host: behind the server, with documentation addresses
	// only, and no listener.
	netnstest.Connect(srv, "eth9", b.third, "eth0")
	srv.AddAddr("eth9", f.gateway)
	for _, kv := range f.serverSysctls {
		srv.Sysctl(kv[0], kv[1])
	}
	for _, a := range []netip.Addr{f.third, f.denied} {
		b.third.AddAddr("eth0", netip.PrefixFrom(a, f.gateway.Bits()))
	}
	b.third.MustExec("ip", "route", "add", "default", "via", f.gateway.Addr().String())
	b.server = hostiletest.NewServer(t, srv)
	ln := srv.Listen(f.listen())
	go serve(ln)
	b.port = addrPort(ln).Port()
	var third []netip.AddrPort
	for _, a := range b.announces() {
		if f.gateway.Masked().Contains(a.addr.Addr()) {
			third = append(third, a.addr)
		}
	}
	b.counter = hostiletest.NewCounter(t, b.third, third...)
	return b
}

// announces is what the server announces: every class the client must
// refuse, one it may try and that fails, and the legitimate one.
func (b *hostileBed) announces() []announce {
	f := b.family
	own, _ := f.initial(b.tb.Links[0])
	at := func(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, b.port) }
	// The first announces a peer may lead to come first: the in-kernel
	// path manager of the reference follows only the first 8.
	as := []announce{
		{"the server's second address", at(f.legit.Addr())},
		{"a third host (allowed, failing)", at(f.third)},
		{"another port of a third host", netip.AddrPortFrom(f.third, thirdPort25)},
		{"a third host in a denied prefix", at(f.denied)},
		{"the client's own address", at(own)},
	}
	for _, c := range f.classes {
		as = append(as, announce{c.class, at(c.addr)})
	}
	return as
}

// received returns the segments the third host received per address and
// port, and its TcpInSegs.
func (b *hostileBed) received(t *testing.T) (map[netip.AddrPort]int, int) {
	t.Helper()
	got, err := b.counter.Counts()
	if err != nil {
		t.Fatal(err)
	}
	return got, nstatValue(t, b.third, "TcpInSegs")
}

// nstatValue returns the counter name of h's namespace.
func nstatValue(t *testing.T, h *netnstest.Host, name string) int {
	t.Helper()
	n, err := hostiletest.Nstat(h, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// joinCounters are the client's MP_JOIN SYNs: those sent, and those the
// kernel could not send (no socket, no bind, no connect).
func joinCounters(t *testing.T, h *netnstest.Host) (sent, failed int) {
	t.Helper()
	sent = nstatValue(t, h, "MPTcpExtMPJoinSynTx")
	for _, n := range []string{"MPTcpExtMPJoinSynTxCreatSkErr", "MPTcpExtMPJoinSynTxBindErr", "MPTcpExtMPJoinSynTxConnectErr"} {
		failed += nstatValue(t, h, n)
	}
	return sent, failed
}

// joins are the client's MP_JOIN SYNs, sent and failed, as joinCounters
// counts them. Kernels before 6.12 count neither: there the SYNs sent are
// those the third host and the server received, and none is known to
// have failed.
func (b *hostileBed) joins(t *testing.T) (sent, failed int) {
	t.Helper()
	if netnstest.KernelAtLeast(6, 12) {
		return joinCounters(t, b.tb.Client)
	}
	netnstest.Degraded(t, "no MPJoinSynTx counters before Linux 6.12: counted the join SYNs the third host and the server received")
	_, segs := b.received(t)
	return segs + nstatValue(t, b.tb.Server, "MPTcpExtMPJoinSynRx"), 0
}

// attack opens a live connection from the client and has the server
// announce every address of announces on it.
func (b *hostileBed) attack(t *testing.T) {
	t.Helper()
	_, server := b.family.initial(b.tb.Links[0])
	dial(t, b.tb.Client, netip.AddrPortFrom(server, b.port))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	token, err := b.server.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range b.announces() {
		if err := b.server.Announce(token, uint8(i+1), a.addr, b.port); err != nil {
			t.Fatalf("%s: %v", a.class, err)
		}
	}
}

// TestHostilePeer: a server announces, on a live connection, the
// client's own address, loopback, multicast, the unspecified address and
// the classes of its address family (broadcasts in IPv4; link-local, an
// IPv4-mapped and a unique local address in IPv6), another port of a
// third host and a third host in a prefix the client's configuration
// denies; then an address that passes and fails, and its own second
// address. A client running mptcpgod in userspace mode sends nothing to
// the refused ones, tries the failing one exactly peers.tries times and
// joins the legitimate one; in kernel mode, where the kernel follows
// announces itself, add_addr_accepted stays 0 and the client sends
// nothing at all. The in-kernel path manager that trusts announces is
// logged beside them for reference. Each family has a bed of its own.
func TestHostilePeer(t *testing.T) {
	t.Parallel()
	for _, f := range hostileFamilies {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			peers := fmt.Sprintf("\n[peers]\ndeny = [%q]\ntries = %d\n", f.deny, hostileTries)
			t.Run("userspace", func(t *testing.T) {
				t.Parallel()
				hostileUserspace(t, newHostileBed(t, f), peers)
			})
			t.Run("kernel", func(t *testing.T) {
				t.Parallel()
				hostileKernel(t, newHostileBed(t, f), peers)
			})
			t.Run("in-kernel reference", func(t *testing.T) {
				t.Parallel()
				hostileReference(t, newHostileBed(t, f))
			})
		})
	}
}

// hostileUserspace attacks a client running mptcpgod in userspace mode
// with the peer-address policy peers.
func hostileUserspace(t *testing.T, b *hostileBed, peers string) {
	r := daemontest.Run(t, b.tb.Client, config("userspace")+peers)
	b.attack(t)
	failing := netip.AddrPortFrom(b.family.third, b.port)
	legit := netip.AddrPortFrom(b.family.legit.Addr(), b.port)
	var conn pmstate.Conn
	enginetest.Poll(t, "the failing address given up and the legitimate one joined", func() string {
		page, err := r.Conns(context.Background(), pmstate.ConnQuery{})
		if err != nil || len(page.Conns) != 1 {
			return fmt.Sprint(page, err)
		}
		conn = page.Conns[0]
		state := map[netip.AddrPort]pmstate.PeerState{}
		for _, p := range conn.PeerAddrs {
			state[p.Addr] = p.State
		}
		if state[failing] == pmstate.PeerGivenUp && state[legit] == pmstate.PeerJoined && len(conn.PeerAddrs) >= len(b.announces())-1 {
			return ""
		}
		return fmt.Sprintf("%+v", conn.PeerAddrs)
	})
	// Every announce either reached the daemon and was refused, or
	// was dropped by the kernel: either way, nothing was sent.
	for _, p := range conn.PeerAddrs {
		switch p.Addr {
		case conn.Remote, legit:
		case failing:
			if p.Tries != hostileTries {
				t.Errorf("%s given up after %d tries, want %d", p.Addr, p.Tries, hostileTries)
			}
		default:
			if p.State != pmstate.PeerRefused {
				t.Errorf("%s: %s, want refused", p.Addr, p.State)
			}
		}
	}
	got, segs := b.received(t)
	for _, a := range b.announces() {
		want := 0
		if a.addr == failing {
			want = hostileTries
		}
		if n, counted := got[a.addr]; counted && n != want {
			t.Errorf("%s (%s): the third host received %d segments, want %d", a.addr, a.class, n, want)
		}
	}
	if segs != hostileTries {
		t.Errorf("the third host received %d TCP segments, want %d (the failing address's tries)", segs, hostileTries)
	}
	sent, failed := b.joins(t)
	if sent != hostileTries+1 || failed != 0 {
		t.Errorf("the client sent %d MP_JOIN SYNs and failed %d, want %d (the tries and the legitimate join) and 0\n%s",
			sent, failed, hostileTries+1, b.tb.Client.MPTCPDump())
	}
	own, _ := b.family.initial(b.tb.Links[0])
	if ps := paths(t, b.tb.Client, conn.Local); !slices.Contains(ps, own.String()+"->"+legit.String()) {
		t.Errorf("no subflow to the server's second address: %v", ps)
	}
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("userspace mode: refused %v, given up %d; the third host received %v, %d segments; the client sent %d MP_JOIN SYNs",
		st.Counters.PeerAddrsRefused, st.Counters.PeerAddrsGivenUp, got, segs, sent)
}

// hostileKernel attacks a client running mptcpgod in kernel mode, which
// accepts no announces, with the peer-address policy peers.
func hostileKernel(t *testing.T, b *hostileBed, peers string) {
	noAnnounces := "[[policy.chain]]\nname = \"fullmesh\"\nconfig = { limits = { add_addr_accepted = 0 } }\n"
	daemontest.Run(t, b.tb.Client, config("kernel", noAnnounces)+peers)
	b.attack(t)
	// The client's kernel drops what it does not accept: its
	// AddAddrDrop counter says when every announce was seen.
	announced := len(b.announces())
	enginetest.Poll(t, "every announce received", func() string {
		if n := nstatValue(t, b.tb.Client, "MPTcpExtAddAddr"); n < announced {
			return fmt.Sprintf("%d of %d", n, announced)
		}
		return ""
	})
	got, segs := b.received(t)
	sent, failed := b.joins(t)
	if segs != 0 || sent != 0 || failed != 0 {
		t.Errorf("the third host received %d segments (%v), the client sent %d MP_JOIN SYNs, failed %d; want none",
			segs, got, sent, failed)
	}
	t.Logf("kernel mode: add_addr_accepted 0, so the client follows no announce, the server's second address neither (%s)",
		strings.TrimSpace(b.tb.Client.MustExec("ip", "mptcp", "limits", "show")))
}

// hostileReference attacks a client without mptcpgod whose in-kernel
// path manager follows up to 8 announces.
func hostileReference(t *testing.T, b *hostileBed) {
	acceptJoins(b.tb.Client)
	b.attack(t)
	// The kernel follows the announces in order: the third host's
	// other port is the third. Older kernels may drop an announce
	// of the burst instead, counted as AddAddrDrop (seen on 6.12
	// under emulation): there the reference is the announces the
	// kernel followed or dropped.
	other := netip.AddrPortFrom(b.family.third, thirdPort25)
	drops := func() int {
		n, err := hostiletest.Nstat(b.tb.Client, "MPTcpExtAddAddrDrop")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	enginetest.Poll(t, "the kernel following the announce of "+other.String(), func() string {
		got, _ := b.received(t)
		if !netnstest.KernelAtLeast(6, 18) && got[other] == 0 && drops() > 0 {
			netnstest.Degraded(t, "the in-kernel path manager dropped an announce of the burst (AddAddrDrop)")
			return ""
		}
		if got[other] > 0 {
			return ""
		}
		return fmt.Sprintf("%v, %d announces dropped", got, drops())
	})
	got, segs := b.received(t)
	sent, failed := b.joins(t)
	t.Logf("the in-kernel path manager trusting announces (add_addr_accepted 8, no daemon): the third host received %v, %d segments; the client sent %d MP_JOIN SYNs, %d failed, dropped %d announces",
		got, segs, sent, failed, drops())
}
