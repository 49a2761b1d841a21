package netnstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// nsInode returns the inode of the calling thread's network namespace.
func nsInode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// netnsList returns the names printed by `ip netns list`.
func netnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// fatalTB records the first Fatal of code run by catchFatal.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Fatal(args ...any) { f.fail(fmt.Sprint(args...)) }

func (f *fatalTB) Fatalf(format string, args ...any) { f.fail(fmt.Sprintf(format, args...)) }

func (f *fatalTB) fail(msg string) {
	f.mu.Lock()
	f.msg = msg
	f.mu.Unlock()
	runtime.Goexit()
}

// catchFatal runs fn with a TB whose Fatal stops fn, and returns the fatal
// message ("" if fn returned normally).
func catchFatal(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msg
}

// withTB returns a view of h that reports failures to tb.
func withTB(h *Host, tb testing.TB) *Host {
	return &Host{t: tb, name: h.name, fd: h.NetNS(), ctx: h.ctx, cancel: h.cancel}
}

// echo accepts one connection on ln and copies what it reads back to it.
func echo(ln net.Listener) <-chan error {
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		if tc, ok := c.(*net.TCPConn); !ok {
			errc <- fmt.Errorf("accepted %T, want *net.TCPConn", c)
			return
		} else if mp, err := tc.MultipathTCP(); err != nil || !mp {
			errc <- fmt.Errorf("accepted connection is not MPTCP (%v, %v)", mp, err)
			return
		}
		_, err = io.Copy(c, c)
		errc <- err
	}()
	return errc
}

// roundTrip sends msg on c and reads it back.
func roundTrip(c net.Conn, msg string) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echoed %q, want %q", got, msg)
	}
	return nil
}

// ping checks that from reaches to on the host's routes: with ping when it is
// installed, otherwise with a TCP connection to a listener on srv.
func ping(t *testing.T, cli, srv *Host, from, to netip.Addr) error {
	t.Helper()
	if _, err := exec.LookPath("ping"); err == nil {
		_, err := cli.Exec("ping", "-c1", "-W1", "-I", from.String(), to.String())
		return err
	}
	ln := srv.Listen("tcp", netip.AddrPortFrom(to, 0).String())
	defer ln.Close()
	errc := echo(ln)
	c, err := cli.Dial("tcp", from.String(), ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if err := roundTrip(c, "ping"); err != nil {
		return err
	}
	_ = c.Close()
	return <-errc
}

func TestNewHost(t *testing.T) {
	t.Parallel()
	h := NewHost(t, "new")

	prefix := fmt.Sprintf("mgt-%d-new-", os.Getpid())
	if !strings.HasPrefix(h.Name(), prefix) {
		t.Errorf("Name() = %q, want prefix %q", h.Name(), prefix)
	}
	if h2 := NewHost(t, "new"); h2.Name() == h.Name() {
		t.Errorf("two hosts share the name %q", h.Name())
	}
	if h3 := NewHost(t, "srv-a.1"); !strings.Contains(h3.Name(), "-srv-a.1-") {
		t.Errorf("Name() = %q, want it to contain the host name srv-a.1", h3.Name())
	}
	var listed bool
	for _, n := range netnsList(t) {
		listed = listed || n == h.Name()
	}
	if !listed {
		t.Errorf("%s missing from ip netns list", h.Name())
	}

	// NetNS is the namespace Do enters.
	var fdSt, nsSt unix.Stat_t
	if err := unix.Fstat(h.NetNS(), &fdSt); err != nil {
		t.Fatal(err)
	}
	if err := h.Do(func() error { return unix.Stat("/proc/thread-self/ns/net", &nsSt) }); err != nil {
		t.Fatal(err)
	}
	if fdSt.Ino != nsSt.Ino {
		t.Errorf("NetNS() inode %d, namespace in Do %d", fdSt.Ino, nsSt.Ino)
	}

	want := map[string]string{
		"net.ipv4.conf.all.rp_filter":      "0",
		"net.ipv4.conf.default.rp_filter":  "0",
		"net.ipv6.conf.all.accept_dad":     "0",
		"net.ipv6.conf.default.accept_dad": "0",
	}
	got := map[string]string{}
	for k := range want {
		v, err := h.sysctl(k)
		if err != nil {
			t.Fatal(err)
		}
		got[k] = v
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sysctls (-want +got):\n%s", diff)
	}
	if out := h.MustExec("ip", "-br", "link", "show", "lo"); !strings.Contains(out, "UP") {
		t.Errorf("lo is not up: %s", out)
	}
}

func TestNewHostBadName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "a/b", "sp ace", "a:b", strings.Repeat("x", 33)} {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			msg := catchFatal(t, func(tb testing.TB) { NewHost(tb, name) })
			if !strings.Contains(msg, "host name") {
				t.Errorf("NewHost(%q) fatal %q, want a host name error", name, msg)
			}
		})
	}
}

func TestDo(t *testing.T) {
	t.Parallel()
	h := NewHost(t, "do")
	outer, err := nsInode()
	if err != nil {
		t.Fatal(err)
	}
	var inner uint64
	if err := h.Do(func() error {
		var err error
		inner, err = nsInode()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inner == outer {
		t.Errorf("Do ran in the caller's namespace (inode %d)", inner)
	}
	after, err := nsInode()
	if err != nil {
		t.Fatal(err)
	}
	if after != outer {
		t.Errorf("caller's namespace changed from %d to %d", outer, after)
	}

	errTest := errors.New("test error")
	if err := h.Do(func() error { return errTest }); !errors.Is(err, errTest) {
		t.Errorf("Do error = %v, want %v", err, errTest)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		_ = h.Do(func() error { panic("boom") })
		t.Error("Do did not re-raise the panic")
	}()
}

func TestExecAndCommand(t *testing.T) {
	t.Parallel()
	h := NewHost(t, "exec")
	var inode uint64
	if err := h.Do(func() error {
		var err error
		inode, err = nsInode()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", inode)

	if got := strings.TrimSpace(h.MustExec("readlink", "/proc/self/ns/net")); got != want {
		t.Errorf("Exec runs in %s, want %s", got, want)
	}
	out, err := h.Command("readlink", "/proc/self/ns/net").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("Command runs in %s, want %s", got, want)
	}
	_, err = h.Exec("ip", "link", "show", "nosuchif")
	if err == nil || !strings.Contains(err.Error(), "nosuchif") {
		t.Errorf("Exec of a failing command: error %v, want one naming the command and its output", err)
	}
}

func TestSetPathManager(t *testing.T) {
	t.Parallel()
	h := NewHost(t, "pm")
	key, want := "net.mptcp.path_manager", map[string]string{"kernel": "kernel", "userspace": "userspace"}
	if _, err := os.Stat(sysctlPath(key)); err != nil {
		key, want = "net.mptcp.pm_type", map[string]string{"kernel": "0", "userspace": "1"}
	}
	for _, pm := range []string{"userspace", "kernel"} {
		h.SetPathManager(pm)
		got, err := h.sysctl(key)
		if err != nil {
			t.Fatal(err)
		}
		if got != want[pm] {
			t.Errorf("after SetPathManager(%q): %s = %q, want %q", pm, key, got, want[pm])
		}
	}
	if msg := catchFatal(t, func(tb testing.TB) {
		withTB(h, tb).SetPathManager("bogus")
	}); !strings.Contains(msg, "bogus") {
		t.Errorf("SetPathManager(bogus) fatal %q, want an error naming the value", msg)
	}
}

func TestTestbedReachability(t *testing.T) {
	t.Parallel()
	tb := NewTestbed(t, 3)
	if diff := cmp.Diff([]Link{
		{"eth0", "eth0", netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
			netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:1::2")},
		{"eth1", "eth1", netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"),
			netip.MustParseAddr("2001:db8:2::1"), netip.MustParseAddr("2001:db8:2::2")},
		{"eth2", "eth2", netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2"),
			netip.MustParseAddr("2001:db8:3::1"), netip.MustParseAddr("2001:db8:3::2")},
	}, tb.Links, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
	// Every client address reaches every server address, and back.
	for _, from := range tb.Links {
		for _, to := range tb.Links {
			for _, fam := range []struct{ cli, srv netip.Addr }{
				{from.Client4, to.Server4}, {from.Client6, to.Server6},
			} {
				if err := ping(t, tb.Client, tb.Server, fam.cli, fam.srv); err != nil {
					t.Errorf("%s -> %s: %v", fam.cli, fam.srv, err)
				}
				if err := ping(t, tb.Server, tb.Client, fam.srv, fam.cli); err != nil {
					t.Errorf("%s -> %s: %v", fam.srv, fam.cli, err)
				}
			}
		}
	}
}

func TestTestbedLinks(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, MaxLinks + 1} {
		msg := catchFatal(t, func(tb testing.TB) { NewTestbed(tb, n) })
		if !strings.Contains(msg, "links") {
			t.Errorf("NewTestbed(%d) fatal %q, want a links error", n, msg)
		}
	}
	tb := NewTestbed(t, 1)
	if len(tb.Links) != 1 {
		t.Errorf("NewTestbed(1) has %d links", len(tb.Links))
	}
	if out := tb.Client.MustExec("ip", "-br", "link", "show", "eth0"); !strings.Contains(out, "UP") {
		t.Errorf("client eth0 is not up: %s", out)
	}
}

func TestMPTCP(t *testing.T) {
	t.Parallel()
	tb := NewTestbed(t, 2)
	for _, tt := range []struct {
		name, network, listen string
		laddr, raddr          netip.Addr
	}{
		{"v4 unbound", "tcp4", "0.0.0.0:0", netip.Addr{}, tb.Links[0].Server4},
		{"v4 link1", "tcp4", "0.0.0.0:0", tb.Links[1].Client4, tb.Links[1].Server4},
		{"v6 link1", "tcp6", "[::]:0", tb.Links[1].Client6, tb.Links[0].Server6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ln := tb.Server.Listen(tt.network, tt.listen)
			errc := echo(ln)
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			laddr := ""
			if tt.laddr.IsValid() {
				laddr = tt.laddr.String()
			}
			c, err := tb.Client.Dial(tt.network, laddr, netip.AddrPortFrom(tt.raddr, port).String())
			if err != nil {
				t.Fatal(err)
			}
			if mp, err := c.(*net.TCPConn).MultipathTCP(); err != nil || !mp {
				t.Errorf("dialed connection is not MPTCP (%v, %v)", mp, err)
			}
			if tt.laddr.IsValid() {
				if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != tt.laddr {
					t.Errorf("local address %s, want %s", got, tt.laddr)
				}
			}
			msg := strings.Repeat("mptcp ", 10000)
			if err := roundTrip(c, msg); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
			if err := <-errc; err != nil {
				t.Error(err)
			}
		})
	}
}

// TestMPTCPDump: every command of the dump runs in the host, and the dump
// shows its endpoints and MP_JOIN counters.
func TestMPTCPDump(t *testing.T) {
	t.Parallel()
	h := NewHost(t, "dump")
	h.MustExec("ip", "mptcp", "endpoint", "add", "192.0.2.1", "id", "7", "subflow")
	dump := h.MPTCPDump()
	if n := strings.Count(dump, "(<nil>)\n"); n != 5 {
		t.Errorf("%d of 5 commands succeeded:\n%s", n, dump)
	}
	for _, want := range []string{"192.0.2.1 id 7 subflow", "MPTcpExtMPJoinSynRx"} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump without %q:\n%s", want, dump)
		}
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dialDevice dials raddr from h with a socket bound to device ifname.
func dialDevice(h *Host, ifname string, raddr netip.AddrPort) error {
	d := net.Dialer{
		Timeout: 300 * time.Millisecond,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), ifname) })
			return errors.Join(err, serr)
		},
	}
	return h.Do(func() error {
		c, err := d.Dial("tcp", raddr.String())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func TestBlackhole(t *testing.T) {
	t.Parallel()
	tb := NewTestbed(t, 2)
	ln := tb.Server.Listen("tcp", ":0")
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	dial := func(from, to netip.Addr) error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		c, err := tb.Client.DialContext(ctx, "tcp", from.String(), netip.AddrPortFrom(to, port).String())
		if err == nil {
			_ = c.Close()
		}
		return err
	}

	tb.Client.Blackhole("eth1")
	if out := tb.Client.MustExec("tc", "qdisc", "show", "dev", "eth1"); !strings.Contains(out, "blackhole") {
		t.Fatalf("no blackhole qdisc on eth1: %s", out)
	}
	// Sourced from eth1's address: leaves through eth1 even to link 0's server
	// address, and is dropped.
	for _, to := range []netip.Addr{tb.Links[1].Server4, tb.Links[0].Server4} {
		if err := dial(tb.Links[1].Client4, to); !isTimeout(err) {
			t.Errorf("dial from %s to %s over a blackholed link: %v, want a timeout", tb.Links[1].Client4, to, err)
		}
	}
	if err := dial(tb.Links[1].Client6, tb.Links[1].Server6); !isTimeout(err) {
		t.Errorf("dial from %s over a blackholed link: %v, want a timeout", tb.Links[1].Client6, err)
	}
	if err := dial(tb.Links[0].Client4, tb.Links[1].Server4); err != nil {
		t.Errorf("link 0 is affected by link 1's blackhole: %v", err)
	}
	// Bound to the device (SO_BINDTODEVICE), without a source address.
	for _, to := range []netip.Addr{tb.Links[0].Server4, tb.Links[0].Server6} {
		if err := dialDevice(tb.Client, "eth1", netip.AddrPortFrom(to, port)); !isTimeout(err) {
			t.Errorf("dial bound to eth1 to %s over a blackholed link: %v, want a timeout", to, err)
		}
		if err := dialDevice(tb.Client, "eth0", netip.AddrPortFrom(to, port)); err != nil {
			t.Errorf("dial bound to eth0 to %s: %v", to, err)
		}
	}

	tb.Client.ClearQdisc("eth1")
	tb.Client.ClearQdisc("eth1") // no root qdisc left: not an error
	if err := dial(tb.Links[1].Client4, tb.Links[1].Server4); err != nil {
		t.Errorf("dial after ClearQdisc: %v", err)
	}
}

func TestShape(t *testing.T) {
	t.Parallel()
	h := NewHost(t, "shape")
	g := NewHost(t, "shape_peer")
	Connect(h, "veth0", g, "veth0")
	h.Shape("veth0", 20)
	out := h.MustExec("tc", "qdisc", "show", "dev", "veth0")
	if !strings.Contains(out, "tbf") || !strings.Contains(out, "rate 20Mbit") {
		t.Errorf("after Shape(20): %s", out)
	}
	h.Shape("veth0", 5) // replace
	if out := h.MustExec("tc", "qdisc", "show", "dev", "veth0"); !strings.Contains(out, "rate 5Mbit") {
		t.Errorf("after Shape(5): %s", out)
	}
	h.ClearQdisc("veth0")
	if out := h.MustExec("tc", "qdisc", "show", "dev", "veth0"); strings.Contains(out, "tbf") {
		t.Errorf("after ClearQdisc: %s", out)
	}
	if msg := catchFatal(t, func(tb testing.TB) {
		withTB(h, tb).Shape("veth0", 0)
	}); !strings.Contains(msg, "mbit") {
		t.Errorf("Shape(0) fatal %q, want an mbit error", msg)
	}
}

func TestConnectBadName(t *testing.T) {
	t.Parallel()
	h := NewHost(t, "conn")
	g := NewHost(t, "conn_peer")
	for _, name := range []string{"", "sixteen_chars_xx", "a/b"} {
		msg := catchFatal(t, func(tb testing.TB) {
			Connect(&Host{t: tb, name: h.name, fd: h.fd}, name, g, "ok")
		})
		if !strings.Contains(msg, "interface name") {
			t.Errorf("Connect(%q) fatal %q, want an interface name error", name, msg)
		}
	}
}

func TestAddrAndLink(t *testing.T) {
	t.Parallel()
	h := NewHost(t, "addr")
	g := NewHost(t, "addr_peer")
	Connect(h, "a", g, "b")
	p4, p6 := netip.MustParsePrefix("192.0.2.7/24"), netip.MustParsePrefix("2001:db8:7::7/64")
	h.AddAddr("a", p4)
	h.AddAddr("a", p6)
	out := h.MustExec("ip", "addr", "show", "dev", "a")
	for _, want := range []string{p4.String(), p6.String()} {
		if !strings.Contains(out, want) {
			t.Errorf("address %s missing: %s", want, out)
		}
	}
	if strings.Contains(out, "tentative") {
		t.Errorf("IPv6 address is tentative (DAD running): %s", out)
	}
	h.DelAddr("a", p6)
	if out := h.MustExec("ip", "addr", "show", "dev", "a"); strings.Contains(out, p6.String()) {
		t.Errorf("address %s still present: %s", p6, out)
	}
	h.SetLinkUp("a", false)
	if out := h.MustExec("ip", "-br", "link", "show", "a"); !strings.Contains(out, "DOWN") {
		t.Errorf("after SetLinkUp(false): %s", out)
	}
	h.SetLinkUp("a", true)
	if out := h.MustExec("ip", "-br", "link", "show", "a"); strings.Contains(out, "DOWN") {
		t.Errorf("after SetLinkUp(true): %s", out)
	}
}

func TestCleanup(t *testing.T) {
	t.Parallel()
	var (
		h    *Host
		name string
		ln   net.Listener
		cmd  *exec.Cmd
	)
	t.Run("host", func(t *testing.T) {
		h = NewHost(t, "cleanup")
		name = h.Name()
		ln = h.Listen("tcp", "127.0.0.1:0")
		cmd = h.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	})
	for _, n := range netnsList(t) {
		if n == name {
			t.Errorf("namespace %s still listed after its test ended", name)
		}
	}
	if err := h.Do(func() error { return nil }); err == nil {
		t.Error("Do after cleanup succeeded, want an error")
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after cleanup: %v, want net.ErrClosed", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err == nil {
			t.Error("sleep 60 exited cleanly, want it killed")
		}
	case <-time.After(5 * time.Second):
		t.Error("process started with Command still runs after cleanup")
		_ = cmd.Process.Kill()
	}
}

func TestSweepStale(t *testing.T) {
	t.Parallel()
	// A pid that is certainly dead: a process we started and reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	// A pid that is alive for the whole test.
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = live.Process.Kill()
		_ = live.Wait()
	})
	stale := fmt.Sprintf("mgt-%d-stale-1", dead.Process.Pid)
	keep := fmt.Sprintf("mgt-%d-keep-1", live.Process.Pid)
	for _, n := range []string{stale, keep} {
		if out, err := run("ip", "netns", "add", n); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		t.Cleanup(func() {
			if !isMissingNetns(n) {
				_, _ = run("ip", "netns", "del", n)
			}
		})
	}

	NewHost(t, "sweep")

	if _, err := os.Lstat(filepath.Join(netnsDir, stale)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale namespace %s of dead pid %d not swept (%v)", stale, dead.Process.Pid, err)
	}
	if _, err := os.Lstat(filepath.Join(netnsDir, keep)); err != nil {
		t.Errorf("namespace %s of live pid %d: %v, want it kept", keep, live.Process.Pid, err)
	}
}

func TestResolveLocal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"192.0.2.1", "192.0.2.1:0", true},
		{"192.0.2.1:80", "192.0.2.1:80", true},
		{"2001:db8::1", "[2001:db8::1]:0", true},
		{"[2001:db8::1]:80", "[2001:db8::1]:80", true},
		{"eth0", "", false},
		{"192.0.2.1:x", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := resolveLocal("tcp", tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("resolveLocal(%q) error %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "laddr") {
					t.Errorf("error %q does not name the field", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, a.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSysctlPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"net.mptcp.enabled", "/proc/sys/net/mptcp/enabled"},
		{"net/ipv4/conf/eth0.100/rp_filter", "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"},
		{"../../etc/passwd", "/proc/sys/etc/passwd"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, sysctlPath(tt.in)); diff != "" {
			t.Errorf("sysctlPath(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}
