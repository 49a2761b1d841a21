package cgroups_test

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fileIDKernfs is FILEID_KERNFS, the type of a cgroupfs file handle.
const fileIDKernfs = 0xfe

// byHandle finds the directory of cgroup id the other way, for
// BenchmarkResolve: open_by_handle_at on the mount with the id as the
// handle, then readlink of the descriptor.
func byHandle(mount int, id uint64) (string, error) {
	h := unix.NewFileHandle(fileIDKernfs, binary.NativeEndian.AppendUint64(nil, id))
	fd, err := unix.OpenByHandleAt(mount, h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("open_by_handle_at: %w", err)
	}
	defer unix.Close(fd)
	return os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
}
