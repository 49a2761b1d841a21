//go:build linux

package transparent

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exec replaces the calling process with cfg's program, whose TCP sockets
// (and its children's) are made MPTCP by a supervisor: it starts the
// supervisor outside the calling process's tree, locks the calling
// goroutine to its thread, sets no_new_privs unless the caller may go
// without, installs the filter with a new listener, hands the listener to
// the supervisor, and executes the program in place, which keeps the
// caller's pid. It returns only on failure: before the filter is
// installed, nothing has changed but a supervisor that exits on its own;
// the calling goroutine then stays locked to its thread, which may carry
// the filter, so the caller should exit soon.
func Exec(cfg Config) error {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := Probe(); err != nil {
		return err
	}
	prog, err := assembleFilter()
	if err != nil {
		return err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("transparent: control socket: %w", err)
	}
	control := os.NewFile(uintptr(fds[0]), "control")
	defer control.Close()
	pid, err := startSupervisor(cfg.Supervisor, os.NewFile(uintptr(fds[1]), "control"))
	if err != nil {
		return err
	}
	logf("supervisor started: pid %d", pid)

	// From here on this thread carries the program's namespace,
	// no_new_privs and the filter: it must be the one that executes the
	// program, and never run another goroutine. If Exec fails, it stays
	// locked and ends with its goroutine.
	runtime.LockOSThread()
	if cfg.NetNS != nil {
		if err := unix.Setns(int(cfg.NetNS.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("transparent: enter network namespace %s: %w", cfg.NetNS.Name(), err)
		}
	}
	nnp := cfg.NoNewPrivs || !mayGoWithoutNoNewPrivs()
	if nnp {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("transparent: set no_new_privs: %w", err)
		}
	}
	listener, flags, err := installFilter(prog)
	if err != nil {
		return err
	}
	logf("mechanism: seccomp user notification (filter flags %#x, no_new_privs %v)", flags, nnp)
	err = handOver(control, listener)
	_ = unix.Close(listener)
	if err != nil {
		return err
	}
	if err := control.Close(); err != nil {
		return fmt.Errorf("transparent: control socket: %w", err)
	}
	restoreIgnoredSignals()
	err = syscall.Exec(cfg.Path, cfg.Args, cfg.Env)
	return &ExecError{Path: cfg.Path, Err: err}
}

// startSupervisor starts the supervisor's first process and waits for
// it: it starts the supervisor proper in a session of its own and exits,
// so the supervisor is nobody's child here, and the program never sees it
// (no SIGCHLD, nothing to reap). Its end of the control socket is closed
// here once passed on. It returns the supervisor's pid, which the first
// process prints.
func startSupervisor(argv []string, control *os.File) (int, error) {
	defer control.Close()
	if len(argv) == 0 {
		return 0, errors.New("transparent: no supervisor command")
	}
	cmd := supervisorCmd(append(slices.Clone(argv), DetachArg))
	cmd.ExtraFiles = []*os.File{control}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("transparent: start the supervisor (%s): %w", strings.Join(cmd.Args, " "), err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("transparent: start the supervisor (%s): it printed %q, not its pid", strings.Join(cmd.Args, " "), out)
	}
	return pid, nil
}

// Detach starts the supervisor proper, argv, in a new session with the
// control socket this process got as descriptor 3 and stderr as its
// standard error (nil: /dev/null), prints its pid on standard output, and
// returns without waiting for it: its caller exits next.
func Detach(argv []string, stderr *os.File) error {
	if len(argv) == 0 {
		return errors.New("transparent: detach: no supervisor command")
	}
	control := os.NewFile(supervisorFD, "control")
	if control == nil {
		return errors.New("transparent: detach: no control socket on descriptor 3")
	}
	defer control.Close()
	cmd := supervisorCmd(argv)
	cmd.ExtraFiles = []*os.File{control}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Dir = "/" // pin no directory the program may want to unmount
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("transparent: detach: %w", err)
	}
	if _, err := fmt.Println(cmd.Process.Pid); err != nil {
		return fmt.Errorf("transparent: detach: %w", err)
	}
	return cmd.Process.Release()
}

// supervisorCmd returns the command for a supervisor process. Started as
// /proc/self/exe (the running program, even if its file was replaced since),
// it is named after the running program, so that ps and systemctl status
// show "mptcpctl supervise".
func supervisorCmd(argv []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	if argv[0] == "/proc/self/exe" {
		if self, err := os.Executable(); err == nil {
			cmd.Args[0] = filepath.Base(self)
		}
	}
	return cmd
}

// ControlFile returns the control socket a supervisor process got from
// Exec or Detach (descriptor 3), checked to be a socket.
func ControlFile() (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(supervisorFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, errors.New("transparent: descriptor 3 is not the control socket: the supervisor is started by mptcpctl run, not by hand")
	}
	return os.NewFile(supervisorFD, "control"), nil
}

// mayGoWithoutNoNewPrivs reports whether the calling thread has
// CAP_SYS_ADMIN, with which seccomp(2) installs a filter without
// no_new_privs.
func mayGoWithoutNoNewPrivs() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_SYS_ADMIN/32].Effective&(1<<(unix.CAP_SYS_ADMIN%32)) != 0
}

// installFilter installs prog on the calling thread with a new listener
// and returns the listener and the flags used. It asks for
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19) where the kernel has
// it: once the supervisor has read a call, only a fatal signal interrupts
// the program's wait, so a handler without SA_RESTART never sees socket(2)
// fail with EINTR.
func installFilter(prog []unix.SockFilter) (int, uintptr, error) {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	for {
		r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
		runtime.KeepAlive(prog)
		switch {
		case e == 0:
			return int(r), flags, nil
		case e == unix.EINVAL && flags&unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0:
			flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
			continue
		case e == unix.EBUSY:
			return -1, 0, errors.New("transparent: install the filter: this process already runs under a seccomp filter with a listener (a container runtime's, or mptcpctl run inside mptcpctl run): the kernel allows one listener per process tree")
		case e == unix.EACCES:
			return -1, 0, errors.New("transparent: install the filter: permission denied: it needs no_new_privs or CAP_SYS_ADMIN")
		}
		return -1, 0, fmt.Errorf("transparent: install the filter: %w", e)
	}
}

// handOver sends the listener to the supervisor and waits for its answer.
func handOver(control *os.File, listener int) error {
	fd := int(control.Fd())
	if err := unix.Sendmsg(fd, []byte("listener"), unix.UnixRights(listener), nil, 0); err != nil {
		return fmt.Errorf("transparent: hand the listener to the supervisor: %w", err)
	}
	tv := unix.NsecToTimeval(readyTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("transparent: control socket: %w", err)
	}
	buf := make([]byte, 512)
	n, err := unix.Read(fd, buf)
	switch {
	case errors.Is(err, unix.EAGAIN):
		return fmt.Errorf("transparent: the supervisor did not answer within %v", readyTimeout)
	case err != nil:
		return fmt.Errorf("transparent: read the supervisor's answer: %w", err)
	case n == 0:
		return errors.New("transparent: the supervisor exited before serving (its error is above)")
	case string(buf[:n]) != controlReady:
		return fmt.Errorf("transparent: supervisor: %s", buf[:n])
	}
	return nil
}
