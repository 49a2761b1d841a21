//go:build linux && !cgo

package transparent

import "syscall"

// ignoredAtStart returns nothing without cgo: no Go code runs before the
// runtime has replaced the dispositions it was started with, so only the
// two the runtime keeps ignored by itself (SIGHUP, SIGINT) are kept.
func ignoredAtStart() []syscall.Signal { return nil }
