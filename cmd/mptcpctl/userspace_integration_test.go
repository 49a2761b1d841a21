package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// counter returns the MPTcpExt counter name of h (nstat -az).
func counter(t *testing.T, h *netnstest.Host, name string) int {
	t.Helper()
	for line := range strings.Lines(h.MustExec("nstat", "-az", "MPTcpExt"+name)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MPTcpExt"+name {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("nstat: %q", line)
			}
			return n
		}
	}
	return 0
}

// token returns the token of h's only connection, which must be run by
// the path manager pm: mptcpctl connections tells it from Linux 6.9, and
// shows it unknown before.
func token(t *testing.T, h *netnstest.Host, pm string) string {
	t.Helper()
	conns := decode[[]connectionOut](t, mustCtl(t, h, "connections", "--json"))
	if len(conns) != 1 {
		t.Fatalf("%s: connections %+v, want one", h.Name(), conns)
	}
	if !netnstest.KernelHas(genl.CapConnAddrDump) {
		netnstest.Degraded(t, "no per-connection address dump (Linux %s): the connection's path manager is unknown", genl.CapConnAddrDump.Since)
		pm = "unknown"
	}
	if got := conns[0].PathManager; got != pm {
		t.Fatalf("%s: the connection's path manager is %s, want %s", h.Name(), got, pm)
	}
	return conns[0].Token
}

// refused runs mptcpctl, which must exit 1 with an error that has want in it.
func refused(t *testing.T, h *netnstest.Host, want string, args ...string) {
	t.Helper()
	r := ctl(t, h, args...)
	if r.code != exitRefused || !strings.Contains(r.stderr, want) {
		t.Errorf("mptcpctl %s: exit %d, stderr %q; want exit %d with %q", strings.Join(args, " "), r.code, r.stderr, exitRefused, want)
	}
}

// follow runs mptcpctl monitor in h until the test ends, and returns once
// it is subscribed to the path manager's events: the kernel accepts joins
// to a userspace-PM connection only while a program follows them
// (mptcp_userspace_pm_active), as its daemon would.
func follow(t *testing.T, h *netnstest.Host) {
	t.Helper()
	var out, errb syncbuf.Buffer
	a := newApp(&out, &errb)
	ready, done := make(chan struct{}), make(chan int, 1)
	a.subscribed = func() { close(ready) }
	go func() { done <- a.execute(t.Context(), []string{"-n", h.Name(), "monitor"}) }()
	t.Cleanup(func() { <-done })
	select {
	case <-ready:
	case code := <-done:
		t.Fatalf("monitor in %s exited with %d: %s", h.Name(), code, errb.String())
	}
}

// TestUserspacePMByHand drives a userspace-PM connection by hand: the
// client announces an address and withdraws it (the server counts the
// ADD_ADDR and the RM_ADDR), creates a subflow over its second link, makes
// it backup and destroys it; every refusal is the kernel's own text, exit
// 1. Both ends run the userspace PM, the server followed by a monitor so
// that it accepts the join. The server announces to its client too: the
// client counts the ADD_ADDR.
func TestUserspacePMByHand(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	tb.Server.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
	mustCtl(t, tb.Client, "pm", "userspace")
	mustCtl(t, tb.Server, "pm", "userspace")
	follow(t, tb.Server)
	mptcpPair(t, tb, "tcp4", l0.Server4)
	tok := token(t, tb.Client, "userspace")

	// Announce and withdraw.
	if out := mustCtl(t, tb.Client, "connections", "announce", tok, l1.Client4.String(), "id", "5"); out != "" {
		t.Errorf("announce printed %q", out)
	}
	waitFor(t, "the server received the ADD_ADDR", func() bool { return counter(t, tb.Server, "AddAddr") == 1 })
	announce6 := []string{"connections", "announce", tok, l1.Client6.String(), "id", "6"}
	if netnstest.KernelHas(genl.CapConnAddrDump) {
		addrs := decode[[]endpointOut](t, mustCtl(t, tb.Client, append([]string{"--json"}, announce6...)...))
		var ids []string
		for _, a := range addrs {
			ids = append(ids, fmt.Sprintf("%d %s %v", a.ID, a.Address, a.Flags))
		}
		if !strings.Contains(strings.Join(ids, "|"), fmt.Sprintf("5 %s [signal]", l1.Client4)) ||
			!strings.Contains(strings.Join(ids, "|"), fmt.Sprintf("6 %s [signal]", l1.Client6)) {
			t.Errorf("announce --json printed the addresses %q, want ids 5 and 6 signalled", ids)
		}
	} else {
		netnstest.Degraded(t, "no per-connection address dump (Linux %s): announce --json is refused before announcing", genl.CapConnAddrDump.Since)
		refused(t, tb.Client, "nothing was changed; run it without --json", append([]string{"--json"}, announce6...)...)
		mustCtl(t, tb.Client, announce6...)
	}
	refused(t, tb.Client, "did not match address and id", "connections", "announce", tok, l0.Client4.String(), "id", "5")
	mustCtl(t, tb.Client, "connections", "remove", tok, "id", "6")
	waitFor(t, "the server received the RM_ADDR", func() bool { return counter(t, tb.Server, "RmAddr") == 1 })
	if netnstest.KernelAtLeast(6, 15) {
		refused(t, tb.Client, "address with id 9 not found", "connections", "remove", tok, "id", "9")
	} else {
		netnstest.Degraded(t, "before Linux 6.15 an unknown id is \"address with specified id not found\"")
		refused(t, tb.Client, "address with specified id not found", "connections", "remove", tok, "id", "9")
	}
	refused(t, tb.Client, "invalid token", "connections", "remove", "feedf00d", "id", "5")

	// Create, prioritise and destroy a subflow, from the address
	// announced as id 5: the kernel wants that id, mptcpctl finds it
	// (Linux 6.9; before, it must be given, and the subflow can be
	// neither bound to a device nor created backup).
	remote := netip.AddrPortFrom(l1.Server4, 8080).String()
	create := []string{"subflows", "create", tok, l1.Client4.String(), remote}
	if netnstest.KernelHas(genl.CapSubflowFlags) {
		mustCtl(t, tb.Client, append(create, "dev", l1.ClientIf)...)
	} else {
		netnstest.Degraded(t, "before Linux %s the kernel lists no connection's address ids, ignores dev and backup: both refused, the id given", genl.CapSubflowFlags.Since)
		refused(t, tb.Client, "nothing was changed", append(create, "dev", l1.ClientIf)...)
		refused(t, tb.Client, "nothing was changed", append(create, "backup")...)
		refused(t, tb.Client, "by an id that Linux "+netnstest.KernelRelease()+" cannot list", create...)
		mustCtl(t, tb.Client, append(create, "id", "5")...)
	}
	var local string
	waitFor(t, "the new subflow", func() bool {
		groups := decode[[]subflowGroupOut](t, mustCtl(t, tb.Client, "subflows", tok, "--json"))
		for _, sf := range groups[0].Subflows {
			if strings.HasPrefix(sf.Local, l1.Client4.String()+":") && sf.Remote == remote && sf.State == "established" {
				if sf.LocalID != 5 {
					t.Errorf("the subflow from %s has local id %d, want 5, the address's", sf.Local, sf.LocalID)
				}
				local = sf.Local
				return true
			}
		}
		return false
	})
	refused(t, tb.Client, "did not match address and id", "subflows", "create", tok, l1.Client4.String(), remote, "id", "9")
	groups := decode[[]subflowGroupOut](t, mustCtl(t, tb.Client, "--json", "subflows", "backup", tok, l1.Client4.String(), remote, "on"))
	backup := false
	for _, sf := range groups[0].Subflows {
		backup = backup || (sf.Local == local && sf.Backup)
	}
	if !backup {
		t.Errorf("subflows backup --json printed %+v, want %s backup", groups, local)
	}
	refused(t, tb.Client, "subflow not found", "subflows", "destroy", tok, l1.Client4.String()+":1", remote)
	mustCtl(t, tb.Client, "subflows", "destroy", tok, local, remote)
	waitFor(t, "the subflow closed", func() bool {
		groups := decode[[]subflowGroupOut](t, mustCtl(t, tb.Client, "subflows", tok, "--json"))
		for _, sf := range groups[0].Subflows {
			if sf.Local == local {
				return false
			}
		}
		return true
	})
	r := ctl(t, tb.Client, "subflows", "destroy", tok, l1.Client4.String(), remote)
	if r.code != exitUsage || !strings.Contains(r.stderr, "the port is missing") {
		t.Errorf("destroy without the local port: exit %d, stderr %q", r.code, r.stderr)
	}

	// The server announces to the client, which counts what it received.
	srvTok := token(t, tb.Server, "userspace")
	before := counter(t, tb.Client, "AddAddr")
	mustCtl(t, tb.Server, "connections", "announce", srvTok, l1.Server4.String(), "id", "7", "port", "8080")
	waitFor(t, "the client received the server's ADD_ADDR", func() bool { return counter(t, tb.Client, "AddAddr") == before+1 })
}

// TestUserspaceCommandsKernelPM: on a connection the in-kernel path
// manager runs, every userspace command is refused with the kernel's
// text and changes nothing.
func TestUserspaceCommandsKernelPM(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	l0, l1 := tb.Links[0], tb.Links[1]
	mptcpPair(t, tb, "tcp4", l0.Server4)
	tok := token(t, tb.Client, "kernel")
	remote := netip.AddrPortFrom(l0.Server4, 8080).String()
	for _, args := range [][]string{
		{"connections", "announce", tok, l1.Client4.String(), "id", "5"},
		{"connections", "remove", tok, "id", "5"},
		{"subflows", "create", tok, l1.Client4.String(), remote},
		{"subflows", "destroy", tok, l1.Client4.String() + ":1000", remote},
	} {
		refused(t, tb.Client, "userspace PM not selected", args...)
	}
	backup := []string{"subflows", "backup", tok, l0.Client4.String(), remote, "on"}
	if netnstest.KernelAtLeast(6, 9) {
		refused(t, tb.Client, "userspace PM not selected", backup...)
	} else {
		netnstest.Degraded(t, "before Linux 6.9 the kernel refuses a backup change on a kernel-PM connection without a text")
		refused(t, tb.Client, "subflow not found, or the connection is not run by the userspace path manager", backup...)
	}
	if n := len(decode[[]subflowGroupOut](t, mustCtl(t, tb.Client, "subflows", tok, "--json"))[0].Subflows); n != 1 {
		t.Errorf("the connection has %d subflows after the refused commands, want 1", n)
	}
}
