//go:build linux

package bench_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
	"github.com/vishvananda/netlink"
)

// meshConns is how many established connections the mesh and link runs
// of BenchmarkReaction keep open while the address or the link comes and
// goes.
const meshConns = 8

// meshSettle is how long a mesh run lets the host settle, untimed, after
// the subflows from the address are up (they must all still be up then)
// and after they are gone, so that each change starts from a quiet host:
// well beyond linkmon's settle window (1 ms) and the path managers'
// handling of the previous change.
const meshSettle = 10 * time.Millisecond

// meshCase is a path manager run in the client namespace of the mesh runs
// of BenchmarkReaction: after setup it gives every connection a subflow
// from each usable address of the client's eth1.
type meshCase struct {
	manager, mode string
	setup         func(b *testing.B, tb *netnstest.Testbed, cli *genl.Client)
	// react, when set, is the path manager: the benchmark calls it at
	// once after adding (added) or removing the address of eth1
	// (ifindex), or with eth1's own address after setting eth1 down
	// (added false) or once it is usable again (added true).
	react func(cli *genl.Client, ifindex int32, addr netip.Addr, added bool) error
}

var meshCases = []meshCase{
	{"mptcpgod", "userspace", func(b *testing.B, tb *netnstest.Testbed, _ *genl.Client) {
		startDaemon(b, tb.Client, "userspace")
	}, nil},
	// The floor: the benchmark adds the subflow endpoint (on eth1, as
	// `ip mptcp endpoint add ... dev eth1 subflow`) and deletes it, by
	// the id it gave, at once; the kernel opens and closes the subflows.
	{"kernel", "kernel", func(b *testing.B, tb *netnstest.Testbed, _ *genl.Client) {
		tb.Client.SetPathManager("kernel")
		limits(tb.Client)
		tb.Client.MustExec("ip", "mptcp", "endpoint", "add", tb.Links[1].Client4.String(),
			"id", fmt.Sprint(floorID+1), "dev", tb.Links[1].ClientIf, "subflow")
	}, func(cli *genl.Client, ifindex int32, addr netip.Addr, added bool) error {
		id := uint8(floorID + 1) // eth1's own address
		if addr == reactionAddr.Addr() {
			id = floorID
		}
		if added {
			return cli.AddEndpoint(genl.Endpoint{ID: id, Addr: addr, Flags: genl.FlagSubflow, IfIndex: ifindex})
		}
		return cli.DelEndpoint(id)
	}},
	{"mptcpgod", "kernel", func(b *testing.B, tb *netnstest.Testbed, cli *genl.Client) {
		startDaemon(b, tb.Client, "kernel")
		waitEndpoint(b, cli, tb.Links[1].Client4)
	}, nil},
	{"mptcpd", "kernel", func(b *testing.B, tb *netnstest.Testbed, cli *genl.Client) {
		tb.Client.SetPathManager("kernel")
		limits(tb.Client)
		startMptcpd(b, tb.Client, cli, "subflow", tb.Links[0].Client4, tb.Links[1].Client4)
	}, nil},
}

// benchMesh repeats, an iteration at a time: open meshConns connections
// from the client's eth0 address to the server and wait until each has its
// subflow from the testbed's eth1 address; add reactionAddr to eth1 and
// time until every connection has an established subflow from it (which
// must still be up meshSettle later); remove it and time until every such
// subflow is closed; close the connections. The times are from the
// SUB_ESTABLISHED and SUB_CLOSED events read by a subscription of its own.
//
// Each iteration has connections of its own because the subflows a
// userspace path manager closes after their address is gone (mptcpgod's
// SUBFLOW_DESTROY) cannot tell the server: their FIN has no source
// address left, and no RM_ADDR is sent, so the server keeps its ends
// established, and at its limit of 8 subflows it resets the eighth join of
// a connection whose address came and went seven times.
func benchMesh(b *testing.B, c meshCase) {
	tb, server := testbed(b)
	routeBack(tb, 1, reactionAddr)
	cli := newClient(b, tb.Client)
	w := watchAddr(b, tb.Client)
	c.setup(b, tb, cli)
	nl, link := clientEth1(b, tb)
	ifindex, addr, prefix := int32(link.Attrs().Index), netlinkAddr(reactionAddr), reactionAddr
	var all, each, removed []time.Duration
	for b.Loop() {
		conns, tokens := dialMeshed(b, tb, server, w)
		w.expect(genl.EventSubEstablished, prefix.Addr(), time.Now())
		if err := nl.AddrAdd(link, addr); err != nil {
			b.Fatalf("add %s: %v", prefix, err)
		}
		if c.react != nil {
			if err := c.react(cli, ifindex, prefix.Addr(), true); err != nil {
				b.Fatalf("add endpoint %s: %v", prefix.Addr(), err)
			}
		}
		ds, err := w.wait(tokens)
		if err != nil {
			b.Fatalf("subflows from %s: %v", prefix.Addr(), err)
		}
		all, each = append(all, slices.Max(ds)), append(each, ds...)
		time.Sleep(meshSettle)
		if lost := w.lost(tokens, prefix.Addr()); lost > 0 {
			b.Fatalf("repetition %d: %d of %d connections lost their subflow from %s within %v of getting it",
				len(all), lost, len(tokens), prefix.Addr(), meshSettle)
		}
		w.expect(genl.EventSubClosed, prefix.Addr(), time.Now())
		if err := nl.AddrDel(link, addr); err != nil {
			b.Fatalf("remove %s: %v", prefix, err)
		}
		if c.react != nil {
			if err := c.react(cli, ifindex, prefix.Addr(), false); err != nil {
				b.Fatalf("delete endpoint %s: %v", prefix.Addr(), err)
			}
		}
		if ds, err = w.wait(tokens); err != nil {
			b.Fatalf("subflows from %s closed: %v", prefix.Addr(), err)
		}
		removed = append(removed, slices.Max(ds))
		for _, c := range conns {
			_ = c.Close()
		}
		// In kernel mode the path manager's DEL_ADDR goes on after the
		// subflows are closed (RCU grace period, about 15 ms): the next
		// ADD_ADDR would wait for it. The endpoint leaves the kernel's
		// list when DEL_ADDR returns (the list is read through the same
		// path manager family).
		waitFor(b, cli, prefix.Addr(), false, time.Now())
		time.Sleep(meshSettle)
	}
	mesh, conn, gone := summarize(b, all), summarize(b, each), summarize(b, removed)
	b.ReportMetric(mesh.P50, "mesh-p50-ms")
	b.ReportMetric(mesh.P90, "mesh-p90-ms")
	b.ReportMetric(mesh.P99, "mesh-p99-ms")
	b.ReportMetric(conn.P50, "conn-p50-ms")
	b.ReportMetric(gone.P50, "gone-p50-ms")
	b.ReportMetric(gone.P90, "gone-p90-ms")
	b.ReportMetric(gone.P99, "gone-p99-ms")
	record(b,
		bench.Result{Figure: "mesh", Manager: c.manager, Mode: c.mode, Conns: meshConns, Summary: &mesh},
		bench.Result{Figure: "mesh-conn", Manager: c.manager, Mode: c.mode, Conns: meshConns, Summary: &conn},
		bench.Result{Figure: "unmesh", Manager: c.manager, Mode: c.mode, Conns: meshConns, Summary: &gone})
}

// dialMeshed opens meshConns connections from the client's eth0 address
// (unbound: the route to the server's eth0 address gives them eth0's) to
// server, closed when the benchmark ends if not before, waits until each
// has its subflow from the testbed's eth1 address and returns them and
// their tokens.
func dialMeshed(b *testing.B, tb *netnstest.Testbed, server netip.AddrPort, w *addrWatcher) ([]net.Conn, []uint32) {
	b.Helper()
	w.forget()
	w.expect(genl.EventSubEstablished, tb.Links[1].Client4, time.Now())
	conns, err := dialBatch(tb.Client, server, meshConns)
	b.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	tokens := w.tokens()
	if len(tokens) != meshConns {
		b.Fatalf("%d connections established, want %d", len(tokens), meshConns)
	}
	if _, err := w.wait(tokens); err != nil {
		b.Fatalf("subflows from %s: %v", tb.Links[1].Client4, err)
	}
	return conns, tokens
}

// routeBack makes the server answer the client's address p on link
// number i through that link, as the client's provider routes the client's
// prefix there, with a permanent neighbour entry for p: the testbed does
// both for the client's own addresses only (netnstest: link i's table is
// 100+i), and without them the server's rule for its own address would
// send its answers to p out of its eth0.
func routeBack(tb *netnstest.Testbed, i int, p netip.Prefix) {
	l := tb.Links[i]
	mac := strings.TrimSpace(tb.Client.MustExec("cat", "/sys/class/net/"+l.ClientIf+"/address"))
	tb.Server.MustExec("ip", "rule", "add", "to", p.Addr().String(), "lookup", fmt.Sprint(100+i), "pref", "1000")
	tb.Server.MustExec("ip", "neigh", "replace", p.Addr().String(), "lladdr", mac, "dev", l.ServerIf, "nud", "permanent")
}

// addrWatcher follows, from its own subscription to a namespace's
// mptcp_pm events, the connections established there and, for the
// event type and local address it is told to expect, the time from the
// start it is given to reading that event for each connection. Events
// carry no time: the times are when the reader got them.
type addrWatcher struct {
	mu    sync.Mutex
	conns map[uint32]bool // established connections, by token
	typ   genl.EventType
	addr  netip.Addr
	start time.Time
	seen  map[uint32]time.Duration // by token, since start
	// up are the established subflows, by token and local address.
	up map[subflowKey]bool
	// changed is signalled when seen or conns grows or err is set.
	changed chan struct{}
	err     error
}

// subflowKey is a subflow of a connection, by its local address.
type subflowKey struct {
	token uint32
	local netip.AddrPort
}

// watchAddr starts a addrWatcher on h's events until the benchmark ends.
func watchAddr(b *testing.B, h *netnstest.Host) *addrWatcher {
	b.Helper()
	sub, err := newClient(b, h).Subscribe()
	if err != nil {
		b.Fatalf("Subscribe: %v", err)
	}
	w := &addrWatcher{conns: map[uint32]bool{}, seen: map[uint32]time.Duration{}, up: map[subflowKey]bool{}, changed: make(chan struct{}, 1)}
	readEvents(b, sub, w.run)
	return w
}

func (w *addrWatcher) run(ctx context.Context, sub *genl.Subscription) {
	for {
		evs, err := sub.Receive(ctx)
		now := time.Now()
		w.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				w.err = fmt.Errorf("receive: %w", err)
			}
			w.mu.Unlock()
			w.signal()
			return
		}
		for _, ev := range evs {
			switch ev.Type {
			case genl.EventEstablished:
				w.conns[ev.Token] = true
			case genl.EventClosed:
				delete(w.conns, ev.Token)
			case genl.EventSubEstablished:
				w.up[subflowKey{ev.Token, ev.Local}] = true
			case genl.EventSubClosed:
				delete(w.up, subflowKey{ev.Token, ev.Local})
			}
			if _, ok := w.seen[ev.Token]; !ok && ev.Type == w.typ && ev.Local.Addr() == w.addr {
				w.seen[ev.Token] = now.Sub(w.start)
			}
		}
		w.mu.Unlock()
		w.signal()
	}
}

func (w *addrWatcher) signal() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// expect makes w time, from start, the first event of type typ with the
// local address addr of each connection, forgetting the earlier ones.
func (w *addrWatcher) expect(typ genl.EventType, addr netip.Addr, start time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.typ, w.addr, w.start = typ, addr, start
	clear(w.seen)
}

// lost returns how many of tokens have no established subflow from addr.
func (w *addrWatcher) lost(tokens []uint32, addr netip.Addr) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	have := map[uint32]bool{}
	for k := range w.up {
		if k.local.Addr() == addr {
			have[k.token] = true
		}
	}
	n := 0
	for _, t := range tokens {
		if !have[t] {
			n++
		}
	}
	return n
}

// forget makes w forget the connections established so far: tokens
// returns those established after.
func (w *addrWatcher) forget() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.conns)
}

// tokens waits until meshConns connections are established, or waitLimit
// has passed, and returns their tokens.
func (w *addrWatcher) tokens() []uint32 {
	timeout := time.After(waitLimit)
	for {
		w.mu.Lock()
		ts := slices.Collect(maps.Keys(w.conns))
		w.mu.Unlock()
		if len(ts) >= meshConns {
			return ts
		}
		select {
		case <-w.changed:
		case <-timeout:
			return ts
		}
	}
}

// wait waits until the expected event has been read for every one of
// tokens and returns their times, in the order of tokens.
func (w *addrWatcher) wait(tokens []uint32) ([]time.Duration, error) {
	timeout := time.After(waitLimit)
	for {
		w.mu.Lock()
		ds, err := make([]time.Duration, 0, len(tokens)), w.err
		for _, t := range tokens {
			if d, ok := w.seen[t]; ok {
				ds = append(ds, d)
			}
		}
		typ := w.typ
		w.mu.Unlock()
		switch {
		case err != nil:
			return nil, err
		case len(ds) == len(tokens):
			return ds, nil
		}
		select {
		case <-w.changed:
		case <-timeout:
			return nil, fmt.Errorf("%s read for %d of %d connections within %v", typ, len(ds), len(tokens), waitLimit)
		}
	}
}

// linkCases are the path managers of the link runs of BenchmarkReaction:
// those of meshCases that follow links. mptcpd's addr_adv plugin follows
// addresses only, and an IPv4 address stays on a link that goes down.
var linkCases = slices.DeleteFunc(slices.Clone(meshCases), func(c meshCase) bool { return c.manager == "mptcpd" })

// benchLink repeats, an iteration at a time: open meshConns connections
// from the client's eth0 address to the server and wait until each has its
// subflow from the testbed's eth1 address; set eth1 down and time until all
// those subflows are closed; set it up, restore its route (table 101's
// default route, which the kernel flushed with the link, as a network
// manager would), wait until the kernel reports it operationally up, and
// time from then until every connection has an established subflow from
// eth1's address again; close the connections. Fresh connections each
// iteration for the reason benchMesh gives.
func benchLink(b *testing.B, c meshCase) {
	tb, server := testbed(b)
	cli := newClient(b, tb.Client)
	w := watchAddr(b, tb.Client)
	c.setup(b, tb, cli)
	nl, link := clientEth1(b, tb)
	l := tb.Links[1]
	ifindex, addr := int32(link.Attrs().Index), l.Client4
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: l.Server4.AsSlice(), Table: 101}
	var down, up []time.Duration
	for b.Loop() {
		conns, tokens := dialMeshed(b, tb, server, w)
		w.expect(genl.EventSubClosed, addr, time.Now())
		if err := nl.LinkSetDown(link); err != nil {
			b.Fatalf("set %s down: %v", l.ClientIf, err)
		}
		if c.react != nil {
			if err := c.react(cli, ifindex, addr, false); err != nil {
				b.Fatalf("delete endpoint %s: %v", addr, err)
			}
		}
		ds, err := w.wait(tokens)
		if err != nil {
			b.Fatalf("subflows from %s closed: %v", addr, err)
		}
		down = append(down, slices.Max(ds))
		waitFor(b, cli, addr, false, time.Now()) // as in benchMesh
		time.Sleep(meshSettle)
		if err := nl.LinkSetUp(link); err != nil {
			b.Fatalf("set %s up: %v", l.ClientIf, err)
		}
		if err := nl.RouteReplace(route); err != nil {
			b.Fatalf("restore %s's route: %v", l.ClientIf, err)
		}
		start := waitOperUp(b, nl, link)
		w.expect(genl.EventSubEstablished, addr, start)
		if c.react != nil {
			if err := c.react(cli, ifindex, addr, true); err != nil {
				b.Fatalf("add endpoint %s: %v", addr, err)
			}
		}
		if ds, err = w.wait(tokens); err != nil {
			b.Fatalf("subflows from %s: %v", addr, err)
		}
		up = append(up, slices.Max(ds))
		for _, c := range conns {
			_ = c.Close()
		}
		time.Sleep(meshSettle)
	}
	gone, back := summarize(b, down), summarize(b, up)
	b.ReportMetric(gone.P50, "down-p50-ms")
	b.ReportMetric(gone.P90, "down-p90-ms")
	b.ReportMetric(gone.P99, "down-p99-ms")
	b.ReportMetric(back.P50, "up-p50-ms")
	b.ReportMetric(back.P90, "up-p90-ms")
	b.ReportMetric(back.P99, "up-p99-ms")
	record(b,
		bench.Result{Figure: "link-down", Manager: c.manager, Mode: c.mode, Conns: meshConns, Summary: &gone},
		bench.Result{Figure: "link-up", Manager: c.manager, Mode: c.mode, Conns: meshConns, Summary: &back})
}

// waitOperUp polls link every pollEvery until the kernel reports it
// operationally up and returns when it saw it.
func waitOperUp(b *testing.B, nl *netlink.Handle, link netlink.Link) time.Time {
	b.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		l, err := nl.LinkByIndex(link.Attrs().Index)
		if err != nil {
			b.Fatalf("link %s: %v", link.Attrs().Name, err)
		}
		now := time.Now()
		if l.Attrs().OperState == netlink.OperUp {
			return now
		}
		if now.After(deadline) {
			b.Fatalf("%s not up within %v", link.Attrs().Name, waitLimit)
		}
		time.Sleep(pollEvery)
	}
}
