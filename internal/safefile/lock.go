package safefile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// HeldError is returned by Acquire when another process holds the lock.
type HeldError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process id as it wrote it in the file, 0 when
	// the file does not say (yet).
	PID int
}

// Error returns "PATH is held by pid PID".
func (e *HeldError) Error() string {
	if e.PID == 0 {
		return e.Path + " is held by another process"
	}
	return fmt.Sprintf("%s is held by pid %d", e.Path, e.PID)
}

// A Lock is an exclusive lock on a file, held until Release or the
// process's exit.
type Lock struct {
	f    *os.File
	path string
}

// maxLockTries bounds how often Acquire starts over because the file it
// locked was removed or replaced meanwhile (its holder released it).
const maxLockTries = 8

// Acquire creates the file at path (mode 0600) or opens it, without
// following a symbolic link, takes an exclusive lock on it without
// waiting, and writes the calling process's pid into it. It returns a
// *HeldError when another process (or another Acquire in this process)
// holds the lock, and an error wrapping ErrNotRegular when path is not a
// regular file.
func Acquire(path string) (*Lock, error) {
	for range maxLockTries {
		l, retry, err := try(path)
		if !retry {
			return l, err
		}
	}
	return nil, fmt.Errorf("lock %s: the file keeps being replaced", path)
}

// opened is called between the open and the lock; tests make the
// holder release meanwhile.
var opened = func() {}

// try makes one attempt of Acquire; retry is true when the file was released
// and removed, or replaced, between the open and the lock.
func try(path string) (_ *Lock, retry bool, _ error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, false, fmt.Errorf("lock %s: a symbolic link, refusing to follow it: %w", path, ErrNotRegular)
	}
	if err != nil {
		return nil, false, &fs.PathError{Op: "lock", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		_ = f.Close()
		return nil, false, &fs.PathError{Op: "lock", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = f.Close()
		return nil, false, fmt.Errorf("lock %s: it is %s, %w", path, kind(uint32(st.Mode)), ErrNotRegular)
	}
	opened()
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, &HeldError{Path: path, PID: holder(path)}
		}
		return nil, false, &fs.PathError{Op: "lock", Path: path, Err: err}
	}
	// The holder before us may have removed the file after we opened it,
	// and someone else created a new one: we must hold the lock on the
	// file the path names now.
	var now unix.Stat_t
	if err := unix.Lstat(path, &now); err != nil || now.Ino != st.Ino || now.Dev != st.Dev {
		_ = f.Close()
		return nil, true, nil
	}
	l := &Lock{f: f, path: path}
	if err := l.writePID(); err != nil {
		_ = f.Close()
		return nil, false, fmt.Errorf("lock %s: write the pid: %w", path, err)
	}
	return l, false, nil
}

// writePID replaces the file's contents with the process's pid.
func (l *Lock) writePID() error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	_, err := l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// holder returns the pid written in the lock file at path, or 0.
func holder(path string) int {
	b, err := Read(path, 32)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Path returns the lock file's path.
func (l *Lock) Path() string { return l.path }

// Release removes the lock file and releases the lock. Later calls do
// nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Remove the file only if it is still ours: someone may have
	// removed it and another process locked a new one.
	var err error
	var ours, now unix.Stat_t
	if unix.Fstat(int(l.f.Fd()), &ours) == nil && unix.Lstat(l.path, &now) == nil && ours.Ino == now.Ino && ours.Dev == now.Dev {
		if err = os.Remove(l.path); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
