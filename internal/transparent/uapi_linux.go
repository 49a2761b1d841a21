//go:build linux

package transparent

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// The seccomp user-notification ABI that golang.org/x/sys/unix lacks: it
// has the constants (SECCOMP_*, SECCOMP_IOCTL_NOTIF_RECV and _SEND) but not
// the structures, nor the ID_VALID and ADDFD ioctls. Names follow
// include/uapi/linux/seccomp.h.
//
// TODO: upstream the structures and the two ioctls to x/sys/unix, then
// use them from there.

// seccompData is struct seccomp_data: what a filter and a notification
// see of one system call.
type seccompData struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// seccompNotif is struct seccomp_notif, read by SECCOMP_IOCTL_NOTIF_RECV.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  seccompData
}

// seccompNotifResp is struct seccomp_notif_resp, written by
// SECCOMP_IOCTL_NOTIF_SEND.
type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// seccompNotifAddfd is struct seccomp_notif_addfd, written by
// SECCOMP_IOCTL_NOTIF_ADDFD.
type seccompNotifAddfd struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

// seccompNotifSizes is struct seccomp_notif_sizes, the kernel's sizes of
// the three structures (SECCOMP_GET_NOTIF_SIZES). A newer kernel's
// structures may be larger than ours: buffers handed to it are the larger
// of the two, zeroed.
type seccompNotifSizes struct {
	Notif     uint16
	NotifResp uint16
	Data      uint16
}

// Sizes of our structures, as the kernel lays them out.
const (
	sizeofSeccompData      = 64
	sizeofSeccompNotif     = 80
	sizeofSeccompNotifResp = 24
	sizeofSeccompNotifAdd  = 24
)

// Offsets in struct seccomp_data, for the filter.
const (
	offsetNr   = 0
	offsetArch = 4
	offsetArgs = 16
)

// Generic ioctl number encoding (include/uapi/asm-generic/ioctl.h), used
// by every architecture in archs.
const (
	iocWrite     = 1
	iocRead      = 2
	iocNRShift   = 0
	iocTypeShift = 8
	iocSizeShift = 16
	iocDirShift  = 30
)

func ioc(dir, typ, nr, size uintptr) uintptr {
	return dir<<iocDirShift | typ<<iocTypeShift | nr<<iocNRShift | size<<iocSizeShift
}

// The notification ioctls. ID_VALID is the _IOW form (Linux 5.9 fixed the
// original _IOR number and accepts both).
var (
	ioctlNotifRecv    = ioc(iocRead|iocWrite, '!', 0, sizeofSeccompNotif)
	ioctlNotifSend    = ioc(iocRead|iocWrite, '!', 1, sizeofSeccompNotifResp)
	ioctlNotifIDValid = ioc(iocWrite, '!', 2, 8)
	ioctlNotifAddfd   = ioc(iocWrite, '!', 3, sizeofSeccompNotifAdd)
)

// auditArchs are the architectures the filter and the ioctl numbers are
// written for, with their AUDIT_ARCH_* value (seccomp_data.arch): 64-bit,
// generic ioctl encoding, socket(2) as a system call of its own
// (unix.SYS_SOCKET of the build).
var auditArchs = map[string]uint32{
	"amd64":   unix.AUDIT_ARCH_X86_64,
	"arm64":   unix.AUDIT_ARCH_AARCH64,
	"riscv64": unix.AUDIT_ARCH_RISCV64,
	"loong64": unix.AUDIT_ARCH_LOONGARCH64,
	"s390x":   unix.AUDIT_ARCH_S390X,
}

// nativeAuditArch returns the running architecture's AUDIT_ARCH_* value.
func nativeAuditArch() (uint32, error) {
	a, ok := auditArchs[runtime.GOARCH]
	if !ok {
		return 0, fmt.Errorf("architecture %s is not supported (amd64, arm64, riscv64, loong64 and s390x are)", runtime.GOARCH)
	}
	return a, nil
}

// argLow is the offset of the low 32 bits of system call argument i in
// struct seccomp_data: classic BPF loads 32-bit words in the machine's
// byte order.
func argLow(i int) uint32 {
	off := uint32(offsetArgs + 8*i)
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 { // big endian
		off += 4
	}
	return off
}
