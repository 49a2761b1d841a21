//go:build !linux

package ctlhttp

import (
	"errors"
	"net"
)

// peerOf fails: peer credentials are Linux's.
func peerOf(net.Conn) (Peer, error) {
	return Peer{}, errors.New("ctlhttp: peer credentials are supported on Linux only")
}
