//go:build linux

package bench_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// pollEvery is how often BenchmarkReaction lists the endpoints: endpoints
// have no events, so its figures are late by up to this much.
const pollEvery = 100 * time.Microsecond

// reactionAddr and reactionAddr6 are the addresses BenchmarkReaction adds
// to and removes from the client's eth1, beside the testbed's own: eth1
// keeps its routes, so the address is usable as soon as it is added (the
// IPv6 one without duplicate address detection, nodad).
var (
	reactionAddr  = netip.MustParsePrefix("198.51.100.11/24")
	reactionAddr6 = netip.MustParsePrefix("2001:db8:2::11/64")
)

// floorID is the endpoint id of the floor's endpoint, known to it as a
// path manager knows the ids it gave.
const floorID = 50

// reactionCase is a path manager run in the client namespace of
// BenchmarkReaction.
type reactionCase struct {
	manager, mode string
	setup         func(b *testing.B, tb *netnstest.Testbed, cli *genl.Client)
	// react, when set, is the path manager: the benchmark calls it at
	// once after adding (added) or removing the address.
	react func(cli *genl.Client, addr netip.Addr, added bool) error
}

var reactionCases = []reactionCase{
	// The floor: the kernel's own time to add and delete the endpoint,
	// asked at once by the benchmark.
	{"kernel", "kernel", func(b *testing.B, tb *netnstest.Testbed, _ *genl.Client) {
		tb.Client.SetPathManager("kernel")
	}, func(cli *genl.Client, addr netip.Addr, added bool) error {
		if added {
			return cli.AddEndpoint(genl.Endpoint{ID: floorID, Addr: addr, Flags: genl.FlagSubflow})
		}
		return cli.DelEndpoint(floorID)
	}},
	{"mptcpgod", "kernel", func(b *testing.B, tb *netnstest.Testbed, cli *genl.Client) {
		startDaemon(b, tb.Client, "kernel")
		waitEndpoint(b, cli, tb.Links[1].Client4)
	}, nil},
	{"mptcpd", "kernel", func(b *testing.B, tb *netnstest.Testbed, cli *genl.Client) {
		tb.Client.SetPathManager("kernel")
		startMptcpd(b, tb.Client, cli, "subflow", tb.Links[0].Client4, tb.Links[1].Client4)
	}, nil},
}

// BenchmarkReaction measures, for each path manager in kernel mode, the
// time from an address (IPv4, and IPv6 in the -ipv6 runs) being added to
// the client's eth1 to the kernel listing an endpoint for it, and from its
// removal to the endpoint being gone; an iteration is one add and one
// removal. Its mesh runs (benchMesh) measure, for each path manager in
// either mode, the time from an address being added to every one of
// meshConns established connections having a subflow from it, and from
// its removal to those subflows being gone.
func BenchmarkReaction(b *testing.B) {
	for _, c := range reactionCases {
		for _, p := range []netip.Prefix{reactionAddr, reactionAddr6} {
			name := fmt.Sprintf("%s-%s", c.manager, c.mode)
			if p.Addr().Is6() {
				name += "-ipv6"
			}
			b.Run(name, func(b *testing.B) {
				benchReaction(b, c, p)
			})
		}
	}
	for _, c := range meshCases {
		b.Run(fmt.Sprintf("mesh/%s-%s", c.manager, c.mode), func(b *testing.B) {
			benchMesh(b, c)
		})
	}
	for _, c := range linkCases {
		b.Run(fmt.Sprintf("link/%s-%s", c.manager, c.mode), func(b *testing.B) {
			benchLink(b, c)
		})
	}
}

// clientEth1 returns an rtnetlink handle in tb's client namespace, closed
// at cleanup, and the client's link of tb.Links[1].
func clientEth1(b *testing.B, tb *netnstest.Testbed) (*netlink.Handle, netlink.Link) {
	b.Helper()
	nl, err := netlink.NewHandleAt(netns.NsHandle(tb.Client.NetNS()), unix.NETLINK_ROUTE)
	if err != nil {
		b.Fatalf("netlink handle: %v", err)
	}
	b.Cleanup(nl.Close)
	link, err := nl.LinkByName(tb.Links[1].ClientIf)
	if err != nil {
		b.Fatalf("link %s: %v", tb.Links[1].ClientIf, err)
	}
	return nl, link
}

// reactionFigures are the Result.Figure names of benchReaction's two
// figures for an address of each family.
var reactionFigures = map[bool][2]string{false: {"add", "delete"}, true: {"add6", "delete6"}}

func benchReaction(b *testing.B, c reactionCase, prefix netip.Prefix) {
	tb, _ := testbed(b)
	cli := newClient(b, tb.Client)
	c.setup(b, tb, cli)
	nl, link := clientEth1(b, tb)
	addr := netlinkAddr(prefix)
	var added, removed []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := nl.AddrAdd(link, addr); err != nil {
			b.Fatalf("add %s: %v", prefix, err)
		}
		if c.react != nil {
			if err := c.react(cli, prefix.Addr(), true); err != nil {
				b.Fatalf("add endpoint %s: %v", prefix.Addr(), err)
			}
		}
		added = append(added, waitFor(b, cli, prefix.Addr(), true, start))
		start = time.Now()
		if err := nl.AddrDel(link, addr); err != nil {
			b.Fatalf("remove %s: %v", prefix, err)
		}
		if c.react != nil {
			if err := c.react(cli, prefix.Addr(), false); err != nil {
				b.Fatalf("delete endpoint %s: %v", prefix.Addr(), err)
			}
		}
		removed = append(removed, waitFor(b, cli, prefix.Addr(), false, start))
	}
	add, del := summarize(b, added), summarize(b, removed)
	b.ReportMetric(add.P50, "add-p50-ms")
	b.ReportMetric(add.P90, "add-p90-ms")
	b.ReportMetric(add.P99, "add-p99-ms")
	b.ReportMetric(del.P50, "del-p50-ms")
	b.ReportMetric(del.P90, "del-p90-ms")
	b.ReportMetric(del.P99, "del-p99-ms")
	figures := reactionFigures[prefix.Addr().Is6()]
	record(b,
		bench.Result{Figure: figures[0], Manager: c.manager, Mode: c.mode, Summary: &add},
		bench.Result{Figure: figures[1], Manager: c.manager, Mode: c.mode, Summary: &del})
}

// netlinkAddr is p as an rtnetlink address; an IPv6 one is flagged nodad,
// so it is usable at once.
func netlinkAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// waitFor polls the endpoints every pollEvery until one for addr is
// listed (present) or none is, and returns the time since start.
func waitFor(b *testing.B, cli *genl.Client, addr netip.Addr, present bool, start time.Time) time.Duration {
	b.Helper()
	for hasEndpoint(b, cli, addr) != present {
		if time.Since(start) > waitLimit {
			b.Fatalf("endpoint for %s present: want %v within %v", addr, present, waitLimit)
		}
		time.Sleep(pollEvery)
	}
	return time.Since(start)
}
