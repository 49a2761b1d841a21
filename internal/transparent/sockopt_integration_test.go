//go:build linux

package transparent_test

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// sockopt is one socket option a program may set.
type sockopt struct {
	name         string
	level, opt   int
	value        int    // for integer options
	bytes        string // for string options, when not empty
	linger, tied bool   // SO_LINGER's struct; tied: SO_BINDTODEVICE "lo"
}

// sockopts are the options tried on a TCP and an MPTCP socket.
var sockopts = []sockopt{
	{name: "TCP_NODELAY", level: unix.IPPROTO_TCP, opt: unix.TCP_NODELAY, value: 1},
	{name: "TCP_MAXSEG", level: unix.IPPROTO_TCP, opt: unix.TCP_MAXSEG, value: 1200},
	{name: "TCP_CORK", level: unix.IPPROTO_TCP, opt: unix.TCP_CORK, value: 1},
	{name: "TCP_KEEPIDLE", level: unix.IPPROTO_TCP, opt: unix.TCP_KEEPIDLE, value: 60},
	{name: "TCP_KEEPINTVL", level: unix.IPPROTO_TCP, opt: unix.TCP_KEEPINTVL, value: 10},
	{name: "TCP_KEEPCNT", level: unix.IPPROTO_TCP, opt: unix.TCP_KEEPCNT, value: 3},
	{name: "TCP_SYNCNT", level: unix.IPPROTO_TCP, opt: unix.TCP_SYNCNT, value: 3},
	{name: "TCP_LINGER2", level: unix.IPPROTO_TCP, opt: unix.TCP_LINGER2, value: 10},
	{name: "TCP_DEFER_ACCEPT", level: unix.IPPROTO_TCP, opt: unix.TCP_DEFER_ACCEPT, value: 5},
	{name: "TCP_WINDOW_CLAMP", level: unix.IPPROTO_TCP, opt: unix.TCP_WINDOW_CLAMP, value: 65535},
	{name: "TCP_QUICKACK", level: unix.IPPROTO_TCP, opt: unix.TCP_QUICKACK, value: 1},
	{name: "TCP_CONGESTION", level: unix.IPPROTO_TCP, opt: unix.TCP_CONGESTION, bytes: "cubic"},
	{name: "TCP_THIN_LINEAR_TIMEOUTS", level: unix.IPPROTO_TCP, opt: unix.TCP_THIN_LINEAR_TIMEOUTS, value: 1},
	{name: "TCP_USER_TIMEOUT", level: unix.IPPROTO_TCP, opt: unix.TCP_USER_TIMEOUT, value: 10000},
	{name: "TCP_FASTOPEN", level: unix.IPPROTO_TCP, opt: unix.TCP_FASTOPEN, value: 5},
	{name: "TCP_FASTOPEN_CONNECT", level: unix.IPPROTO_TCP, opt: unix.TCP_FASTOPEN_CONNECT, value: 1},
	{name: "TCP_NOTSENT_LOWAT", level: unix.IPPROTO_TCP, opt: unix.TCP_NOTSENT_LOWAT, value: 16384},
	{name: "TCP_SAVE_SYN", level: unix.IPPROTO_TCP, opt: unix.TCP_SAVE_SYN, value: 1},
	{name: "TCP_INQ", level: unix.IPPROTO_TCP, opt: unix.TCP_INQ, value: 1},
	{name: "TCP_TX_DELAY", level: unix.IPPROTO_TCP, opt: unix.TCP_TX_DELAY, value: 10},
	{name: "SO_KEEPALIVE", level: unix.SOL_SOCKET, opt: unix.SO_KEEPALIVE, value: 1},
	{name: "SO_RCVBUF", level: unix.SOL_SOCKET, opt: unix.SO_RCVBUF, value: 1 << 16},
	{name: "SO_SNDBUF", level: unix.SOL_SOCKET, opt: unix.SO_SNDBUF, value: 1 << 16},
	{name: "SO_LINGER", level: unix.SOL_SOCKET, opt: unix.SO_LINGER, linger: true},
	{name: "SO_REUSEADDR", level: unix.SOL_SOCKET, opt: unix.SO_REUSEADDR, value: 1},
	{name: "SO_REUSEPORT", level: unix.SOL_SOCKET, opt: unix.SO_REUSEPORT, value: 1},
	{name: "SO_MARK", level: unix.SOL_SOCKET, opt: unix.SO_MARK, value: 7},
	{name: "SO_PRIORITY", level: unix.SOL_SOCKET, opt: unix.SO_PRIORITY, value: 3},
	{name: "SO_RCVLOWAT", level: unix.SOL_SOCKET, opt: unix.SO_RCVLOWAT, value: 10},
	{name: "SO_TIMESTAMP", level: unix.SOL_SOCKET, opt: unix.SO_TIMESTAMP, value: 1},
	{name: "SO_ZEROCOPY", level: unix.SOL_SOCKET, opt: unix.SO_ZEROCOPY, value: 1},
	{name: "SO_BINDTODEVICE", level: unix.SOL_SOCKET, opt: unix.SO_BINDTODEVICE, tied: true},
	{name: "IP_TOS", level: unix.IPPROTO_IP, opt: unix.IP_TOS, value: 0x10},
	{name: "IP_TTL", level: unix.IPPROTO_IP, opt: unix.IP_TTL, value: 32},
	{name: "IP_FREEBIND", level: unix.IPPROTO_IP, opt: unix.IP_FREEBIND, value: 1},
	{name: "IP_TRANSPARENT", level: unix.IPPROTO_IP, opt: unix.IP_TRANSPARENT, value: 1},
	{name: "IP_BIND_ADDRESS_NO_PORT", level: unix.IPPROTO_IP, opt: unix.IP_BIND_ADDRESS_NO_PORT, value: 1},
	{name: "IP_RECVERR", level: unix.IPPROTO_IP, opt: unix.IP_RECVERR, value: 1},
	{name: "IP_MTU_DISCOVER", level: unix.IPPROTO_IP, opt: unix.IP_MTU_DISCOVER, value: 0},
}

// refusedOptions are the options an MPTCP socket refuses where a TCP
// socket takes them, as measured on Linux refusedOn and documented in
// docs/transparent.md: "always", or "connected" (taken before connect,
// refused after).
var refusedOptions = map[string]string{
	"TCP_SYNCNT": "always", "TCP_LINGER2": "always", "TCP_WINDOW_CLAMP": "always",
	"TCP_QUICKACK": "always", "TCP_THIN_LINEAR_TIMEOUTS": "always", "TCP_USER_TIMEOUT": "always",
	"TCP_SAVE_SYN": "always", "TCP_TX_DELAY": "always", "SO_ZEROCOPY": "always",
	"IP_TTL": "always", "IP_RECVERR": "always", "IP_MTU_DISCOVER": "always",
	"SO_REUSEADDR": "connected", "SO_REUSEPORT": "connected", "SO_BINDTODEVICE": "connected",
	"IP_FREEBIND": "connected", "IP_TRANSPARENT": "connected", "IP_BIND_ADDRESS_NO_PORT": "connected",
}

// refusedOn is the kernel release (major.minor) refusedOptions was
// measured on; on others the test reports differences without failing.
const refusedOn = "6.18"

// set sets o on fd.
func (o sockopt) set(fd int) error {
	switch {
	case o.bytes != "":
		return unix.SetsockoptString(fd, o.level, o.opt, o.bytes)
	case o.linger:
		return unix.SetsockoptLinger(fd, o.level, o.opt, &unix.Linger{Onoff: 1})
	case o.tied:
		return unix.SetsockoptString(fd, o.level, o.opt, "lo")
	}
	return unix.SetsockoptInt(fd, o.level, o.opt, o.value)
}

// refused returns the options protocol's socket refuses, connected to ln
// or not.
func refused(t *testing.T, h *netnstest.Host, protocol int, ln net.Addr) []string {
	t.Helper()
	var out []string
	err := h.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, protocol)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if ln != nil {
			a := ln.(*net.TCPAddr)
			if err := unix.Connect(fd, &unix.SockaddrInet4{Port: a.Port, Addr: [4]byte(a.IP.To4())}); err != nil {
				return fmt.Errorf("connect: %w", err)
			}
		}
		for _, o := range sockopts {
			if err := o.set(fd); err != nil {
				out = append(out, o.name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSocketOptions measures which options an MPTCP socket refuses where
// a TCP socket takes them, before and after connect, and compares them
// with what docs/transparent.md says a program under mptcpctl run sees.
func TestSocketOptions(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "opts")
	ln := h.Listen("tcp4", "127.0.0.1:0")
	got := map[string]string{}
	for _, connected := range []bool{false, true} {
		var addr net.Addr
		if connected {
			addr = ln.Addr()
		}
		tcp := refused(t, h, unix.IPPROTO_TCP, addr)
		for _, name := range refused(t, h, unix.IPPROTO_MPTCP, addr) {
			if slices.Contains(tcp, name) || got[name] != "" {
				continue
			}
			got[name] = "always"
			if connected {
				got[name] = "connected"
			}
		}
	}
	var diff []string
	for _, o := range sockopts {
		if got[o.name] != refusedOptions[o.name] {
			diff = append(diff, fmt.Sprintf("%s: measured %q, documented %q", o.name, got[o.name], refusedOptions[o.name]))
		}
	}
	var u unix.Utsname
	_ = unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	switch {
	case len(diff) == 0:
	case strings.HasPrefix(release, refusedOn+"."):
		t.Errorf("MPTCP's refused options differ from docs/transparent.md on Linux %s:\n%s", release, strings.Join(diff, "\n"))
	default:
		t.Logf("Linux %s differs from the %s measurement (docs/transparent.md):\n%s", release, refusedOn, strings.Join(diff, "\n"))
	}

	doc, err := os.ReadFile("../../docs/transparent.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range refusedOptions {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/transparent.md does not name %s", name)
		}
	}
}
