//go:build linux

package soak_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/hostiletest"
)

// The hostile server's addresses, on a link behind the soak's server
// (IPv6: the testbed's three links hold the IPv4 documentation ranges):
// it listens on the first, the second answers joins with a reset (an
// address the client may try, which fails), the third sits in the prefix
// the daemon's configuration denies.
var (
	evilListen  = netip.MustParseAddr("2001:db8:e::1")
	evilFailing = netip.MustParseAddr("2001:db8:e::2")
	evilDenied  = netip.MustParseAddr("2001:db8:e::101")
	evilDeny    = "2001:db8:e::100/120"
	evilRouter  = netip.MustParseAddr("2001:db8:e::fe")
)

// hostile is a hostile server behind the soak's server: on every
// connection the client opens to it, it announces the client's own
// address, loopback, link-local, multicast, unspecified and unique local
// addresses, another port of its own, an address in a denied prefix, and
// one that fails; it counts what the client sends to its addresses.
type hostile struct {
	evil    *netnstest.Host
	server  *hostiletest.Server
	counter *hostiletest.Counter
	port    uint16
	own     netip.Addr // the client's address announced back to it
	conns   atomic.Int64
}

func newHostile(t *testing.T, tb *netnstest.Testbed) *hostile {
	t.Helper()
	h := &hostile{evil: netnstest.NewHost(t, "evil"), own: tb.Links[0].Client6}
	netnstest.Connect(tb.Server, "eth9", h.evil, "eth0")
	tb.Server.AddAddr("eth9", netip.PrefixFrom(evilRouter, 64))
	tb.Server.Sysctl("net.ipv6.conf.all.forwarding", "1")
	for _, a := range []netip.Addr{evilListen, evilFailing, evilDenied} {
		h.evil.AddAddr("eth0", netip.PrefixFrom(a, 64))
	}
	h.evil.MustExec("ip", "-6", "route", "add", "default", "via", evilRouter.String())
	h.server = hostiletest.NewServer(t, h.evil)
	ln := h.evil.Listen("tcp6", netip.AddrPortFrom(evilListen, 0).String())
	go serveSums(ln)
	h.port = netip.MustParseAddrPort(ln.Addr().String()).Port()
	h.counter = hostiletest.NewCounter(t, h.evil, h.otherPort(), h.at(evilFailing), h.at(evilDenied))
	return h
}

func (h *hostile) at(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, h.port) }

// otherPort is the hostile server's own address with another port.
func (h *hostile) otherPort() netip.AddrPort { return netip.AddrPortFrom(evilListen, 25) }

// announces are the addresses announced on each connection, the failing
// one last.
func (h *hostile) announces() []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range []string{"::1", "fe80::1", "ff02::1", "::", "fd00::1"} {
		out = append(out, h.at(netip.MustParseAddr(a)))
	}
	return append(out, h.at(h.own), h.otherPort(), h.at(evilDenied), h.at(evilFailing))
}

// loop opens a connection to the hostile server from the client, one at
// a time, has the server announce on it, keeps it a second and closes
// it, until ctx is done; wait waits for the loop to end. A failure to
// connect (the daemon being killed does not cause any) is recorded in st.
func (h *hostile) loop(ctx context.Context, client *netnstest.Host, st *stats) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := h.attack(ctx, client); err != nil && ctx.Err() == nil {
				st.fail("hostile server: %v", err)
				return
			}
		}
	})
	return wg.Wait
}

// attack is one connection of loop.
func (h *hostile) attack(ctx context.Context, client *netnstest.Host) error {
	c, err := client.DialContext(ctx, "tcp6", "", h.at(evilListen).String())
	if err != nil {
		return err
	}
	defer c.Close()
	h.conns.Add(1)
	tctx, cancel := context.WithTimeout(ctx, ioLimit)
	defer cancel()
	token, err := h.server.Next(tctx)
	if err != nil {
		return err
	}
	for i, ap := range h.announces() {
		if err := h.server.Announce(token, uint8(i+1), ap, h.port); err != nil {
			return fmt.Errorf("connection %d: %w", h.conns.Load(), err)
		}
	}
	buf := make([]byte, 256)
	for end := time.Now().Add(time.Second); time.Now().Before(end) && ctx.Err() == nil; {
		_ = c.SetWriteDeadline(time.Now().Add(ioLimit))
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("connection %d: write: %w", h.conns.Load(), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// check fails the test when anything the client must not follow reached
// the hostile server, or the failing address got more than one try per
// connection (peers.tries is 1) in userspace mode, any in kernel mode
// (add_addr_accepted is 0); it returns the tries counted.
func (h *hostile) check(t *testing.T, mode string) int {
	t.Helper()
	got, err := h.counter.Counts()
	if err != nil {
		t.Fatal(err)
	}
	for _, ap := range []netip.AddrPort{h.otherPort(), h.at(evilDenied)} {
		if got[ap] != 0 {
			t.Errorf("hostile peer: %s received %d segments, want none", ap, got[ap])
		}
	}
	n, conns := got[h.at(evilFailing)], int(h.conns.Load())
	switch {
	case mode == "kernel" && n != 0:
		t.Errorf("hostile peer: the failing address received %d segments in %d connections, want none (add_addr_accepted 0)", n, conns)
	case n > conns:
		t.Errorf("hostile peer: the failing address received %d segments in %d connections, want one try each at most", n, conns)
	}
	return n
}
