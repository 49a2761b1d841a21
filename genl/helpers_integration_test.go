package genl_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"golang.org/x/sys/unix"
)

// waitTimeout bounds every wait for a kernel reaction (an event, a subflow).
var waitTimeout = netnstest.Patience(10 * time.Second)

// cmpOpts compares the netip values inside genl types.
var cmpOpts = cmp.Options{cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})}

// family selects the addresses of one IP family on a testbed link.
type family struct {
	name    string
	network string
	client  func(netnstest.Link) netip.Addr
	server  func(netnstest.Link) netip.Addr
}

var families = []family{
	{
		name:    "ipv4",
		network: "tcp4",
		client:  func(l netnstest.Link) netip.Addr { return l.Client4 },
		server:  func(l netnstest.Link) netip.Addr { return l.Server4 },
	},
	{
		name:    "ipv6",
		network: "tcp6",
		client:  func(l netnstest.Link) netip.Addr { return l.Client6 },
		server:  func(l netnstest.Link) netip.Addr { return l.Server6 },
	},
}

// docAddr returns a documentation address of the family that no testbed
// assigns: 192.0.2.100+n or 2001:db8:ff::n.
func (f family) docAddr(n int) netip.Addr {
	if f.network == "tcp4" {
		return netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + n)})
	}
	return netip.MustParseAddr(fmt.Sprintf("2001:db8:ff::%x", n))
}

// newClient returns a genl client acting in h's namespace, closed by
// t.Cleanup.
func newClient(t *testing.T, h *netnstest.Host) *genl.Client {
	t.Helper()
	c, err := genl.New(&genl.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatalf("genl.New in %s: %v", h.Name(), err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close client of %s: %v", h.Name(), err)
		}
	})
	return c
}

// ifIndex returns the index of interface name in h's namespace.
func ifIndex(t *testing.T, h *netnstest.Host, name string) int32 {
	t.Helper()
	var idx int
	if err := h.Do(func() error {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return err
		}
		idx = ifi.Index
		return nil
	}); err != nil {
		t.Fatalf("interface %s in %s: %v", name, h.Name(), err)
	}
	return int32(idx)
}

// ipFlags are the flag words of `ip mptcp endpoint show`, spelled out here
// so that the oracle does not depend on the code under test.
var ipFlags = map[string]genl.EndpointFlags{
	"signal":   1 << 0,
	"subflow":  1 << 1,
	"backup":   1 << 2,
	"fullmesh": 1 << 3,
	"implicit": 1 << 4,
	"laminar":  1 << 5,
}

// ipEndpoints runs `ip mptcp endpoint show [args]` in h and parses lines
// such as "192.0.2.1 port 1000 id 1 signal backup rawflags 20 dev eth0".
func ipEndpoints(t *testing.T, h *netnstest.Host, args ...string) []genl.Endpoint {
	t.Helper()
	out := h.MustExec(append([]string{"ip", "mptcp", "endpoint", "show"}, args...)...)
	var eps []genl.Endpoint
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		ep, err := parseIPEndpoint(t, h, f)
		if err != nil {
			t.Fatalf("parse `ip mptcp endpoint show` line %q: %v", line, err)
		}
		eps = append(eps, ep)
	}
	return eps
}

func parseIPEndpoint(t *testing.T, h *netnstest.Host, f []string) (genl.Endpoint, error) {
	t.Helper()
	var ep genl.Endpoint
	addr, err := netip.ParseAddr(f[0])
	if err != nil {
		return ep, err
	}
	ep.Addr = addr
	for i := 1; i < len(f); i++ {
		word := f[i]
		if fl, ok := ipFlags[word]; ok {
			ep.Flags |= fl
			continue
		}
		if i+1 >= len(f) {
			return ep, fmt.Errorf("word %q without value", word)
		}
		i++
		val := f[i]
		switch word {
		case "id":
			n, err := strconv.ParseUint(val, 10, 8)
			if err != nil {
				return ep, err
			}
			ep.ID = uint8(n)
		case "port":
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil {
				return ep, err
			}
			ep.Port = uint16(n)
		case "rawflags":
			n, err := strconv.ParseUint(val, 16, 32)
			if err != nil {
				return ep, err
			}
			ep.Flags |= genl.EndpointFlags(n)
		case "dev":
			ep.IfIndex = ifIndex(t, h, val)
		default:
			return ep, fmt.Errorf("unknown word %q", word)
		}
	}
	return ep, nil
}

// checkEndpoints asserts that the client's dump, `ip mptcp endpoint show`
// and Endpoint(id) for each entry all equal want (in id order).
func checkEndpoints(t *testing.T, h *netnstest.Host, c *genl.Client, want []genl.Endpoint) {
	t.Helper()
	got, err := c.Endpoints()
	if err != nil {
		t.Fatalf("Endpoints: %v", err)
	}
	byID := func(a, b genl.Endpoint) int { return int(a.ID) - int(b.ID) }
	want = slices.SortedFunc(slices.Values(want), byID)
	slices.SortFunc(got, byID)
	if diff := cmp.Diff(want, got, cmpOpts, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Endpoints (-want +got):\n%s", diff)
	}
	oracle := ipEndpoints(t, h)
	slices.SortFunc(oracle, byID)
	if diff := cmp.Diff(oracle, got, cmpOpts, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Endpoints differ from `ip mptcp endpoint show` (-ip +genl):\n%s", diff)
	}
	for _, w := range want {
		one, err := c.Endpoint(w.ID)
		if err != nil {
			t.Errorf("Endpoint(%d): %v", w.ID, err)
			continue
		}
		if diff := cmp.Diff(w, one, cmpOpts); diff != "" {
			t.Errorf("Endpoint(%d) (-want +got):\n%s", w.ID, diff)
		}
		ipOne := ipEndpoints(t, h, "id", strconv.Itoa(int(w.ID)))
		if diff := cmp.Diff([]genl.Endpoint{one}, ipOne, cmpOpts); diff != "" {
			t.Errorf("`ip mptcp endpoint show id %d` (-genl +ip):\n%s", w.ID, diff)
		}
	}
}

// ipLimits parses `ip mptcp limits show`: "add_addr_accepted 0 subflows 2".
func ipLimits(t *testing.T, h *netnstest.Host) genl.Limits {
	t.Helper()
	out := h.MustExec("ip", "mptcp", "limits", "show")
	f := strings.Fields(out)
	var l genl.Limits
	for i := 0; i+1 < len(f); i += 2 {
		n, err := strconv.ParseUint(f[i+1], 10, 32)
		if err != nil {
			t.Fatalf("parse `ip mptcp limits show` %q: %v", out, err)
		}
		switch f[i] {
		case "add_addr_accepted":
			l.AddAddrAccepted = uint32(n)
		case "subflows":
			l.Subflows = uint32(n)
		default:
			t.Fatalf("parse `ip mptcp limits show` %q: unknown word %q", out, f[i])
		}
	}
	return l
}

// setLimits sets both limits of c's namespace.
func setLimits(t *testing.T, c *genl.Client, addAddrAccepted, subflows uint32) {
	t.Helper()
	if err := c.SetLimits(genl.LimitsUpdate{AddAddrAccepted: &addAddrAccepted, Subflows: &subflows}); err != nil {
		t.Fatalf("SetLimits(%d, %d): %v", addAddrAccepted, subflows, err)
	}
}

// wantKernelError asserts that err is a *genl.Error with the errno and the
// kernel's extack text, that its text surfaces the kernel's, and that
// errors.Is matches sentinel (when not nil).
func wantKernelError(t *testing.T, err error, errno unix.Errno, msg string, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want %v %q", errno, msg)
	}
	var ge *genl.Error
	if !errors.As(err, &ge) {
		t.Fatalf("error %v (%T) is not a *genl.Error", err, err)
	}
	if !errors.Is(ge.Err, errno) {
		t.Errorf("errno: got %v (%#v), want %v", ge.Err, ge.Err, errno)
	}
	if ge.Message != msg {
		t.Errorf("extack message: got %q, want %q", ge.Message, msg)
	}
	if ge.Op == "" {
		t.Errorf("error %v has an empty Op", err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error text %q does not contain the kernel's %q", err.Error(), msg)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%v, %v) = false, want true", err, sentinel)
	}
}

// eventLog collects the events of one subscription in the background.
type eventLog struct {
	name string
	mu   sync.Mutex
	evs  []genl.Event
	err  error
	wake chan struct{}
}

// subscribe subscribes c to the event group and collects events until the
// test ends.
func subscribe(t *testing.T, c *genl.Client, name string) *eventLog {
	t.Helper()
	sub, err := c.Subscribe()
	if err != nil {
		t.Fatalf("%s: Subscribe: %v", name, err)
	}
	l := &eventLog{name: name, wake: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			evs, err := sub.Receive(ctx)
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			l.evs = append(l.evs, evs...)
			if err != nil {
				l.err = fmt.Errorf("%s: Receive: %w", name, err)
			}
			close(l.wake)
			l.wake = make(chan struct{})
			l.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := sub.Close(); err != nil {
			t.Errorf("%s: close subscription: %v", name, err)
		}
	})
	return l
}

// wait returns the first collected event that matches, waiting up to
// waitTimeout for it.
func (l *eventLog) wait(t *testing.T, what string, match func(genl.Event) bool) genl.Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for _, ev := range l.evs {
			if match(ev) {
				l.mu.Unlock()
				return ev
			}
		}
		err, wake := l.err, l.wake
		l.mu.Unlock()
		if err != nil {
			t.Fatalf("waiting for %s: %v\n%s", what, err, l.dump())
		}
		select {
		case <-wake:
		case <-timer.C:
			t.Fatalf("%s: no %s event within %v; events so far:\n%s", l.name, what, waitTimeout, l.dump())
		}
	}
}

// waitEqual waits for an event equal to want.
func (l *eventLog) waitEqual(t *testing.T, want genl.Event) genl.Event {
	t.Helper()
	return l.wait(t, fmt.Sprintf("%+v", want), func(ev genl.Event) bool { return ev == want })
}

// waitListener waits for the listener event typ of the listening socket
// local. Kernels before 6.2 send no listener events: there the test
// checks that none came.
func (l *eventLog) waitListener(t *testing.T, typ genl.EventType, local netip.AddrPort) {
	t.Helper()
	if netnstest.KernelHas(genl.CapListenerEvents) {
		l.waitEqual(t, genl.Event{Type: typ, Local: local})
		return
	}
	netnstest.Degraded(t, "no %s event (Linux %s): checked that none came", typ, genl.CapListenerEvents.Since)
	if evs := l.all(func(ev genl.Event) bool { return ev.Type == typ }); len(evs) != 0 {
		t.Errorf("%s: %s events on a kernel that has none: %+v", l.name, typ, evs)
	}
}

// serverSide returns the event flags of a server's CREATED and
// ESTABLISHED events: the server-side flag since 6.18; before, only the
// SERVER_SIDE attribute says it.
func serverSide(t *testing.T) genl.EventFlags {
	t.Helper()
	if netnstest.KernelHas(genl.CapServerSideFlag) {
		return genl.EventFlagServerSide
	}
	netnstest.Degraded(t, "no server-side event flag (Linux %s): the server's events carry the SERVER_SIDE attribute alone",
		genl.CapServerSideFlag.Since)
	return 0
}

// all returns the collected events matching.
func (l *eventLog) all(match func(genl.Event) bool) []genl.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []genl.Event
	for _, ev := range l.evs {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

func (l *eventLog) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, ev := range l.evs {
		fmt.Fprintf(&b, "  %s %+v\n", ev.Type, ev)
	}
	return b.String()
}

// ofType matches events of type typ for token.
func ofType(typ genl.EventType, token uint32) func(genl.Event) bool {
	return func(ev genl.Event) bool { return ev.Type == typ && ev.Token == token }
}

// addrPort returns a's address and port, unmapping IPv4-mapped addresses.
func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		t.Fatalf("address %v is a %T, not *net.TCPAddr", a, a)
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// listen opens an MPTCP listener in h on the wildcard address of the
// network, so that joins to any of h's addresses find it, on a port chosen
// by the kernel. It returns the listener and its address.
func listen(t *testing.T, h *netnstest.Host, network string) (net.Listener, netip.AddrPort) {
	t.Helper()
	wildcard := netip.IPv4Unspecified()
	if network == "tcp6" {
		wildcard = netip.IPv6Unspecified()
	}
	ln := h.Listen(network, netip.AddrPortFrom(wildcard, 0).String())
	t.Cleanup(func() { _ = ln.Close() })
	return ln, addrPort(t, ln.Addr())
}

// conn is one MPTCP connection between a testbed's hosts, its two ends
// with their addresses.
type conn struct {
	client, server           net.Conn
	clientAddr, serverAddr   netip.AddrPort // seen from the client
	clientToken, serverToken uint32         // from sock_diag (ss -M)
}

// connect dials raddr from laddr in client, accepts the connection on ln
// in server and exchanges one byte each way so that both ends are fully
// established. The tokens come from `ss -MHni` in each namespace.
func connect(t *testing.T, client, server *netnstest.Host, network string, laddr netip.Addr, ln net.Listener, raddr netip.AddrPort) *conn {
	t.Helper()
	type accepted struct {
		c   net.Conn
		err error
	}
	ach := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ach <- accepted{c, err}
	}()
	cc, err := client.Dial(network, netip.AddrPortFrom(laddr, 0).String(), raddr.String())
	if err != nil {
		t.Fatalf("dial %v from %v: %v", raddr, laddr, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	var a accepted
	select {
	case a = <-ach:
	case <-time.After(waitTimeout):
		t.Fatalf("accept on %v: timed out", ln.Addr())
	}
	if a.err != nil {
		t.Fatalf("accept on %v: %v", ln.Addr(), a.err)
	}
	t.Cleanup(func() { _ = a.c.Close() })
	c := &conn{client: cc, server: a.c, clientAddr: addrPort(t, cc.LocalAddr()), serverAddr: addrPort(t, cc.RemoteAddr())}
	c.pingPong(t)
	c.clientToken = ssConnection(t, client, c.clientAddr, c.serverAddr).Token
	c.serverToken = ssConnection(t, server, c.serverAddr, c.clientAddr).Token
	return c
}

// pingPong sends one byte each way.
func (c *conn) pingPong(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for _, d := range []struct{ w, r net.Conn }{{c.client, c.server}, {c.server, c.client}} {
		_ = d.w.SetDeadline(deadline)
		_ = d.r.SetDeadline(deadline)
		if _, err := d.w.Write([]byte{'x'}); err != nil {
			t.Fatalf("ping write: %v", err)
		}
		var b [1]byte
		if _, err := io.ReadFull(d.r, b[:]); err != nil {
			t.Fatalf("ping read: %v", err)
		}
	}
}

// transfer sends n pseudo-random bytes each way at once and checks that
// each side reads exactly what the other wrote (SHA-256).
func (c *conn) transfer(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for i, d := range []struct {
		name string
		w, r net.Conn
	}{{"client→server", c.client, c.server}, {"server→client", c.server, c.client}} {
		_ = d.w.SetDeadline(deadline)
		_ = d.r.SetDeadline(deadline)
		sent := make(chan []byte, 1)
		wg.Add(2)
		go func() {
			defer wg.Done()
			h := sha256.New()
			src := io.LimitReader(rand.NewChaCha8([32]byte{byte(i), byte(n)}), n)
			if _, err := io.Copy(io.MultiWriter(d.w, h), src); err != nil {
				t.Errorf("%s: write: %v", d.name, err)
			}
			sent <- h.Sum(nil)
		}()
		go func() {
			defer wg.Done()
			h := sha256.New()
			got, err := io.CopyN(h, d.r, n)
			if err != nil {
				t.Errorf("%s: read %d of %d bytes: %v", d.name, got, n, err)
			}
			if want, got := <-sent, h.Sum(nil); string(want) != string(got) {
				t.Errorf("%s: data corrupted: sha256 %x sent, %x received", d.name, want, got)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// ssSock is one socket of `ss -MHni` (an MPTCP connection) or of
// `ss -tinH` (a TCP subflow with its MPTCP ULP info).
type ssSock struct {
	Local, Remote netip.AddrPort
	Info          string // the continuation lines
	// Connections (ss -M):
	Token    uint32
	Subflows int // extra subflows (mptcpi_subflows)
	// Subflows (ss -ti with tcp-ulp-mptcp):
	ULP               bool
	RemoteToken       uint32
	LocalID, RemoteID uint8
	Flags             string // "Mmc", "Jjecb"...
}

var (
	ssIfSuffix   = regexp.MustCompile(`%[^:\]\s]+`)
	ssTokenRE    = regexp.MustCompile(`(?:^|\s)token:([0-9a-f]+)(?:\s|$)`)
	ssSubflowsRE = regexp.MustCompile(`(?:^|\s)subflows:(\d+)`)
	ssULPRE      = regexp.MustCompile(`tcp-ulp-mptcp flags:(\S*) token:([0-9a-f]+)\(id:(\d+)\)/([0-9a-f]+)\(id:(\d+)\)`)
)

// ss runs ss with args in h and parses its records.
func ss(t *testing.T, h *netnstest.Host, args ...string) []ssSock {
	t.Helper()
	out := h.MustExec(append([]string{"ss"}, args...)...)
	var socks []ssSock
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(socks) == 0 {
				t.Fatalf("ss %v: continuation line before any socket: %q", args, line)
			}
			socks[len(socks)-1].Info += line + "\n"
			continue
		}
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("ss %v: short line %q", args, line)
		}
		var s ssSock
		var err error
		if s.Local, err = netip.ParseAddrPort(ssIfSuffix.ReplaceAllString(f[3], "")); err != nil {
			t.Fatalf("ss %v: local address of %q: %v", args, line, err)
		}
		if !strings.HasSuffix(f[4], ":*") { // a listener's
			if s.Remote, err = netip.ParseAddrPort(ssIfSuffix.ReplaceAllString(f[4], "")); err != nil {
				t.Fatalf("ss %v: remote address of %q: %v", args, line, err)
			}
		}
		socks = append(socks, s)
	}
	for i := range socks {
		s := &socks[i]
		if m := ssULPRE.FindStringSubmatch(s.Info); m != nil {
			s.ULP = true
			s.Flags = m[1]
			s.RemoteToken = parseHex32(t, m[2])
			s.RemoteID = uint8(parseUint(t, m[3]))
			s.Token = parseHex32(t, m[4])
			s.LocalID = uint8(parseUint(t, m[5]))
			continue
		}
		if m := ssTokenRE.FindStringSubmatch(s.Info); m != nil {
			s.Token = parseHex32(t, m[1])
		}
		if m := ssSubflowsRE.FindStringSubmatch(s.Info); m != nil {
			s.Subflows = int(parseUint(t, m[1]))
		}
	}
	return socks
}

func parseHex32(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		t.Fatalf("parse hex %q: %v", s, err)
	}
	return uint32(n)
}

func parseUint(t *testing.T, s string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return n
}

// ssConnection returns the MPTCP connection local→remote in h, from
// `ss -MHni`.
func ssConnection(t *testing.T, h *netnstest.Host, local, remote netip.AddrPort) ssSock {
	t.Helper()
	socks := ss(t, h, "-MHni")
	for _, s := range socks {
		if s.Local == local && s.Remote == remote {
			if s.Token == 0 {
				t.Fatalf("ss -MHni in %s: connection %v→%v has no token: %q", h.Name(), local, remote, s.Info)
			}
			return s
		}
	}
	t.Fatalf("ss -MHni in %s: no connection %v→%v among %+v", h.Name(), local, remote, socks)
	return ssSock{}
}

// ssSubflows returns the MPTCP subflows of the connection with token in h,
// from `ss -tinH`.
func ssSubflows(t *testing.T, h *netnstest.Host, token uint32) []ssSock {
	t.Helper()
	var out []ssSock
	for _, s := range ss(t, h, "-tinH") {
		if s.ULP && s.Token == token {
			out = append(out, s)
		}
	}
	return out
}

// ssSubflow returns the subflow local→remote of token in h.
func ssSubflow(t *testing.T, h *netnstest.Host, token uint32, local, remote netip.AddrPort) ssSock {
	t.Helper()
	subs := ssSubflows(t, h, token)
	for _, s := range subs {
		if s.Local == local && s.Remote == remote {
			return s
		}
	}
	t.Fatalf("ss -tinH in %s: no subflow %v→%v of token %08x among %+v", h.Name(), local, remote, token, subs)
	return ssSock{}
}

// waitSubflows polls `ss -tinH` until token has n subflows in h.
func waitSubflows(t *testing.T, h *netnstest.Host, token uint32, n int) []ssSock {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		subs := ssSubflows(t, h, token)
		if len(subs) == n {
			return subs
		}
		if time.Now().After(deadline) {
			t.Fatalf("ss -tinH in %s: token %08x has %d subflows, want %d: %+v", h.Name(), token, len(subs), n, subs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkSubflowEvent asserts that a SUB_* event describes a real subflow of
// its connection, as sock_diag shows it in h.
func checkSubflowEvent(t *testing.T, h *netnstest.Host, ev genl.Event) ssSock {
	t.Helper()
	s := ssSubflow(t, h, ev.Token, ev.Local, ev.Remote)
	if s.LocalID != ev.LocalID || s.RemoteID != ev.RemoteID {
		t.Errorf("%s event ids local %d remote %d, sock_diag says local %d remote %d", ev.Type, ev.LocalID, ev.RemoteID, s.LocalID, s.RemoteID)
	}
	return s
}
