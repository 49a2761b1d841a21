//go:build linux

package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
)

// The memory benchmark's load: memConns connections, opened memBatch at
// once, for as long as memBudget allows.
const (
	memConns  = 10_000
	memBatch  = 64
	memBudget = 20 * time.Second
	// memSettle is how long the process is left after the last subflow
	// before its memory is read, for the events it is still handling.
	memSettle = 500 * time.Millisecond
)

// BenchmarkMemory measures, for each path manager of BenchmarkSubflow
// that is a process, its resident memory (VmRSS) idle and with up to
// memConns connections open, each with its extra subflow; it opens as
// many as fit in memBudget. An iteration is one such load.
func BenchmarkMemory(b *testing.B) {
	for _, c := range subflowCases {
		if c.manager == "kernel" {
			continue // no process
		}
		b.Run(c.manager+"-"+c.mode, func(b *testing.B) {
			var m bench.Memory
			for b.Loop() {
				m = memoryLoad(b, c)
			}
			b.ReportMetric(float64(m.IdleKB)/1024, "idle-MB")
			b.ReportMetric(float64(m.LoadedKB)/1024, "loaded-MB")
			b.ReportMetric(m.BytesPerConn, "B/conn")
			b.ReportMetric(float64(m.Conns), "conns")
			record(b, bench.Result{Figure: "memory", Manager: c.manager, Mode: c.mode, Memory: &m})
		})
	}
}

// memoryLoad builds a testbed with c's path manager, reads its memory
// idle, opens the connections and reads it again. The connections and
// the testbed go when the benchmark ends.
func memoryLoad(b *testing.B, c subflowCase) bench.Memory {
	tb, _ := testbed(b)
	server, _ := startServer(b, tb)
	pid := c.setup(b, tb)
	w := watch(b, tb.Client)
	time.Sleep(memSettle)
	idle := vmRSS(b, pid)
	var conns []net.Conn
	b.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	start := time.Now()
	for len(conns) < memConns && time.Since(start) < memBudget {
		batch, err := dialBatch(tb.Client, server, min(memBatch, memConns-len(conns)))
		conns = append(conns, batch...)
		if err == nil {
			err = w.waitFor(len(conns))
		}
		if err != nil {
			b.Fatalf("%s %s mode, %d connections open: %v", c.manager, c.mode, len(conns), err)
		}
	}
	setup := time.Since(start)
	time.Sleep(memSettle)
	loaded := vmRSS(b, pid)
	return bench.Memory{IdleKB: idle, Conns: len(conns), LoadedKB: loaded,
		BytesPerConn: math.Round(float64(loaded-idle) * 1024 / float64(len(conns))),
		SetupSeconds: math.Round(setup.Seconds()*10) / 10}
}

// vmRSS returns process pid's resident memory in KiB, VmRSS of
// /proc/PID/status.
func vmRSS(b *testing.B, pid int) int {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatalf("VmRSS of %d: %v", pid, err)
			}
			return kb
		}
	}
	b.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// serverEnv, set in its environment, makes the test binary a server
// (serverMain) instead of running tests: the memory benchmark's server
// end of memConns connections does not fit in this process's open-file
// limit beside the client end.
const serverEnv = "MPTCPGOD_BENCH_SERVER"

// startServer runs this test binary as a server (serverMain) in tb's
// server namespace until the benchmark ends and returns its address on
// the server's eth0 and its process id.
func startServer(b *testing.B, tb *netnstest.Testbed) (netip.AddrPort, int) {
	b.Helper()
	return startChild(b, tb, serverEnv)
}

// startChild runs this test binary in tb's server namespace with env set
// to 1, as a server that writes its port on a line and serves until its
// stdin is closed, until the benchmark ends, and returns its address on
// the server's eth0 and its process id.
func startChild(b *testing.B, tb *netnstest.Testbed, env string) (netip.AddrPort, int) {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := tb.Server.Command(exe)
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the server: %v", err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("server: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("server address: %v", err)
	}
	port, err := strconv.ParseUint(strings.TrimSpace(line), 10, 16)
	if err != nil {
		b.Fatalf("server port %q: %v", line, err)
	}
	return netip.AddrPortFrom(tb.Links[0].Server4, uint16(port)), cmd.Process.Pid
}

// serverMain is the server that discards what its connections send
// (childMain).
func serverMain() int {
	return childMain(func(c net.Conn) {
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	})
}

// childMain listens for MPTCP connections on every address of the
// namespace it runs in, writes the port and a newline to stdout, and hands
// each connection to serve until stdin is closed.
func childMain(serve func(net.Conn)) int {
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(context.Background(), "tcp", ":0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(netip.MustParseAddrPort(ln.Addr().String()).Port())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}
