//go:build linux

package bench_test

import (
	"io"
	"math"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
)

// The aggregation transfer: the client sends as fast as it can; the
// figure is what the server reads in aggFor after aggWarmup (slow start,
// the extra subflow).
const (
	aggWarmup = time.Second
	aggFor    = 3 * time.Second
)

// BenchmarkAggregation measures, for each path manager of
// BenchmarkSubflow, one connection's throughput from the client to the
// server over the testbed's two links (each shaped to linkMbit) as a
// fraction of their sum; an iteration is one transfer.
func BenchmarkAggregation(b *testing.B) {
	for _, c := range subflowCases {
		b.Run(c.manager+"-"+c.mode, func(b *testing.B) {
			tb, _ := testbed(b)
			c.setup(b, tb)
			var read, secs float64
			for b.Loop() {
				n, d := transfer(b, tb.Client, tb.Server, tb.Links[0].Server4)
				read += float64(n)
				secs += d.Seconds()
			}
			mbps := math.Round(read*8/secs/1e4) / 100
			links := float64(len(tb.Links) * linkMbit)
			a := bench.Aggregation{Seconds: math.Round(secs*10) / 10, Mbps: mbps, LinksMbps: links,
				Fraction: math.Round(mbps/links*1000) / 1000}
			b.ReportMetric(a.Mbps, "Mbit/s")
			b.ReportMetric(a.Fraction*100, "%-of-links")
			record(b, bench.Result{Figure: "aggregation", Manager: c.manager, Mode: c.mode, Aggregation: &a})
		})
	}
}

// transfer opens one MPTCP connection from client to a listener of its
// own on server at addr, sends for aggWarmup + aggFor and returns the
// bytes the server read in the last aggFor and the exact time that took.
func transfer(b *testing.B, client, server *netnstest.Host, addr netip.Addr) (int64, time.Duration) {
	b.Helper()
	ln := server.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	var got atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 256<<10)
		for {
			n, err := c.Read(buf)
			got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	c, err := client.Dial("tcp", "", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	if ok, err := c.(*net.TCPConn).MultipathTCP(); !ok || err != nil {
		b.Fatalf("the connection is not MPTCP (%v)", err)
	}
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		_, _ = io.Copy(c, zeros{})
	}()
	time.Sleep(aggWarmup)
	n0, t0 := got.Load(), time.Now()
	time.Sleep(aggFor)
	n1, t1 := got.Load(), time.Now()
	_ = c.Close()
	_ = ln.Close()
	<-writeDone
	<-readDone
	if n1 == n0 {
		b.Fatalf("nothing read in %v", aggFor)
	}
	return n1 - n0, t1.Sub(t0)
}

// zeros reads as an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
