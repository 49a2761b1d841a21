package linkmon

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// fakeSource is a source fed by the test.
type fakeSource struct {
	c      chan msg
	err    chan error
	closed chan struct{}
	once   sync.Once
}

func newFakeSource() *fakeSource {
	return &fakeSource{c: make(chan msg), err: make(chan error), closed: make(chan struct{})}
}

func (f *fakeSource) Receive() (msg, error) {
	select {
	case m := <-f.c:
		return m, nil
	case err := <-f.err:
		return nil, err
	case <-f.closed:
		return nil, errSourceClosed
	}
}

func (f *fakeSource) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeSource) send(msgs ...msg) {
	for _, m := range msgs {
		f.c <- m
	}
}

// startMonitor runs a Monitor over a fake source until the test ends; Run's
// error is the test's to check. Call it inside a synctest bubble.
func startMonitor(t *testing.T, c *Config) (*Monitor, *fakeSource, *runtest.Running) {
	t.Helper()
	m := newMonitor(*testConfig(t, c))
	src := newFakeSource()
	m.open = func() (source, error) { return src, nil }
	return m, src, runtest.Start(t, "monitor", m.Run)
}

// baseSnapshot is eth0 (index 2) with 192.0.2.1/24 and a default route.
func baseSnapshot() snapshotMsg {
	return snapshotMsg{
		links:  []linkMsg{upLink(2, "eth0")},
		addrs:  []addrMsg{addr(2, "192.0.2.1/24")},
		routes: []routeMsg{defaultRoute(2, 254, "192.0.2.254"), defaultRoute(2, 254, "2001:db8:1::fe")},
	}
}

// next returns the next Delta, failing if none comes within a (fake) second.
func next(t *testing.T, m *Monitor) Delta {
	t.Helper()
	select {
	case d, ok := <-m.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return d
	case <-time.After(time.Second):
		t.Fatal("no delta within a second")
	}
	return Delta{}
}

// quiet fails if a Delta comes within a (fake) second.
func quiet(t *testing.T, m *Monitor) {
	t.Helper()
	time.Sleep(time.Second)
	select {
	case d := <-m.Events():
		t.Fatalf("unexpected delta: %v", d)
	default:
	}
}

func prefixes(as []Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Prefix.String()+" "+a.Reason)
	}
	return out
}

func checkAddrs(t *testing.T, what string, got []Addr, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, prefixes(got)); diff != "" {
		t.Fatalf("%s (-want +got):\n%s", what, diff)
	}
}

func TestMonitorInitial(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, nil)
		synctest.Wait()
		select {
		case <-m.Ready():
			t.Fatal("ready before the snapshot")
		default:
		}
		if s := m.State(); len(s.Links) != 0 || s.Links == nil {
			t.Fatalf("state before ready: %+v", s)
		}
		start := time.Now()
		src.send(baseSnapshot())
		d := next(t, m)
		if got := time.Since(start); got != DefaultSettle {
			t.Errorf("initial delta after %v, want %v", got, DefaultSettle)
		}
		if !d.Initial {
			t.Error("first delta not initial")
		}
		checkAddrs(t, "added", d.Added, "192.0.2.1/24 ")
		if len(d.Links) != 1 || !d.Links[0].Added() || d.Links[0].New.Name != "eth0" {
			t.Errorf("links %+v, want eth0 added", d.Links)
		}
		select {
		case <-m.Ready():
		default:
			t.Fatal("not ready after the initial delta")
		}
		if !m.State().Equal(d.State) {
			t.Fatalf("State() %+v differs from the delta's %+v", m.State(), d.State)
		}
		quiet(t, m)
	})
}

func TestMonitorInitialEmpty(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, nil)
		src.send(snapshotMsg{})
		d := next(t, m)
		if !d.Initial || d.AddrsChanged() || d.LinksChanged() {
			t.Fatalf("initial delta of an empty namespace: %+v", d)
		}
	})
}

func TestMonitorBurstIsOneDelta(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, nil)
		src.send(baseSnapshot())
		next(t, m)
		// A link comes up with its address and route, and an address
		// with its local and prefix routes and a duplicate follows at
		// once: the link's change may be completed by later messages, so
		// the burst waits the settle window.
		src.send(
			upLink(3, "eth1"), addr(3, "198.51.100.1/24"), defaultRoute(3, 101, "198.51.100.254"),
			addr(2, "192.0.2.7/24"), connected(2, "192.0.2.7/24"), addr(2, "192.0.2.7/24"),
		)
		d := next(t, m)
		checkAddrs(t, "added", d.Added, "192.0.2.7/24 ", "198.51.100.1/24 ")
		if d.Initial || len(d.Links) != 1 || d.Links[0].New.Name != "eth1" {
			t.Fatalf("delta %v", d)
		}
		quiet(t, m)
	})
}

func TestMonitorRevertIsNoDelta(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, nil)
		src.send(baseSnapshot())
		next(t, m)
		// A route replaced by a deletion and an addition: the deletion
		// waits for what may complete it, and the State is as it was.
		src.send(del(defaultRoute(2, 254, "192.0.2.254")), defaultRoute(2, 254, "192.0.2.254"))
		quiet(t, m)
		// So does an address added before its link's route is replaced.
		src.send(del(defaultRoute(2, 254, "192.0.2.254")), addr(2, "192.0.2.9/24"), delAddr(2, "192.0.2.9/24"),
			defaultRoute(2, 254, "192.0.2.254"))
		quiet(t, m)
		// A message that changes nothing is no delta either.
		src.send(upLink(2, "eth0"), addr(2, "192.0.2.1/24"))
		quiet(t, m)
	})
}

func TestMonitorSettleWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, &Config{Settle: 2 * time.Millisecond, MaxSettle: 10 * time.Millisecond})
		src.send(baseSnapshot())
		next(t, m)

		// A link coming up may bring the routes that complete it: the
		// window restarts with every message...
		start := time.Now()
		src.send(upLink(3, "eth1"))
		time.Sleep(time.Millisecond)
		src.send(addr(3, "198.51.100.1/24"), defaultRoute(3, 101, "198.51.100.254"))
		d := next(t, m)
		if got := time.Since(start); got != 3*time.Millisecond {
			t.Errorf("delta after %v, want 3ms (1ms + settle)", got)
		}
		checkAddrs(t, "added", d.Added, "198.51.100.1/24 ")

		// ...up to MaxSettle from the first message of a steady stream
		// of addresses whose route may follow.
		start = time.Now()
		stop := make(chan struct{})
		streamed := make(chan struct{})
		go func() {
			defer close(streamed)
			for i := 0; ; i++ {
				a := addr(3, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 3, 15: byte(i + 1)}), 64).String())
				select {
				case src.c <- a:
				case <-stop:
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		d = next(t, m)
		if got := time.Since(start); got != 10*time.Millisecond {
			t.Errorf("delta of a stream after %v, want MaxSettle 10ms", got)
		}
		close(stop)
		<-streamed
		var noRoute int
		for _, a := range d.State.Addrs {
			if a.LinkIndex == 3 && a.Reason == "no route" {
				noRoute++
			}
		}
		if noRoute < 9 {
			t.Errorf("stream delta has %d addresses without a route, want 10", noRoute)
		}
	})
}

// TestMonitorCompleteChange: a change complete by itself is reported at
// once, not after the settle window; a burst with a change that later
// messages may complete waits the window, unless its link goes down.
func TestMonitorCompleteChange(t *testing.T) {
	t.Parallel()
	local := routeMsg{family: afInet, table: rtTableLocal, typ: 2, protocol: rtprotKernel,
		dst: netip.MustParsePrefix("192.0.2.7/32"), hops: []nexthop{{link: 2}}}
	route4 := defaultRoute(2, 254, "192.0.2.254")
	route6 := defaultRoute(2, 254, "2001:db8:1::fe")
	tests := []struct {
		name    string
		msgs    []msg
		wait    time.Duration
		added   []string
		removed []string
	}{
		{"address added usable, with its local route", []msg{addr(2, "192.0.2.7/24"), local}, 0, []string{"192.0.2.7/24 "}, nil},
		{"address deleted", []msg{delAddr(2, "192.0.2.7/24"), del(local)}, 0, nil, []string{"192.0.2.7/24 removed"}},
		{"route deleted, then an address", []msg{del(route4), addr(2, "192.0.2.9/24")}, DefaultSettle, nil, []string{"192.0.2.1/24 no route"}},
		{"route back", []msg{route4}, 0, []string{"192.0.2.1/24 ", "192.0.2.9/24 "}, nil},
		// The route socket's deletion came before the link's down.
		{"route deleted, then the link down", []msg{del(route6), downLink(2, "eth0")}, 0, nil,
			[]string{"192.0.2.1/24 link down", "192.0.2.9/24 link down"}},
		{"link up", []msg{upLink(2, "eth0"), route4, route6}, DefaultSettle, []string{"192.0.2.1/24 ", "192.0.2.9/24 "}, nil},
		{"address added without a route", []msg{addr(2, "2001:db8:1::9/64"), del(route6)}, DefaultSettle, nil, nil},
		{"ipv6 route back", []msg{route6}, 0, []string{"2001:db8:1::9/64 "}, nil},
		// Its link may be going down; the link socket delivers it later.
		{"ipv6 address deleted", []msg{delAddr(2, "2001:db8:1::9/64")}, DefaultSettle, nil, []string{"2001:db8:1::9/64 removed"}},
		{"ipv6 address added", []msg{addr(2, "2001:db8:1::9/64")}, 0, []string{"2001:db8:1::9/64 "}, nil},
		{"ipv6 address deleted, then the link down", []msg{delAddr(2, "2001:db8:1::9/64"), downLink(2, "eth0")}, 0, nil,
			[]string{"192.0.2.1/24 link down", "192.0.2.9/24 link down", "2001:db8:1::9/64 removed"}},
	}
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, nil)
		src.send(baseSnapshot())
		next(t, m)
		for _, tt := range tests {
			start := time.Now()
			src.send(tt.msgs...)
			d := next(t, m)
			if got := time.Since(start); got != tt.wait {
				t.Errorf("%s: delta after %v, want %v", tt.name, got, tt.wait)
			}
			checkAddrs(t, tt.name+": added", d.Added, tt.added...)
			checkAddrs(t, tt.name+": removed", d.Removed, tt.removed...)
			quiet(t, m)
		}
	})
}

func TestMonitorSlowReceiver(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, nil)
		src.send(baseSnapshot())
		// Changes before the initial delta is taken join it.
		src.send(addr(2, "192.0.2.2/24"))
		time.Sleep(10 * time.Millisecond)
		src.send(addr(2, "192.0.2.3/24"))
		time.Sleep(10 * time.Millisecond)
		d := next(t, m)
		if !d.Initial {
			t.Fatal("merged first delta not initial")
		}
		checkAddrs(t, "initial added", d.Added, "192.0.2.1/24 ", "192.0.2.2/24 ", "192.0.2.3/24 ")

		// Changes accumulate against what the receiver last got.
		src.send(delAddr(2, "192.0.2.2/24"))
		time.Sleep(10 * time.Millisecond)
		src.send(downLink(2, "eth0"))
		time.Sleep(10 * time.Millisecond)
		d = next(t, m)
		checkAddrs(t, "removed", d.Removed, "192.0.2.1/24 link down", "192.0.2.2/24 removed", "192.0.2.3/24 link down")

		// The receiver may change what it got.
		d.State.Links[2] = Link{Name: "mangled"}
		d.State.Addrs[0].Usable = true

		// A pending change that is undone is withdrawn.
		src.send(upLink(2, "eth0"))
		time.Sleep(10 * time.Millisecond)
		src.send(downLink(2, "eth0"))
		quiet(t, m)
		if l := m.State().Links[2]; l.Name != "eth0" || l.Up {
			t.Fatalf("State() link 2 = %+v", l)
		}
	})
}

func TestMonitorResync(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, nil)
		snap := baseSnapshot()
		snap.links = append(snap.links, upLink(3, "eth1"))
		snap.addrs = append(snap.addrs, addr(3, "198.51.100.1/24"))
		snap.routes = append(snap.routes, defaultRoute(3, 254, "198.51.100.254"))
		src.send(snap)
		next(t, m)
		// Messages were lost: eth1 vanished and eth0 got another address.
		re := baseSnapshot()
		re.addrs = append(re.addrs, addr(2, "192.0.2.5/24"))
		src.send(re)
		d := next(t, m)
		if d.Initial {
			t.Error("resync delta marked initial")
		}
		checkAddrs(t, "added", d.Added, "192.0.2.5/24 ")
		checkAddrs(t, "removed", d.Removed, "198.51.100.1/24 removed")
		if len(d.Links) != 1 || !d.Links[0].Removed() {
			t.Fatalf("links %+v, want eth1 removed", d.Links)
		}
	})
}

func TestMonitorSourceError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, run := startMonitor(t, nil)
		src.send(baseSnapshot())
		next(t, m)
		src.err <- errors.New("subscribe to links: boom")
		err := run.Wait()
		if err == nil || !strings.HasPrefix(err.Error(), "linkmon: subscribe to links: boom") {
			t.Fatalf("Run = %v", err)
		}
		if _, ok := <-m.Events(); ok {
			t.Fatal("events not closed")
		}
	})
}

func TestMonitorStop(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m := newMonitor(*testConfig(t, nil))
		src := newFakeSource()
		m.open = func() (source, error) { return src, nil }
		run := runtest.Start(t, "monitor", m.Run)
		src.send(baseSnapshot())
		next(t, m)
		if err := m.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Fatalf("second Run = %v", err)
		}
		if err := run.Stop(); err != nil {
			t.Fatalf("Run after cancel = %v", err)
		}
		select {
		case <-src.closed:
		default:
			t.Fatal("source not closed")
		}
		if _, ok := <-m.Events(); ok {
			t.Fatal("events not closed")
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestMonitorOpenError(t *testing.T) {
	t.Parallel()
	m := newMonitor(*testConfig(t, nil))
	m.open = func() (source, error) { return nil, errors.New("linkmon: no netlink") }
	if err := m.Run(t.Context()); err == nil || err.Error() != "linkmon: no netlink" {
		t.Fatalf("Run = %v", err)
	}
}

func TestMonitorStateIsACopy(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m, src, _ := startMonitor(t, nil)
		src.send(baseSnapshot())
		next(t, m)
		s := m.State()
		s.Links[2] = Link{}
		s.Addrs[0].Reason = "mangled"
		if got := m.State(); got.Links[2].Name != "eth0" || got.Addrs[0].Reason != "" {
			t.Fatalf("State() changed through a copy: %+v", got)
		}
	})
}
