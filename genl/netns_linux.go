//go:build linux

package genl

import (
	"fmt"
	"runtime"

	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"
)

// netNS is an open handle of the client's network namespace.
type netNS struct {
	fd       int
	dev, ino uint64
}

// openNetNS duplicates fd, or opens the calling thread's namespace when fd
// is 0.
func openNetNS(fd int) (*netNS, error) {
	var (
		nfd int
		err error
	)
	if fd == 0 {
		nfd, err = unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	} else {
		nfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(nfd, &st); err != nil {
		_ = unix.Close(nfd)
		return nil, err
	}
	return &netNS{fd: nfd, dev: st.Dev, ino: st.Ino}, nil
}

// close releases the handle; a nil netNS has nothing to release.
func (n *netNS) close() error {
	if n == nil {
		return nil
	}
	return unix.Close(n.fd)
}

// dialIn opens a generic netlink socket in the namespace. It enters the
// namespace itself (netNS.do) rather than through netlink.Config.NetNS,
// which calls setns(2) even when the thread already is there: setns needs
// CAP_SYS_ADMIN, and a daemon running with CAP_NET_ADMIN alone must still
// be able to open its sockets in its own namespace.
func dialIn(n *netNS) (*genetlink.Conn, error) {
	var c *genetlink.Conn
	err := n.do(func() error {
		var err error
		c, err = genetlink.Dial(nil)
		return err
	})
	return c, err
}

// do runs fn on a locked OS thread inside the namespace and moves the
// thread back afterwards. When the thread already is in the namespace, fn
// runs without switching. A nil netNS runs fn where the caller is.
func (n *netNS) do(fn func() error) error {
	if n == nil {
		return fn()
	}
	runtime.LockOSThread()
	cur, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open the thread's network namespace: %w", err)
	}
	defer unix.Close(cur)
	var st unix.Stat_t
	if err := unix.Fstat(cur, &st); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("stat the thread's network namespace: %w", err)
	}
	if st.Dev == n.dev && st.Ino == n.ino {
		defer runtime.UnlockOSThread()
		return fn()
	}
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter the network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(cur, unix.CLONE_NEWNET); err != nil {
		// The thread stays locked and in the wrong namespace: the runtime
		// ends it when the goroutine exits instead of reusing it.
		return fmt.Errorf("return to the thread's network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}
