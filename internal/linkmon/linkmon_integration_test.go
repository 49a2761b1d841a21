//go:build linux

package linkmon_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// waitLimit bounds every wait for a delta; the kernel answers in
// milliseconds, except IPv6 duplicate address detection (about a second).
var waitLimit = netnstest.Patience(10 * time.Second)

// start runs a Monitor of h's namespace until the test ends and returns it
// with its initial Delta. Unless cfg says otherwise, veth links are included.
func start(t testing.TB, h *netnstest.Host, cfg linkmon.Config, logLevel slog.Level) (*linkmon.Monitor, linkmon.Delta) {
	t.Helper()
	cfg.NetNS = h.NetNS()
	if cfg.IncludeKinds == nil && cfg.IncludeNames == nil && cfg.ExcludeKinds == nil {
		cfg.IncludeKinds = []linkmon.Kind{linkmon.KindVirtual}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: logLevel}))
	m, err := linkmon.New(&cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { // after Run's, which stops it
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	runtest.Run(t, "monitor", m.Run)
	d := await(t, m, "the initial state", func(d linkmon.Delta) bool { return d.Initial })
	select {
	case <-m.Ready():
	default:
		t.Fatal("initial delta before Ready")
	}
	return m, d
}

// await reads Deltas until ok accepts one, and returns it.
func await(t testing.TB, m *linkmon.Monitor, what string, ok func(linkmon.Delta) bool) linkmon.Delta {
	t.Helper()
	return awaitWithin(t, m, what, waitLimit, ok)
}

// awaitWithin is await with its own limit.
func awaitWithin(t testing.TB, m *linkmon.Monitor, what string, limit time.Duration, ok func(linkmon.Delta) bool) linkmon.Delta {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		select {
		case d, open := <-m.Events():
			if !open {
				t.Fatalf("events closed while waiting for %s", what)
			}
			if ok(d) {
				return d
			}
		case <-deadline.C:
			t.Fatalf("no delta with %s within %v; state: %s", what, limit, describe(m.State()))
		}
	}
}

// describe prints a State's addresses and links for failure messages.
func describe(s linkmon.State) string {
	var parts []string
	for _, a := range s.Addrs {
		parts = append(parts, fmt.Sprintf("%s@%s usable=%v %q", a.Prefix, s.Links[a.LinkIndex].Name, a.Usable, a.Reason))
	}
	var links []string
	for _, l := range s.Links {
		links = append(links, fmt.Sprintf("%s up=%v route4=%v route6=%v", l.Name, l.Up, l.HasRoute4, l.HasRoute6))
	}
	sort.Strings(links)
	return strings.Join(parts, ", ") + "; links: " + strings.Join(links, ", ")
}

// find returns the address p in as.
func find(as []linkmon.Addr, p netip.Prefix) (linkmon.Addr, bool) {
	for _, a := range as {
		if a.Prefix == p {
			return a, true
		}
	}
	return linkmon.Addr{}, false
}

// has returns a predicate: the Delta lists p in the named change with reason.
func has(change string, p netip.Prefix, reason string) func(linkmon.Delta) bool {
	return func(d linkmon.Delta) bool {
		var as []linkmon.Addr
		switch change {
		case "added":
			as = d.Added
		case "removed":
			as = d.Removed
		}
		a, ok := find(as, p)
		return ok && a.Reason == reason
	}
}

// stateHas returns a predicate: the Delta's State has p with reason.
func stateHas(p netip.Prefix, reason string) func(linkmon.Delta) bool {
	return func(d linkmon.Delta) bool {
		a, ok := find(d.State.Addrs, p)
		return ok && a.Reason == reason && a.Usable == (reason == "")
	}
}

// handle is a netlink handle in h's namespace, to change it without forking
// ip(8), so that timings measure the kernel and the monitor. It opens the
// route family only: a handle of every family fails with "protocol not
// supported" where XFRM or netfilter netlink are modules nobody loaded
// (Debian's kernels).
func handle(t testing.TB, h *netnstest.Host) *netlink.Handle {
	t.Helper()
	nh, err := netlink.NewHandleAt(netns.NsHandle(h.NetNS()), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", h.Name(), err)
	}
	t.Cleanup(nh.Close)
	return nh
}

func linkByName(t testing.TB, nh *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := nh.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func TestInitialState(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	m, d := start(t, tb.Client, linkmon.Config{}, slog.LevelDebug)

	var usable []string
	for _, a := range d.Added {
		usable = append(usable, a.Prefix.String()+" "+d.State.Links[a.LinkIndex].Name)
	}
	sort.Strings(usable)
	want := []string{"192.0.2.1/24 eth0", "198.51.100.1/24 eth1", "2001:db8:1::1/64 eth0", "2001:db8:2::1/64 eth1"}
	if diff := cmp.Diff(want, usable); diff != "" {
		t.Errorf("initial usable addresses (-want +got):\n%s\nstate: %s", diff, describe(d.State))
	}
	if diff := cmp.Diff(d.Added, d.UsableAddrs(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("Added differs from UsableAddrs (-added +usable):\n%s", diff)
	}
	for _, name := range []string{"eth0", "eth1"} {
		l, ok := d.State.LinkByName(name)
		if !ok {
			t.Fatalf("no link %s in %+v", name, d.State.Links)
		}
		if l.Kind != linkmon.KindVirtual || l.Type != "veth" || !l.Up || !l.Included || !l.HasRoute4 || !l.HasRoute6 {
			t.Errorf("link %s: %+v", name, l)
		}
	}
	lo, ok := d.State.LinkByName("lo")
	if !ok || lo.Kind != linkmon.KindLoopback || lo.Included {
		t.Errorf("lo: %+v (found %v)", lo, ok)
	}
	if a, ok := find(d.State.Addrs, netip.MustParsePrefix("127.0.0.1/8")); !ok || a.Usable || a.Reason != "excluded by kind loopback" {
		t.Errorf("127.0.0.1/8: %+v (found %v)", a, ok)
	}
	for _, a := range d.State.Addrs {
		if a.Prefix.Addr().IsLinkLocalUnicast() && (a.Usable || a.Reason != "link-local") {
			t.Errorf("link-local address %+v", a)
		}
	}
	if !m.State().Equal(d.State) {
		t.Error("State() differs from the initial delta")
	}

	// Counters read the kernel's: a datagram out of eth0 moves TxBytes.
	eth0, _ := d.State.LinkByName("eth0")
	before, err := m.Counters(eth0.Index)
	if err != nil {
		t.Fatal(err)
	}
	err = tb.Client.Do(func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(tb.Links[0].Server4, 9).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(make([]byte, 1000))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The datagram leaves once ARP resolved the peer: poll.
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(time.Millisecond) {
		after, err := m.Counters(eth0.Index)
		if err != nil {
			t.Fatal(err)
		}
		if after.TxBytes >= before.TxBytes+1000 && after.TxPackets > before.TxPackets {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters before %+v, after sending 1000 bytes %+v", before, after)
		}
	}
	if _, err := m.Counters(99999); err == nil || !strings.HasPrefix(err.Error(), "linkmon: counters of link 99999") {
		t.Errorf("Counters(99999) error = %v", err)
	}
}

func TestDefaultConfigExcludesVeth(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	_, d := start(t, tb.Client, linkmon.Config{ExcludeKinds: []linkmon.Kind{linkmon.KindVirtual, linkmon.KindLoopback}}, slog.LevelInfo)
	if len(d.Added) != 0 {
		t.Errorf("usable addresses with veth excluded: %v", d.Added)
	}
	a, ok := find(d.State.Addrs, netip.PrefixFrom(tb.Links[0].Client4, 24))
	if !ok || a.Reason != "excluded by kind virtual" {
		t.Errorf("client address: %+v (found %v)", a, ok)
	}
}

func TestAddrAddRemove(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	m, _ := start(t, tb.Client, linkmon.Config{}, slog.LevelDebug)
	nh := handle(t, tb.Client)
	eth0 := linkByName(t, nh, "eth0")

	tests := []struct {
		name   string
		prefix netip.Prefix
		flags  int
	}{
		{"ipv4", netip.MustParsePrefix("192.0.2.50/24"), 0},
		{"ipv6 nodad", netip.MustParsePrefix("2001:db8:1::50/64"), int(linkmon.AddrNoDAD)},
	}
	for _, tt := range tests {
		a := &netlink.Addr{IPNet: ipNet(tt.prefix), Flags: tt.flags}
		begin := time.Now()
		if err := nh.AddrAdd(eth0, a); err != nil {
			t.Fatalf("%s: add %s: %v", tt.name, tt.prefix, err)
		}
		d := await(t, m, tt.prefix.String()+" added", has("added", tt.prefix, ""))
		t.Logf("%s: %s added -> delta in %v", tt.name, tt.prefix, time.Since(begin))
		if got, _ := find(d.Added, tt.prefix); got.LinkIndex != eth0.Attrs().Index || !got.Usable {
			t.Errorf("%s: added %+v", tt.name, got)
		}

		begin = time.Now()
		if err := nh.AddrDel(eth0, a); err != nil {
			t.Fatalf("%s: delete %s: %v", tt.name, tt.prefix, err)
		}
		d = await(t, m, tt.prefix.String()+" removed", has("removed", tt.prefix, "removed"))
		t.Logf("%s: %s deleted -> delta in %v", tt.name, tt.prefix, time.Since(begin))
		if _, ok := find(d.State.Addrs, tt.prefix); ok {
			t.Errorf("%s: %s still in the state", tt.name, tt.prefix)
		}
	}

	// With ip(8), as a user would: the fork and exec count too.
	p := netip.MustParsePrefix("192.0.2.51/24")
	begin := time.Now()
	tb.Client.AddAddr("eth0", p)
	await(t, m, p.String()+" added", has("added", p, ""))
	t.Logf("ip addr add %s -> delta in %v (including ip's own run time)", p, time.Since(begin))
}

func TestDADTentativeThenUsable(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	tb.Client.Sysctl("net.ipv6.conf.eth0.accept_dad", "1")
	m, _ := start(t, tb.Client, linkmon.Config{}, slog.LevelInfo)
	p := netip.MustParsePrefix("2001:db8:1::77/64")
	tb.Client.MustExec("ip", "addr", "add", p.String(), "dev", "eth0")
	d := await(t, m, p.String()+" tentative", stateHas(p, "tentative"))
	if _, ok := find(d.Added, p); ok {
		t.Fatalf("tentative address listed as added: %v", d)
	}
	begin := time.Now()
	await(t, m, p.String()+" usable", has("added", p, ""))
	t.Logf("duplicate address detection took %v", time.Since(begin))
}

func TestLinkDownUp(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	m, _ := start(t, tb.Client, linkmon.Config{}, slog.LevelDebug)
	l := tb.Links[1]
	p4 := netip.PrefixFrom(l.Client4, 24)
	p6 := netip.PrefixFrom(l.Client6, 64)

	tb.Client.SetLinkUp(l.ClientIf, false)
	d := await(t, m, p4.String()+" link down", has("removed", p4, "link down"))
	if c := linkChange(d, l.ClientIf); c == nil || c.New.Up || !c.Old.Up {
		t.Errorf("link change of %s: %+v", l.ClientIf, c)
	}
	// The kernel drops the IPv6 addresses of a link set down.
	if a, ok := find(d.Removed, p6); !ok || (a.Reason != "removed" && a.Reason != "link down") {
		t.Errorf("%s on the downed link: %+v (found %v)", p6, a, ok)
	}
	// Unaffected link stays usable.
	if a, ok := find(d.State.Addrs, netip.PrefixFrom(tb.Links[0].Client4, 24)); !ok || !a.Usable {
		t.Errorf("eth0 address after eth1 went down: %+v", a)
	}

	// Back up, the IPv4 address has lost its routes: the kernel flushed
	// them silently when the link went down.
	tb.Client.SetLinkUp(l.ClientIf, true)
	await(t, m, p4.String()+" up without route", stateHas(p4, "no route"))
	tb.Client.MustExec("ip", "route", "add", "default", "via", l.Server4.String(), "dev", l.ClientIf, "table", "101")
	await(t, m, p4.String()+" usable again", has("added", p4, ""))
}

func TestNoRoute(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	m, _ := start(t, tb.Client, linkmon.Config{}, slog.LevelDebug)
	l := tb.Links[1]
	p4 := netip.PrefixFrom(l.Client4, 24)
	p6 := netip.PrefixFrom(l.Client6, 64)

	for _, fam := range []string{"-4", "-6"} {
		tb.Client.MustExec("ip", fam, "route", "flush", "table", "101")
	}
	d := await(t, m, "no route on "+l.ClientIf, func(d linkmon.Delta) bool {
		return stateHas(p4, "no route")(d) && stateHas(p6, "no route")(d)
	})
	if lk, _ := d.State.LinkByName(l.ClientIf); lk.HasRoute4 || lk.HasRoute6 || !lk.Up {
		t.Errorf("link %s: %+v", l.ClientIf, lk)
	}
	// The connected prefix routes are still there: they do not count.
	out := tb.Client.MustExec("ip", "-4", "route", "show", "dev", l.ClientIf)
	if !strings.Contains(out, "proto kernel") {
		t.Errorf("connected route gone: %q", out)
	}

	tb.Client.MustExec("ip", "-6", "route", "add", "default", "via", l.Server6.String(), "dev", l.ClientIf, "table", "101")
	await(t, m, p6.String()+" usable again", has("added", p6, ""))
	tb.Client.MustExec("ip", "-4", "route", "add", "203.0.113.0/24", "via", l.Server4.String(), "dev", l.ClientIf, "table", "101")
	await(t, m, p4.String()+" usable with a gateway route", has("added", p4, ""))
}

// linkChange returns the change of the link named name in d.
func linkChange(d linkmon.Delta, name string) *linkmon.LinkChange {
	for i, c := range d.Links {
		if c.New.Name == name || c.Old.Name == name {
			return &d.Links[i]
		}
	}
	return nil
}

// BenchmarkReaction measures the time from an address being added (or
// deleted) in the kernel to the Delta that reports it usable (or removed).
func BenchmarkReaction(b *testing.B) {
	tb := netnstest.NewTestbed(b, 1)
	m, _ := start(b, tb.Client, linkmon.Config{}, slog.LevelWarn)
	nh := handle(b, tb.Client)
	eth0 := linkByName(b, nh, "eth0")
	p := netip.MustParsePrefix("192.0.2.77/24")
	a := &netlink.Addr{IPNet: ipNet(p)}

	var adds, dels []time.Duration
	for b.Loop() {
		begin := time.Now()
		if err := nh.AddrAdd(eth0, a); err != nil {
			b.Fatal(err)
		}
		await(b, m, "added", has("added", p, ""))
		adds = append(adds, time.Since(begin))

		begin = time.Now()
		if err := nh.AddrDel(eth0, a); err != nil {
			b.Fatal(err)
		}
		await(b, m, "removed", has("removed", p, "removed"))
		dels = append(dels, time.Since(begin))
	}
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		pct := func(q float64) float64 {
			return float64(ds[int(q*float64(len(ds)-1))].Microseconds())
		}
		b.ReportMetric(pct(0.50), name+"-p50-µs")
		b.ReportMetric(pct(0.99), name+"-p99-µs")
	}
	report("add", adds)
	report("del", dels)
}

// kernelRoute reports whether `ip route` shows h's link ifname a route of
// family fam ("-4" or "-6") that counts by the package's rule: unicast,
// outside the local table, and a default route, through a gateway, or not
// added by the kernel. It is the oracle linkmon's HasRoute4/6 must match.
func kernelRoute(t testing.TB, h *netnstest.Host, fam, ifname string) bool {
	t.Helper()
	var routes []struct {
		Type, Dst, Gateway, Table, Protocol string
	}
	out := h.MustExec("ip", "-j", fam, "route", "show", "table", "all", "dev", ifname)
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("ip -j %s route: %v: %q", fam, err, out)
	}
	for _, r := range routes {
		if (r.Type == "" || r.Type == "unicast") && r.Table != "local" &&
			(r.Dst == "default" || r.Gateway != "" || r.Protocol != "kernel") {
			return true
		}
	}
	return false
}

// TestAddrDeleteFlushesRoutes deletes and adds back the addresses of a link
// whose table has a default route through a gateway in the IPv4 address's
// subnet. Deleting a link's last IPv4 address makes the kernel flush every
// IPv4 route through the link without a word (fib_inetaddr_event →
// fib_disable_ip → fib_flush), so once the address is back it has no route
// until someone restores them, as a DHCP client does; IPv6 keeps its routes.
// After each step, linkmon's view must be what `ip route` shows.
func TestAddrDeleteFlushesRoutes(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	h, l := tb.Client, tb.Links[1]
	m, _ := start(t, h, linkmon.Config{}, slog.LevelDebug)
	p4 := netip.PrefixFrom(l.Client4, 24)
	p6 := netip.PrefixFrom(l.Client6, 64)
	restore := fmt.Sprintf("route replace default via %s dev %s table 101", l.Server4, l.ClientIf)
	del := []string{"addr del " + p4.String() + " dev " + l.ClientIf, "addr del " + p6.String() + " dev " + l.ClientIf}
	add := []string{"addr add " + p4.String() + " dev " + l.ClientIf, "addr add " + p6.String() + " dev " + l.ClientIf + " nodad"}

	// batch runs ip commands in one process, so that they follow each other
	// within microseconds.
	batch := func(cmds ...string) {
		t.Helper()
		c := h.Command("ip", "-batch", "-")
		c.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("ip -batch %q: %v: %s", cmds, err, out)
		}
	}
	// matches waits until linkmon's link and addresses agree with the
	// kernel, and checks that the kernel is in the state the step expects.
	matches := func(step string, route4 bool, reason4, reason6 string) {
		t.Helper()
		k4, k6 := kernelRoute(t, h, "-4", l.ClientIf), kernelRoute(t, h, "-6", l.ClientIf)
		if k4 != route4 || !k6 {
			t.Fatalf("%s: the kernel has routes v4 %v v6 %v on %s, want v4 %v v6 true:\n%s", step, k4, k6, l.ClientIf, route4,
				h.MustExec("ip", "route", "show", "table", "all", "dev", l.ClientIf))
		}
		addr := func(s linkmon.State, p netip.Prefix, reason string) bool {
			a, ok := find(s.Addrs, p)
			if reason == "removed" {
				return !ok
			}
			return ok && a.Reason == reason && a.Usable == (reason == "")
		}
		ok := func(s linkmon.State) bool {
			lk, found := s.LinkByName(l.ClientIf)
			return found && lk.HasRoute4 == k4 && lk.HasRoute6 == k6 && addr(s, p4, reason4) && addr(s, p6, reason6)
		}
		if ok(m.State()) {
			return
		}
		await(t, m, step, func(d linkmon.Delta) bool { return ok(d.State) })
	}

	matches("the start", true, "", "")
	// One step at a time.
	batch(del...)
	matches("the addresses deleted", false, "removed", "removed")
	batch(add...)
	matches("the addresses added back", false, "no route", "")
	batch(restore)
	matches("the route restored", true, "", "")
	// As a DHCP client renewing: deleted and added back at once, the
	// routes some time later. Nothing else changes in between, so a
	// monitor that missed the flush sends no Delta at all.
	batch(append(del, add...)...)
	matches("the addresses deleted and added back at once", false, "no route", "")
	batch(restore)
	matches("the route restored again", true, "", "")
	// All at once, as the soak's flaps do: the routes come back before the
	// monitor may even have seen the deletion.
	batch(slices.Concat(del, add, []string{restore})...)
	matches("deleted, added and restored at once", true, "", "")
}

// TestCompleteChangesSkipSettle: the changes that are complete by
// themselves on the real kernel (an address added usable, IPv4 and IPv6, or
// an IPv4 one deleted, a link set down, a route giving an up link its way
// out) are
// reported without waiting out the settle window, set to 2 s here so that a
// monitor that waits for it fails, each in a Delta whose State is whole: the
// address's link up and routed. A link coming up, whose routes the kernel
// sends around its link message, waits the window, and its IPv4 address is
// never reported usable before its route is back.
func TestCompleteChangesSkipSettle(t *testing.T) {
	t.Parallel()
	const settle = 2 * time.Second
	tb := netnstest.NewTestbed(t, 2)
	h, l := tb.Client, tb.Links[1]
	m, _ := start(t, h, linkmon.Config{Settle: settle, MaxSettle: settle}, slog.LevelDebug)
	nh := handle(t, h)
	eth := linkByName(t, nh, l.ClientIf)
	p4 := netip.MustParsePrefix("198.51.100.60/24")
	p6 := netip.MustParsePrefix("2001:db8:2::60/64")
	own4 := netip.PrefixFrom(l.Client4, 24)
	a4 := &netlink.Addr{IPNet: ipNet(p4)}
	a6 := &netlink.Addr{IPNet: ipNet(p6), Flags: int(linkmon.AddrNoDAD)}
	gw := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.IP(l.Server4.AsSlice()), Table: 101}

	// whole checks that the Delta's State has the link as an added
	// address needs it.
	whole := func(p netip.Prefix, ok func(linkmon.Delta) bool) func(linkmon.Delta) bool {
		return func(d linkmon.Delta) bool {
			if !ok(d) {
				return false
			}
			lk, _ := d.State.LinkByName(l.ClientIf)
			if !lk.Up || (p.Addr().Is4() && !lk.HasRoute4) || (p.Addr().Is6() && !lk.HasRoute6) {
				t.Errorf("%s reported usable on %+v", p, lk)
			}
			return true
		}
	}
	fast := settle / 2 // a monitor that waits the window fails
	tests := []struct {
		name   string
		do     func() error
		want   func(linkmon.Delta) bool
		within time.Duration
	}{
		{"ipv4 address added", func() error { return nh.AddrAdd(eth, a4) }, whole(p4, has("added", p4, "")), fast},
		{"ipv6 address added", func() error { return nh.AddrAdd(eth, a6) }, whole(p6, has("added", p6, "")), fast},
		{"ipv4 address deleted", func() error { return nh.AddrDel(eth, a4) }, has("removed", p4, "removed"), fast},
		// An IPv6 address deleted waits the window: its link may be
		// going down, the link's message behind on the link socket.
		{"ipv6 address deleted", func() error { return nh.AddrDel(eth, a6) }, has("removed", p6, "removed"), waitLimit},
		{"link set down", func() error { return nh.LinkSetDown(eth) }, has("removed", own4, "link down"), fast},
	}
	for _, tt := range tests {
		if err := tt.do(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		awaitWithin(t, m, tt.name, tt.within, tt.want)
	}

	// Up again: the kernel flushed the IPv4 routes when the link went
	// down, and sends its connected routes before the link message.
	if err := nh.LinkSetUp(eth); err != nil {
		t.Fatal(err)
	}
	await(t, m, "link set up", func(d linkmon.Delta) bool {
		if _, ok := find(d.Added, own4); ok {
			t.Errorf("%s usable before its route is back: %s", own4, describe(d.State))
		}
		return stateHas(own4, "no route")(d)
	})
	if err := nh.RouteAdd(gw); err != nil {
		t.Fatal(err)
	}
	awaitWithin(t, m, "route restored", fast, whole(own4, has("added", own4, "")))
}
