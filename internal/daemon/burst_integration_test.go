//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// burstConns is the number of connections TestBurstResync opens.
const burstConns = 2000

// TestBurstResync opens a burst of connections while the daemon's event
// socket has a small receive buffer: the kernel drops events, the daemon
// resynchronises from sock_diag, and in the end no connection is left
// without its mesh. The resyncs read the address list of the connections
// the daemon did not know only, each once: never every connection per
// resync. It takes 10 to 20 seconds; -short skips it.
func TestBurstResync(t *testing.T) {
	if testing.Short() {
		t.Skip("a burst of 2,000 connections: 10 to 20 seconds")
	}
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	acceptJoins(tb.Server)
	cli := daemontest.Run(t, tb.Client, config("userspace", "[engine]\nevent_buffer = 2048\n"))
	ln := tb.Server.Listen("tcp", netip.AddrPortFrom(tb.Links[0].Server4, 0).String())
	go serve(ln)
	srv := addrPort(ln)

	const dialers = 8
	var (
		wg        sync.WaitGroup
		fallbacks atomic.Int64
	)
	errs := make(chan error, dialers)
	for range dialers {
		wg.Go(func() {
			for range burstConns / dialers {
				c, err := tb.Client.Dial("tcp", "", srv.String())
				if err == nil {
					_, err = c.Write([]byte{1}) // the server's DSS ack makes it fully established
				}
				if err != nil {
					errs <- err
					return
				}
				// A SYN the loaded server dropped twice makes the kernel
				// fall back to TCP (net.mptcp.syn_retrans_before_tcp_fallback):
				// no MPTCP connection for the daemon to mesh.
				if mp, err := c.(*net.TCPConn).MultipathTCP(); err == nil && !mp {
					fallbacks.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	mptcp := burstConns - int(fallbacks.Load())
	if mptcp < burstConns*99/100 {
		t.Fatalf("%d of %d connections fell back to TCP: too few MPTCP connections to test with", burstConns-mptcp, burstConns)
	}

	want := pathSet([]netip.Addr{tb.Links[0].Client4, tb.Links[1].Client4}, srv)
	enginetest.PollWithin(t, netnstest.Patience(30*time.Second), "every connection meshed", func() string {
		meshed, total := 0, 0
		for _, ps := range meshes(t, tb.Client) {
			total++
			if equal(ps, want) {
				meshed++
			}
		}
		if meshed == mptcp {
			return ""
		}
		st, err := cli.Status(context.Background())
		if err != nil {
			return fmt.Sprintf("%d of %d MPTCP connections meshed (%d seen); status: %v", meshed, mptcp, total, err)
		}
		return fmt.Sprintf("%d of %d MPTCP connections meshed (%d seen); counters %+v", meshed, mptcp, total, st.Counters)
	})
	st, err := cli.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters.Resyncs == 0 {
		t.Errorf("no resync: the burst lost no event, so the test proved nothing (counters %+v)", st.Counters)
	}
	if n := st.Counters.Actions[pmstate.OpConnectionAddrs]; n > burstConns {
		t.Errorf("%d address lists read after %d resyncs of %d connections: more than one per connection", n,
			st.Counters.Resyncs, burstConns)
	}
	t.Logf("resyncs %d, events %v, fallbacks to TCP %d", st.Counters.Resyncs, st.Counters.Events, burstConns-mptcp)
}
