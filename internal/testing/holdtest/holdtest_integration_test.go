package holdtest_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/holdtest"
)

// waitFor bounds every wait for a connection.
var waitFor = netnstest.Patience(30 * time.Second)

func TestHoldConns(t *testing.T) { holdtest.Child(t) }

// TestStart: the child listens on the address given, holds the
// connections dialled to it, over IPv4 and IPv6, says how many, and
// closes them when the test that started it ends: each reads end of file,
// not a reset.
func TestStart(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "hold")
	for _, tt := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		var conns []net.Conn
		t.Run(tt.network, func(t *testing.T) {
			holder := holdtest.Start(t, h.Command, tt.addr)
			raddr := netip.AddrPortFrom(netip.MustParseAddrPort(tt.addr).Addr(), holder.Port).String()
			holdtest.Dial(t, h.Dial, tt.network, raddr, 20)
			for range 3 {
				c, err := h.Dial(tt.network, "", raddr)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			// A connection still in the listen queue when the child exits
			// would be reset.
			enginetest.Poll(t, "the child holds the 23 connections", func() string {
				if n := holder.Held(t); n != 23 {
					return fmt.Sprintf("it holds %d", n)
				}
				return ""
			})
		})
		for i, c := range conns {
			readEOF(t, c, tt.network+" connection "+strconv.Itoa(i))
		}
	}
}

// TestAccept: Accept hands every connection to the handler and holds it
// until Close, which closes it.
func TestAccept(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "accept")
	ln := h.Listen("tcp4", "127.0.0.1:0")
	got := make(chan net.Conn, 1)
	held := holdtest.Accept(ln, func(c net.Conn) { got <- c })
	c, err := h.Dial("tcp4", "", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(waitFor):
		t.Fatalf("no connection accepted after %v", waitFor)
	}
	held.Close()
	readEOF(t, c, "the connection")
}

// readEOF reads c until it ends, and fails the test unless it ends with
// the peer's close.
func readEOF(t *testing.T, c net.Conn, what string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(waitFor)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("%s: read %d bytes, %v; want the end of file", what, n, err)
	}
}
