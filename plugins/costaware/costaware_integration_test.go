//go:build linux

package costaware_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/plugins/costaware"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// quota is the metered link's quota in the real-kernel test.
const quota = 2_000_000

// eth1BytesPerSecond is the rate the real-kernel test shapes the metered
// link to: 16 Mbit/s.
const eth1BytesPerSecond = 2_000_000

// TestQuotaOverRealLinks runs fullmesh and cost-aware on a client with two
// links, in both path-manager modes, wired as the daemon wires them: the
// link monitor's state, annotated by the usage accounting from the real
// interface counters, feeds the engine. eth1 is metered with a 2 MB quota
// and shaped to 16 Mbit/s. While eth0 works eth1 carries nothing; when
// eth0 dies (it silently drops everything, and the test, playing the
// daemon's health sampler, reports it stalled) the transfer moves to eth1
// until the quota, where eth1 is withdrawn and the transfer stalls; when
// eth0 recovers the transfer finishes intact; and the usage survives a
// restart of the accounting.
func TestQuotaOverRealLinks(t *testing.T) {
	t.Parallel()
	for _, mode := range []policy.Mode{policy.ModeKernel, policy.ModeUserspace} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testQuota(t, mode)
		})
	}
}

func testQuota(t *testing.T, mode policy.Mode) {
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Client.SetPathManager(string(mode))
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	tb.Client.Shape(l1.ClientIf, 16)
	// A withdrawn subflow still sends what it has queued before its FIN:
	// a send buffer of at most 256 kB bounds that.
	tb.Client.Sysctl("net.ipv4.tcp_wmem", "4096 16384 262144")
	log := enginetest.Logger(t)

	dir := t.TempDir()
	links := []usage.LinkQuota{{Name: l1.ClientIf, Metered: usage.MeteredYes, CostPerGB: 4, QuotaBytes: quota,
		Period: usage.PeriodMonth, ResetDay: 1, Location: time.UTC}}
	acct, err := usage.New(usage.Config{StateDir: dir, Links: links, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := linkmon.New(&linkmon.Config{NetNS: tb.Client.NetNS(), IncludeKinds: []linkmon.Kind{linkmon.KindVirtual}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e := startEngine(t, tb.Client, mode, log)
	var stalled atomic.Bool // eth0, as a health sampler would see it
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := mon.Run(ctx); err != nil {
			t.Errorf("linkmon: %v", err)
		}
	})
	wg.Go(func() { feed(ctx, t, mon, acct, e, l0.ClientIf, &stalled) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = mon.Close()
	})
	enginetest.WaitReady(t, e)

	// 1 MB while eth0 works, 5 MB after it died: more than eth1's quota,
	// so the transfer can only finish over eth0.
	data := make([]byte, 6_000_000)
	rng := rand.NewChaCha8([32]byte{'c', 'o', 's', 't'})
	_, _ = rng.Read(data)
	want := sha256.Sum256(data)
	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	srv := newSink(ln)
	conn, err := tb.Client.Dial("tcp4", "", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(data[:1_000_000]); err != nil {
		t.Fatal(err)
	}
	enginetest.Poll(t, "1 MB over eth0", func() string {
		n := srv.received.Load()
		if n == 1_000_000 {
			return ""
		}
		return fmt.Sprintf("%d bytes received", n)
	})
	// The engine has decided: of what fullmesh proposes, only eth0 is
	// wanted, and eth1 carried nothing.
	enginetest.Poll(t, "the engine's plan", func() string {
		addrs := desired(t, e, mode)
		if len(addrs) == 1 && addrs[0] == l0.Client4 {
			return ""
		}
		return fmt.Sprintf("desired IPv4 addresses %v", addrs)
	})
	if n := subflowsFrom(t, tb.Client, l1.Client4); n != 0 {
		t.Errorf("%d subflows over eth1 while eth0 works", n)
	}
	if u := used(t, acct); u > 20_000 {
		t.Errorf("eth1 carried %d bytes while eth0 worked", u)
	}

	tb.Client.Blackhole(l0.ClientIf)
	tb.Server.Blackhole(l0.ServerIf)
	stalled.Store(true)
	writeErr := make(chan error, 1)
	go func() {
		_, err := conn.Write(data[1_000_000:])
		if err == nil {
			err = conn.(*net.TCPConn).CloseWrite()
		}
		writeErr <- err
	}()
	enginetest.Poll(t, "the transfer moves to eth1", func() string {
		u := used(t, acct)
		if u > 500_000 {
			return ""
		}
		return fmt.Sprintf("eth1 used %d bytes", u)
	})
	enginetest.Poll(t, "eth1 withdrawn at its quota", func() string {
		u, n := used(t, acct), subflowsFrom(t, tb.Client, l1.Client4)
		if u >= quota && n == 0 {
			return ""
		}
		return fmt.Sprintf("eth1 used %d bytes, %d subflows over it", u, n)
	})
	withdrawnBy := time.Now()
	if n := srv.received.Load(); n >= int64(len(data)) {
		t.Fatalf("the transfer finished without eth0 (%d bytes): the test proves nothing", n)
	}

	tb.Client.ClearQdisc(l0.ClientIf)
	tb.Server.ClearQdisc(l0.ServerIf)
	stalled.Store(false)
	select {
	case r := <-srv.done:
		if r.err != nil {
			t.Fatalf("server: %v", r.err)
		}
		if r.sum != want {
			t.Errorf("the server received %d bytes that differ from what was sent", srv.received.Load())
		}
	case <-time.After(netnstest.Patience(60 * time.Second)):
		t.Fatalf("the transfer did not finish after eth0 recovered: %d of %d bytes", srv.received.Load(), len(data))
	}
	if err := <-writeErr; err != nil {
		t.Errorf("write: %v", err)
	}

	l := acct.Report().Links[0]
	t.Logf("eth1 used %d bytes of its %d quota", l.UsedBytes, quota)
	// eth1 passes its quota by what it carries between the sample that
	// reaches the quota and the withdrawal (20 ms at 2 MB/s on a quiet
	// machine; on a loaded one, up to when the test saw the subflow gone),
	// and by what was queued when its subflow closed: the shaper's queue
	// (50 ms) and the subflow's send buffer (256 kB), which TCP still
	// sends before its FIN. Without the withdrawal it would carry all 5 MB.
	late := max(0, withdrawnBy.Sub(l.QuotaReachedAt)-20*time.Millisecond)
	limit := quota + 600_000 + uint64(late.Seconds()*eth1BytesPerSecond)
	if !l.OverQuota || l.QuotaReachedTotal != 1 || l.UsedBytes > limit {
		t.Errorf("eth1 at the end (limit %d bytes, withdrawal seen %v after the quota): %+v", limit, late, l)
	}

	// A restart keeps the usage: a new accounting on the same state
	// directory goes on from it and adds only what passed since.
	cancel()
	wg.Wait()
	if err := acct.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := usage.New(usage.Config{StateDir: dir, Links: links, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Report().Links; len(got) != 1 || got[0].UsedBytes != l.UsedBytes || !got[0].OverQuota {
		t.Errorf("after the restart: %+v, want used %d", got, l.UsedBytes)
	}
	got, err := again.Poll(mon)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].UsedBytes < l.UsedBytes || got[0].UsedBytes > l.UsedBytes+20_000 {
		t.Errorf("first sample after the restart: %+v, want about %d", got, l.UsedBytes)
	}
}

// feed is the daemon's loop in small: at every link change and every 20
// ms it samples the counters, annotates the links with their usage (and
// stalledIf with stalled, as the health sampler would) and hands them to
// the engine.
func feed(ctx context.Context, t *testing.T, mon *linkmon.Monitor, acct *usage.Accounting, e *pm.Engine,
	stalledIf string, stalled *atomic.Bool) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var st linkmon.State
	have := false
	for {
		select {
		case <-ctx.Done():
			return
		case d, ok := <-mon.Events():
			if !ok {
				return
			}
			st, have = d.State, true
		case <-tick.C:
		}
		if !have {
			continue
		}
		if _, err := acct.Poll(mon); err != nil {
			t.Errorf("usage: %v", err)
		}
		links, addrs := hostView(st)
		acct.Annotate(links)
		for i := range links {
			if links[i].Name == stalledIf {
				links[i].Health.Stalled = stalled.Load()
			}
		}
		e.SetHost(links, addrs)
	}
}

// hostView converts the link monitor's state as the daemon does.
func hostView(st linkmon.State) ([]policy.Link, []policy.LocalAddr) {
	var links []policy.Link
	for _, l := range st.Links {
		links = append(links, policy.Link{Name: l.Name, Index: int32(l.Index), Kind: policy.LinkVirtual,
			Up: l.Up, Usable: l.Up && l.Included})
	}
	var addrs []policy.LocalAddr
	for _, a := range st.Addrs {
		addrs = append(addrs, policy.LocalAddr{Addr: a.Prefix.Addr().Unmap(), Link: st.Links[a.LinkIndex].Name,
			IfIndex: int32(a.LinkIndex), Usable: a.Usable, Reason: a.Reason})
	}
	return links, addrs
}

// startEngine runs an engine with fullmesh | cost-aware in h's namespace
// until the test ends.
func startEngine(t *testing.T, h *netnstest.Host, mode policy.Mode, log *slog.Logger) *pm.Engine {
	t.Helper()
	fm, err := fullmesh.New(fullmesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := costaware.New(costaware.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return enginetest.Run(t, pm.Config{
		Mode: mode, Policy: policy.Compose(fm, ca), Events: enginetest.Subscribe(t, h.NetNS()), Workers: 2,
		WithdrawOnExit: true, Logger: log, NewKernel: enginetest.NewKernel(h.NetNS()),
	})
}

// sink is the server: it reads one connection to its end and reports the
// SHA-256 of what it read, or the error that ended the reading.
type sink struct {
	received atomic.Int64
	done     chan sinkResult
}

type sinkResult struct {
	sum [32]byte
	err error
}

func newSink(ln net.Listener) *sink {
	s := &sink{done: make(chan sinkResult, 1)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			s.done <- sinkResult{err: err}
			return
		}
		defer c.Close()
		h := sha256.New()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			h.Write(buf[:n])
			s.received.Add(int64(n))
			if err != nil {
				var r sinkResult
				if err == io.EOF {
					h.Sum(r.sum[:0])
				} else {
					r.err = err
				}
				s.done <- r
				return
			}
		}
	}()
	return s
}

// desired returns the IPv4 addresses the engine wants endpoints on
// (kernel mode) or paths from (userspace mode, of its one connection).
func desired(t *testing.T, e *pm.Engine, mode policy.Mode) []netip.Addr {
	t.Helper()
	st, err := enginetest.Status(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	if mode == policy.ModeKernel {
		for _, ep := range st.Endpoints {
			if ep.Desired && ep.Addr.Is4() {
				out = append(out, ep.Addr)
			}
		}
		return out
	}
	for _, c := range st.Conns {
		for _, p := range c.Paths {
			if p.Desired {
				out = append(out, p.Local)
			}
		}
	}
	return out
}

// subflowsFrom counts the established MPTCP subflows from local in h.
func subflowsFrom(t *testing.T, h *netnstest.Host, local netip.Addr) int {
	t.Helper()
	d, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n := 0
	err = d.Subflows(func(s *sockdiag.Subflow) error {
		if s.Local.Addr().Unmap() == local && s.State == sockdiag.StateEstablished {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func used(t *testing.T, a *usage.Accounting) uint64 {
	t.Helper()
	r := a.Report()
	if len(r.Links) != 1 {
		return 0
	}
	return r.Links[0].UsedBytes
}
