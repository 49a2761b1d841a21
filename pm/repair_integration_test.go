package pm_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// diagConns lists a client namespace's connections from sock_diag, like
// the daemon's lister (the namespace has no MPTCP listener: every
// connection is on the client side).
type diagConns struct{ d *sockdiag.Client }

func (l diagConns) ListConns() ([]pm.ExistingConn, error) {
	var conns []pm.ExistingConn
	byToken := map[uint32]int{}
	err := l.d.Connections(func(c *sockdiag.Connection) error {
		if c.State == sockdiag.StateEstablished && c.Token != 0 {
			byToken[c.Token] = len(conns)
			conns = append(conns, pm.ExistingConn{Token: c.Token, Side: policy.SideClient, Local: c.Local,
				Remote: c.Remote, Fallback: c.Info.Flags&sockdiag.InfoFallback != 0})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = l.d.Subflows(func(s *sockdiag.Subflow) error {
		if i, ok := byToken[s.Token]; ok {
			conns[i].Subflows = append(conns[i].Subflows, pm.ExistingSubflow{Local: s.Local, Remote: s.Remote,
				LocalID: s.LocalID, RemoteID: s.RemoteID, Joined: s.Flags&sockdiag.SubflowJoinLocal != 0})
		}
		return nil
	})
	return conns, err
}

// hashServer accepts connections and hashes what each one receives; sums
// gets the byte count and digest of a connection once its peer closed it.
type hashServer struct {
	mu   sync.Mutex
	sums map[netip.AddrPort]chan string
}

func newHashServer(ln net.Listener) *hashServer {
	s := &hashServer{sums: map[netip.AddrPort]chan string{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch := s.sum(unmap(c.RemoteAddr().(*net.TCPAddr).AddrPort()))
			go func() {
				h := sha256.New()
				n, err := io.Copy(h, c)
				ch <- fmt.Sprintf("%d bytes %x err=%v", n, h.Sum(nil), err)
				_ = c.Close()
			}()
		}
	}()
	return s
}

func (s *hashServer) sum(client netip.AddrPort) chan string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sums[client] == nil {
		s.sums[client] = make(chan string, 1)
	}
	return s.sums[client]
}

// hasSubflowFrom reports whether the connection from local has an
// established subflow from addr.
func hasSubflowFrom(t *testing.T, h *netnstest.Host, local netip.AddrPort, addr netip.Addr) bool {
	t.Helper()
	for _, s := range subflows(t, h, local) {
		if unmap(s.Local).Addr() == addr {
			return true
		}
	}
	return false
}

// startRepairEngine runs a kernel-mode engine in h's namespace with
// fullmesh, a sock_diag lister and the given repair periods.
func startRepairEngine(t *testing.T, h *netnstest.Host, after, every time.Duration) *pm.Engine {
	t.Helper()
	d, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS(),
		States: sockdiag.StateMask(sockdiag.StateEstablished, sockdiag.StateSynSent, sockdiag.StateSynRecv)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	fm, err := fullmesh.New(fullmesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return enginetest.Run(t, pm.Config{
		Mode: policy.ModeKernel, Policy: policy.Compose(fm), Workers: 1, Conns: diagConns{d},
		NewKernel:   func() (pm.Kernel, error) { return genl.New(&genl.Config{NetNS: h.NetNS()}) },
		RepairAfter: after, RepairEvery: every, Logger: enginetest.Logger(t),
	})
}

// TestRepairKernel: in kernel mode, a connection whose join from a new
// endpoint the server refused (limits 0) gets its subflow once the server
// accepts joins again, because the engine replaces the endpoint; another
// connection, which had its subflow from the endpoint, keeps its data
// intact across the replacement and gets the subflow back.
func TestRepairKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8")
	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	srv := newHashServer(ln)

	e := startRepairEngine(t, tb.Client, 2*time.Second, -1)
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0"}))
	enginetest.WaitReady(t, e)

	// The long-lived connection exists before eth1's endpoint, which the
	// server refuses: the kernel's one try fails.
	dial := func() (net.Conn, netip.AddrPort) {
		t.Helper()
		c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		return c, unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
	}
	_, old := dial()
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "0")
	// The server counts refused joins since 6.16 (MPJoinRejected).
	// Before, it counts the join SYNs it received (MPJoinSynRx), and the
	// check below that no subflow was made tells the refusal.
	counter := "MPTcpExtMPJoinRejected"
	if !netnstest.KernelAtLeast(6, 16) {
		netnstest.Degraded(t, "no MPJoinRejected counter before Linux 6.16: counted the server's join SYNs (MPJoinSynRx)")
		counter = "MPTcpExtMPJoinSynRx"
	}
	refused := func() string {
		return tb.Server.MustExec("nstat", "-asz", counter)
	}
	before := refused()
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}))
	enginetest.Poll(t, "join refused", func() string {
		if after := refused(); after == before {
			return "no join rejected yet: " + after
		}
		return ""
	})
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8")
	if hasSubflowFrom(t, tb.Client, old, l1.Client4) {
		t.Fatal("the refused join made a subflow")
	}

	// A second connection, opened now, gets its eth1 subflow at once and
	// carries data through the replacement.
	c2, second := dial()
	enginetest.Poll(t, "second connection's eth1 subflow", func() string {
		if !hasSubflowFrom(t, tb.Client, second, l1.Client4) {
			return "none"
		}
		return ""
	})
	sum := srv.sum(second)
	want := sha256.New()
	want.Write([]byte("hello"))
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() { wrote <- writeUntil(c2, want, stop) }()

	enginetest.Poll(t, "repaired eth1 subflow of the old connection", func() string {
		if !hasSubflowFrom(t, tb.Client, old, l1.Client4) {
			return "none; endpoints: " + tb.Client.MustExec("ip", "mptcp", "endpoint", "show")
		}
		return ""
	})
	enginetest.Poll(t, "second connection's eth1 subflow after the repair", func() string {
		if !hasSubflowFrom(t, tb.Client, second, l1.Client4) {
			return "none"
		}
		return ""
	})
	close(stop)
	if err := <-wrote; err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if err := c2.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-sum:
		if w := fmt.Sprintf("%x", want.Sum(nil)); !bytes.Contains([]byte(got), []byte(w)) {
			t.Errorf("server received %s, client sent sha256 %s", got, w)
		}
	case <-time.After(netnstest.Patience(10 * time.Second)):
		t.Fatal("server did not see the second connection end")
	}
	st, err := e.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters.EndpointRepairs == 0 || st.Counters.RepairsGivenUp != 0 {
		t.Errorf("repairs %d, given up %d; want some and none", st.Counters.EndpointRepairs, st.Counters.RepairsGivenUp)
	}
}

// writeUntil writes counting bytes to c, hashing them into h, until stop
// is closed; it keeps writing for at least a second.
func writeUntil(c net.Conn, h hash.Hash, stop <-chan struct{}) error {
	buf := make([]byte, 16<<10)
	var n byte
	min := time.Now().Add(time.Second)
	for {
		select {
		case <-stop:
			if time.Now().After(min) {
				return nil
			}
		default:
		}
		for i := range buf {
			buf[i] = n
			n++
		}
		if _, err := c.Write(buf); err != nil {
			return err
		}
		h.Write(buf)
		time.Sleep(time.Millisecond)
	}
}

// TestRepairClosedSubflowKernel: a subflow that closed (here killed with
// ss -K) is not re-created by the in-kernel path manager; the engine's
// periodic check replaces the endpoint and brings it back.
func TestRepairClosedSubflowKernel(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8")
	ln := tb.Server.Listen("tcp4", netip.AddrPortFrom(l0.Server4, 0).String())
	serve(ln)
	e := startRepairEngine(t, tb.Client, time.Second, time.Second)
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0"}))
	enginetest.WaitReady(t, e)
	c, err := tb.Client.Dial("tcp4", l0.Client4.String(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// eth1's endpoint comes after the connection, which joins from it.
	e.SetHost(hostView(t, tb.Client, map[netip.Addr]string{l0.Client4: "eth0", l1.Client4: "eth1"}))
	local := unmap(c.LocalAddr().(*net.TCPAddr).AddrPort())
	eth1 := func() string {
		if !hasSubflowFrom(t, tb.Client, local, l1.Client4) {
			return "no subflow from " + l1.Client4.String()
		}
		return ""
	}
	enginetest.Poll(t, "eth1 subflow", eth1)
	tb.Client.MustExec("ss", "-K", "-t", "src", l1.Client4.String())
	if eth1() == "" {
		t.Fatal("the killed subflow is still there")
	}
	enginetest.Poll(t, "eth1 subflow back", eth1)
	st, err := e.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters.EndpointRepairs == 0 {
		t.Errorf("repairs %d, want some", st.Counters.EndpointRepairs)
	}
}
