//go:build linux

package sockdiag

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// recvBufSize is the userspace receive buffer. The kernel sizes dump
// datagrams after the largest buffer recvmsg was given, capped just below
// 32 KiB, so one datagram carries about 140 MPTCP sockets or 65 subflows.
const recvBufSize = 32 << 10

// State masks used when Config.States is 0.
var (
	allStates            = uint32(1<<13 - 2) // TCP_ESTABLISHED .. TCP_NEW_SYN_RECV
	defaultConnStates    = allStates &^ StateMask(StateListen)
	defaultSubflowStates = allStates &^ StateMask(StateListen, StateTimeWait, StateNewSynRecv)
	defaultTCPStates     = allStates &^ StateMask(StateTimeWait, StateNewSynRecv)
)

// ErrUnavailable is returned (wrapped) when the kernel cannot list MPTCP
// connections: it has no MPTCP socket diag support (the mptcp_diag module,
// CONFIG_INET_MPTCP_DIAG) or no MPTCP at all.
var ErrUnavailable = errors.New("sockdiag: MPTCP socket diag unavailable (load the mptcp_diag module; kernel option CONFIG_INET_MPTCP_DIAG)")

// notFoundError is the error of a lookup of an unknown token; it matches
// os.ErrNotExist.
type notFoundError struct{ token uint32 }

func (e notFoundError) Error() string {
	return fmt.Sprintf("sockdiag: no MPTCP connection with token %08x", e.token)
}

// Is reports whether target is os.ErrNotExist.
func (notFoundError) Is(target error) bool { return target == os.ErrNotExist }

// A Client reads MPTCP connections and subflows from sock_diag in one network
// namespace. Its methods are safe for concurrent use but run one at a time;
// a walk's callback must not call the Client.
type Client struct {
	mu     sync.Mutex
	cfg    Config
	conn   *netlink.Conn // nil after a receive failure left unread replies
	broken error         // why conn was dropped, when it cannot be reopened
	diagOK bool          // an MPTCP diag request succeeded: ENOENT means "no such token"
}

// Dial opens a sock_diag netlink socket in cfg.NetNS. A nil cfg is the zero
// Config: the calling thread's namespace and the default state sets.
func Dial(cfg *Config) (*Client, error) {
	c := &Client{}
	if cfg != nil {
		c.cfg = *cfg
	}
	conn, err := dial(c.cfg.NetNS)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	return c, nil
}

func dial(netns int) (*netlink.Conn, error) {
	conn, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{
		NetNS:             netns,
		MessageBufferSize: recvBufSize,
	})
	if err != nil {
		return nil, fmt.Errorf("sockdiag: dial NETLINK_SOCK_DIAG: %w", err)
	}
	return conn, nil
}

// Close closes the netlink socket.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	c.broken = errors.New("sockdiag: client closed")
	return err
}

// Connections calls fn for every MPTCP connection of the namespace, IPv4
// first, then IPv6, one at a time as the kernel's dump is read. fn may keep
// the *Connection. An error from fn stops the walk and is returned as is.
func (c *Client) Connections(fn func(*Connection) error) error {
	states := c.cfg.States
	if states == 0 {
		states = defaultConnStates
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, fam := range [...]uint8{afInet, afInet6} {
		err := c.dump(encodeRequest(fam, ipprotoMPTCP, states, 0), func(b []byte) error {
			conn, err := parseConnection(b)
			if err != nil {
				return err
			}
			return callback{fn(conn)}.err()
		})
		if err != nil {
			return mptcpError(err, "list MPTCP connections (%s)", famName(fam))
		}
	}
	return nil
}

// Connection returns the MPTCP connection with the given local token. An
// unknown token gives an error for which errors.Is(err, os.ErrNotExist) is
// true.
func (c *Client) Connection(token uint32) (*Connection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conn, err := c.conn0()
	if err != nil {
		return nil, err
	}
	// The lookup goes by token alone: AF_INET finds IPv6 connections too.
	msgs, err := conn.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request},
		Data:   encodeRequest(afInet, ipprotoMPTCP, 0, token),
	})
	if err != nil {
		if errors.Is(err, unix.ENOENT) && c.probeMPTCP() == nil {
			return nil, notFoundError{token}
		}
		return nil, mptcpError(err, "look up MPTCP connection with token %08x", token)
	}
	c.diagOK = true
	for _, m := range msgs {
		if m.Header.Type != sockDiagByFamily {
			continue
		}
		cn, err := parseConnection(m.Data)
		if err != nil {
			return nil, fmt.Errorf("sockdiag: look up MPTCP connection with token %08x: %w", token, err)
		}
		return cn, nil
	}
	return nil, notFoundError{token}
}

// Subflows calls fn for every MPTCP subflow of the namespace (TCP sockets
// whose ULP is "mptcp"), IPv4 first, then IPv6, one at a time as the
// kernel's dump is read. fn may keep the *Subflow. An error from fn stops
// the walk and is returned as is.
func (c *Client) Subflows(fn func(*Subflow) error) error {
	return walkTCP(c, defaultSubflowStates, "list MPTCP subflows", parseSubflow, fn)
}

// TCPSockets calls fn for every TCP socket of the namespace that is not an
// MPTCP subflow, IPv4 first, then IPv6, one at a time as the kernel's
// dump is read: with Config.States 0, listeners and connections in every
// state but TIME-WAIT and NEW-SYN-RECV, whose mini-sockets belong to no
// cgroup. fn may keep the *TCPSocket. An error from fn stops the walk and
// is returned as is.
func (c *Client) TCPSockets(fn func(*TCPSocket) error) error {
	return walkTCP(c, defaultTCPStates, "list TCP sockets", parseTCPSocket, fn)
}

// walkTCP dumps the TCP sockets of both families in Config.States, or
// states when it is 0, and calls fn with each reply parse keeps; op names
// the walk in its errors.
func walkTCP[T any](c *Client, states uint32, op string, parse func([]byte) (T, bool, error), fn func(*T) error) error {
	if c.cfg.States != 0 {
		states = c.cfg.States
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, fam := range [...]uint8{afInet, afInet6} {
		err := c.dump(encodeRequest(fam, ipprotoTCP, states, 0), func(b []byte) error {
			v, ok, err := parse(b)
			if err != nil || !ok {
				return err
			}
			return callback{fn(&v)}.err()
		})
		if err != nil {
			return walkError(err, "%s (%s)", op, famName(fam))
		}
	}
	return nil
}

// callback carries an error returned by the caller's function through dump,
// so it reaches the caller unwrapped.
type callback struct{ error }

func (cb callback) err() error {
	if cb.error == nil {
		return nil
	}
	return cb
}

// mptcpError wraps an error of an MPTCP diag request. ENOENT from a dump
// means the kernel has no handler for IPPROTO_MPTCP.
func mptcpError(err error, format string, args ...any) error {
	if errors.Is(err, unix.ENOENT) && !errors.As(err, new(callback)) {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, fmt.Sprintf(format, args...), err)
	}
	return walkError(err, format, args...)
}

// walkError returns a callback's error as is and wraps any other.
func walkError(err error, format string, args ...any) error {
	var cb callback
	if errors.As(err, &cb) {
		return cb.error
	}
	return fmt.Errorf("sockdiag: %s: %w", fmt.Sprintf(format, args...), err)
}

// probeMPTCP tells "no such token" from "no MPTCP diag handler", which both
// give ENOENT: it dumps MPTCP sockets in no state, which succeeds empty when
// the handler exists.
func (c *Client) probeMPTCP() error {
	if c.diagOK {
		return nil
	}
	err := c.dump(encodeRequest(afInet, ipprotoMPTCP, 0, 0), func([]byte) error { return nil })
	if err == nil {
		c.diagOK = true
	}
	return err
}

// conn0 returns the socket, reopening it if a failed walk dropped it.
func (c *Client) conn0() (*netlink.Conn, error) {
	if c.conn != nil {
		return c.conn, nil
	}
	if c.broken != nil {
		return nil, c.broken
	}
	conn, err := dial(c.cfg.NetNS)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	return conn, nil
}

// dump sends a SOCK_DIAG_BY_FAMILY dump request and hands each reply's
// payload to fn as it is read. After fn fails, the rest of the dump is read
// and discarded so the socket stays usable.
func (c *Client) dump(req []byte, fn func([]byte) error) error {
	conn, err := c.conn0()
	if err != nil {
		return err
	}
	sent, err := conn.Send(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
		Data:   req,
	})
	if err != nil {
		return err
	}
	var got bool
	for m, err := range conn.ReceiveIter() {
		if err != nil {
			if got {
				// The dump stopped half way: replies may still be queued,
				// and a later walk could mistake them for its own.
				c.drop(err)
			}
			return err
		}
		got = true
		if m.Header.Sequence != sent.Header.Sequence || m.Header.Type != sockDiagByFamily {
			continue
		}
		if err := fn(m.Data); err != nil {
			// Breaking out makes ReceiveIter read the dump to its end.
			return err
		}
	}
	return nil
}

// drop closes a socket that may hold unread replies. A socket of an explicit
// namespace is reopened on next use; one opened in the calling thread's
// namespace cannot be, since the next caller may be elsewhere.
func (c *Client) drop(cause error) {
	_ = c.conn.Close()
	c.conn = nil
	if c.cfg.NetNS == 0 {
		c.broken = fmt.Errorf("sockdiag: socket dropped after an interrupted dump (%v); dial a new client", cause)
	}
}

func famName(fam uint8) string {
	if fam == afInet6 {
		return "IPv6"
	}
	return "IPv4"
}

// NetlinkSockets calls fn for every netlink socket of protocol in the
// namespace (unix.NETLINK_GENERIC: generic netlink), with the multicast
// groups it joined: who listens to a family's events. No privilege is
// needed. Each socket is given once (the kernel lists a socket that
// joined a group twice: bound, and on the group's list). An error from fn
// stops the walk and is returned as is.
func (c *Client) NetlinkSockets(protocol uint8, fn func(*NetlinkSocket) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[uint32]bool{}
	err := c.dump(encodeNetlinkRequest(protocol), func(b []byte) error {
		s, err := parseNetlinkSocket(b)
		if err != nil || seen[s.Inode] {
			return err
		}
		seen[s.Inode] = true
		return callback{fn(s)}.err()
	})
	if err != nil {
		return walkError(err, "list netlink sockets of protocol %d", protocol)
	}
	return nil
}
