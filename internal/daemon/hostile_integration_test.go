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

// hostileBed is a client, a hostile server in userspace mode that
// announces what it likes on the client's connections, and a third host
// behind the server, which counts the segments it receives.
type hostileBed struct {
	tb      *netnstest.Testbed
	third   *netnstest.Host
	server  *hostiletest.Server
	counter *hostiletest.Counter
	port    uint16
	// legit is the server's second address, which it may announce.
	legit netip.Addr
}

// Third-host addresses: a prefix the client's configuration denies holds
// the second.
var (
	thirdAddr   = netip.MustParseAddr("203.0.113.2")
	deniedAddr  = netip.MustParseAddr("203.0.113.66")
	deniedNet   = "203.0.113.64/26"
	thirdPort25 = uint16(25)
)

// announce is one address the hostile server announces: the class it is
// an example of, and the address and port.
type announce struct {
	class string
	addr  netip.AddrPort
}

func newHostileBed(t *testing.T) *hostileBed {
	t.Helper()
	tb := netnstest.NewTestbed(t, 1)
	b := &hostileBed{tb: tb, third: netnstest.NewHost(t, "third"), legit: netip.MustParseAddr("192.0.2.3")}
	srv := tb.Server
	srv.AddAddr("eth0", netip.MustParsePrefix(b.legit.String()+"/24"))
	// The third host: behind the server, with documentation addresses
	// only, and no listener.
	netnstest.Connect(srv, "eth9", b.third, "eth0")
	srv.AddAddr("eth9", netip.MustParsePrefix("203.0.113.1/24"))
	srv.Sysctl("net.ipv4.ip_forward", "1")
	b.third.AddAddr("eth0", netip.MustParsePrefix(thirdAddr.String()+"/24"))
	b.third.AddAddr("eth0", netip.MustParsePrefix(deniedAddr.String()+"/24"))
	b.third.MustExec("ip", "route", "add", "default", "via", "203.0.113.1")
	b.server = hostiletest.NewServer(t, srv)
	ln := srv.Listen("tcp4", "0.0.0.0:0")
	go serve(ln)
	b.port = addrPort(ln).Port()
	var third []netip.AddrPort
	for _, a := range b.announces() {
		if strings.HasPrefix(a.addr.Addr().String(), "203.0.113.") {
			third = append(third, a.addr)
		}
	}
	b.counter = hostiletest.NewCounter(t, b.third, third...)
	return b
}

// announces is what the server announces: every class the client must
// refuse, one it may try and that fails, and the legitimate one.
func (b *hostileBed) announces() []announce {
	l := b.tb.Links[0]
	at := func(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, b.port) }
	// The first announces a peer may lead to come first: the in-kernel
	// path manager of the reference follows only the first 8.
	return []announce{
		{"the server's second address", at(b.legit)},
		{"a third host (allowed, failing)", at(thirdAddr)},
		{"another port of a third host", netip.AddrPortFrom(thirdAddr, thirdPort25)},
		{"a third host in a denied prefix", at(deniedAddr)},
		{"the client's own address", at(l.Client4)},
		{"loopback", at(netip.MustParseAddr("127.0.0.1"))},
		{"directed broadcast", at(netip.MustParseAddr("192.0.2.255"))},
		{"limited broadcast", at(netip.MustParseAddr("255.255.255.255"))},
		{"multicast", at(netip.MustParseAddr("224.0.0.1"))},
		{"unspecified", at(netip.MustParseAddr("0.0.0.0"))},
	}
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
	dial(t, b.tb.Client, netip.AddrPortFrom(b.tb.Links[0].Server4, b.port))
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
// client's own address, loopback, broadcasts, multicast, the unspecified
// address, another port of a third host and a third host in a prefix the
// client's configuration denies; then an address that passes and fails,
// and its own second address. A client running mptcpgod in userspace
// mode sends nothing to the refused ones, tries the failing one exactly
// peers.tries times and joins the legitimate one; in kernel mode, where
// the kernel follows announces itself, add_addr_accepted stays 0 and the
// client sends nothing at all. The in-kernel path manager that trusts
// announces is logged beside them for reference.
func TestHostilePeer(t *testing.T) {
	t.Parallel()
	peers := fmt.Sprintf("\n[peers]\ndeny = [%q]\ntries = %d\n", deniedNet, hostileTries)
	t.Run("userspace", func(t *testing.T) {
		t.Parallel()
		b := newHostileBed(t)
		r := daemontest.Run(t, b.tb.Client, config("userspace")+peers)
		b.attack(t)
		failing := netip.AddrPortFrom(thirdAddr, b.port)
		legit := netip.AddrPortFrom(b.legit, b.port)
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
			if state[failing] == pmstate.PeerGivenUp && state[legit] == pmstate.PeerJoined && len(conn.PeerAddrs) >= 9 {
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
		if ps := paths(t, b.tb.Client, conn.Local); !slices.Contains(ps, b.tb.Links[0].Client4.String()+"->"+legit.String()) {
			t.Errorf("no subflow to the server's second address: %v", ps)
		}
		st, err := r.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("userspace mode: refused %v, given up %d; the third host received %v, %d segments; the client sent %d MP_JOIN SYNs",
			st.Counters.PeerAddrsRefused, st.Counters.PeerAddrsGivenUp, got, segs, sent)
	})
	t.Run("kernel", func(t *testing.T) {
		t.Parallel()
		b := newHostileBed(t)
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
	})
	t.Run("in-kernel reference", func(t *testing.T) {
		t.Parallel()
		b := newHostileBed(t)
		acceptJoins(b.tb.Client)
		b.attack(t)
		// The kernel follows the announces in order: the third host's
		// other port is the third. Older kernels may drop an announce
		// of the burst instead, counted as AddAddrDrop (seen on 6.12
		// under emulation): there the reference is the announces the
		// kernel followed or dropped.
		other := netip.AddrPortFrom(thirdAddr, thirdPort25)
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
	})
}
