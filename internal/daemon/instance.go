package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/safefile"
)

// DefaultLockDir is where the daemon takes its single-instance lock
// unless Options.LockDir says otherwise; the systemd unit's
// RuntimeDirectory.
const DefaultLockDir = "/run/mptcpgod"

// lockNetNS takes the lock that makes the daemon the only one managing the
// network namespace netns (a file descriptor; 0: the calling thread's), in
// dir: the file netns-INODE.lock, named after the namespace's inode, so
// that daemons of other namespaces go their own way. It is taken before
// the daemon changes anything in the kernel: a second daemon fails here,
// naming the first one's pid, and leaves the kernel as it found it.
func lockNetNS(dir string, netns int) (*safefile.Lock, error) {
	var st unix.Stat_t
	var err error
	if netns == 0 {
		err = unix.Stat("/proc/thread-self/ns/net", &st)
	} else {
		err = unix.Fstat(netns, &st)
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: identify the network namespace: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("daemon: lock directory: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("netns-%d.lock", st.Ino))
	l, err := safefile.Acquire(path)
	var held *safefile.HeldError
	switch {
	case errors.As(err, &held) && held.PID != 0:
		return nil, fmt.Errorf("daemon: another mptcpgod (pid %d) manages this network namespace (it holds %s): "+
			"stop it first (systemctl stop mptcpgod), or run this one in another namespace", held.PID, path)
	case errors.As(err, &held):
		return nil, fmt.Errorf("daemon: another mptcpgod manages this network namespace (it holds %s): "+
			"stop it first (systemctl stop mptcpgod), or run this one in another namespace", path)
	case err != nil:
		return nil, fmt.Errorf("daemon: single-instance lock: %w", err)
	}
	return l, nil
}
