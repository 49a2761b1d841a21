package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is returned for a path that names something else than a
// regular file (a FIFO, a device, a socket, a directory).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned for a file larger than the bound.
var ErrTooLarge = errors.New("file too large")

// Read returns the contents of the regular file at path, which must hold
// at most limit bytes. It never blocks on what is not a regular file: the
// open does not wait for a FIFO's writer, and the file's type is checked
// before anything is read. A symbolic link is followed (the files it reads
// are the administrator's to place). Errors wrap fs.ErrNotExist,
// ErrNotRegular or ErrTooLarge where they apply and name the path.
func Read(path string, limit int64) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is %s, %w", path, kind(uint32(st.Mode)), ErrNotRegular)
	}
	if st.Size > limit {
		return nil, fmt.Errorf("%s has %d bytes, more than %d: %w", path, st.Size, limit, ErrTooLarge)
	}
	// The file may grow while it is read: read one byte past the bound to
	// notice.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s has more than %d bytes: %w", path, limit, ErrTooLarge)
	}
	return data, nil
}

// kind names a file type, for messages: "a FIFO".
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "of an unknown type"
}
