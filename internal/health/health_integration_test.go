package health_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/health"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/pm"
)

// latest keeps the sampler's last report.
type latest struct {
	mu  sync.Mutex
	rep pm.Health
	n   int
}

func (l *latest) get() (pm.Health, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rep, l.n
}

// TestSamplerKernel: a connection whose path goes silent (blackhole on both
// ends) is reported stalled, subflow and link, and recovered once the path
// carries ACKs again; the unbound initial subflow is placed on its
// address's link.
func TestSamplerKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	l0 := tb.Links[0]
	var eth0 int32
	if err := tb.Client.Do(func() error {
		ifi, err := net.InterfaceByName(l0.ClientIf)
		if err == nil {
			eth0 = int32(ifi.Index)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	s, err := health.New(health.Config{NetNS: tb.Client.NetNS(), Interval: 10 * time.Millisecond,
		Refresh: 100 * time.Millisecond, Logger: enginetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after Run's, which stops it
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	runtest.Run(t, "sampler", s.Run)
	got := &latest{}
	go func() {
		for r := range s.Updates() {
			got.mu.Lock()
			got.rep, got.n = r, got.n+1
			got.mu.Unlock()
		}
	}()

	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	sendCtx, stopSend := context.WithCancel(context.Background())
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		buf := make([]byte, 16<<10)
		for sendCtx.Err() == nil {
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(buf)
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() { stopSend(); <-sent })

	find := func(rep pm.Health) (sub *pm.SubflowHealth, link *pm.LinkHealth) {
		for i := range rep.Subflows {
			if rep.Subflows[i].Local == local {
				sub = &rep.Subflows[i]
			}
		}
		for i := range rep.Links {
			if rep.Links[i].IfIndex == eth0 {
				link = &rep.Links[i]
			}
		}
		return sub, link
	}
	enginetest.Poll(t, "healthy subflow on eth0", func() string {
		rep, n := got.get()
		sub, link := find(rep)
		if sub == nil || link == nil || sub.Health.Stalled || link.Health.Stalled || sub.Health.RTT == 0 {
			return fmt.Sprintf("report %d: %+v", n, rep)
		}
		return ""
	})

	cut := time.Now()
	tb.Client.Blackhole(l0.ClientIf)
	tb.Server.Blackhole(l0.ServerIf)
	enginetest.Poll(t, "stall reported", func() string {
		rep, n := got.get()
		sub, link := find(rep)
		if sub == nil || link == nil || !sub.Health.Stalled || !link.Health.Stalled {
			return fmt.Sprintf("report %d: %+v", n, rep)
		}
		if !sub.Health.StalledChanged.After(cut) || !link.Health.StalledChanged.After(cut) {
			t.Fatalf("stalled at %v, before the cut at %v", sub.Health.StalledChanged, cut)
		}
		t.Logf("stall reported %v after the cut (threshold: rto %v)", sub.Health.StalledChanged.Sub(cut), sub.Health.RTO)
		return ""
	})

	restore := time.Now()
	tb.Client.ClearQdisc(l0.ClientIf)
	tb.Server.ClearQdisc(l0.ServerIf)
	enginetest.Poll(t, "recovery reported", func() string {
		rep, n := got.get()
		sub, link := find(rep)
		if sub == nil || link == nil || sub.Health.Stalled || link.Health.Stalled {
			return fmt.Sprintf("report %d: %+v", n, rep)
		}
		if !sub.Health.StalledChanged.After(restore) {
			t.Fatalf("recovered at %v, before the restore at %v", sub.Health.StalledChanged, restore)
		}
		return ""
	})
}
