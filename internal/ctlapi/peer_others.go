//go:build !linux

package ctlapi

import (
	"errors"
	"net"
)

// peerOf fails: peer credentials are Linux's.
func peerOf(net.Conn) (Peer, error) {
	return Peer{}, errors.New("ctlapi: peer credentials are supported on Linux only")
}
