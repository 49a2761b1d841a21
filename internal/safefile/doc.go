// Package safefile reads the daemon's input files and takes its lock
// files without letting the file system stall or steer the daemon.
//
// Read accepts only a regular file of bounded size, and opens it without
// blocking: a FIFO (whose open waits for a writer), a device such as
// /dev/zero (endless) or a file larger than the bound is an error at once,
// so that a start or a reload never hangs where signals would go
// unhandled, and never reads without end.
//
// Acquire creates or opens a lock file without following a symbolic link
// (O_NOFOLLOW), refuses anything but a regular file, takes an exclusive
// lock that dies with the process (flock), and records the holder's pid
// in the file, so that the next one to try is told who holds it. Release
// removes the file while still holding the lock; Acquire checks, once it has
// the lock, that the path still names the file it locked, so that a
// release and a new lock racing each other never leave two holders.
package safefile
