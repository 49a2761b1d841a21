//go:build linux

package bench_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/bench"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
)

// report makes TestMain write the results of the benchmarks that ran to
// docs/bench.
var report = flag.Bool("bench.report", false, "write the benchmarks' results to docs/bench")

// resultsDir is docs/bench, from this package's directory.
const resultsDir = "../../../docs/bench"

// waitLimit bounds every wait for the kernel, a daemon or mptcpd: they
// answer in milliseconds on a quiet machine, in seconds on a loaded one.
var waitLimit = netnstest.Patience(30 * time.Second)

// linkMbit is the rate every testbed link is shaped to, both ways.
const linkMbit = 100

// results collects the benchmarks' results by benchmark name; a later run
// of the same benchmark (-count) replaces the earlier.
var results = struct {
	sync.Mutex
	names []string
	by    map[string][]bench.Result
	cdf   map[string]bench.Series // the latency CDF plot's series by benchmark name
}{by: map[string][]bench.Result{}, cdf: map[string]bench.Series{}}

func record(b *testing.B, rs ...bench.Result) {
	results.Lock()
	defer results.Unlock()
	if _, ok := results.by[b.Name()]; !ok {
		results.names = append(results.names, b.Name())
	}
	results.by[b.Name()] = rs
}

// recordCDF keeps s for the latency CDF plot, replacing an earlier run of
// the same benchmark.
func recordCDF(b *testing.B, s bench.Series) {
	results.Lock()
	defer results.Unlock()
	results.cdf[b.Name()] = s
}

// cdfManagers are the path managers the latency CDF plot compares, in
// its legend's order: mptcpgod (userspace) and the in-kernel floor.
var cdfManagers = []string{"mptcpgod-userspace", "kernel-kernel"}

func TestMain(m *testing.M) {
	if os.Getenv(serverEnv) != "" {
		os.Exit(serverMain())
	}
	if os.Getenv(rrEnv) != "" {
		os.Exit(rrMain())
	}
	if load := os.Getenv(churnEnv); load != "" {
		os.Exit(churnMain(load))
	}
	flag.Parse()
	os.Exit(runMain(m))
}

// runMain runs m, with the programs it builds removed after, and writes
// the report.
func runMain(m *testing.M) int {
	loadBefore, loadErr := bench.LoadAvg()
	code := daemontest.Main(m)
	if *report && code == 0 {
		if err := errors.Join(loadErr, writeResults(loadBefore)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// writeResults writes the collected results to resultsDir, with the load
// average before the run.
func writeResults(loadBefore float64) error {
	results.Lock()
	defer results.Unlock()
	if len(results.names) == 0 {
		return errors.New("bench: -bench.report: no benchmark ran (add -bench .)")
	}
	mach, err := bench.ThisMachine()
	if err != nil {
		return err
	}
	mach.LoadBefore = loadBefore
	r := bench.Report{Date: time.Now().UTC(), Machine: mach}
	for _, n := range results.names {
		r.Results = append(r.Results, results.by[n]...)
	}
	var cdf []bench.Series
	for _, m := range cdfManagers {
		for _, n := range results.names {
			if s, ok := results.cdf[n]; ok && s.Manager == m {
				cdf = append(cdf, s)
			}
		}
	}
	return bench.WriteReport(resultsDir, r, cdf)
}

// testbed builds the benchmarks' testbed: two links shaped to linkMbit
// both ways, and a server whose in-kernel path manager accepts joins and
// which discards what it receives on a wildcard MPTCP listener. It returns
// the listener's address on the server's eth0.
func testbed(b *testing.B) (*netnstest.Testbed, netip.AddrPort) {
	b.Helper()
	tb := netnstest.NewTestbed(b, 2)
	for _, l := range tb.Links {
		tb.Client.Shape(l.ClientIf, linkMbit)
		tb.Server.Shape(l.ServerIf, linkMbit)
	}
	limits(tb.Server)
	ln := tb.Server.Listen("tcp", ":0")
	go serve(ln)
	port := netip.MustParseAddrPort(ln.Addr().String()).Port()
	return tb, netip.AddrPortFrom(tb.Links[0].Server4, port)
}

// limits lets h's in-kernel path manager accept and create up to 8
// subflows per connection.
func limits(h *netnstest.Host) {
	h.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
}

// serve accepts connections on ln until it is closed and discards what
// they send.
func serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		}()
	}
}

// atOnce is the configuration that opens every path as soon as a
// connection is established: the benchmarks of how fast the engine acts
// measure it without deferral (BenchmarkDeferral measures that).
const atOnce = `
[mitigation]
min_join_age = "0s"

[[policy.chain]]
name = "fullmesh"
config = { join_delay = "0s" }
`

// startDaemon runs the mptcpgod binary in h's namespace in mode, opening
// every path at once, until the benchmark ends, waits until it is ready,
// and returns its process id.
func startDaemon(b *testing.B, h *netnstest.Host, mode string) int {
	b.Helper()
	return daemontest.Start(b, h, daemonConfig(mode, atOnce)).Pid()
}

// daemonConfig is the configuration of startDaemon in mode, with the
// tables of extra appended.
func daemonConfig(mode, extra string) string {
	return fmt.Sprintf("mode = %q\nset_path_manager = true\n\n[control]\nsocket = \"\"\n\n[links]\ninclude_kinds = [\"virtual\"]\n%s", mode, extra)
}

// cpuSeconds returns the user and system CPU time process pid has used,
// from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: cpu of %d: %w", pid, err)
	}
	return bench.ParseStatCPU(string(data))
}

// mptcpdPluginDir returns the directory of the Debian package's mptcpd
// plugins, or skips the benchmark when mptcpd is not installed.
func mptcpdPluginDir(b *testing.B) string {
	b.Helper()
	if _, err := os.Stat(mptcpdBinary); err != nil {
		b.Skipf("mptcpd is not installed (apt-get install mptcpd): %v", err)
	}
	found, err := filepath.Glob("/usr/lib/*/mptcpd/addr_adv.so")
	if err != nil || len(found) == 0 {
		b.Skipf("mptcpd's addr_adv plugin is not installed (apt-get install mptcpd-plugins): %v", err)
	}
	return filepath.Dir(found[0])
}

// mptcpdBinary is where the Debian package installs mptcpd.
const mptcpdBinary = "/usr/libexec/mptcpd"

// startMptcpd runs mptcpd in h's namespace with its addr_adv plugin, which
// makes every local address an in-kernel path manager endpoint with
// flags, until the benchmark ends, waits until the endpoints of want
// exist and returns its process id.
func startMptcpd(b *testing.B, h *netnstest.Host, cli *genl.Client, flags string, want ...netip.Addr) int {
	b.Helper()
	dir := mptcpdPluginDir(b)
	cmd := h.Command(mptcpdBinary,
		"--plugin-dir="+dir, "--path-manager=addr_adv", "--load-plugins=addr_adv",
		"--addr-flags="+flags, "--notify-flags=existing,skip_link_local,skip_loopback", "--log=stderr")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatalf("start mptcpd: %v", err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var ee *exec.ExitError
		if err := cmd.Wait(); err != nil && !errors.As(err, &ee) {
			b.Errorf("mptcpd: %v\n%s", err, out.String())
		}
	})
	deadline := time.Now().Add(waitLimit)
	for _, a := range want {
		for !hasEndpoint(b, cli, a) {
			if time.Now().After(deadline) {
				b.Fatalf("mptcpd made no endpoint for %s within %v\n%s", a, waitLimit, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return cmd.Process.Pid
}

// newClient opens a genl client in h's namespace, closed when the
// benchmark ends.
func newClient(b *testing.B, h *netnstest.Host) *genl.Client {
	b.Helper()
	c, err := genl.New(&genl.Config{NetNS: h.NetNS()})
	if err != nil {
		b.Fatalf("genl.New: %v", err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// hasEndpoint reports whether the kernel lists an endpoint for addr.
func hasEndpoint(b *testing.B, c *genl.Client, addr netip.Addr) bool {
	eps, err := c.Endpoints()
	if err != nil {
		b.Fatalf("Endpoints: %v", err)
	}
	return slices.ContainsFunc(eps, func(ep genl.Endpoint) bool { return ep.Addr == addr })
}

// summarize summarises ds, failing the benchmark if there are none.
func summarize(b *testing.B, ds []time.Duration) bench.Summary {
	b.Helper()
	s, err := bench.Summarize(ds)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
