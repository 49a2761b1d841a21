package sockdiag_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/holdtest"
)

// benchConns is the number of MPTCP connections BenchmarkConnections10k
// opens. Both ends live in the namespace, so the walks see twice as many
// MPTCP sockets and subflows.
const benchConns = 10_000

// BenchmarkConnections10k walks 10,000 live loopback MPTCP connections
// (20,000 MPTCP sockets, 20,000 subflows) in one namespace and reports the
// cost per socket walked, and the cost of looking one connection up by
// its token among them (what the daemon's byte reads for deferred joins
// weigh against a walk). It needs root.
func BenchmarkConnections10k(b *testing.B) {
	h := netnstest.NewHost(b, "bench") // skips without root
	holdtest.RaiseFiles(b, benchConns+1000)
	// The server ends are in a process of their own: with both ends in one
	// process 10,000 connections need 20,000 descriptors, more than a hard
	// RLIMIT_NOFILE of 20,000 allows without CAP_SYS_RESOURCE.
	port := holdtest.Start(b, h.Command, "127.0.0.1:0").Port
	start := time.Now()
	holdtest.Dial(b, h.Dial, "tcp4", "127.0.0.1:"+strconv.Itoa(int(port)), benchConns)

	c, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })

	// All dialled connections accepted and listed: 2 MPTCP sockets each.
	deadline := time.Now().Add(netnstest.Patience(30 * time.Second))
	for {
		n := 0
		if err := c.Connections(func(*sockdiag.Connection) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n == 2*benchConns {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d MPTCP sockets listed, want %d", n, 2*benchConns)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Logf("setup: %d MPTCP connections in %v", benchConns, time.Since(start).Round(time.Millisecond))

	b.Run("Connections", func(b *testing.B) {
		benchWalk(b, func(count func()) error {
			return c.Connections(func(*sockdiag.Connection) error { count(); return nil })
		})
	})
	b.Run("Lookup", func(b *testing.B) {
		var tokens []uint32
		err := c.Connections(func(cn *sockdiag.Connection) error {
			if len(tokens) < 1000 {
				tokens = append(tokens, cn.Token)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if _, err := c.Connection(tokens[n%len(tokens)]); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/lookup")
	})
	b.Run("Subflows", func(b *testing.B) {
		benchWalk(b, func(count func()) error {
			return c.Subflows(func(*sockdiag.Subflow) error { count(); return nil })
		})
	})
}

// benchWalk runs walk b.N times and reports time and allocated bytes per
// socket walked.
func benchWalk(b *testing.B, walk func(count func()) error) {
	b.ReportAllocs()
	var n int
	count := func() { n++ }
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		if err := walk(count); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if n == 0 {
		b.Fatal("walk saw no socket")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/socket")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n), "B/socket")
	b.ReportMetric(float64(n)/float64(b.N), "sockets/op")
}

// TestHoldConns is the process that holds BenchmarkConnections10k's
// server ends (holdtest.Start).
func TestHoldConns(t *testing.T) { holdtest.Child(t) }
