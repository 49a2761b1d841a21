package sockdiag_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/ownertest"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	ownertest.RunChild()
	os.Exit(m.Run())
}

// owner is what sock_diag says of a socket's owner.
type owner struct {
	UID      uint32
	CgroupID uint64
}

// TestOwner: an MPTCP socket reports the uid and the cgroup v2 of the
// process that created it: two clients of different uids in different
// cgroups, and, on the server side, the connections accepted by a
// listener owned by a third uid in a third cgroup report the listener's
// owner. The walk and the lookup by token agree.
func TestOwner(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	cg := ownertest.NewCgroups(t)
	a := cg.New("a.service")
	b := cg.New("b.service")
	srvCg := cg.New("srv.service")
	srvSub := cg.New("srv.service/worker")

	ln := ownertest.Listen(t, tb.Server, ownertest.Owner{UID: 4242, GID: 4242, Cgroup: srvSub}, ":0")
	raddr := netip.AddrPortFrom(tb.Links[0].Server4, ln.Addr.Port())
	c1 := ownertest.Dial(t, tb.Client, ownertest.Owner{UID: 65534, GID: 65534, Cgroup: a}, raddr)
	c2 := ownertest.Dial(t, tb.Client, ownertest.Owner{UID: 4243, GID: 4243, Cgroup: b}, raddr)

	cli := dialDiag(t, tb.Client, 0)
	want := map[netip.AddrPort]owner{
		c1.Addr: {65534, ownertest.ID(t, a)},
		c2.Addr: {4243, ownertest.ID(t, b)},
	}
	got := map[netip.AddrPort]owner{}
	for _, c := range connections(t, cli) {
		got[c.Local] = owner{c.UID, c.CgroupID}
		if _, ok := want[c.Local]; !ok {
			continue
		}
		one, err := cli.Connection(c.Token)
		if err != nil {
			t.Fatalf("Connection(%08x): %v", c.Token, err)
		}
		if o := (owner{one.UID, one.CgroupID}); o != got[c.Local] {
			t.Errorf("Connection(%08x) owner %+v, the walk's %+v", c.Token, o, got[c.Local])
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("client connections' owners (-want +got):\n%s", diff)
	}

	// The server side: the listener and the two connections it accepted.
	srv := dialDiag(t, tb.Server, 0)
	lnDiag := dialDiag(t, tb.Server, sockdiag.StateMask(sockdiag.StateListen))
	srvOwner := owner{4242, ownertest.ID(t, srvSub)}
	wantSrv := map[string]owner{"listener": srvOwner, fmt.Sprint(c1.Addr): srvOwner, fmt.Sprint(c2.Addr): srvOwner}
	gotSrv := map[string]owner{}
	for _, c := range connections(t, lnDiag) {
		if c.Local.Port() == ln.Addr.Port() {
			gotSrv["listener"] = owner{c.UID, c.CgroupID}
		}
	}
	for _, c := range connections(t, srv) {
		gotSrv[fmt.Sprint(c.Remote)] = owner{c.UID, c.CgroupID}
	}
	if diff := cmp.Diff(wantSrv, gotSrv); diff != "" {
		t.Errorf("server sockets' owners (-want +got):\n%s", diff)
	}
	if id := ownertest.ID(t, srvCg); id == srvOwner.CgroupID {
		t.Fatalf("the listener's cgroup and its parent have the same id %d", id)
	}
}

// TestTCPSockets: the plain TCP sockets of a cgroup are listed with its
// id, a listener's and the connection it accepted; an MPTCP listener of
// another cgroup and its connection's subflows, on both sides, are not.
func TestTCPSockets(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	cg := ownertest.NewCgroups(t)
	plain := cg.New("plain.service")
	forced := cg.New("forced.service")
	tcpLn := ownertest.ListenTCP(t, tb.Server, ownertest.Owner{UID: 4242, GID: 4242, Cgroup: plain}, ":0")
	mpLn := ownertest.Listen(t, tb.Server, ownertest.Owner{UID: 4243, GID: 4243, Cgroup: forced}, ":0")
	mp := ownertest.Dial(t, tb.Client, ownertest.Owner{UID: 4244, GID: 4244, Cgroup: forced},
		netip.AddrPortFrom(tb.Links[0].Server4, mpLn.Addr.Port()))
	var tcp net.Conn
	if err := tb.Client.Do(func() error {
		var d net.Dialer
		d.SetMultipathTCP(false)
		var err error
		tcp, err = d.Dial("tcp4", netip.AddrPortFrom(tb.Links[0].Server4, tcpLn.Addr.Port()).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcp.Close() })

	type sock struct {
		Local    uint16
		State    string
		UID      uint32
		CgroupID uint64
	}
	plainID, forcedID := ownertest.ID(t, plain), ownertest.ID(t, forced)
	want := []sock{
		{tcpLn.Addr.Port(), "LISTEN", 4242, plainID},
		{tcpLn.Addr.Port(), "ESTAB", 4242, plainID},
	}
	srv := dialDiag(t, tb.Server, 0)
	var got []sock
	enginetest.Poll(t, "the server's plain TCP sockets", func() string {
		got = nil
		if err := srv.TCPSockets(func(s *sockdiag.TCPSocket) error {
			if s.CgroupID == plainID || s.CgroupID == forcedID {
				got = append(got, sock{s.Local.Port(), sockdiag.StateName(s.State), s.UID, s.CgroupID})
			}
			return nil
		}); err != nil {
			t.Fatalf("TCPSockets: %v", err)
		}
		return cmp.Diff(want, got)
	})
	cli := dialDiag(t, tb.Client, 0)
	if err := cli.TCPSockets(func(s *sockdiag.TCPSocket) error {
		if s.Local == mp.Addr || s.CgroupID == forcedID {
			t.Errorf("the MPTCP connection's subflow is listed as a plain TCP socket: %+v", s)
		}
		return nil
	}); err != nil {
		t.Fatalf("TCPSockets: %v", err)
	}
}

// dialDiag opens a sock_diag client in h for the states (0: the
// default), closed at cleanup.
func dialDiag(t *testing.T, h *netnstest.Host, states uint32) *sockdiag.Client {
	t.Helper()
	c, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS(), States: states})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestOwnerAccept: a connection waiting in its listener's queue reports
// the listener's uid; once accepted, the fsuid of the thread that
// accepted it (the kernel's sock_graft), while its cgroup stays the
// listener's.
func TestOwnerAccept(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 1)
	ln := tb.Server.ListenAs(4242, "tcp4", ":0")
	raddr := netip.AddrPortFrom(tb.Links[0].Server4, addrPort(ln.Addr()).Port())
	c, err := tb.Client.Dial("tcp4", "", raddr.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	local := addrPort(c.LocalAddr())
	srv := dialDiag(t, tb.Server, 0)
	// inode is the server-side connection's socket inode: 0 until it is
	// accepted and has a file.
	var inode uint32
	serverSide := func() (owner, bool) {
		for _, cn := range connections(t, srv) {
			if cn.Remote == local {
				inode = cn.Inode
				return owner{cn.UID, cn.CgroupID}, true
			}
		}
		return owner{}, false
	}
	// Before Linux 6.17 the kernel reports root as the owner of a
	// socket that has no file yet (sock_i_uid).
	wantQueued := uint32(4242)
	if !netnstest.KernelAtLeast(6, 17) {
		netnstest.Degraded(t, "a connection nobody accepted yet is owned by root before Linux 6.17")
		wantQueued = 0
	}
	var queued owner
	enginetest.Poll(t, "the server-side connection", func() string {
		var listed bool
		queued, listed = serverSide()
		switch {
		case !listed:
			return "not listed yet"
		case queued.UID != wantQueued:
			return fmt.Sprintf("listed, owned by uid %d (cgroup %d), want %d", queued.UID, queued.CgroupID, wantQueued)
		}
		return ""
	})
	if inode != 0 {
		t.Errorf("queued connection's inode %d, want 0: nobody accepted it", inode)
	}

	type acceptResult struct {
		conn net.Conn
		err  error
	}
	accepted := make(chan acceptResult, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		unix.Setfsuid(4244)
		defer unix.Setfsuid(0)
		a, err := ln.Accept()
		accepted <- acceptResult{a, err}
	}()
	a := <-accepted
	if a.err != nil {
		t.Fatal(a.err)
	}
	t.Cleanup(func() { _ = a.conn.Close() })
	if got, _ := serverSide(); got != (owner{4244, queued.CgroupID}) || inode == 0 {
		t.Errorf("accepted connection's owner %+v, inode %d; want uid 4244 (the accepting thread's fsuid), the listener's cgroup %d and an inode", got, inode, queued.CgroupID)
	}
}

// BenchmarkConnectionByToken measures the lookup of one connection by
// its token, the sock_diag request behind a connection's owner (rules
// by unit or uid). It needs root.
func BenchmarkConnectionByToken(b *testing.B) {
	tb := netnstest.NewTestbed(b, 1)
	ln := tb.Server.Listen("tcp4", ":0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.Cleanup(func() { _ = c.Close() })
		}
	}()
	c, err := tb.Client.Dial("tcp4", "", netip.AddrPortFrom(tb.Links[0].Server4, addrPort(ln.Addr()).Port()).String())
	if err != nil {
		b.Fatal(err)
	}
	diag, err := sockdiag.Dial(&sockdiag.Config{NetNS: tb.Client.NetNS()})
	if err != nil {
		b.Fatal(err)
	}
	defer diag.Close()
	var token uint32
	for _, cn := range connections(b, diag) {
		if cn.Local == addrPort(c.LocalAddr()) {
			token = cn.Token
		}
	}
	if token == 0 {
		b.Fatal("the connection is not listed")
	}
	for b.Loop() {
		if _, err := diag.Connection(token); err != nil {
			b.Fatal(err)
		}
	}
}
