//go:build linux

package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	_ "github.com/mptcpgod/mptcpgod/plugins/all"
)

// waitLimit bounds a wait for the kernel or the daemon that is not a poll
// (a read, a context); they answer in milliseconds.
var waitLimit = netnstest.Patience(10 * time.Second)

// endpoints returns the namespace's endpoints as `ip mptcp endpoint show`
// prints them, by address: "198.51.100.1 id 100 subflow fullmesh dev eth1".
func endpoints(t *testing.T, h *netnstest.Host) map[string]string {
	t.Helper()
	out := h.MustExec("ip", "mptcp", "endpoint", "show")
	eps := map[string]string{}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if f := strings.Fields(line); len(f) > 0 {
			eps[f[0]] = line
		}
	}
	return eps
}

// waitUsable waits until the daemon's engine counts addr among the
// usable addresses, or not.
func waitUsable(t *testing.T, r *daemontest.InProcess, addr netip.Addr, usable bool) {
	t.Helper()
	enginetest.Poll(t, fmt.Sprintf("%s usable: %v", addr, usable), func() string {
		st, err := r.Status(context.Background())
		if err != nil {
			return err.Error()
		}
		if slices.Contains(st.UsableAddrs, addr) == usable {
			return ""
		}
		return fmt.Sprint(st.UsableAddrs)
	})
}

// waitEndpoints waits until h has endpoints for addrs in mptcpgod's id
// range: a connection established before the in-kernel path manager has
// an endpoint gets no subflow from it.
func waitEndpoints(t *testing.T, h *netnstest.Host, addrs ...netip.Addr) {
	t.Helper()
	enginetest.Poll(t, fmt.Sprintf("endpoints for %v", addrs), func() string {
		eps := endpoints(t, h)
		for _, a := range addrs {
			if !owned(eps[a.String()]) {
				return fmt.Sprint(eps)
			}
		}
		return ""
	})
}

// owned reports whether an `ip mptcp endpoint show` line has an id in
// mptcpgod's default range.
func owned(line string) bool {
	m := epID.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	id, _ := strconv.Atoi(m[1])
	return id >= 100 && id <= 199
}

// epID is the id in an `ip mptcp endpoint show` line.
var epID = regexp.MustCompile(`\bid (\d+)\b`)

// ssTokens matches the MPTCP part of `ss -ti`: the remote and the local
// token and ids ("token:0000(id:0)/db1dfe16(id:0)").
var (
	ssMskToken = regexp.MustCompile(`\btoken:([0-9a-f]+)`)
	ssSubToken = regexp.MustCompile(`tcp-ulp-mptcp .*token:[0-9a-f]+\(id:\d+\)/([0-9a-f]+)\(id:\d+\)`)
)

// paths returns the established subflows of h's MPTCP connection whose
// initial subflow has the local address and port conn, as
// "LOCALADDR->REMOTE:PORT", sorted, from ss.
func paths(t *testing.T, h *netnstest.Host, conn netip.AddrPort) []string {
	t.Helper()
	return meshes(t, h)[conn]
}

// meshes returns paths for every MPTCP connection of h, by the local
// address and port of its initial subflow.
func meshes(t *testing.T, h *netnstest.Host) map[netip.AddrPort][]string {
	t.Helper()
	byToken := map[string]netip.AddrPort{}
	for _, rec := range h.SSRecords("-M", "-i", "state", "established") {
		m := ssMskToken.FindStringSubmatch(rec)
		local, _, err := netnstest.SSAddrs(rec)
		if m == nil || err != nil {
			continue
		}
		byToken[m[1]] = local
	}
	out := map[netip.AddrPort][]string{}
	for _, rec := range h.SSRecords("-t", "-i", "state", "established") {
		m := ssSubToken.FindStringSubmatch(rec)
		if m == nil {
			continue
		}
		conn, ok := byToken[m[1]]
		if !ok {
			continue
		}
		local, remote, err := netnstest.SSAddrs(rec)
		if err != nil {
			t.Fatalf("ss: %v", err)
		}
		out[conn] = append(out[conn], local.Addr().String()+"->"+remote.String())
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// pathSet returns every local address to every remote, sorted, as paths
// prints them.
func pathSet(locals []netip.Addr, remotes ...netip.AddrPort) []string {
	var ps []string
	for _, l := range locals {
		for _, r := range remotes {
			ps = append(ps, l.String()+"->"+r.String())
		}
	}
	slices.Sort(ps)
	return ps
}

// waitPaths waits until the connection's subflows are exactly want, and
// fails with what explains a missing subflow (netnstest's MPTCPDump) when
// they are not.
func waitPaths(t *testing.T, h *netnstest.Host, conn netip.AddrPort, want []string) {
	t.Helper()
	enginetest.Poll(t, fmt.Sprintf("subflows of %s: want %v", conn, want), func() string {
		if got := paths(t, h, conn); !slices.Equal(got, want) {
			return fmt.Sprintf("have %v\n%s", got, h.MPTCPDump())
		}
		return ""
	})
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

// dial opens an MPTCP connection from h to addr that sends a little data
// every few milliseconds until the test ends, and returns the local
// address and port of its initial subflow. The test fails if a write
// fails: no connection may break.
func dial(t *testing.T, h *netnstest.Host, addr fmt.Stringer) netip.AddrPort {
	t.Helper()
	c, err := h.Dial("tcp", "", addr.String())
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if mp, err := tc.MultipathTCP(); err != nil || !mp {
			t.Fatalf("connection to %s is not MPTCP (%v)", addr, err)
		}
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	done := make(chan struct{})
	broke := make(chan error, 1)
	go func() {
		defer close(broke)
		buf := make([]byte, 512)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				broke <- err
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		if err := <-broke; err != nil {
			t.Errorf("connection %s to %s broke: %v", local, addr, err)
		}
		_ = c.Close()
	})
	return local
}

// addrPort returns ln's address as a netip.AddrPort.
func addrPort(ln net.Listener) netip.AddrPort {
	ap := netip.MustParseAddrPort(ln.Addr().String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// config returns a daemon configuration that uses the testbeds' veth
// links, in mode, with more TOML appended. The control socket is off:
// parallel daemons would share its default path (cmd/mptcpctl's tests
// cover it).
func config(mode string, more ...string) string {
	return fmt.Sprintf("mode = %q\nset_path_manager = true\n\n[control]\nsocket = \"\"\n\n[links]\ninclude_kinds = [\"virtual\"]\n%s",
		mode, strings.Join(more, "\n"))
}

// acceptJoins lets h's in-kernel path manager accept up to 8 subflows per
// connection, for a server without a daemon.
func acceptJoins(h *netnstest.Host) {
	h.MustExec("ip", "mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8")
}
