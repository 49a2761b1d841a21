//go:build !linux

package sockdiag

import (
	"errors"
	"syscall"
)

// ErrUnavailable is returned (wrapped) when the kernel cannot list MPTCP
// connections; on this OS there is no sock_diag at all.
var ErrUnavailable = errors.New("sockdiag: MPTCP socket diag unavailable: not Linux")

// A Client reads MPTCP connections and subflows from sock_diag; it exists
// only on Linux.
type Client struct{}

// Dial always fails outside Linux.
func Dial(*Config) (*Client, error) { return nil, ErrUnavailable }

// Close does nothing outside Linux.
func (*Client) Close() error { return nil }

// Connections always fails outside Linux.
func (*Client) Connections(func(*Connection) error) error { return ErrUnavailable }

// Connection always fails outside Linux.
func (*Client) Connection(uint32) (*Connection, error) { return nil, ErrUnavailable }

// Subflows always fails outside Linux.
func (*Client) Subflows(func(*Subflow) error) error { return ErrUnavailable }

// TCPSockets always fails outside Linux.
func (*Client) TCPSockets(func(*TCPSocket) error) error { return ErrUnavailable }

// NetlinkSockets returns ErrUnavailable: netlink is Linux's.
func (*Client) NetlinkSockets(uint8, func(*NetlinkSocket) error) error { return ErrUnavailable }

// SockInfo always fails outside Linux.
func SockInfo(syscall.Conn) (MPTCPInfo, []TCPInfo, error) { return MPTCPInfo{}, nil, ErrUnavailable }
