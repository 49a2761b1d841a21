//go:build linux

package transparent

import (
	"os/signal"
	"syscall"
)

// restoreIgnoredSignals ignores again, just before execve(2), the signals
// that were ignored when this process started (ignoredAtStart): the Go
// runtime installs its own handlers for most signals at start, and execve
// resets handled signals to their default, where an ignored signal stays
// ignored. SIGHUP and SIGINT the runtime leaves ignored by itself.
func restoreIgnoredSignals() {
	for _, sig := range ignoredAtStart() {
		switch sig {
		case syscall.SIGKILL, syscall.SIGSTOP:
			continue
		}
		signal.Ignore(sig)
	}
}
