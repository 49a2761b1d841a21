package sockdiag_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/holdtest"
)

const (
	serverPort = 5000 // the server's MPTCP listener
	clientPort = 6000 // the client's MPTCP listener, for a server-initiated connection
)

// waitFor bounds every wait for the kernel.
var waitFor = netnstest.Patience(15 * time.Second)

// mesh is a testbed whose client namespace holds four MPTCP connections:
//
//   - v4: client to server over IPv4; the client's three IPv4 subflow
//     endpoints (eth1, eth2 and a second address on eth1) give it 4 subflows;
//   - v6a, v6b: client to server over IPv6; the IPv6 endpoint on eth1 gives
//     each 2 subflows;
//   - in: server to client over IPv4, accepted by a dual-stack listener, so
//     the client's socket is IPv6 with IPv4-mapped addresses. The client is
//     the passive side and the server has no endpoints: 1 subflow.
type mesh struct {
	tb    *netnstest.Testbed
	diag  *sockdiag.Client
	conns map[string]net.Conn // client-side sockets by name
	want  map[string]int      // subflows per connection name
}

func newMesh(t *testing.T) *mesh {
	t.Helper()
	tb := netnstest.NewTestbed(t, 3)
	cli, srv := tb.Client, tb.Server
	for _, h := range []*netnstest.Host{cli, srv} {
		h.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	}
	// A second client address on link 1, and the server rule that sends
	// replies to it back over link 1 (the testbed has one for .1 only): a
	// subflow bound to eth1 ignores packets arriving on eth0.
	cli.AddAddr("eth1", netip.MustParsePrefix("198.51.100.11/24"))
	srv.MustExec("ip", "rule", "add", "to", "198.51.100.11", "table", "101", "pref", "1000")
	for _, ep := range [][]string{
		{"198.51.100.1", "eth1"},
		{"203.0.113.1", "eth2"},
		{"198.51.100.11", "eth1"},
		{"2001:db8:2::1", "eth1"},
	} {
		cli.MustExec("ip", "mptcp", "endpoint", "add", ep[0], "dev", ep[1], "subflow")
	}

	// serve holds the connections ln accepts until the test ends, reads
	// what they send, and returns the first.
	serve := func(ln net.Listener) <-chan net.Conn {
		ch := make(chan net.Conn, 1)
		held := holdtest.Accept(ln, func(c net.Conn) {
			select {
			case ch <- c:
			default:
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		})
		t.Cleanup(held.Close)
		return ch
	}
	serve(srv.Listen("tcp", fmt.Sprintf(":%d", serverPort)))
	inbound := serve(cli.Listen("tcp", fmt.Sprintf(":%d", clientPort)))

	m := &mesh{tb: tb, conns: map[string]net.Conn{}, want: map[string]int{"v4": 4, "v6a": 2, "v6b": 2, "in": 1}}
	dial := func(name, network, raddr string) {
		c, err := cli.Dial(network, "", raddr)
		if err != nil {
			t.Fatalf("dial %s: %v", name, err)
		}
		if mp, err := c.(*net.TCPConn).MultipathTCP(); !mp || err != nil {
			t.Fatalf("dial %s: MPTCP not negotiated (%v)", name, err)
		}
		// Data makes the connection fully established, which the path
		// manager waits for before it joins subflows.
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		m.conns[name] = c
	}
	dial("v4", "tcp4", fmt.Sprintf("192.0.2.2:%d", serverPort))
	dial("v6a", "tcp6", fmt.Sprintf("[2001:db8:1::2]:%d", serverPort))
	dial("v6b", "tcp6", fmt.Sprintf("[2001:db8:1::2]:%d", serverPort))
	if _, err := srv.Dial("tcp4", "", fmt.Sprintf("192.0.2.1:%d", clientPort)); err != nil {
		t.Fatalf("dial in: %v", err)
	}
	select {
	case c := <-inbound:
		m.conns["in"] = c
	case <-time.After(waitFor):
		t.Fatal("server-initiated connection not accepted")
	}

	diag, err := sockdiag.Dial(&sockdiag.Config{NetNS: cli.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = diag.Close() })
	m.diag = diag

	// Wait for the joins: every connection at its subflow count.
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range []*netnstest.Host{cli, srv} {
				for _, args := range [][]string{{"ip", "mptcp", "endpoint"}, {"ip", "mptcp", "limits"}, {"nstat", "-az", "MPTcpExtMPJoin*"}, {"ss", "-tinaH"}, {"sysctl", "net.mptcp"}} {
					out, err := h.Exec(args...)
					t.Logf("state on failure, %s %v: %v\n%s", h.Name(), args, err, out)
				}
			}
		}
	})
	enginetest.Poll(t, "subflows established", func() string {
		got := map[string]int{}
		for name, c := range m.conns {
			got[name] = -1
			local := addrPort(c.LocalAddr())
			_ = diag.Connections(func(cn *sockdiag.Connection) error {
				if cn.Local == local && cn.State == sockdiag.StateEstablished {
					got[name] = cn.Info.Subflows()
				}
				return nil
			})
		}
		return cmp.Diff(m.want, got)
	})
	return m
}

func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// connKey is what ss and sockdiag must agree on for a connection.
type connKey struct {
	Local, Remote string
	Token         uint32
	ExtraSubflows int
}

// subflowKey is what ss and sockdiag must agree on for a subflow.
type subflowKey struct {
	Local, Remote string
	RemoteToken   uint32
	RemoteID      uint8
	Token         uint32
	LocalID       uint8
	Flags         string
}

func connections(t testing.TB, c *sockdiag.Client) []*sockdiag.Connection {
	t.Helper()
	var all []*sockdiag.Connection
	if err := c.Connections(func(cn *sockdiag.Connection) error {
		all = append(all, cn)
		return nil
	}); err != nil {
		t.Fatalf("Connections: %v", err)
	}
	return all
}

func subflows(t *testing.T, c *sockdiag.Client) []*sockdiag.Subflow {
	t.Helper()
	var all []*sockdiag.Subflow
	if err := c.Subflows(func(sf *sockdiag.Subflow) error {
		all = append(all, sf)
		return nil
	}); err != nil {
		t.Fatalf("Subflows: %v", err)
	}
	return all
}

func connKeys(cs []*sockdiag.Connection) []connKey {
	var keys []connKey
	for _, c := range cs {
		keys = append(keys, connKey{c.Local.String(), c.Remote.String(), c.Token, int(c.Info.ExtraSubflows)})
	}
	sortKeys(keys)
	return keys
}

func subflowKeys(sfs []*sockdiag.Subflow) []subflowKey {
	var keys []subflowKey
	for _, sf := range sfs {
		keys = append(keys, subflowKey{sf.Local.String(), sf.Remote.String(), sf.RemoteToken, sf.RemoteID, sf.Token, sf.LocalID, sf.Flags.String()})
	}
	sortKeys(keys)
	return keys
}

func sortKeys[T any](keys []T) {
	slices.SortFunc(keys, func(a, b T) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
}

// ssSocket is one socket of `ss -H -i` output: the header line's state and
// addresses and the "key:value" words of the info line.
type ssSocket struct {
	State         string
	Local, Remote netip.AddrPort
	Info          map[string]string
}

// parseSS parses `ss -H -n -i` output: a header line per socket, then its
// info on lines starting with white space.
func parseSS(t *testing.T, out string) []ssSocket {
	t.Helper()
	var socks []ssSocket
	for line := range strings.Lines(out) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(socks) == 0 {
				t.Fatalf("ss: info line before any socket: %q", line)
			}
			for _, w := range strings.Fields(line) {
				if k, v, ok := strings.Cut(w, ":"); ok {
					socks[len(socks)-1].Info[k] = v
				}
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("ss: short socket line %q", line)
		}
		socks = append(socks, ssSocket{State: f[0], Local: parseSSAddr(t, f[3]), Remote: parseSSAddr(t, f[4]), Info: map[string]string{}})
	}
	return socks
}

// parseSSAddr parses "192.0.2.1%eth1:5000" or "[2001:db8::1]:5000".
func parseSSAddr(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	i := strings.LastIndexByte(s, ':')
	host, port := s[:i], s[i+1:]
	host, _, _ = strings.Cut(host, "%")
	host = strings.Trim(host, "[]")
	a, err := netip.ParseAddr(host)
	if err != nil {
		t.Fatalf("ss address %q: %v", s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatalf("ss address %q: %v", s, err)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p))
}

func hex32(t *testing.T, s string) uint32 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		t.Fatalf("ss hex %q: %v", s, err)
	}
	return uint32(v)
}

// ssConnections is the oracle for Connections: `ss -MHni`.
func ssConnections(t *testing.T, h *netnstest.Host) []connKey {
	t.Helper()
	var keys []connKey
	for _, s := range parseSS(t, h.MustExec("ss", "-MHni")) {
		extra := 0
		if v, ok := s.Info["subflows"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("ss subflows %q: %v", v, err)
			}
			extra = n
		}
		keys = append(keys, connKey{s.Local.String(), s.Remote.String(), hex32(t, s.Info["token"]), extra})
	}
	sortKeys(keys)
	return keys
}

// ssSubflows is the oracle for Subflows: the tcp-ulp-mptcp part of
// `ss -tinH`, "flags:Jjec token:RRRR(id:r)/LLLL(id:l)".
func ssSubflows(t *testing.T, h *netnstest.Host) []subflowKey {
	t.Helper()
	var keys []subflowKey
	for _, s := range parseSS(t, h.MustExec("ss", "-tinH")) {
		tok, ok := s.Info["token"]
		if !ok {
			continue // not an MPTCP subflow
		}
		var rtok, ltok string
		var rid, lid uint8
		if _, err := fmt.Sscanf(strings.NewReplacer("(id:", " ", ")/", " ", ")", "").Replace(tok), "%s %d %s %d", &rtok, &rid, &ltok, &lid); err != nil {
			t.Fatalf("ss token %q: %v", tok, err)
		}
		flags := s.Info["flags"]
		if flags == "" {
			flags = "-"
		}
		keys = append(keys, subflowKey{s.Local.String(), s.Remote.String(), hex32(t, rtok), rid, hex32(t, ltok), lid, flags})
	}
	sortKeys(keys)
	return keys
}

func TestIntegration(t *testing.T) {
	t.Parallel()
	m := newMesh(t)
	cli := m.tb.Client

	t.Run("connections match ss", func(t *testing.T) {
		enginetest.Poll(t, "Connections vs ss -MHni", func() string {
			return cmp.Diff(ssConnections(t, cli), connKeys(connections(t, m.diag)))
		})
		got := connections(t, m.diag)
		if len(got) != len(m.conns) {
			t.Fatalf("Connections: %d, want %d", len(got), len(m.conns))
		}
		for name, c := range m.conns {
			local, remote := addrPort(c.LocalAddr()), addrPort(c.RemoteAddr())
			i := slices.IndexFunc(got, func(cn *sockdiag.Connection) bool { return cn.Local == local })
			if i < 0 {
				t.Fatalf("connection %s (%v) not listed", name, local)
			}
			cn := got[i]
			if cn.Remote != remote || cn.Token == 0 || cn.State != sockdiag.StateEstablished || cn.Info.Subflows() != m.want[name] || cn.Info.Size < 48 {
				t.Errorf("connection %s: got %+v; want remote %v, a token, ESTAB, %d subflows", name, cn, remote, m.want[name])
			}
		}
	})

	t.Run("subflows match ss and connections", func(t *testing.T) {
		enginetest.Poll(t, "Subflows vs ss -tinH", func() string {
			return cmp.Diff(ssSubflows(t, cli), subflowKeys(subflows(t, m.diag)))
		})
		perToken := map[uint32]int{}
		for _, sf := range subflows(t, m.diag) {
			perToken[sf.Token]++
			if sf.TCP.Size < 104 || sf.TCP.State != sf.State || sf.TCP.RTT <= 0 || sf.TCP.SndMSS == 0 {
				t.Errorf("subflow %v -> %v: implausible tcp_info %+v", sf.Local, sf.Remote, sf.TCP)
			}
			if sf.Flags&sockdiag.SubflowJoinLocal != 0 && sf.IfIndex == 0 {
				t.Errorf("subflow %v -> %v: joined from a dev endpoint but IfIndex 0", sf.Local, sf.Remote)
			}
		}
		wantPerToken := map[uint32]int{}
		for _, cn := range connections(t, m.diag) {
			wantPerToken[cn.Token] = cn.Info.Subflows()
		}
		if diff := cmp.Diff(wantPerToken, perToken); diff != "" {
			t.Errorf("subflows per token (-want +got):\n%s", diff)
		}
	})

	t.Run("connection by token", func(t *testing.T) {
		tokens := map[uint32]bool{}
		for _, cn := range connections(t, m.diag) {
			tokens[cn.Token] = true
			got, err := m.diag.Connection(cn.Token)
			if err != nil {
				t.Fatalf("Connection(%08x): %v", cn.Token, err)
			}
			if got.Token != cn.Token || got.Local != cn.Local || got.Remote != cn.Remote || got.Inode != cn.Inode {
				t.Errorf("Connection(%08x) = %+v, want %+v", cn.Token, got, cn)
			}
		}
		unknown := uint32(0x5eed)
		for tokens[unknown] {
			unknown++
		}
		_, err := m.diag.Connection(unknown)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Connection(unknown %08x): err %v, want os.ErrNotExist", unknown, err)
		}
	})

	t.Run("socket options match the dump", func(t *testing.T) {
		byLocal := map[netip.AddrPort]*sockdiag.Connection{}
		for _, cn := range connections(t, m.diag) {
			byLocal[cn.Local] = cn
		}
		for name, c := range m.conns {
			info, subs, err := sockdiag.SockInfo(c.(*net.TCPConn))
			if err != nil {
				t.Fatalf("SockInfo(%s): %v", name, err)
			}
			cn := byLocal[addrPort(c.LocalAddr())]
			if cn == nil {
				t.Fatalf("connection %s not in the dump", name)
			}
			if info.Token != cn.Token || info.Subflows() != m.want[name] || info.Size != cn.Info.Size {
				t.Errorf("SockInfo(%s): token %08x, %d subflows, %d bytes; the dump says %08x, %d, %d",
					name, info.Token, info.Subflows(), info.Size, cn.Token, m.want[name], cn.Info.Size)
			}
			if len(subs) != m.want[name] {
				t.Fatalf("SockInfo(%s): %d tcp_info, want one per subflow (%d)", name, len(subs), m.want[name])
			}
			for i, s := range subs {
				if s.State != sockdiag.StateEstablished || s.SndMSS == 0 || s.SndCwnd == 0 || s.Size < 104 {
					t.Errorf("SockInfo(%s): subflow %d: implausible tcp_info %+v", name, i, s)
				}
			}
		}
		udp, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		if _, _, err := sockdiag.SockInfo(udp.(*net.UDPConn)); err == nil {
			t.Error("SockInfo of a UDP socket: no error")
		}
	})

	t.Run("callback error stops the walk", func(t *testing.T) {
		errStop := errors.New("stop")
		n := 0
		err := m.diag.Connections(func(*sockdiag.Connection) error {
			n++
			return errStop
		})
		if err != errStop || n != 1 {
			t.Fatalf("Connections: err %v after %d calls, want the callback's error after 1", err, n)
		}
		n = 0
		err = m.diag.Subflows(func(*sockdiag.Subflow) error {
			n++
			return errStop
		})
		if err != errStop || n != 1 {
			t.Fatalf("Subflows: err %v after %d calls, want the callback's error after 1", err, n)
		}
		// The socket is still in step: full walks see everything.
		if got := len(connections(t, m.diag)); got != len(m.conns) {
			t.Fatalf("Connections after a stopped walk: %d, want %d", got, len(m.conns))
		}
		if got, want := len(subflows(t, m.diag)), 9; got != want {
			t.Fatalf("Subflows after a stopped walk: %d, want %d", got, want)
		}
	})

	t.Run("state filter", func(t *testing.T) {
		c, err := sockdiag.Dial(&sockdiag.Config{NetNS: cli.NetNS(), States: sockdiag.StateMask(sockdiag.StateListen)})
		if err != nil {
			t.Fatal(err)
		}
		var ports []uint16
		for _, cn := range connections(t, c) {
			if cn.State != sockdiag.StateListen || cn.Token != 0 {
				t.Errorf("state filter LISTEN: got %s socket %+v", sockdiag.StateName(cn.State), cn)
			}
			ports = append(ports, cn.Local.Port())
		}
		if !slices.Contains(ports, clientPort) {
			t.Errorf("state filter LISTEN: local ports %v, want the listener's %d", ports, clientPort)
		}
		for _, sf := range subflows(t, c) {
			if sf.State != sockdiag.StateListen || sf.Token != 0 || sf.Local.Port() != clientPort {
				t.Errorf("state filter LISTEN: got subflow %+v, want the listener's, without token", sf)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := c.Connections(func(*sockdiag.Connection) error { return nil }); err == nil {
			t.Error("Connections after Close: no error")
		}
	})

	t.Run("unprivileged", func(t *testing.T) {
		testUnprivileged(t, m)
	})

	// Last: it changes the counters the subtests above compare.
	t.Run("bytes grow", func(t *testing.T) {
		c := m.conns["v4"]
		tok := tokenOf(t, m.diag, addrPort(c.LocalAddr()))
		before, err := m.diag.Connection(tok)
		if err != nil {
			t.Fatal(err)
		}
		sfBefore := subflowBytes(t, m.diag, tok)
		const n = 1 << 20
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		// Before 6.5 struct mptcp_info ends at csum_enabled, 48 bytes
		// with the padding, and has no byte counters: they read 0 while
		// the subflows' tcp_info counts.
		oldInfo := !netnstest.KernelAtLeast(6, 5)
		if oldInfo {
			netnstest.Degraded(t, "mptcp_info has no byte counters before Linux 6.5: checked its 48 bytes and the subflows' tcp_info")
			if before.Info.Size != 48 {
				t.Errorf("mptcp_info of %d bytes, want 48 before Linux 6.5", before.Info.Size)
			}
		}
		enginetest.Poll(t, "bytes acked after sending 1 MiB", func() string {
			after, err := m.diag.Connection(tok)
			if err != nil {
				return err.Error()
			}
			sf := subflowBytes(t, m.diag, tok)
			if oldInfo && (after.Info.BytesAcked != 0 || after.Info.BytesSent != 0) {
				t.Errorf("mptcp_info of %d bytes reports bytes_sent %d, bytes_acked %d", after.Info.Size, after.Info.BytesSent, after.Info.BytesAcked)
			}
			if !oldInfo && (after.Info.BytesAcked < before.Info.BytesAcked+n || after.Info.BytesSent < before.Info.BytesSent+n) {
				return fmt.Sprintf("mptcp_info bytes_sent %d -> %d, bytes_acked %d -> %d; want +%d",
					before.Info.BytesSent, after.Info.BytesSent, before.Info.BytesAcked, after.Info.BytesAcked, n)
			}
			if sf[0] < sfBefore[0]+n || sf[1] < sfBefore[1]+n {
				return fmt.Sprintf("subflow tcp_info bytes_sent %d -> %d, bytes_acked %d -> %d; want +%d",
					sfBefore[0], sf[0], sfBefore[1], sf[1], n)
			}
			return ""
		})
	})
}

func tokenOf(t *testing.T, c *sockdiag.Client, local netip.AddrPort) uint32 {
	t.Helper()
	for _, cn := range connections(t, c) {
		if cn.Local == local {
			return cn.Token
		}
	}
	t.Fatalf("no connection from %v", local)
	return 0
}

// subflowBytes sums tcp_info bytes_sent and bytes_acked over the subflows
// of a connection.
func subflowBytes(t *testing.T, c *sockdiag.Client, token uint32) [2]uint64 {
	t.Helper()
	var sum [2]uint64
	for _, sf := range subflows(t, c) {
		if sf.Token == token {
			sum[0] += sf.TCP.BytesSent
			sum[1] += sf.TCP.BytesAcked
		}
	}
	return sum
}

// helperEnv makes the test binary act as TestUnprivilegedHelper.
const helperEnv = "SOCKDIAG_UNPRIVILEGED_HELPER"

// unprivView is what the unprivileged helper reports.
type unprivView struct {
	UID         int
	Connections []connKey
	Subflows    []subflowKey
}

// testUnprivileged re-runs the test binary as nobody, without capabilities,
// inside the client namespace, and checks it sees what root sees.
func testUnprivileged(t *testing.T, m *mesh) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// nobody must be able to run a copy of the test binary.
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "sockdiag.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := m.tb.Client.Command("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
		bin, "-test.run=^TestUnprivilegedHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unprivileged helper: %v\n%s", err, out)
	}
	var got unprivView
	for line := range strings.Lines(string(out)) {
		if js, ok := strings.CutPrefix(line, "SOCKDIAG-VIEW "); ok {
			if err := json.Unmarshal([]byte(js), &got); err != nil {
				t.Fatalf("unprivileged helper output %q: %v", js, err)
			}
		}
	}
	if got.UID == 0 {
		t.Fatalf("unprivileged helper ran as root or printed nothing:\n%s", out)
	}
	want := unprivView{
		UID:         got.UID,
		Connections: connKeys(connections(t, m.diag)),
		Subflows:    subflowKeys(subflows(t, m.diag)),
	}
	// Before 6.15 ("tcp: ulp: diag: more info without CAP_NET_ADMIN")
	// the kernel gives a subflow's MPTCP details to CAP_NET_ADMIN only:
	// without them no TCP socket is known to be a subflow.
	if !netnstest.KernelHas(genl.CapUnprivSubflowInfo) {
		netnstest.Degraded(t, "subflow details need CAP_NET_ADMIN before Linux %s: an unprivileged user sees the connections and no subflow",
			genl.CapUnprivSubflowInfo.Since)
		want.Subflows = nil
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unprivileged view (-root +nobody):\n%s", diff)
	}
}

// TestUnprivilegedHelper is the process testUnprivileged starts; it prints
// what an unprivileged client sees in its namespace.
func TestUnprivilegedHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process of TestIntegration/unprivileged")
	}
	c, err := sockdiag.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v := unprivView{
		UID:         os.Getuid(),
		Connections: connKeys(connections(t, c)),
		Subflows:    subflowKeys(subflows(t, c)),
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("SOCKDIAG-VIEW %s\n", js)
}
