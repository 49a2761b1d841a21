package netnstest

import (
	"fmt"
	"sync"

	"github.com/mptcpgod/mptcpgod/genl"
	"golang.org/x/sys/unix"
)

// DegradedPrefix starts the log line of Degraded; the compatibility
// matrix's report (internal/compat) counts the tests that print it.
const DegradedPrefix = "netnstest: degraded: "

// FigurePrefix starts the log line of Figure; the compatibility matrix's
// report lists those lines per kernel.
const FigurePrefix = "netnstest: figure: "

var (
	releaseOnce sync.Once
	release     string
	relMajor    int
	relMinor    int
)

// KernelRelease returns the running kernel's release (uname -r).
func KernelRelease() string {
	releaseOnce.Do(func() {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			panic(fmt.Sprintf("netnstest: uname: %v", err))
		}
		release = unix.ByteSliceToString(u.Release[:])
		var err error
		if relMajor, relMinor, err = genl.ParseRelease(release); err != nil {
			panic(fmt.Sprintf("netnstest: %v", err))
		}
	})
	return release
}

// KernelAtLeast reports whether the running kernel is Linux major.minor
// or newer: the tests' own oracle of what a kernel does, from the
// release alone, independent of how package genl detects it.
func KernelAtLeast(major, minor int) bool {
	KernelRelease()
	return relMajor > major || relMajor == major && relMinor >= minor
}

// KernelHas reports whether the running kernel's release is at least the
// one that brought capability c.
func KernelHas(c genl.Capability) bool {
	major, minor, err := genl.ParseRelease(c.Since)
	if err != nil {
		panic(fmt.Sprintf("netnstest: capability %s: %v", c.ID, err))
	}
	return KernelAtLeast(major, minor)
}

// Degraded logs that the test, on this kernel, asserts the documented
// behaviour of a kernel that lacks something newer ones have, instead of
// skipping: what it lacks and what the test checked instead.
func Degraded(t TB, format string, args ...any) {
	t.Helper()
	t.Logf(DegradedPrefix+"Linux %s: "+format, append([]any{KernelRelease()}, args...)...)
}

// Figure logs a measured outcome worth comparing across kernels (the
// corruption reproducer's transfers, for one); the compatibility matrix's
// report lists them per kernel.
func Figure(t TB, format string, args ...any) {
	t.Helper()
	t.Logf(FigurePrefix+format, args...)
}
