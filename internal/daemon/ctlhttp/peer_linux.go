//go:build linux

package ctlhttp

import (
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerOf returns the credentials of the process at the other end of c, a
// Unix-socket connection.
func peerOf(c net.Conn) (Peer, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, fmt.Errorf("ctlhttp: peer credentials: %T is not a Unix-socket connection", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("ctlhttp: peer credentials: %w", err)
	}
	var p Peer
	var perr error
	if err := raw.Control(func(fd uintptr) {
		var cred *unix.Ucred
		if cred, perr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); perr != nil {
			return
		}
		p = Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
		p.Groups, perr = peerGroups(int(fd))
	}); err != nil {
		return Peer{}, fmt.Errorf("ctlhttp: peer credentials: %w", err)
	}
	if perr != nil {
		return Peer{}, fmt.Errorf("ctlhttp: peer credentials: %w", perr)
	}
	return p, nil
}

// peerGroups returns the peer's supplementary groups (SO_PEERGROUPS,
// Linux 4.13): x/sys/unix has no getter for this array option.
func peerGroups(fd int) ([]uint32, error) {
	n := 16
	for {
		buf := make([]uint32, n)
		size := uint32(n * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch {
		case errno == unix.ERANGE && int(size/4) > n:
			n = int(size / 4)
			continue
		case errno == unix.ENOPROTOOPT:
			return nil, errors.New("the kernel has no SO_PEERGROUPS (Linux 4.13)")
		case errno != 0:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		}
		return buf[:size/4], nil
	}
}
