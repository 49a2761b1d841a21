package sockdiag_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// benchConns is the number of MPTCP connections BenchmarkConnections10k
// opens. Both ends live in the namespace, so the walks see twice as many
// MPTCP sockets and subflows.
const benchConns = 10_000

// benchServerEnv makes the test binary act as TestBenchServerHelper, which
// accepts and holds the benchmark's connections: with both ends in one
// process 10,000 connections need 20,000 descriptors, more than a hard
// RLIMIT_NOFILE of 20,000 allows without CAP_SYS_RESOURCE.
const benchServerEnv = "SOCKDIAG_BENCH_SERVER"

const benchAddr = "127.0.0.1:7000"

// BenchmarkConnections10k walks 10,000 live loopback MPTCP connections
// (20,000 MPTCP sockets, 20,000 subflows) in one namespace and reports the
// cost per socket walked, and the cost of looking one connection up by
// its token among them (what the daemon's byte reads for deferred joins
// weigh against a walk). It needs root.
func BenchmarkConnections10k(b *testing.B) {
	h := netnstest.NewHost(b, "bench") // skips without root
	raiseFileLimit(b, benchConns+1000)

	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	srv := h.Command(self, "-test.run=^TestBenchServerHelper$", "-test.count=1")
	srv.Env = append(os.Environ(), benchServerEnv+"=1")
	srv.Stderr = os.Stderr
	stdout, err := srv.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdin, err := srv.StdinPipe() // closing it stops the server
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = srv.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "listening\n" {
		b.Fatalf("bench server: got %q, %v; want \"listening\"", line, err)
	}

	start := time.Now()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		dialErr error
	)
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for next.Add(1) <= benchConns {
				if _, err := h.Dial("tcp4", "", benchAddr); err != nil {
					errOnce.Do(func() { dialErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if dialErr != nil {
		b.Fatal(dialErr)
	}

	c, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })

	// All dialled connections accepted and listed: 2 MPTCP sockets each.
	deadline := time.Now().Add(30 * time.Second)
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

// raiseFileLimit lifts the soft RLIMIT_NOFILE to at least n descriptors,
// or skips the benchmark.
func raiseFileLimit(b *testing.B, n uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	orig := lim
	lim.Cur = n
	lim.Max = max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Skipf("raise open file limit to %d: %v", n, err)
	}
	b.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
}

// TestBenchServerHelper is the server process of BenchmarkConnections10k:
// it listens on benchAddr, prints "listening", and accepts and holds
// connections until its stdin closes.
func TestBenchServerHelper(t *testing.T) {
	if os.Getenv(benchServerEnv) != "1" {
		t.Skip("helper process of BenchmarkConnections10k")
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(context.Background(), "tcp4", benchAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		mu   sync.Mutex
		held []net.Conn // referenced so the GC does not close them
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	fmt.Println("listening")
	_, _ = io.Copy(io.Discard, os.Stdin)
	mu.Lock()
	defer mu.Unlock()
	for _, c := range held {
		_ = c.Close()
	}
}
