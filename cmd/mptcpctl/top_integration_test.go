package main

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// These tests run mptcpctl top in a real terminal: tmux runs the test
// binary as mptcpctl (TestMain) in a pane of its own, the tests type keys
// with send-keys and read the screen with capture-pane, against a testbed
// with live transfers on links shaped with tbf. They wait on what the
// screen shows, never on a clock.

// paneTimeout bounds a wait for the screen, scaled by netnstest.Patience;
// generous, since the machine may be loaded: waits end as soon as the
// screen shows what they want.
const paneTimeout = 90 * time.Second

// topPane is mptcpctl running in a tmux pane.
type topPane struct {
	t    testing.TB
	sock string
	// every is how often waitFor reads the screen; 0 means 100 ms.
	every time.Duration
	// crash is the file where mptcpctl writes its goroutines when it dies
	// of a signal; "" when it does not.
	crash string
}

// startTop runs mptcpctl args (this test binary as mptcpctl, TestMain) in
// a new tmux server's pane of width × height cells, killed at cleanup.
func startTop(t *testing.T, width, height int, args ...string) *topPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		runtest.Unavailable(t, "tmux is not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	crash := filepath.Join(t.TempDir(), "crash")
	p := startPane(t, width, height, append([]string{"env", "MPTCPCTL_TEST_MAIN=1", crashFileEnv + "=" + crash, self}, args...)...)
	p.crash = crash
	return p
}

// crashFileEnv names the file where mptcpctl, run by TestMain, writes its
// goroutines when it dies of a signal, as a screen cannot show them.
const crashFileEnv = "MPTCPCTL_TEST_CRASH_FILE"

// crashOutput makes the runtime write a fatal error's report to the file
// name too, unless name is "".
func crashOutput(name string) {
	if name == "" {
		return
	}
	f, err := os.Create(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(exitRefused)
	}
	if err := debug.SetCrashOutput(f, debug.CrashOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(exitRefused)
	}
	_ = f.Close()
}

// goroutines returns the state of a pane's mptcpctl, started by
// startTop, and makes it exit with its goroutines (SIGQUIT), which it
// returns too, or why not.
func (p *topPane) goroutines() string {
	p.t.Helper()
	if p.crash == "" {
		return "no crash file"
	}
	pid := p.pid()
	// What the kernel says of the process first: a process that exited
	// but was not reaped, or is stuck in the kernel, writes no stacks.
	var state strings.Builder
	for _, f := range []string{"status", "wchan", "stack"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if f == "status" && err == nil {
			for l := range strings.Lines(string(b)) {
				if strings.HasPrefix(l, "State:") || strings.HasPrefix(l, "Threads:") {
					state.WriteString(l)
				}
			}
			continue
		}
		fmt.Fprintf(&state, "%s: %s %v\n", f, strings.TrimSpace(string(b)), err)
	}
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
		return state.String() + "SIGQUIT: " + err.Error()
	}
	deadline := time.Now().Add(netnstest.Patience(10 * time.Second))
	for !strings.Contains(p.screen(), "Pane is dead") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	out, err := os.ReadFile(p.crash)
	if err != nil {
		return state.String() + err.Error()
	}
	return state.String() + string(out)
}

// startPane runs the command argv in a new tmux server's pane of width ×
// height cells, killed at cleanup.
func startPane(t testing.TB, width, height int, argv ...string) *topPane {
	t.Helper()
	dir, err := os.MkdirTemp("", "top-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	conf := filepath.Join(dir, "tmux.conf")
	// The pane stays when mptcpctl exits, so that its last words show.
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g status off\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &topPane{t: t, sock: filepath.Join(dir, "s")}
	cmd := append([]string{"-S", p.sock, "-f", conf, "new-session", "-d", "-s", "top", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height)},
		argv...)
	if out, err := exec.Command("tmux", cmd...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", p.sock, "kill-server").Run() })
	return p
}

// screen returns what the pane shows.
func (p *topPane) screen() string {
	p.t.Helper()
	out, err := exec.Command("tmux", "-S", p.sock, "capture-pane", "-p", "-t", "top").CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux capture-pane: %v\n%s", err, out)
	}
	return string(out)
}

// keys types keys into the pane, as tmux send-keys names them ("s",
// "Enter", "Escape", "Down").
func (p *topPane) keys(keys ...string) {
	p.t.Helper()
	if out, err := exec.Command("tmux", append([]string{"-S", p.sock, "send-keys", "-t", "top"}, keys...)...).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux send-keys: %v\n%s", err, out)
	}
}

// typeText types text literally.
func (p *topPane) typeText(text string) {
	p.t.Helper()
	p.keys("-l", text)
}

// waitFor waits until cond, given the screen, returns "", and returns that
// screen; it fails with cond's last words and the screen after
// paneTimeout, or at once when mptcpctl exited.
func (p *topPane) waitFor(what string, cond func(screen string) string) string {
	p.t.Helper()
	deadline := time.Now().Add(netnstest.Patience(paneTimeout))
	for {
		s := p.screen()
		msg := cond(s)
		if msg == "" {
			return s
		}
		if strings.Contains(s, "Pane is dead") {
			p.t.Fatalf("waiting for %s: %s; the screen:\n%s", what, msg, s)
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting for %s: %s; the screen:\n%s\nmptcpctl's goroutines:\n%s", what, msg, s, p.goroutines())
		}
		time.Sleep(cmp.Or(p.every, 100*time.Millisecond))
	}
}

// pid is the process id of the pane's program.
func (p *topPane) pid() int {
	p.t.Helper()
	out, err := exec.Command("tmux", "-S", p.sock, "display-message", "-p", "-t", "top", "#{pane_pid}").Output()
	if err != nil {
		p.t.Fatalf("tmux display-message: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		p.t.Fatalf("pane pid %q: %v", out, err)
	}
	return pid
}

// waitExit waits until the pane's mptcpctl, process pid, exited. It does
// not wait for tmux to say the pane is dead: on a loaded machine tmux 3.3a
// was seen to leave the exited process unreaped for more than 90 s.
func (p *topPane) waitExit(pid int) {
	p.t.Helper()
	deadline := time.Now().Add(netnstest.Patience(paneTimeout))
	for !exited(pid) {
		if time.Now().After(deadline) {
			p.t.Fatalf("mptcpctl is still running; the screen:\n%s\nmptcpctl's goroutines:\n%s", p.screen(), p.goroutines())
		}
		time.Sleep(cmp.Or(p.every, 100*time.Millisecond))
	}
}

// exited reports whether process pid exited: it is gone or a zombie.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) == 0 || f[0] == "Z" || f[0] == "X"
}

// waitText waits until the screen shows every one of want.
func (p *topPane) waitText(want ...string) string {
	p.t.Helper()
	return p.waitFor(strings.Join(want, ", "), func(s string) string {
		for _, w := range want {
			if !strings.Contains(s, w) {
				return fmt.Sprintf("no %q yet", w)
			}
		}
		return ""
	})
}

// rateRe matches a rate as the screen prints it.
var rateRe = regexp.MustCompile(`(\d+(?:\.\d+)?) (b|kb|Mb|Gb)/s`)

// lineRates returns the rates of a screen line, in bits per second, in
// the order they appear.
func lineRates(line string) []float64 {
	var out []float64
	for _, m := range rateRe.FindAllStringSubmatch(line, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		mult := map[string]float64{"b": 1, "kb": 1e3, "Mb": 1e6, "Gb": 1e9}[m[2]]
		out = append(out, v*mult)
	}
	return out
}

// screenLine returns the first line of the screen that starts with
// prefix, or "".
func screenLine(screen, prefix string) string {
	for l := range strings.Lines(screen) {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimRight(l, "\n")
		}
	}
	return ""
}

// linkInBetween is a waitFor condition: the link's rate in is within
// [lo, hi] bits per second, and no rate of the link exceeds hi.
func linkInBetween(link string, lo, hi float64) func(string) string {
	return func(s string) string {
		line := screenLine(s, link+" ")
		r := lineRates(line)
		switch {
		case len(r) < 2:
			return fmt.Sprintf("no rates on %s's line %q", link, line)
		case r[0] > hi || r[1] > hi:
			return fmt.Sprintf("%s: %v bit/s, above the shaped %v", link, r, hi)
		case r[0] < lo:
			return fmt.Sprintf("%s: in %v bit/s, below %v", link, r[0], lo)
		}
		return ""
	}
}

// download is a server sending a never-ending stream to every connection
// made to its port; the test stops and restarts the stream.
type download struct {
	port uint16
	mu   sync.Mutex
	// running is signalled when stopped goes back to false.
	running *sync.Cond
	stopped bool
	// sent counts the bytes the writes handed the kernel.
	sent atomic.Uint64
}

// serveDownload starts a download server on the testbed's server.
func serveDownload(t *testing.T, tb *netnstest.Testbed) *download {
	t.Helper()
	d := &download{}
	d.running = sync.NewCond(&d.mu)
	ln := tb.Server.Listen("tcp", "0.0.0.0:0")
	d.port = netip.MustParseAddrPort(ln.Addr().String()).Port()
	// No writer stays stopped past the test.
	t.Cleanup(func() { d.setStopped(false) })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					d.waitRunning()
					n, err := c.Write(buf)
					d.sent.Add(uint64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return d
}

// setStopped stops or restarts the stream; a write under way finishes.
func (d *download) setStopped(stopped bool) {
	d.mu.Lock()
	d.stopped = stopped
	d.mu.Unlock()
	d.running.Broadcast()
}

// waitRunning returns when the stream is not stopped.
func (d *download) waitRunning() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.stopped {
		d.running.Wait()
	}
}

// byteCounter is a writer that counts what it is given.
type byteCounter struct{ atomic.Uint64 }

func (b *byteCounter) Write(p []byte) (int, error) {
	b.Add(uint64(len(p)))
	return len(p), nil
}

// fetched is a client connection reading a download until the test ends.
type fetched struct {
	net.Conn
	received byteCounter
}

// fetch opens a connection to the server's download port and reads it
// until the test ends.
func fetch(t *testing.T, tb *netnstest.Testbed, port uint16) *fetched {
	t.Helper()
	c, err := tb.Client.Dial("tcp", "", netip.AddrPortFrom(tb.Links[0].Server4, port).String())
	if err != nil {
		t.Fatal(err)
	}
	f := &fetched{Conn: c}
	go func() { _, _ = io.Copy(&f.received, c) }()
	return f
}

// idle opens n connections that carry nothing to an echo server on the
// server's second link, and returns the server's port.
func idle(t *testing.T, tb *netnstest.Testbed, n int) uint16 {
	t.Helper()
	srv := netip.AddrPortFrom(tb.Links[1].Server4, server(t, tb).Port())
	for range n {
		open(t, tb, srv)
	}
	return srv.Port()
}

// The shapes of shapedTestbed's links, in Mbit/s.
const topMbit0, topMbit1 = 16, 8

// shapedTestbed returns a testbed of two links, eth0 shaped to topMbit0 and
// eth1 to topMbit1 both ways.
func shapedTestbed(t *testing.T) *netnstest.Testbed {
	t.Helper()
	tb := netnstest.NewTestbed(t, 2)
	for _, h := range []*netnstest.Host{tb.Client, tb.Server} {
		h.Shape("eth0", topMbit0)
		h.Shape("eth1", topMbit1)
	}
	return tb
}

// TestTopKernelView: without the daemon, top shows the kernel's view of a
// client with two shaped links: both links with rates within their shapes,
// the connections, the fastest first; keys sort, filter and open one. The
// download runs over both links (the in-kernel path manager adds a subflow
// over eth1), the idle connections over eth1 alone.
func TestTopKernelView(t *testing.T) {
	t.Parallel()
	tb := shapedTestbed(t)
	tb.Client.MustExec("ip", "mptcp", "limits", "set", "subflows", "2")
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "2")
	tb.Client.MustExec("ip", "mptcp", "endpoint", "add", tb.Links[1].Client4.String(), "dev", "eth1", "subflow")
	port := serveDownload(t, tb).port
	bulk := fetch(t, tb, port)
	idlePort := idle(t, tb, 3)

	p := startTop(t, 200, 50, "-n", tb.Client.Name(), "top", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	p.waitText("kernel view (mptcpgod: not running)", "LINKS  2", "CONNECTIONS  4 of 4 · sort rate")
	// The download fills eth0 and eth1 up to their shapes; the rates of the
	// screen stay within them (the interface counters include the
	// Ethernet headers, which tbf counts too).
	p.waitFor("eth0 near its shape", linkInBetween("eth0", 0.3*topMbit0*1e6, 1.25*topMbit0*1e6))
	p.waitFor("eth1 near its shape", linkInBetween("eth1", 0.3*topMbit1*1e6, 1.25*topMbit1*1e6))

	bulkLocal := bulk.LocalAddr().String()
	peer := netip.AddrPortFrom(tb.Links[0].Server4, port).String()
	// The fastest connection is first, with its two subflows on eth0 and
	// eth1.
	first := func(s string) string {
		head := strings.Index(s, "TOKEN ")
		if head < 0 {
			return ""
		}
		rest := s[head:]
		_, rest, _ = strings.Cut(rest, "\n")
		line, _, _ := strings.Cut(rest, "\n")
		return line
	}
	s := p.waitFor("the download first", func(s string) string {
		f := strings.Fields(first(s))
		if len(f) < 5 || f[1] != peer || f[2] != bulkLocal || f[len(f)-2] != "2" || f[len(f)-1] != "eth0,eth1" {
			return fmt.Sprintf("first row %q", first(s))
		}
		return ""
	})
	if r := lineRates(first(s)); len(r) != 2 || r[0] > 1.25*(topMbit0+topMbit1)*1e6 {
		t.Errorf("the download's rates %v bit/s exceed the links' %d Mbit/s", r, topMbit0+topMbit1)
	}

	p.keys("r")
	p.waitFor("the download last, reversed", func(s string) string {
		if !strings.Contains(s, "sort rate reversed") || strings.Contains(first(s), bulkLocal) {
			return fmt.Sprintf("first row %q", first(s))
		}
		return ""
	})
	p.keys("r", "s", "s", "s", "s")
	p.waitText("sort peer")

	p.keys("/")
	p.typeText("port:" + strconv.Itoa(int(idlePort)))
	p.keys("Enter")
	s = p.waitText(fmt.Sprintf("CONNECTIONS  3 of 4 · sort peer · filter port:%d", idlePort))
	if strings.Contains(s, bulkLocal) {
		t.Errorf("the filter kept the download:\n%s", s)
	}
	p.keys("Escape")
	p.waitText("CONNECTIONS  4 of 4 · sort peer\n")
	p.keys("/")
	p.typeText("link:eth0")
	p.keys("Enter")
	p.waitText("CONNECTIONS  1 of 4 · sort peer · filter link:eth0", bulkLocal)

	p.keys("Enter")
	s = p.waitText("CONNECTION ", bulkLocal+" → "+peer, "LOCAL → REMOTE", "esc back")
	for _, l := range tb.Links {
		if !strings.Contains(s, l.Client4.String()+":") {
			t.Errorf("the opened connection lacks its subflow from %s:\n%s", l.Client4, s)
		}
	}
	p.keys("Escape")
	p.waitText("CONNECTIONS  1 of 4")
	// An escape and a key typed together read as alt and the key:
	// wait for the filter to go first.
	p.keys("Escape")
	p.waitText("CONNECTIONS  4 of 4 · sort peer\n")
	p.keys("/")
	p.typeText("link:eth1")
	p.keys("Enter")
	p.waitText("CONNECTIONS  4 of 4 · sort peer · filter link:eth1")
	pid := p.pid()
	p.keys("q")
	p.waitExit(pid)
}

// TestTopDaemonFailover: with the daemon (fullmesh | backup-cellular, eth1
// cellular with a quota), top shows the links' kinds and quota, the
// daemon's paths of a connection, and the failover when eth0 goes down:
// the event, the traffic moving to eth1 within its shape, and eth1's quota
// crossings. The crossings wait on the bytes, not on the rates: the
// download stops, the quota is reloaded at 95% of what eth1 used, and the
// download goes on until eth1 reaches it.
func TestTopDaemonFailover(t *testing.T) {
	t.Parallel()
	tb := shapedTestbed(t)
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	state := t.TempDir()
	config := func(quota uint64) []string {
		return []string{
			`include_names = ["eth*"]`,
			`cellular_names = ["eth1"]`,
			"",
			"[[policy.chain]]",
			`name = "fullmesh"`,
			"",
			"[[policy.chain]]",
			`name = "backup-cellular"`,
			"[policy.chain.config]",
			`hold_time = "1s"`,
			"",
			"[usage]",
			fmt.Sprintf("state_dir = %q", state),
			`interval = "250ms"`,
			"[[usage.links]]",
			`name = "eth1"`,
			fmt.Sprintf("quota = \"%d\"", quota),
		}
	}
	// A quota the test never reaches but by the reload below.
	const bigQuota = 1_000_000_000
	ld := startDaemon(t, tb.Client, "userspace", config(bigQuota)...)
	dl := serveDownload(t, tb)
	bulk := fetch(t, tb, dl.port)
	bulkLocal := bulk.LocalAddr().String()

	p := startTop(t, 220, 50, "-n", tb.Client.Name(), "top", "--socket", ld.sock, "--interval", "500ms")
	p.waitText("mptcpgod v0.0.0-test, userspace mode, policy fullmesh | backup-cellular", "connections tracked 1")
	s := p.waitFor("eth1 cellular with its quota", func(s string) string {
		line := screenLine(s, "eth1 ")
		if !strings.Contains(line, "cellular") || !strings.Contains(line, "% of "+humanize.Bytes(bigQuota)) {
			return fmt.Sprintf("eth1's line %q", line)
		}
		return ""
	})
	if line := screenLine(s, "eth0 "); !strings.Contains(line, "up, usable") || !strings.Contains(line, "virtual") {
		t.Errorf("eth0's line %q", line)
	}
	p.waitFor("eth0 near its shape", linkInBetween("eth0", 0.3*topMbit0*1e6, 1.25*topMbit0*1e6))

	// The connection's subflow over eth1 is a backup the policy wants.
	p.keys("Enter")
	p.waitFor("the backup path over eth1", func(s string) string {
		line := screenLine(s, tb.Links[1].Client4.String()+" → ")
		if !strings.Contains(line, "backup") || !strings.Contains(line, "established") {
			return fmt.Sprintf("eth1's path %q", line)
		}
		return ""
	})
	p.keys("Escape")

	tb.Client.SetLinkUp("eth0", false)
	s = p.waitText("link        eth0 down", "failover", "is active (was backup)")
	if !strings.Contains(screenLine(s, "eth0 "), "down") {
		t.Errorf("eth0 is not shown down:\n%s", s)
	}
	// The download goes on over eth1, within its shape.
	p.waitFor("eth1 carrying the download", linkInBetween("eth1", 0.3*topMbit1*1e6, 1.25*topMbit1*1e6))
	// The subflow over the dead eth0 is closing, its FIN not through:
	// the kernel lists it for minutes, top counts it no more.
	p.waitFor("the closing subflow over eth0 left out", func(s string) string {
		var row string
		for l := range strings.Lines(s) {
			if f := strings.Fields(l); len(f) > 2 && f[2] == bulkLocal {
				row = strings.TrimSpace(l)
			}
		}
		links, eth0 := strings.Fields(row), strings.Fields(screenLine(s, "eth0 "))
		if len(links) == 0 || links[len(links)-1] != "eth1" || len(eth0) == 0 || eth0[len(eth0)-1] != "0" {
			return fmt.Sprintf("the connection's row %q, eth0's %q", row, screenLine(s, "eth0 "))
		}
		return ""
	})

	// Stop the download and wait until the client read all of it and two
	// of the daemon's samples of eth1 after that agree, while the server
	// sent nothing more (a write under way when the download stopped
	// finishes later); eth1's quota becomes what it used over 0.95.
	dl.setStopped(true)
	var used uint64
	ctl := &ctlapi.Client{Socket: ld.sock}
	enginetest.Poll(t, "eth1's usage to settle after the download stopped", func() string {
		sent, got := dl.sent.Load(), bulk.received.Load()
		if got != sent {
			return fmt.Sprintf("%d of %d bytes read", got, sent)
		}
		drained := time.Now()
		var first, second *ctlapi.UsageLink
		for second == nil {
			if time.Since(drained) > netnstest.Patience(paneTimeout) {
				return fmt.Sprintf("no two samples of eth1 since %v", drained)
			}
			u, err := ctl.Usage(t.Context())
			if err != nil {
				return err.Error()
			}
			for i, l := range u.Links {
				switch {
				case l.Name != "eth1" || !l.Sampled.After(drained):
				case first == nil:
					first = &u.Links[i]
				case l.Sampled.After(first.Sampled):
					second = &u.Links[i]
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		if second.UsedBytes != first.UsedBytes || dl.sent.Load() != sent || bulk.received.Load() != sent {
			return fmt.Sprintf("eth1 used %d, then %d bytes; %d bytes sent, %d read", first.UsedBytes, second.UsedBytes,
				dl.sent.Load(), bulk.received.Load())
		}
		used = second.UsedBytes
		return ""
	})
	quota := used * 100 / 95
	writeFile(t, ld.ConfigFile, daemonConfig("userspace", ld.sock, config(quota)...))
	ld.ask(t, "reload")
	p.waitText("eth1 used 9", "% of its quota")
	if line := screenLine(p.screen(), "eth1 "); !strings.Contains(line, "% of "+humanize.Bytes(quota)) {
		t.Errorf("eth1's line after the reload: %q", line)
	}

	// The download goes on and crosses eth1's quota.
	dl.setStopped(false)
	s = p.waitText("eth1 reached its quota")
	if !strings.Contains(screenLine(s, "eth1 "), "reached "+humanize.Bytes(quota)) {
		t.Errorf("eth1's line after the quota: %q", screenLine(s, "eth1 "))
	}
	if !strings.Contains(s, bulkLocal) {
		t.Errorf("the connection is gone from the screen:\n%s", s)
	}
	t.Logf("the screen after the failover:\n%s", s)
}
