package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/holdtest"
)

// topBenchConns is the number of connections BenchmarkTop10k opens.
const topBenchConns = 10_000

// BenchmarkTop10k measures mptcpctl top with 10,000 live MPTCP connections
// of two subflows each (the in-kernel path manager adds one over eth1) in
// the client namespace of a testbed, the servers' ends in the server's:
//
//   - Refresh: one refresh of the sampler in this process (the links, the
//     sock_diag walks of the connections and the subflows, the rates, a
//     frame of every connection sorted by rate), per op;
//   - Frame: a frame alone, as a key that sorts or filters asks for it;
//   - View: the screen drawn from a frame of 10,000 rows;
//   - Screen: the mptcpctl binary's full screen under tmux, refreshing
//     every second: its CPU share and resident memory over each op (a 10 s
//     window), and the time from a key that sorts to the screen showing
//     the new sort (key-ms, the median of the op's presses).
//
// It needs root and tmux; run it alone: go test ./cmd/mptcpctl -run '^$'
// -bench Top10k -benchtime 1x.
func BenchmarkTop10k(b *testing.B) {
	tb := netnstest.NewTestbed(b, 2)
	holdtest.RaiseFiles(b, topBenchConns+2000)
	tb.Client.MustExec("ip", "mptcp", "limits", "set", "subflows", "2")
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "2")
	tb.Client.MustExec("ip", "mptcp", "endpoint", "add", tb.Links[1].Client4.String(), "dev", "eth1", "subflow")
	// The server ends are in a process of their own: with both ends in one
	// process 10,000 connections need more descriptors than RLIMIT_NOFILE
	// may allow.
	port := holdtest.Start(b, tb.Server.Command, "0.0.0.0:0").Port
	start := time.Now()
	holdtest.Dial(b, tb.Client.Dial, "tcp4", netip.AddrPortFrom(tb.Links[0].Server4, port).String(), topBenchConns)
	b.Logf("setup: %d connections in %v", topBenchConns, time.Since(start).Round(time.Millisecond))

	s, err := (&app{netns: tb.Client.Name()}).open()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	ts := newTopSampler(sessionKernel{s}, nil, time.Second)
	ctx := context.Background()
	// Wait for every connection's second subflow.
	deadline := time.Now().Add(netnstest.Patience(2 * time.Minute))
	for {
		f := ts.sample(ctx, 0)
		if f.Total >= topBenchConns && subflowsOn(f) >= 2*topBenchConns {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d connections, %d subflows; want %d and %d", f.Total, subflowsOn(f), topBenchConns, 2*topBenchConns)
		}
		time.Sleep(time.Second)
	}

	b.Run("Refresh", func(b *testing.B) {
		b.ReportAllocs()
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		for b.Loop() {
			ts.sample(ctx, 0)
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		ms := func(a, b syscall.Timeval) float64 { return float64(b.Nano()-a.Nano()) / 1e6 }
		b.ReportMetric(ms(ru0.Utime, ru1.Utime)/float64(b.N), "user-ms/op")
		b.ReportMetric(ms(ru0.Stime, ru1.Stime)/float64(b.N), "sys-ms/op")
	})
	b.Run("Frame", func(b *testing.B) {
		b.ReportAllocs()
		snap := ts.state.snapshot()
		set := topSettings{Sort: sortPeer}
		for b.Loop() {
			arrange(snap, set)
		}
	})
	b.Run("View", func(b *testing.B) {
		b.ReportAllocs()
		m := newTopModel(topSettings{}, func(topSettings) {}, lipgloss.NewRenderer(&bytes.Buffer{}), "")
		next, _ := m.Update(tea.WindowSizeMsg{Width: 200, Height: 50})
		next, _ = next.Update(topFrameMsg{arrange(ts.state.snapshot(), topSettings{})})
		for b.Loop() {
			_ = next.View()
		}
	})
	bin := filepath.Join(b.TempDir(), "mptcpctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	b.Run("Screen", func(b *testing.B) {
		benchScreen(b, bin, tb.Client.Name(), topBenchConns)
	})
	// The same screen with no connection: what the machine, tmux and the
	// screen cost without the walks.
	empty := netnstest.NewHost(b, "empty")
	b.Run("ScreenEmpty", func(b *testing.B) {
		benchScreen(b, bin, empty.Name(), 0)
	})
}

// subflowsOn counts the subflows of a frame's links.
func subflowsOn(f *topFrame) int {
	n := 0
	for _, l := range f.Links {
		n += l.Subflows
	}
	return n
}

// benchScreen runs the mptcpctl binary bin's screen in tmux in the
// namespace netns, with conns connections, and reports its CPU share,
// memory and key-to-screen time.
func benchScreen(b *testing.B, bin, netns string, conns int) {
	p := startPane(b, 200, 50, bin, "-n", netns, "top", "--socket", filepath.Join(b.TempDir(), "none.sock"))
	p.every = 10 * time.Millisecond
	p.waitText(fmt.Sprintf("CONNECTIONS  %d of %d", conns, conns))
	pid := p.pid()
	var cpuShare, rss, hwm float64
	var keys []time.Duration
	for b.Loop() {
		cpu0, t0 := procCPU(b, pid), time.Now()
		// Sorts cycle through the six keys; each press waits for the screen.
		for i := range 6 {
			next := topSortKey((i + 1) % int(sortKeys)).String()
			at := time.Now()
			p.keys("s")
			p.waitText("· sort " + next + "\n")
			keys = append(keys, time.Since(at))
		}
		for time.Since(t0) < 10*time.Second {
			time.Sleep(100 * time.Millisecond)
		}
		cpuShare += (procCPU(b, pid) - cpu0).Seconds() / time.Since(t0).Seconds()
		rss, hwm = procMem(b, pid)
	}
	slices.Sort(keys)
	b.ReportMetric(100*cpuShare/float64(b.N), "cpu-%")
	b.ReportMetric(rss/(1<<20), "rss-MiB")
	b.ReportMetric(hwm/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(keys[len(keys)/2].Microseconds())/1000, "key-ms")
	b.ReportMetric(float64(keys[len(keys)-1].Microseconds())/1000, "key-max-ms")
}

// procCPU is the CPU time, user and system, process pid used so far.
func procCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	const hz = 100 // USER_HZ
	return time.Duration(ut+st) * time.Second / hz
}

// procMem is process pid's resident memory and its peak, in bytes.
func procMem(b *testing.B, pid int) (rss, hwm float64) {
	b.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for l := range strings.Lines(string(data)) {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			hwm = kb * 1024
		}
	}
	return rss, hwm
}

// TestHoldConns is the process that holds BenchmarkTop10k's server ends
// (holdtest.Start).
func TestHoldConns(t *testing.T) { holdtest.Child(t) }
