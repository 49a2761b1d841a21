//go:build !linux

package transparent

import (
	"os"
	"runtime"
)

// Probe always fails outside Linux.
func Probe() error {
	return unavailable("seccomp exists only on Linux, not %s", runtime.GOOS)
}

// MPTCPEnabled always fails outside Linux.
func MPTCPEnabled() (bool, error) { return false, Probe() }

// Exec always fails outside Linux.
func Exec(Config) error { return Probe() }

// Detach always fails outside Linux.
func Detach([]string, *os.File) error { return Probe() }

// Supervise always fails outside Linux.
func Supervise(SuperviseConfig) error { return Probe() }

// ControlFile always fails outside Linux.
func ControlFile() (*os.File, error) { return nil, Probe() }
