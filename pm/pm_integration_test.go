package pm_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// hostView builds the links and addresses of a testbed side by hand: the
// given addresses usable, on the interfaces the testbed puts them on.
func hostView(t testing.TB, h *netnstest.Host, addrs map[netip.Addr]string) ([]policy.Link, []policy.LocalAddr) {
	t.Helper()
	index := map[string]int32{}
	names := []string{"eth0", "eth1"}
	for _, dev := range addrs {
		if !slices.Contains(names, dev) {
			names = append(names, dev)
		}
	}
	slices.Sort(names)
	err := h.Do(func() error {
		for _, name := range names {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return err
			}
			index[name] = int32(ifi.Index)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var links []policy.Link
	for _, name := range names {
		links = append(links, policy.Link{Name: name, Index: index[name], Kind: policy.LinkWired, Up: true, Usable: true})
	}
	var las []policy.LocalAddr
	for a, dev := range addrs {
		las = append(las, policy.LocalAddr{Addr: a, Link: dev, IfIndex: index[dev], Usable: true})
	}
	return links, las
}

// startEngine runs an engine in h's namespace with fullmesh; Run's error is
// checked at cleanup.
func startEngine(t *testing.T, h *netnstest.Host, mode policy.Mode, events bool) *pm.Engine {
	t.Helper()
	return startEngineWith(t, h, mode, events, enginetest.Logger(t), nil)
}

// startEngineWith is startEngine with a logger and a wrapper around the
// event source.
func startEngineWith(t testing.TB, h *netnstest.Host, mode policy.Mode, events bool, log *slog.Logger,
	wrap func(pm.EventSource) pm.EventSource) *pm.Engine {
	t.Helper()
	fm, err := fullmesh.New(fullmesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := pm.Config{
		Mode: mode, Policy: policy.Compose(fm), NewKernel: enginetest.NewKernel(h.NetNS()), Conns: enginetest.NoConns{},
		Workers: 2, WithdrawOnExit: true, Logger: log,
	}
	if events {
		sub := enginetest.Subscribe(t, h.NetNS())
		cfg.Events = sub
		if wrap != nil {
			cfg.Events = wrap(sub)
		}
	}
	return enginetest.Run(t, cfg)
}

// serve accepts connections on ln and holds them open until the test ends.
func serve(ln net.Listener) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
}

// subflows returns the subflows of the MPTCP connection whose initial
// subflow has local address la, from sock_diag in h's namespace.
func subflows(t *testing.T, h *netnstest.Host, la netip.AddrPort) []sockdiag.Subflow {
	t.Helper()
	d, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var token uint32
	err = d.Connections(func(c *sockdiag.Connection) error {
		if unmap(c.Local) == la {
			token = c.Token
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []sockdiag.Subflow
	err = d.Subflows(func(s *sockdiag.Subflow) error {
		if token != 0 && s.Token == token && s.State == sockdiag.StateEstablished {
			out = append(out, *s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func unmap(ap netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) }

// TestUserspaceMeshKernel: with the userspace path manager, a dialled
// connection gets its second subflow from the other link.
func TestUserspaceMeshKernel(t *testing.T) {
	t.Parallel()
	for _, family := range []string{"ipv4", "ipv6"} {
		t.Run(family, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 2)
			l0, l1 := tb.Links[0], tb.Links[1]
			cli0, cli1, srv0 := l0.Client4, l1.Client4, l0.Server4
			network := "tcp4"
			if family == "ipv6" {
				cli0, cli1, srv0, network = l0.Client6, l1.Client6, l0.Server6, "tcp6"
			}
			tb.Client.SetPathManager("userspace")
			e := startEngine(t, tb.Client, policy.ModeUserspace, true)
			e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{
				l0.Client4: "eth0", l1.Client4: "eth1", l0.Client6: "eth0", l1.Client6: "eth1",
			}))
			enginetest.WaitReady(t, e)

			ln := tb.Server.Listen(network, netip.AddrPortFrom(srv0, 0).String())
			serve(ln)
			c, err := tb.Client.Dial(network, cli0.String(), ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := c.(*net.TCPConn).MultipathTCP(); !ok || err != nil {
				t.Fatalf("the connection is not MPTCP (%v)", err)
			}
			local := unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
			remote := unmap(c.RemoteAddr().(*net.TCPAddr).AddrPort())
			// The server sends ESTABLISHED's trigger (the client's
			// first data ACK) once the client writes.
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			enginetest.Poll(t, "second subflow", func() string {
				sfs := subflows(t, tb.Client, local)
				var got []string
				for _, s := range sfs {
					got = append(got, unmap(s.Local).Addr().String()+" -> "+unmap(s.Remote).String())
				}
				want := []string{cli0.String() + " -> " + remote.String(), cli1.String() + " -> " + remote.String()}
				if len(got) != 2 || !containsAll(got, want) {
					return "subflows " + strings.Join(got, ", ") + "; want " + strings.Join(want, ", ")
				}
				return ""
			})
			enginetest.Poll(t, "engine status", func() string {
				st, err := enginetest.Status(t.Context(), e)
				if err != nil {
					t.Fatal(err)
				}
				if len(st.Conns) != 1 || len(st.Conns[0].Paths) != 2 || st.Conns[0].Paths[0].State != "established" ||
					st.Conns[0].Paths[1].State != "established" {
					return fmt.Sprintf("%+v", st.Conns)
				}
				return ""
			})
		})
	}
}

// TestUserspaceThreeLinksKernel: a client with three links gets a subflow
// from each of the two other addresses; each carries an address id of its
// own (a second subflow created without one would be refused).
func TestUserspaceThreeLinksKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 3)
	l0, l1, l2 := tb.Links[0], tb.Links[1], tb.Links[2]
	tb.Client.SetPathManager("userspace")
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	e := startEngine(t, tb.Client, policy.ModeUserspace, true)
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1", l2.Client4: "eth2"}))
	enginetest.WaitReady(t, e)
	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	serve(ln)
	c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	enginetest.Poll(t, "three subflows", func() string {
		ids := map[netip.Addr]uint8{}
		for _, s := range subflows(t, tb.Client, local) {
			ids[unmap(s.Local).Addr()] = s.LocalID
		}
		if len(ids) != 3 || ids[l0.Client4] != 0 || ids[l1.Client4] == 0 || ids[l2.Client4] == 0 ||
			ids[l1.Client4] == ids[l2.Client4] {
			return fmt.Sprintf("local ids %v", ids)
		}
		return ""
	})
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// TestKernelModeKernel: in kernel mode, an address that becomes usable
// gets an endpoint, new connections use it, and it goes when the address
// does; the endpoints are withdrawn on exit.
func TestKernelModeKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	e := startEngine(t, tb.Client, policy.ModeKernel, false)
	endpoints := func() string { return tb.Client.MustExec("ip", "mptcp", "endpoint", "show") }
	one := map[netip.Addr]string{l0.Client4: "eth0"}
	e.SetHost(hostView(t, tb.Client, one))
	enginetest.WaitReady(t, e)
	enginetest.Poll(t, "first endpoint", func() string {
		if out := endpoints(); !strings.Contains(out, "192.0.2.1 id 100 subflow fullmesh dev eth0") {
			return "endpoints: " + out
		}
		return ""
	})
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}))
	enginetest.Poll(t, "second endpoint", func() string {
		if out := endpoints(); !strings.Contains(out, "198.51.100.1 id 101 subflow fullmesh dev eth1") {
			return "endpoints: " + out
		}
		return ""
	})
	if out := tb.Client.MustExec("ip", "mptcp", "limits", "show"); !strings.Contains(out, "add_addr_accepted 8 subflows 8") {
		t.Errorf("limits: %s", out)
	}

	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	serve(ln)
	c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	enginetest.Poll(t, "second subflow", func() string {
		sfs := subflows(t, tb.Client, local)
		for _, s := range sfs {
			if unmap(s.Local).Addr() == l1.Client4 {
				return ""
			}
		}
		return "no subflow from " + l1.Client4.String()
	})

	e.SetHost(hostView(t, tb.Client, one))
	enginetest.Poll(t, "endpoint removed", func() string {
		if out := endpoints(); strings.Contains(out, "198.51.100.1") || !strings.Contains(out, "192.0.2.1 id 100") {
			return "endpoints: " + out
		}
		return ""
	})
}

// TestWithdrawKernel: Run deletes the owned endpoints when it returns and
// leaves foreign ones.
func TestWithdrawKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Client.MustExec("ip", "mptcp", "endpoint", "add", l1.Client4.String(), "id", "3", "signal", "dev", "eth1")
	fm, err := fullmesh.New(fullmesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e, stop := enginetest.Start(t, pm.Config{
		Mode: policy.ModeKernel, Policy: fm, WithdrawOnExit: true, Logger: enginetest.Logger(t),
		NewKernel: enginetest.NewKernel(tb.Client.NetNS()),
	})
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}))
	enginetest.WaitReady(t, e)
	enginetest.Poll(t, "endpoint", func() string {
		if out := tb.Client.MustExec("ip", "mptcp", "endpoint", "show"); !strings.Contains(out, "192.0.2.1 id 100") {
			return out
		}
		return ""
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSpace(tb.Client.MustExec("ip", "mptcp", "endpoint", "show"))
	if out != "198.51.100.1 id 3 signal dev eth1" {
		t.Errorf("endpoints after exit: %q, want only the foreign one", out)
	}
}

// tap is an EventSource that timestamps, per token, ESTABLISHED and the
// first SUB_ESTABLISHED after it, as the engine's reader receives them.
type tap struct {
	pm.EventSource
	mu          sync.Mutex
	established map[uint32]time.Time
	joined      chan time.Duration
}

func (t *tap) Receive(ctx context.Context) ([]genl.Event, error) {
	evs, err := t.EventSource.Receive(ctx)
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ev := range evs {
		switch ev.Type {
		case genl.EventEstablished:
			t.established[ev.Token] = now
		case genl.EventSubEstablished:
			if t0, ok := t.established[ev.Token]; ok {
				delete(t.established, ev.Token)
				t.joined <- now.Sub(t0)
			}
		}
	}
	return evs, err
}

// BenchmarkEstablishedToSubflowKernel measures, on the real kernel with
// the userspace path manager, the time from a connection's ESTABLISHED
// event to the SUB_ESTABLISHED of the subflow the engine opened for it
// (both as the engine's event reader receives them): the engine's
// decision, one SUBFLOW_CREATE round trip and the MP_JOIN handshake over
// veth. It reports the median and the 99th percentile.
func BenchmarkEstablishedToSubflowKernel(b *testing.B) {
	tb := netnstest.NewTestbed(b, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Client.SetPathManager("userspace")
	tp := &tap{established: make(map[uint32]time.Time), joined: make(chan time.Duration, 16)}
	e := startEngineWith(b, tb.Client, policy.ModeUserspace, true, slog.New(slog.DiscardHandler),
		func(src pm.EventSource) pm.EventSource { tp.EventSource = src; return tp })
	e.SetHost(hostView(b, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}))
	enginetest.WaitReady(b, e)
	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	serve(ln)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			b.Fatal(err)
		}
		select {
		case d := <-tp.joined:
			lat = append(lat, d)
		case <-time.After(netnstest.Patience(5 * time.Second)):
			b.Fatal("no second subflow after 5s")
		}
		_ = c.Close()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestJoinRefusedKernel: a join the server refuses comes back as
// SUB_CLOSED, and the engine backs off and retries the path.
func TestJoinRefusedKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Client.SetPathManager("userspace")
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "0")
	e := startEngine(t, tb.Client, policy.ModeUserspace, true)
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}))
	enginetest.WaitReady(t, e)
	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	serve(ln)
	c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	enginetest.Poll(t, "retried join", func() string {
		st, err := enginetest.Status(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Conns) != 1 || len(st.Conns[0].Paths) != 2 {
			return fmt.Sprintf("%+v", st.Conns)
		}
		p := st.Conns[0].Paths[1]
		if p.Failures < 4 || p.LastError == "" {
			return fmt.Sprintf("path %+v, actions %v", p, st.Counters.Actions)
		}
		return ""
	})
	// 4 failures back off 50+100+200+400 ms less jitter: the engine does
	// not hammer the peer with joins.
	st, err := enginetest.Status(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Counters.Actions["create_subflow"]; n > uint64(st.Conns[0].Paths[1].Failures)+1 {
		t.Errorf("%d creates for %d failures", n, st.Conns[0].Paths[1].Failures)
	}
}

// TestServerAnnounceKernel: on the server side the engine announces the
// other address, and the client's in-kernel path manager joins it.
func TestServerAnnounceKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Server.SetPathManager("userspace")
	tb.Client.MustExec("ip", "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "2")
	e := startEngine(t, tb.Server, policy.ModeUserspace, true)
	e.SetHost(hostView(t, tb.Server, map[netip.Addr]string{l0.Server4: "eth0", l1.Server4: "eth1"}))
	enginetest.WaitReady(t, e)
	// Joins go to the announced address: listen on all of them.
	ln := tb.Server.Listen("tcp4", "0.0.0.0:0")
	serve(ln)
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	c, err := tb.Client.Dial("tcp4", l0.Client4.String(), netip.AddrPortFrom(l0.Server4, port).String())
	if err != nil {
		t.Fatal(err)
	}
	local := unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	enginetest.Poll(t, "join to the announced address", func() string {
		var got []string
		for _, s := range subflows(t, tb.Client, local) {
			got = append(got, unmap(s.Remote).Addr().String())
		}
		if !slices.Contains(got, l1.Server4.String()) {
			return "client subflows to " + strings.Join(got, ", ")
		}
		return ""
	})
	enginetest.Poll(t, "engine status", func() string {
		st, err := enginetest.Status(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Conns) != 1 || st.Conns[0].Side != pmstate.SideServer || len(st.Conns[0].Announces) != 1 ||
			st.Conns[0].Announces[0].State != "announced" || st.Conns[0].Announces[0].ID != 255 {
			return fmt.Sprintf("%+v", st.Conns)
		}
		return ""
	})
}

// dropFrom is a test policy modifier that leaves the paths from one local
// address out of every connection's plan.
type dropFrom struct{ addr netip.Addr }

func (dropFrom) Name() string { return "drop-from" }

func (dropFrom) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (d dropFrom) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	next.Paths = slices.DeleteFunc(next.Paths, func(p policy.Path) bool { return p.Local == d.addr })
	return next
}

// TestDemoteInitialKernel: when the plan drops a client connection's
// initial path mid-transfer, the engine demotes the initial subflow to
// backup instead of destroying it (Linux 6.18 loses connections whose
// initial subflow the userspace path manager destroys while data flows);
// the transfer, echoed back by the server after the client's shutdown,
// completes intact.
func TestDemoteInitialKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Client.SetPathManager("userspace")
	e := startEngine(t, tb.Client, policy.ModeUserspace, true)
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}))
	enginetest.WaitReady(t, e)

	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	local := unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
	echoed := make(chan string, 1)
	go func() {
		h := sha256.New()
		n, err := io.Copy(h, c)
		echoed <- fmt.Sprintf("%d bytes %x err=%v", n, h.Sum(nil), err)
	}()
	sent := sha256.New()
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() { wrote <- writeUntil(c, sent, stop) }()

	enginetest.Poll(t, "second subflow", func() string {
		if !hasSubflowFrom(t, tb.Client, local, l1.Client4) {
			return "none"
		}
		return ""
	})
	fm, err := fullmesh.New(fullmesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e.SetPolicy(policy.Compose(fm, dropFrom{l0.Client4}))
	initialBackup := func() string {
		var got []string
		for _, s := range subflows(t, tb.Client, local) {
			if unmap(s.Local) == local && s.Flags&sockdiag.SubflowBackupLocal != 0 {
				return ""
			}
			got = append(got, fmt.Sprintf("%s %s", unmap(s.Local), s.Flags))
		}
		return "no initial subflow with backup set: " + strings.Join(got, ", ")
	}
	enginetest.Poll(t, "initial subflow demoted", initialBackup)
	enginetest.Poll(t, "engine status", func() string {
		st, err := enginetest.Status(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range st.Conns {
			for _, p := range cs.Paths {
				if p.Local == l0.Client4 && p.State == "kept" && len(p.Subflows) == 1 && p.Subflows[0].Backup {
					return ""
				}
			}
		}
		return fmt.Sprintf("%+v", st.Conns)
	})
	close(stop)
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-echoed:
		if w := fmt.Sprintf("%x err=<nil>", sent.Sum(nil)); !strings.HasSuffix(got, w) {
			t.Errorf("client received back %s, sent sha256 %s", got, w)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server's echo did not end")
	}
}

// TestAddressGoneKernel: when a client address with a subflow is deleted
// from its interface, the engine withdraws the address's id (REMOVE,
// which sends RM_ADDR over the other subflow) before it destroys the
// subflow, so the server closes its end at once: the subflow's own FIN
// cannot leave from the deleted address, and a server left with it
// would count it against its subflow limit until the connection ends.
// Three cycles of deleting and adding the address back each leave the
// server with no subflow from it; the connection carries its data intact
// throughout.
func TestAddressGoneKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Client.SetPathManager("userspace")
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	e := startEngine(t, tb.Client, policy.ModeUserspace, true)
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}))
	enginetest.WaitReady(t, e)

	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	srv := newHashServer(ln)
	c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	local := unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
	sent := sha256.New()
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() { wrote <- writeUntil(c, sent, stop) }()

	d, err := sockdiag.Dial(&sockdiag.Config{NetNS: tb.Server.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	// serverSide describes the server's end of the connection: its
	// extra subflows and its established subflows from l1's address.
	serverSide := func() (extra int, fromL1 int) {
		var token uint32
		err := d.Connections(func(sc *sockdiag.Connection) error {
			if unmap(sc.Remote) == local {
				token, extra = sc.Token, int(sc.Info.ExtraSubflows)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = d.Subflows(func(s *sockdiag.Subflow) error {
			if token != 0 && s.Token == token && s.State == sockdiag.StateEstablished &&
				unmap(s.Remote).Addr() == l1.Client4 {
				fromL1++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return extra, fromL1
	}
	prefix := netip.PrefixFrom(l1.Client4, 24)
	both := map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}
	for cycle := range 3 {
		enginetest.Poll(t, fmt.Sprintf("cycle %d: subflow from eth1", cycle), func() string {
			has := hasSubflowFrom(t, tb.Client, local, l1.Client4)
			if extra, fromL1 := serverSide(); !has || extra != 1 || fromL1 != 1 {
				return fmt.Sprintf("client has it: %v; server: %d extra subflows, %d from %s", has, extra, fromL1, l1.Client4)
			}
			return ""
		})
		tb.Client.DelAddr("eth1", prefix)
		e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0"}))
		enginetest.Poll(t, fmt.Sprintf("cycle %d: server's subflow from the deleted address closed", cycle), func() string {
			if extra, fromL1 := serverSide(); extra != 0 || fromL1 != 0 {
				return fmt.Sprintf("server: %d extra subflows, %d established from %s", extra, fromL1, l1.Client4)
			}
			return ""
		})
		enginetest.Poll(t, fmt.Sprintf("cycle %d: client's subflow closed", cycle), func() string {
			if hasSubflowFrom(t, tb.Client, local, l1.Client4) {
				return "still established"
			}
			return ""
		})
		tb.Client.AddAddr("eth1", prefix)
		e.SetHost(hostView(t, tb.Client, both))
	}

	close(stop)
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-srv.sum(local):
		if w := fmt.Sprintf("%x err=<nil>", sent.Sum(nil)); !strings.HasSuffix(got, w) {
			t.Errorf("server received %s, sent sha256 %s", got, w)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server's copy did not end")
	}
}
