//go:build !linux

package exec

import (
	"errors"
	osexec "os/exec"
	"syscall"
)

// errNotLinux: programs run only where their privileges can be dropped.
var errNotLinux = errors.New("exec: programs run on Linux only")

func start(*osexec.Cmd, Limits) error { return errNotLinux }

func reaped(int) {}

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
