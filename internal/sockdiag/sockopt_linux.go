//go:build linux

package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket options of SOL_MPTCP (include/uapi/linux/mptcp.h).
// TODO: get these into x/sys/unix.
const (
	_MPTCP_INFO    = 1 // struct mptcp_info
	_MPTCP_TCPINFO = 2 // struct mptcp_subflow_data, then one struct tcp_info per subflow
)

// Sizes asked of the kernel: larger than the 6.18 structs, so that every
// field this package knows is filled; the kernel says what it copied.
const (
	mptcpInfoBuf      = 128
	tcpInfoBuf        = 256
	subflowDataHdrLen = 16 // struct mptcp_subflow_data
	sockInfoSubflows  = 8  // subflows read at most
)

// SockInfo reads the MPTCP_INFO and MPTCP_TCPINFO socket options of an
// MPTCP socket of this process (c is a *net.TCPConn or anything with a
// SyscallConn): the connection's struct mptcp_info and the struct
// tcp_info of its first subflows (at most 8), in the kernel's list order,
// the initial subflow first while it lives. It is the per-socket
// counterpart of a Connections and Subflows walk: one system call each,
// no dump.
func SockInfo(c syscall.Conn) (MPTCPInfo, []TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return MPTCPInfo{}, nil, fmt.Errorf("sockdiag: socket info: %w", err)
	}
	var (
		mb      [mptcpInfoBuf]byte
		sb      [subflowDataHdrLen + sockInfoSubflows*tcpInfoBuf]byte
		mn, sn  int
		soErr   error
		ctrlErr error
	)
	ctrlErr = rc.Control(func(fd uintptr) {
		if mn, soErr = getsockopt(int(fd), _MPTCP_INFO, mb[:]); soErr != nil {
			return
		}
		binary.NativeEndian.PutUint32(sb[0:], subflowDataHdrLen)
		binary.NativeEndian.PutUint32(sb[12:], tcpInfoBuf)
		sn, soErr = getsockopt(int(fd), _MPTCP_TCPINFO, sb[:])
	})
	if err := errors.Join(ctrlErr, soErr); err != nil {
		return MPTCPInfo{}, nil, fmt.Errorf("sockdiag: socket info (is it an MPTCP socket?): %w", err)
	}
	if sn < subflowDataHdrLen {
		return MPTCPInfo{}, nil, fmt.Errorf("sockdiag: socket info: MPTCP_TCPINFO returned %d bytes, want at least %d", sn, subflowDataHdrLen)
	}
	count := int(binary.NativeEndian.Uint32(sb[4:]))
	size := int(binary.NativeEndian.Uint32(sb[12:])) // what the kernel copied of each
	var subs []TCPInfo
	for i := range min(count, sockInfoSubflows) {
		off := subflowDataHdrLen + i*size
		if size == 0 || off+size > sn {
			break
		}
		subs = append(subs, parseTCPInfo(sb[off:off+size]))
	}
	return parseMPTCPInfo(mb[:mn]), subs, nil
}

// getsockopt reads the SOL_MPTCP option opt into b; it returns the length
// the kernel wrote.
func getsockopt(fd, opt int, b []byte) (int, error) {
	n := uint32(len(b))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_MPTCP, uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(min(n, uint32(len(b)))), nil
}
