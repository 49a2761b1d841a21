//go:build linux && cgo

package transparent

/*
#include <signal.h>

// ignored_at_start holds bit s-1 for every signal s that was ignored when
// the process started, recorded by a constructor before the Go runtime
// installs its handlers.
static unsigned long long ignored_at_start;

__attribute__((constructor)) static void record_ignored_at_start(void) {
	for (int s = 1; s <= 64 && s < NSIG; s++) {
		struct sigaction sa;
		if (sigaction(s, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN)
			ignored_at_start |= 1ULL << (s - 1);
	}
}

static unsigned long long get_ignored_at_start(void) { return ignored_at_start; }
*/
import "C"

import "syscall"

// ignoredAtStart returns the signals that were ignored when the process
// started, as recorded before the Go runtime started.
func ignoredAtStart() []syscall.Signal {
	bits := uint64(C.get_ignored_at_start())
	var out []syscall.Signal
	for s := 1; s <= 64; s++ {
		if bits&(1<<(s-1)) != 0 {
			out = append(out, syscall.Signal(s))
		}
	}
	return out
}
