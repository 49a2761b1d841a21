package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"syscall"

	sdjournal "github.com/coreos/go-systemd/v22/journal"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/journal"
	"github.com/mptcpgod/mptcpgod/internal/transparent"
)

// Exit codes of run's own failures, as env(1), nice(1) and timeout(1)
// have them; otherwise run exits as the program does.
const (
	exitRunFailed     = 125 // run itself failed: the program did not start
	exitNotExecutable = 126 // the program was found but cannot be executed
	exitNotFound      = 127 // the program was not found
)

// exitError is a failure with an exit code of its own.
type exitError struct {
	code int
	msg  string
	err  error
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) Unwrap() error { return e.err }

// supervisorCommand is the hidden command the supervisor runs as.
const supervisorCommand = "supervise"

func (a *app) runCmd() *cobra.Command {
	var verbose, check, noNewPrivs bool
	cmd := &cobra.Command{
		Use:   "run [--verbose] [--no-new-privs] [--] PROGRAM [ARGS...]",
		Short: "Run a program with its TCP sockets made Multipath TCP",
		Long: `Run PROGRAM with ARGS so that every TCP socket it opens, and its children
open, is a Multipath TCP socket, with no change to the program and no preload
library: static binaries, Go programs whatever their GODEBUG, any language.

Only socket(AF_INET or AF_INET6, SOCK_STREAM, 0 or IPPROTO_TCP) changes; the
SOCK_NONBLOCK and SOCK_CLOEXEC flags are kept. Where MPTCP cannot be had
(net.mptcp.enabled=0 in the program's network namespace, no kernel support)
the program gets the TCP socket it asked for, never an error; against a peer
without MPTCP the connection falls back to TCP as the kernel does.

The program replaces mptcpctl in the same process: it keeps the pid (it can be
a service's main process), gets the signals, and its exit status is run's. A
small supervisor process, outside the program's process tree, serves its
socket calls through seccomp user notification (Linux 5.14 or later) and
exits after the last process under it. As root no_new_privs is left unset, so
setuid programs work; otherwise (or with --no-new-privs) setuid bits and file
capabilities grant nothing to the programs run. docs/transparent.md says what
the program can observe and what it costs.

With -n NAME the program runs in the network namespace /run/netns/NAME (its
network namespace only, as nsenter --net does).

Exit status: the program's; 125 when run itself failed (the reason is
printed), 126 when PROGRAM cannot be executed, 127 when it is not found, 2 on
bad usage. --check prints whether run works here and exits 0 or 1.`,
		Example: `  mptcpctl run curl https://example.com/
  mptcpctl run --verbose -- busybox wget -O /dev/null http://192.0.2.2/file
  sudo mptcpctl -n blue run python3 -m http.server 8080
  mptcpctl run --check`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case check && len(args) > 0:
				return usagef("unexpected word %q: --check runs no program", args[0])
			case !check && len(args) == 0:
				return usagef("expected PROGRAM [ARGS...]")
			case !check && a.json:
				return usagef("--json: run prints nothing of its own (but with --check)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if check {
				return a.runCheck()
			}
			return a.run(args, verbose, noNewPrivs)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveDefault
		},
	}
	// Words after PROGRAM are the program's, flags included.
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().BoolVar(&verbose, "verbose", false, "report the mechanism used and every socket call it changes, on standard error")
	cmd.Flags().BoolVar(&check, "check", false, "report whether run works here, and why not, without running anything")
	cmd.Flags().BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs even as root: setuid bits and file capabilities then grant nothing")
	return cmd
}

// run implements run PROGRAM [ARGS...]: it returns only on failure.
func (a *app) run(args []string, verbose, noNewPrivs bool) error {
	path, err := lookPath(args[0])
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) {}
	if verbose {
		logf = func(format string, args ...any) {
			fmt.Fprintf(a.stderr, "mptcpctl run: "+format+"\n", args...)
		}
	}
	cfg := transparent.Config{
		Path:       path,
		Args:       args,
		Env:        os.Environ(),
		Supervisor: []string{"/proc/self/exe", supervisorCommand},
		NoNewPrivs: noNewPrivs,
		Logf:       logf,
	}
	if verbose {
		cfg.Supervisor = append(cfg.Supervisor, "--verbose")
	}
	if a.netns != "" {
		s, err := a.open()
		if err != nil {
			return &exitError{code: exitRunFailed, msg: err.Error(), err: err}
		}
		defer s.Close()
		cfg.NetNS = os.NewFile(uintptr(s.fd), netnsDir+"/"+a.netns)
	}
	if verbose {
		if on, err := transparent.MPTCPEnabled(); err != nil || !on {
			logf("MPTCP is not enabled in this network namespace (%v): the program keeps TCP", mptcpState(on, err))
		}
	}
	err = transparent.Exec(cfg)
	var ee *transparent.ExecError
	switch {
	case errors.As(err, &ee) && errors.Is(ee.Err, syscall.ENOENT):
		return &exitError{code: exitNotFound, msg: fmt.Sprintf("%s: %v", args[0], ee.Err), err: err}
	case errors.As(err, &ee):
		return &exitError{code: exitNotExecutable, msg: fmt.Sprintf("%s: %v", args[0], ee.Err), err: err}
	case errors.Is(err, transparent.ErrUnavailable):
		return &exitError{code: exitRunFailed, msg: fmt.Sprintf("%v (mptcpctl run --check says more; docs/transparent.md lists the other ways)", err), err: err}
	}
	return &exitError{code: exitRunFailed, msg: err.Error(), err: err}
}

// lookPath finds the program as a shell would, with a shell's exit code
// when it cannot.
func lookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	switch {
	case err == nil:
		return path, nil
	case errors.Is(err, exec.ErrDot):
		return path, nil // a shell runs it too
	case errors.Is(err, syscall.EISDIR):
		return "", &exitError{code: exitNotExecutable, msg: name + ": is a directory", err: err}
	case errors.Is(err, fs.ErrPermission):
		return "", &exitError{code: exitNotExecutable, msg: name + ": permission denied", err: err}
	case errors.Is(err, exec.ErrNotFound):
		return "", &exitError{code: exitNotFound, msg: name + ": command not found", err: err}
	}
	return "", &exitError{code: exitNotFound, msg: fmt.Sprintf("%s: %v", name, errors.Unwrap(err)), err: err}
}

// runCheckOut is run --check's answer, also its JSON.
type runCheckOut struct {
	Mechanism    string `json:"mechanism"`
	Available    bool   `json:"available"`
	Reason       string `json:"reason,omitempty"`
	MPTCPEnabled bool   `json:"mptcp_enabled"`
	MPTCPReason  string `json:"mptcp_reason,omitempty"`
}

// runCheck implements run --check.
func (a *app) runCheck() error {
	out := runCheckOut{Mechanism: transparent.Mechanism, Available: true}
	err := transparent.Probe()
	var ue *transparent.UnavailableError
	switch {
	case errors.As(err, &ue):
		out.Available, out.Reason = false, ue.Reason
	case err != nil:
		out.Available, out.Reason = false, err.Error()
	}
	on, merr := transparent.MPTCPEnabled()
	out.MPTCPEnabled = on
	if !on {
		out.MPTCPReason = mptcpState(on, merr)
	}
	if a.json {
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	} else {
		avail := "available"
		if !out.Available {
			avail = "unavailable: " + out.Reason
		}
		mptcp := "enabled in this network namespace"
		if !on {
			mptcp = out.MPTCPReason + ": programs keep TCP"
		}
		fmt.Fprintf(a.stdout, "mechanism: %s: %s\nMPTCP:     %s\n", out.Mechanism, avail, mptcp)
	}
	if !out.Available {
		return &exitError{code: exitRefused, msg: "run cannot work here: " + out.Reason, err: err}
	}
	return nil
}

// mptcpState says why MPTCP is off.
func mptcpState(on bool, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case !on:
		return "disabled (net.mptcp.enabled=0)"
	}
	return "enabled"
}

// superviseCmd is the hidden command the supervisor of run runs as.
func (a *app) superviseCmd() *cobra.Command {
	var verbose, detach bool
	cmd := &cobra.Command{
		Use:    supervisorCommand,
		Short:  "Serve the socket calls of a program started by run (internal)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if detach {
				argv := []string{"/proc/self/exe", supervisorCommand}
				if verbose {
					argv = append(argv, "--verbose")
				}
				var stderr *os.File
				if verbose || keepStderr() {
					stderr = os.Stderr
				}
				return transparent.Detach(argv, stderr)
			}
			control, err := transparent.ControlFile()
			if err != nil {
				return err
			}
			return transparent.Supervise(transparent.SuperviseConfig{
				Control: control,
				Verbose: verbose,
				Logf:    a.supervisorLog(),
			})
		},
	}
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log every socket call served")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the supervisor in a session of its own and exit")
	return cmd
}

// keepStderr reports whether the supervisor may hold on to run's standard
// error: a terminal, a file, the journal's stream. A pipe or another
// socket would stay open after the program closed its own copy (as a
// daemon does), and whoever reads it (a shell's $(...), ssh) would wait
// for the supervisor; the supervisor then writes to the journal.
func keepStderr() bool {
	fi, err := os.Stderr.Stat()
	if err != nil {
		return false
	}
	if fi.Mode()&(fs.ModeNamedPipe|fs.ModeSocket) == 0 {
		return true
	}
	ok, _ := sdjournal.StderrIsJournalStream()
	return ok
}

// supervisorLog returns where the supervisor's lines go: its standard
// error when it has one, else the journal (as "mptcpctl"), else nowhere.
func (a *app) supervisorLog() func(format string, args ...any) {
	if isDevNull(os.Stderr) {
		h, err := journal.NewHandler(&journal.Options{Identifier: "mptcpctl"})
		if err != nil {
			return func(string, ...any) {}
		}
		log := slog.New(h)
		return func(format string, args ...any) {
			log.Warn("run: supervisor: " + fmt.Sprintf(format, args...))
		}
	}
	return func(format string, args ...any) {
		fmt.Fprintf(a.stderr, "mptcpctl run: supervisor: "+format+"\n", args...)
	}
}

// isDevNull reports whether f is /dev/null.
func isDevNull(f *os.File) bool {
	var st, null unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil || unix.Stat(os.DevNull, &null) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == null.Rdev
}
