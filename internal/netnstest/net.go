package netnstest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// DialTimeout bounds Dial, so a dial into a dead path fails in seconds
// instead of after the kernel's SYN retries (about two minutes); longer
// by $MPTCPGOD_TEST_PATIENCE (Patience).
var DialTimeout = Patience(5 * time.Second)

// Listen returns an MPTCP listener ("tcp", "tcp4" or "tcp6") on addr inside
// the namespace, closed at cleanup. The kernel falls back to plain TCP when
// MPTCP is disabled in the namespace (net.mptcp.enabled=0).
func (h *Host) Listen(network, addr string) net.Listener {
	h.t.Helper()
	return h.listen(-1, network, addr)
}

// ListenAs is Listen with the listener made, and owned, by the fsuid uid.
func (h *Host) ListenAs(uid int, network, addr string) net.Listener {
	h.t.Helper()
	return h.listen(uid, network, addr)
}

// listen opens the listener, as fsuid uid unless it is negative.
func (h *Host) listen(uid int, network, addr string) net.Listener {
	h.t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	var ln net.Listener
	err := h.Do(func() error {
		// Do runs fn on a thread of its own, whose fsuid is set
		// for the listener and then set back to what it was.
		if uid >= 0 {
			prev, err := unix.SetfsuidRetUid(uid)
			if err != nil {
				return fmt.Errorf("setfsuid %d: %w", uid, err)
			}
			defer func() { _ = unix.Setfsuid(prev) }()
		}
		var err error
		ln, err = lc.Listen(context.Background(), network, addr)
		return err
	})
	if err != nil {
		h.t.Fatalf("netnstest: listen %s %s in %s: %v", network, addr, h.name, err)
	}
	h.track(ln)
	return ln
}

// Dial opens an MPTCP connection from inside the namespace to raddr,
// sourced from laddr ("" lets the kernel choose; an address without a port
// gets an ephemeral one). It gives up after DialTimeout. The connection is
// closed at cleanup. Whether MPTCP was negotiated is
// conn.(*net.TCPConn).MultipathTCP().
func (h *Host) Dial(network, laddr, raddr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
	defer cancel()
	return h.DialContext(ctx, network, laddr, raddr)
}

// DialContext is Dial bounded by ctx instead of DialTimeout.
func (h *Host) DialContext(ctx context.Context, network, laddr, raddr string) (net.Conn, error) {
	var d net.Dialer
	d.SetMultipathTCP(true)
	if laddr != "" {
		la, err := resolveLocal(network, laddr)
		if err != nil {
			return nil, err
		}
		d.LocalAddr = la
	}
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, raddr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netnstest: dial %s %s from %q in %s: %w", network, raddr, laddr, h.name, err)
	}
	h.track(c)
	return c, nil
}

// resolveLocal parses a local address "ip", "ip:port" or "[ip]:port".
func resolveLocal(network, laddr string) (*net.TCPAddr, error) {
	if a, err := netip.ParseAddr(laddr); err == nil {
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0)), nil
	}
	ap, err := netip.ParseAddrPort(laddr)
	if err != nil {
		return nil, fmt.Errorf("netnstest: dial %s: laddr %q: want an IP address with an optional port", network, laddr)
	}
	return net.TCPAddrFromAddrPort(ap), nil
}

// HTTPGet fetches http://addr/path from inside the namespace, within
// DialTimeout, and returns the body; a status other than 200 is an error
// with the status and the body.
func (h *Host) HTTPGet(addr, path string) (string, error) {
	c := &http.Client{
		Timeout: DialTimeout,
		Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var c net.Conn
				err := h.Do(func() error {
					var err error
					c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			}},
	}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return "", fmt.Errorf("netnstest: GET %s%s in %s: %w", addr, path, h.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("netnstest: GET %s%s in %s: %s: %s", addr, path, h.name, resp.Status, b)
	}
	return string(b), err
}
