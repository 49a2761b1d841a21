//go:build linux

package transparent

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Probe reports whether seccomp user notification can give programs
// MPTCP sockets here: nil, or an *UnavailableError that says why not. It
// checks the architecture, the kernel release (5.14 added
// SECCOMP_ADDFD_FLAG_SEND), that the kernel offers the user-notification
// action, and that its notification structures are the ones this package
// knows. It changes nothing.
//
// Whether MPTCP itself is enabled is another matter (MPTCPEnabled): where
// it is not, programs keep their TCP sockets.
func Probe() error {
	if _, err := nativeAuditArch(); err != nil {
		return unavailable("%v", err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return unavailable("uname: %v", err)
	}
	if err := checkRelease(unix.ByteSliceToString(u.Release[:])); err != nil {
		return err
	}
	action := uint32(unix.SECCOMP_RET_USER_NOTIF)
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_ACTION_AVAIL, 0, uintptr(unsafe.Pointer(&action))); e != 0 {
		switch e {
		case unix.ENOSYS:
			return unavailable("the kernel has no seccomp (CONFIG_SECCOMP), or a filter forbids the seccomp system call")
		case unix.EINVAL:
			return unavailable("the kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)")
		case unix.EOPNOTSUPP:
			return unavailable("the kernel does not offer the seccomp user-notification action")
		}
		return unavailable("seccomp(SECCOMP_GET_ACTION_AVAIL): %v", e)
	}
	if _, err := notifSizes(); err != nil {
		return unavailable("%v", err)
	}
	return nil
}

// checkRelease returns an *UnavailableError when kernel release is older
// than 5.14, the first to install a descriptor as a call's result.
func checkRelease(release string) error {
	major, minor, err := parseRelease(release)
	if err != nil {
		return unavailable("%v", err)
	}
	if major < 5 || major == 5 && minor < 14 {
		return unavailable("kernel %s is older than 5.14, the first to install a file descriptor as a system call's result (SECCOMP_ADDFD_FLAG_SEND)", release)
	}
	return nil
}

// notifSizes returns the kernel's notification structure sizes, checked
// against ours.
func notifSizes() (seccompNotifSizes, error) {
	var s seccompNotifSizes
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&s))); e != 0 {
		return s, fmt.Errorf("seccomp(SECCOMP_GET_NOTIF_SIZES): %w", e)
	}
	if s.Data != sizeofSeccompData || s.Notif < sizeofSeccompNotif || s.NotifResp < sizeofSeccompNotifResp {
		return s, fmt.Errorf("the kernel's notification structures (notif %d, resp %d, data %d bytes) are not the ones this program knows (%d, %d, %d)",
			s.Notif, s.NotifResp, s.Data, sizeofSeccompNotif, sizeofSeccompNotifResp, sizeofSeccompData)
	}
	return s, nil
}

// MPTCPEnabled reports net.mptcp.enabled in the calling thread's network
// namespace; false with an error when the kernel has no MPTCP.
func MPTCPEnabled() (bool, error) {
	b, err := os.ReadFile("/proc/sys/net/mptcp/enabled")
	if errors.Is(err, os.ErrNotExist) {
		return false, errors.New("the kernel has no MPTCP (CONFIG_MPTCP)")
	}
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) == "1", nil
}
