//go:build linux

package transparent_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// seedMbit is the rate of each link of the seed scenario, both ways.
const seedMbit = 50

// seedWindow is the window a rate is measured over.
const seedWindow = 2 * time.Second

// seedConfig is mptcpgod's configuration on the client: the in-kernel path
// manager meshed over every link, veth links included (the daemon leaves
// virtual links out by default), no control socket (its default path is
// the host's).
const seedConfig = `mode = "kernel"

[control]
socket = ""

[links]
include_kinds = ["virtual"]
`

// download is busybox wget under mptcpctl run writing a file to
// /dev/null. Its rate is the kernel's count of the bytes its MPTCP
// connection received (sock_diag, struct mptcp_info), which a loaded
// machine's scheduling of the test does not skew.
type download struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	diag   *sockdiag.Client
	server netip.AddrPort
	// cookie identifies the download's connection among those to server,
	// earlier downloads' included.
	cookie uint64
}

func startDownload(t *testing.T, h *netnstest.Host, diag *sockdiag.Client, server netip.AddrPort, argv ...string) *download {
	t.Helper()
	d := &download{exited: make(chan struct{}), diag: diag, server: server}
	before := map[uint64]bool{}
	if err := diag.Connections(func(c *sockdiag.Connection) error {
		before[c.Cookie] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(argv[0], argv[1:]...)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.exited
	})
	waitFor(t, "the download's connection", func() (bool, string) {
		if d.ended() {
			t.Fatalf("%s ended before connecting: %v\n%s", strings.Join(argv, " "), d.err, stderr.String())
		}
		err := diag.Connections(func(c *sockdiag.Connection) error {
			if c.Remote == server && !before[c.Cookie] {
				d.cookie = c.Cookie
			}
			return nil
		})
		return d.cookie != 0, fmt.Sprint(err)
	})
	return d
}

// ended reports whether the download's process has exited.
func (d *download) ended() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// received returns the bytes the download's MPTCP connection received.
func (d *download) received() (uint64, error) {
	var n uint64
	var found bool
	err := d.diag.Connections(func(c *sockdiag.Connection) error {
		if c.Cookie == d.cookie {
			n, found = c.Info.BytesReceived, true
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("the download's MPTCP connection to %s is gone", d.server)
	}
	return n, err
}

// rate returns the download's rate in Mbit/s over the next window.
func (d *download) rate(t *testing.T, window time.Duration) float64 {
	t.Helper()
	n0, err := d.received()
	start := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(window)
	n1, err := d.received()
	if err != nil {
		t.Fatal(err)
	}
	return float64(n1-n0) * 8 / time.Since(start).Seconds() / 1e6
}

// waitRate measures the download over seedWindow until a window reaches
// least Mbit/s, failing if it ends or none does within waitLimit.
func (d *download) waitRate(t *testing.T, what string, least float64) float64 {
	t.Helper()
	var seen []string
	deadline := time.Now().Add(waitLimit)
	for {
		r := d.rate(t, seedWindow)
		seen = append(seen, fmt.Sprintf("%.1f", r))
		if d.ended() {
			t.Fatalf("%s: the download ended (%v); rates seen %s Mbit/s", what, d.err, strings.Join(seen, " "))
		}
		if r >= least {
			t.Logf("%s: %.1f Mbit/s (windows of %v: %s)", what, r, seedWindow, strings.Join(seen, " "))
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %v window reached %.1f Mbit/s within %v; rates seen %s", what, seedWindow, least, waitLimit, strings.Join(seen, " "))
		}
	}
}

// TestRunSeedTwoLinks is the seed scenario: static busybox httpd and wget,
// unmodified, both under mptcpctl run, over two 50 Mbit/s links. Over the
// one path the download gets one link's rate; meshed by mptcpgod it reaches
// 1.8 times that; cutting the second link in the middle leaves it intact and
// running over the first, and its rate comes back when the link does.
func TestRunSeedTwoLinks(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	ctl, god := binary(t, "mptcpctl"), binary(t, "mptcpgod")
	tb := netnstest.NewTestbed(t, 2)
	shape := func(ifname string) {
		tb.Client.Shape(ifname, seedMbit)
		tb.Server.Shape(ifname, seedMbit)
	}
	for _, l := range tb.Links {
		shape(l.ClientIf)
	}

	dir := t.TempDir()
	big, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(8 << 30); err != nil { // sparse: zeros, no disk
		t.Fatal(err)
	}
	_ = big.Close()
	addr := net.JoinHostPort(tb.Links[0].Server4.String(), "8080")
	if err := tb.Server.Command(ctl, "run", busybox, "httpd", "-f", "-p", addr, "-h", dir).Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "busybox httpd's MPTCP listener", func() (bool, string) {
		recs := tb.Server.SSRecords("-M", "-l")
		return listener(recs, addr) != "", strings.Join(recs, "; ")
	})
	wget := []string{ctl, "run", busybox, "wget", "-q", "-O", "/dev/null", "http://" + addr + "/big"}
	diag, err := sockdiag.Dial(&sockdiag.Config{NetNS: tb.Client.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = diag.Close() })
	server := netip.AddrPortFrom(tb.Links[0].Server4, 8080)

	one := startDownload(t, tb.Client, diag, server, wget...)
	_ = one.rate(t, seedWindow) // slow start
	single := one.rate(t, 2*seedWindow)
	_ = one.cmd.Process.Kill()
	<-one.exited
	t.Logf("one path: %.1f Mbit/s", single)
	if single <= 0 {
		t.Fatal("nothing went over the one path")
	}

	cfg := filepath.Join(dir, "mptcpgod.toml")
	if err := os.WriteFile(cfg, []byte(seedConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	daemon := daemontest.StartWith(t, tb.Client, daemontest.Options{ConfigFile: cfg, Binary: god})
	waitFor(t, "mptcpgod's endpoints on both links", func() (bool, string) {
		out, _ := tb.Client.Command(ctl, "endpoints", "--json").Output()
		return strings.Count(string(out), `"id"`) >= 2, string(out) + daemon.Log()
	})

	meshed := startDownload(t, tb.Client, diag, server, wget...)
	meshed.waitRate(t, "meshed", 1.8*single)

	tb.Client.Blackhole(tb.Links[1].ClientIf)
	tb.Server.Blackhole(tb.Links[1].ServerIf)
	meshed.waitRate(t, "second link cut", 0.5*single)

	shape(tb.Links[1].ClientIf)
	meshed.waitRate(t, "second link back", 1.7*single)
}
