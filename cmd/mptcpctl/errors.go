package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/mptcpgod/mptcpgod/genl"
)

// Exit codes.
const (
	exitOK      = 0 // success
	exitRefused = 1 // the kernel or the system refused; the reason is printed
	exitUsage   = 2 // bad usage: the offending word and what was expected
)

// usageError is bad usage: a wrong word, a missing value, an unknown flag.
// It exits with exitUsage and nothing has been changed.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var u *usageError
	var x *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &u):
		return exitUsage
	case errors.As(err, &x):
		return x.code
	}
	return exitRefused
}

// kernelError turns an error from genl, sockdiag or the system into the
// text the user sees: the kernel's own extack message when there is one,
// plus a hint for the common cases. what, if not empty, says what was being
// done, beyond what the command's name says.
func kernelError(what string, err error) error {
	var ge *genl.Error
	msg := err.Error()
	if errors.As(err, &ge) {
		msg = ge.Message
		if msg == "" && ge.Err != nil {
			msg = ge.Err.Error()
		}
	}
	switch {
	case errors.Is(err, genl.ErrUnavailable):
		msg = "the kernel has no MPTCP path manager (generic netlink family mptcp_pm is missing): is MPTCP enabled (CONFIG_MPTCP)?"
	case errors.Is(err, os.ErrPermission):
		msg += " (this needs CAP_NET_ADMIN: try sudo)"
	}
	if what != "" {
		msg = what + ": " + msg
	}
	return &refusedError{msg: msg, err: err}
}

// refusedError is a refusal by the kernel or the system, with the text to
// show; it keeps the original error for errors.Is and errors.As.
type refusedError struct {
	msg string
	err error
}

func (e *refusedError) Error() string { return e.msg }
func (e *refusedError) Unwrap() error { return e.err }
