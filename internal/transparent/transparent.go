package transparent

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Mechanism is the name of this package's mechanism, as reports show it.
const Mechanism = "seccomp user notification"

// Config says what Exec runs and how.
type Config struct {
	// Path is the program to execute, already looked up; Args is its
	// argument vector, Args[0] the name it sees; Env its environment.
	Path string
	Args []string
	Env  []string
	// Supervisor is the command line of the supervisor: a program that
	// calls Detach when its last argument is DetachArg, and Supervise
	// otherwise, with the control socket as file descriptor 3.
	Supervisor []string
	// NoNewPrivs sets no_new_privs even when the caller may install a
	// filter without it (CAP_SYS_ADMIN, as root): setuid and file
	// capabilities of the programs it runs then grant nothing.
	NoNewPrivs bool
	// NetNS, if set, is a network namespace to run the program in.
	NetNS *os.File
	// Logf, if set, is told what Exec does.
	Logf func(format string, args ...any)
}

// DetachArg is the argument Exec adds to Config.Supervisor for the first
// of the two processes it starts: that one calls Detach and exits.
const DetachArg = "--detach"

// supervisorFD is the control socket's descriptor number in the
// supervisor processes (os/exec's first ExtraFiles entry).
const supervisorFD = 3

// readyTimeout bounds the wait for the supervisor's answer. It answers in
// milliseconds; a loaded machine may take seconds to start a process.
const readyTimeout = 2 * time.Minute

// ExecError is a failure to execute the program itself, after the filter
// is in place; Err is execve(2)'s error.
type ExecError struct {
	Path string
	Err  error
}

func (e *ExecError) Error() string { return fmt.Sprintf("transparent: execute %s: %v", e.Path, e.Err) }
func (e *ExecError) Unwrap() error { return e.Err }

// SuperviseConfig configures Supervise.
type SuperviseConfig struct {
	// Control is the launcher's end of the control socket: Supervise
	// receives the listener on it and answers "ready" or why not.
	Control *os.File
	// Logf prints a line for a person (warnings, and with Verbose every
	// call's outcome); it must be safe for concurrent use.
	Logf func(format string, args ...any)
	// Verbose logs every trapped call and what it got.
	Verbose bool
	// Workers is the number of locked threads serving notifications;
	// 0 means DefaultWorkers.
	Workers int
}

// ErrUnavailable is what every *UnavailableError is (errors.Is).
var ErrUnavailable = errors.New("seccomp user notification is unavailable")

// UnavailableError says why seccomp user notification cannot be used here.
type UnavailableError struct {
	// Reason is a sentence saying why, for a person.
	Reason string
}

func (e *UnavailableError) Error() string {
	return "transparent: seccomp user notification is unavailable: " + e.Reason
}

// Is reports whether target is ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

func unavailable(format string, args ...any) error {
	return &UnavailableError{Reason: fmt.Sprintf(format, args...)}
}
