package genl_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"golang.org/x/sys/unix"
)

// userspaceBed is a testbed whose hosts both run the userspace PM, with a
// client and an event subscription on each, and one connection from the
// client's link-0 address to the server's link-0 address.
type userspaceBed struct {
	tb       *netnstest.Testbed
	fam      family
	cc, sc   *genl.Client
	cev, sev *eventLog
	ln       net.Listener
	srv      netip.AddrPort // the server's link-0 address and listening port
	c        *conn
}

func newUserspaceBed(t *testing.T, fam family, links int) *userspaceBed {
	t.Helper()
	b := &userspaceBed{tb: netnstest.NewTestbed(t, links), fam: fam}
	b.tb.Client.SetPathManager("userspace")
	b.tb.Server.SetPathManager("userspace")
	b.cc, b.sc = newClient(t, b.tb.Client), newClient(t, b.tb.Server)
	// The userspace PM accepts joins and ADD_ADDRs only while someone
	// listens to the events of the namespace.
	b.cev, b.sev = subscribe(t, b.cc, "client"), subscribe(t, b.sc, "server")
	var lnAddr netip.AddrPort
	b.ln, lnAddr = listen(t, b.tb.Server, fam.network)
	b.srv = netip.AddrPortFrom(fam.server(b.tb.Links[0]), lnAddr.Port())
	b.c = connect(t, b.tb.Client, b.tb.Server, fam.network, fam.client(b.tb.Links[0]), b.ln, b.srv)
	b.cev.waitEqual(t, genl.Event{Type: genl.EventEstablished, Token: b.c.clientToken, Local: b.c.clientAddr, Remote: b.c.serverAddr})
	b.sev.waitEqual(t, genl.Event{
		Type: genl.EventEstablished, Token: b.c.serverToken, Local: b.c.serverAddr, Remote: b.c.clientAddr,
		Flags: serverSide(t), ServerSide: true,
	})
	return b
}

// TestUserspaceFlow runs the userspace PM end to end: announce and remove
// an address, create a subflow (plain, and backup bound to a device), move
// data over both subflows, change the backup bit, destroy the subflow.
func TestUserspaceFlow(t *testing.T) {
	t.Parallel()
	for _, fam := range families {
		for _, variant := range []string{"plain", "backup+ifindex"} {
			t.Run(fam.name+"/"+variant, func(t *testing.T) {
				t.Parallel()
				b := newUserspaceBed(t, fam, 2)
				tb, c := b.tb, b.c
				backup := variant == "backup+ifindex"

				// The server announces its second address; the client
				// sees it with the connection's port.
				announced := genl.Endpoint{ID: 9, Addr: fam.server(tb.Links[1]), Flags: genl.FlagSignal}
				if err := b.sc.Announce(c.serverToken, announced); err != nil {
					t.Fatalf("Announce(%+v): %v", announced, err)
				}
				b.cev.waitEqual(t, genl.Event{
					Type: genl.EventAnnounced, Token: c.clientToken, RemoteID: announced.ID,
					Remote: netip.AddrPortFrom(announced.Addr, c.serverAddr.Port()),
				})
				if saddrs, ok := connAddrs(t, b.sc, c.serverToken); ok && !slices.Contains(saddrs, announced) {
					t.Errorf("server ConnectionAddrs = %+v, want it to contain the announced %+v", saddrs, announced)
				}

				// A subflow from the client's second address to the
				// server's first address. Without an id the kernel keeps
				// the local id 0; the variant gives one, asks for backup
				// and binds the subflow to the link's device.
				local := genl.Endpoint{Addr: fam.client(tb.Links[1])}
				var ifindex int32
				if backup {
					ifindex = ifIndex(t, tb.Client, tb.Links[1].ClientIf)
					local.ID, local.Flags, local.IfIndex = 7, genl.FlagBackup, ifindex
				}
				// Before 6.9 the kernel ignores the backup flag and the
				// device of a subflow it creates: the subflow is a
				// regular one, unbound.
				if backup && !netnstest.KernelHas(genl.CapSubflowFlags) {
					netnstest.Degraded(t, "backup and device of created subflows ignored before Linux %s", genl.CapSubflowFlags.Since)
					ifindex, backup = 0, false
				}
				if err := b.cc.CreateSubflow(c.clientToken, local, c.serverAddr); err != nil {
					t.Fatalf("CreateSubflow(%+v → %v): %v", local, c.serverAddr, err)
				}
				csub := b.cev.wait(t, "client sub_established", and(ofType(genl.EventSubEstablished, c.clientToken),
					func(ev genl.Event) bool { return ev.Local.Addr() == local.Addr }))
				// An event's backup bit is the peer's request
				// (subflow->backup): the client's own request shows on
				// the server's side, and in the client's sock_diag flags.
				wantC := genl.Event{
					Type: genl.EventSubEstablished, Token: c.clientToken, Local: csub.Local, Remote: c.serverAddr,
					LocalID: local.ID, RemoteID: 0, Backup: false, IfIndex: ifindex,
				}
				if diff := cmp.Diff(wantC, csub, cmpOpts); diff != "" {
					t.Errorf("client sub_established (-want +got):\n%s", diff)
				}
				ssub := b.sev.wait(t, "server sub_established", and(ofType(genl.EventSubEstablished, c.serverToken),
					func(ev genl.Event) bool { return ev.Remote == csub.Local }))
				wantS := genl.Event{
					Type: genl.EventSubEstablished, Token: c.serverToken, Local: c.serverAddr, Remote: csub.Local,
					LocalID: 0, RemoteID: csub.LocalID, Backup: backup,
				}
				if diff := cmp.Diff(wantS, ssub, cmpOpts); diff != "" {
					t.Errorf("server sub_established (-want +got):\n%s", diff)
				}

				// sock_diag sees two subflows with the token on both sides.
				subs := waitSubflows(t, tb.Client, c.clientToken, 2)
				if s := checkSubflowEvent(t, tb.Client, csub); strings.Contains(s.Flags, "b") != backup {
					t.Errorf("client sock_diag flags %q, want local backup (b) %v", s.Flags, backup)
				}
				if s := checkSubflowEvent(t, tb.Server, ssub); strings.Contains(s.Flags, "B") != backup {
					t.Errorf("server sock_diag flags %q, want remote backup (B) %v", s.Flags, backup)
				}
				if s := waitConnSubflows(t, tb.Client, c, 1); s.Subflows != 1 {
					t.Errorf("ss -M: %d extra subflows, want 1 (%+v)", s.Subflows, subs)
				}
				caddrs, ok := connAddrs(t, b.cc, c.clientToken)
				if ok && !slices.ContainsFunc(caddrs, func(ep genl.Endpoint) bool { return ep.Addr == local.Addr && ep.ID == csub.LocalID }) {
					t.Errorf("client ConnectionAddrs = %+v, want the subflow's address %v with id %d", caddrs, local.Addr, csub.LocalID)
				}

				c.transfer(t, 4<<20)

				// Flip the backup bit: MP_PRIO reaches the server.
				if err := b.cc.SetSubflowBackup(c.clientToken, csub.Local, csub.Remote, !backup); err != nil {
					t.Fatalf("SetSubflowBackup(%v): %v", !backup, err)
				}
				wantP := wantS
				wantP.Type, wantP.Backup = genl.EventSubPriority, !backup
				b.sev.waitEqual(t, wantP)
				if s := checkSubflowEvent(t, tb.Server, wantP); strings.Contains(s.Flags, "B") != !backup {
					t.Errorf("server sock_diag flags %q, want backup (B) %v", s.Flags, !backup)
				}

				// Destroy the subflow; the connection goes on.
				if err := b.cc.DestroySubflow(c.clientToken, csub.Local, csub.Remote); err != nil {
					t.Fatalf("DestroySubflow: %v", err)
				}
				closed := func(ev genl.Event) bool {
					return ev.Type == genl.EventSubClosed && ev.Token == c.clientToken && ev.Local == csub.Local && ev.Remote == csub.Remote
				}
				b.cev.wait(t, "client sub_closed", closed)
				left := waitSubflows(t, tb.Client, c.clientToken, 1)
				if left[0].Local != c.clientAddr {
					t.Errorf("subflow left %v→%v, want the initial %v→%v", left[0].Local, left[0].Remote, c.clientAddr, c.serverAddr)
				}
				c.transfer(t, 256<<10)

				// Withdraw the announced address.
				if err := b.sc.Remove(c.serverToken, announced.ID); err != nil {
					t.Fatalf("Remove(%d): %v", announced.ID, err)
				}
				b.cev.waitEqual(t, genl.Event{Type: genl.EventRemoved, Token: c.clientToken, RemoteID: announced.ID})

				_ = c.client.Close()
				_ = c.server.Close()
				b.cev.waitEqual(t, genl.Event{Type: genl.EventClosed, Token: c.clientToken})
				b.sev.waitEqual(t, genl.Event{Type: genl.EventClosed, Token: c.serverToken})
			})
		}
	}
}

// TestUserspaceErrors provokes the userspace PM's documented errors.
func TestUserspaceErrors(t *testing.T) {
	t.Parallel()
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			b := newUserspaceBed(t, fam, 3)
			tb, c := b.tb, b.c
			addr1, addr2 := fam.client(tb.Links[1]), fam.client(tb.Links[2])
			noSubflow := netip.AddrPortFrom(addr2, 40000)
			// Linux 6.15 ("mptcp: pm: improve error messages" and its
			// series) gave most of these their current texts.
			tests := []struct {
				name     string
				op       func() error
				errno    unix.Errno
				msg      string
				sentinel error
				older    []olderAnswer
			}{
				{
					name:  "announce with id 0",
					op:    func() error { return b.cc.Announce(c.clientToken, genl.Endpoint{Addr: addr1, Flags: genl.FlagSignal}) },
					errno: unix.EINVAL,
					msg:   "invalid addr id",
					older: []olderAnswer{{6, 15, unix.EINVAL, "invalid addr id or flags", nil}},
				},
				{
					name: "announce without signal",
					op: func() error {
						return b.cc.Announce(c.clientToken, genl.Endpoint{ID: 5, Addr: addr1, Flags: genl.FlagSubflow})
					},
					errno: unix.EINVAL,
					msg:   "invalid addr flags",
					older: []olderAnswer{{6, 15, unix.EINVAL, "invalid addr id or flags", nil}},
				},
				{
					name: "announce a used id with another address",
					op: func() error {
						if err := b.cc.Announce(c.clientToken, genl.Endpoint{ID: 5, Addr: addr1, Flags: genl.FlagSignal}); err != nil {
							t.Fatalf("first Announce: %v", err)
						}
						return b.cc.Announce(c.clientToken, genl.Endpoint{ID: 5, Addr: addr2, Flags: genl.FlagSignal})
					},
					errno:    unix.EINVAL,
					msg:      "did not match address and id",
					sentinel: genl.ErrAddrIDMismatch,
				},
				{
					name: "create a subflow with another address's id",
					op: func() error {
						return b.cc.CreateSubflow(c.clientToken, genl.Endpoint{ID: 5, Addr: addr2}, c.serverAddr)
					},
					errno:    unix.EINVAL,
					msg:      "did not match address and id",
					sentinel: genl.ErrAddrIDMismatch,
				},
				{
					name:     "remove an unknown id",
					op:       func() error { return b.cc.Remove(c.clientToken, 77) },
					errno:    unix.EINVAL,
					msg:      "address with id 77 not found",
					sentinel: os.ErrNotExist,
					older:    []olderAnswer{{6, 15, unix.EINVAL, "address with specified id not found", os.ErrNotExist}},
				},
				{
					name: "create a subflow with the signal flag",
					op: func() error {
						return b.cc.CreateSubflow(c.clientToken, genl.Endpoint{Addr: addr1, Flags: genl.FlagSignal}, c.serverAddr)
					},
					errno: unix.EINVAL,
					msg:   "invalid addr flags",
					// Before 6.9 the flags were not checked: the address
					// announced above with id 5 is refused for no id.
					older: []olderAnswer{{6, 9, unix.EINVAL, "did not match address and id", genl.ErrAddrIDMismatch}},
				},
				{
					name:     "destroy a subflow that does not exist",
					op:       func() error { return b.cc.DestroySubflow(c.clientToken, noSubflow, c.serverAddr) },
					errno:    unix.ESRCH,
					msg:      "subflow not found",
					sentinel: os.ErrNotExist,
					older:    []olderAnswer{{6, 15, unix.ESRCH, "", os.ErrNotExist}},
				},
				{
					name:     "backup on a subflow that does not exist",
					op:       func() error { return b.cc.SetSubflowBackup(c.clientToken, noSubflow, c.serverAddr, true) },
					errno:    unix.EINVAL,
					msg:      "subflow not found",
					sentinel: os.ErrNotExist,
					older:    []olderAnswer{{6, 15, unix.EINVAL, "", nil}},
				},
				{
					name:     "unknown token",
					op:       func() error { return b.cc.Remove(c.clientToken^0xffffffff, 1) },
					errno:    unix.EINVAL,
					msg:      "invalid token",
					sentinel: os.ErrNotExist,
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					errno, msg, sentinel := tt.errno, tt.msg, tt.sentinel
					if o, ok := olderKernel(tt.older); ok {
						netnstest.Degraded(t, "before Linux %d.%d the kernel answers %v %q", o.major, o.minor, o.errno, o.msg)
						errno, msg, sentinel = o.errno, o.msg, o.sentinel
					}
					wantKernelError(t, tt.op(), errno, msg, sentinel)
				})
			}

			// The PM is chosen when a connection is created: a connection
			// dialled after switching the client back to the kernel PM
			// refuses every userspace command, the first one still takes
			// them.
			tb.Client.SetPathManager("kernel")
			k := connect(t, tb.Client, tb.Server, fam.network, fam.client(tb.Links[0]), b.ln, b.srv)
			notSelected := []struct {
				name  string
				op    func() error
				older []olderAnswer
			}{
				{"announce", func() error {
					return b.cc.Announce(k.clientToken, genl.Endpoint{ID: 6, Addr: addr1, Flags: genl.FlagSignal})
				}, nil},
				{"remove", func() error { return b.cc.Remove(k.clientToken, 1) }, nil},
				{"create subflow", func() error {
					return b.cc.CreateSubflow(k.clientToken, genl.Endpoint{Addr: addr1}, k.serverAddr)
				}, nil},
				{"destroy subflow", func() error { return b.cc.DestroySubflow(k.clientToken, k.clientAddr, k.serverAddr) }, nil},
				{"set subflow backup", func() error {
					return b.cc.SetSubflowBackup(k.clientToken, k.clientAddr, k.serverAddr, true)
				}, []olderAnswer{{6, 9, unix.EINVAL, "", nil}}},
			}
			if netnstest.KernelHas(genl.CapConnAddrDump) {
				notSelected = append(notSelected, struct {
					name  string
					op    func() error
					older []olderAnswer
				}{"connection addresses", func() error { _, err := b.cc.ConnectionAddrs(k.clientToken); return err }, nil})
			}
			for _, ns := range notSelected {
				t.Run(ns.name+" on a kernel-PM connection", func(t *testing.T) {
					// Before 6.15 the text began with "invalid request; ",
					// but for SET_FLAGS, which has its own since 6.9.
					msg, errno := "userspace PM not selected", unix.EINVAL
					sentinel := error(genl.ErrNotUserspacePM)
					older := ns.older
					if older == nil {
						older = []olderAnswer{{6, 15, unix.EINVAL, "invalid request; userspace PM not selected", genl.ErrNotUserspacePM}}
					}
					if o, ok := olderKernel(older); ok {
						netnstest.Degraded(t, "before Linux %d.%d the kernel answers %v %q", o.major, o.minor, o.errno, o.msg)
						errno, msg, sentinel = o.errno, o.msg, o.sentinel
					}
					wantKernelError(t, ns.op(), errno, msg, sentinel)
				})
			}
			want := []genl.Endpoint{{ID: 5, Addr: addr1, Flags: genl.FlagSignal}}
			if addrs, ok := connAddrs(t, b.cc, c.clientToken); ok {
				if diff := cmp.Diff(want, addrs, cmpOpts); diff != "" {
					t.Errorf("ConnectionAddrs of the userspace connection (-want +got):\n%s", diff)
				}
			}

			// A backup change whose subflow does not exist still sets
			// backup on the local entry with the same address (the port
			// is ignored) before the kernel reports the error.
			quirk := netip.AddrPortFrom(addr1, 40000)
			err := b.cc.SetSubflowBackup(c.clientToken, quirk, c.serverAddr, true)
			if netnstest.KernelAtLeast(6, 15) {
				wantKernelError(t, err, unix.EINVAL, "subflow not found", os.ErrNotExist)
			} else {
				wantKernelError(t, err, unix.EINVAL, "", nil)
			}
			want[0].Flags |= genl.FlagBackup
			if addrs, ok := connAddrs(t, b.cc, c.clientToken); ok {
				if diff := cmp.Diff(want, addrs, cmpOpts); diff != "" {
					t.Errorf("ConnectionAddrs after a failed backup change (-want +got):\n%s", diff)
				}
			}

			// Nothing above disturbed the connections.
			c.pingPong(t)
			k.pingPong(t)
			if n := len(ssSubflows(t, tb.Client, c.clientToken)); n != 1 {
				t.Errorf("userspace connection has %d subflows after the errors, want 1", n)
			}
		})
	}
}

// connAddrs returns the local address list of the connection token, and
// whether the kernel can tell it (6.9). Older kernels ignore the token:
// there the client refuses with ErrUnsupported, which it checks.
func connAddrs(t *testing.T, c *genl.Client, token uint32) ([]genl.Endpoint, bool) {
	t.Helper()
	addrs, err := c.ConnectionAddrs(token)
	if !netnstest.KernelHas(genl.CapConnAddrDump) {
		netnstest.Degraded(t, "no per-connection address dump (Linux %s): ConnectionAddrs refuses", genl.CapConnAddrDump.Since)
		if !errors.Is(err, genl.ErrUnsupported) {
			t.Errorf("ConnectionAddrs(%08x) = %+v, %v; want ErrUnsupported", token, addrs, err)
		}
		return nil, false
	}
	if err != nil {
		t.Fatalf("ConnectionAddrs(%08x): %v", token, err)
	}
	return addrs, true
}
