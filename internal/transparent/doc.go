// Package transparent gives Multipath TCP to programs that never asked for
// it, by seccomp user notification: the mechanism behind `mptcpctl run`.
//
// Upstream Linux makes a socket MPTCP only when the program passes
// IPPROTO_MPTCP to socket(2). This package changes the answer to the
// program's own socket(2) calls instead, so it reaches static binaries,
// programs that make their own system calls, Go whatever its GODEBUG, and
// every child they start, with no preload library.
//
// # The walk of one program
//
// Exec (launch_linux.go) is called in the process that becomes the
// program:
//
//  1. Probe checks that the kernel can do it (5.14 or later for
//     SECCOMP_ADDFD_FLAG_SEND; the user-notification action; the
//     structures this package knows).
//  2. It starts the supervisor: the command in Config.Supervisor (for
//     mptcpctl, its hidden "supervise" command, /proc/self/exe) with
//     DetachArg, which starts the supervisor proper in a session of its
//     own, prints its pid and exits (Detach). The supervisor is thus
//     nobody's child here: the program never reaps it, never gets SIGCHLD
//     for it, and Ctrl-C in a terminal does not reach it. It stays in the
//     same user and cgroup (a service's, under systemd).
//  3. It locks the goroutine to its thread and sets no_new_privs unless the
//     thread has CAP_SYS_ADMIN (root): as root, setuid programs then work as
//     they would without mptcpctl; Config.NoNewPrivs sets it anyway.
//  4. It installs the filter (filter_linux.go) on that thread with
//     SECCOMP_FILTER_FLAG_NEW_LISTENER, and with
//     SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has it
//     (5.19), so that once the supervisor has read a call only a fatal
//     signal interrupts the program's wait.
//  5. It passes the listener over a socket pair (SCM_RIGHTS) and waits for
//     the supervisor's "ready", or its reason, or its exit.
//  6. It executes the program in place (execve on the same thread), which
//     keeps the pid, so the program can be a service's main process, and
//     its exit status and signals are its own. Signals that were ignored
//     when the process started are ignored again first (signals_*.go).
//
// The filter traps only socket(AF_INET or AF_INET6, SOCK_STREAM with no
// flag but SOCK_NONBLOCK and SOCK_CLOEXEC, 0 or IPPROTO_TCP) made through
// the native system-call ABI; everything else runs at full speed.
//
// Supervise (supervisor_linux.go) serves the listener with a pool of
// locked threads (DefaultWorkers; one thread alone caps near 21,000
// sockets per second). For each notification a thread
//
//   - checks the call again (decode_linux.go), and lets anything else
//     continue;
//   - reads the calling thread's filesystem uid and gid from
//     /proc/PID/status and opens its network namespace, then checks with
//     SECCOMP_IOCTL_NOTIF_ID_VALID that the call still waits, so that a
//     reused pid is never trusted;
//   - enters that network namespace (setns, kept until another is needed),
//     takes the filesystem uid and gid (setfsuid/setfsgid, given back
//     after), and creates the MPTCP socket with the call's SOCK_NONBLOCK;
//     the socket is then the program's for `ip rule uidrange`, nftables
//     `meta skuid` and sock_diag, and the supervisor's cgroup, which is the
//     program's;
//   - installs it as the call's result with SECCOMP_IOCTL_NOTIF_ADDFD and
//     SECCOMP_ADDFD_FLAG_SEND, O_CLOEXEC when the call asked for
//     SOCK_CLOEXEC.
//
// Where MPTCP cannot be had (net.mptcp.enabled=0 in the program's
// namespace, no kernel support, a namespace the supervisor may not enter)
// it answers SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel runs the call as
// the program made it and the program gets its TCP socket, never an error.
// The supervisor exits when the listener reports POLLHUP, after the last
// process under the filter is gone, so programs that daemonize keep their
// MPTCP after the first process exits. POLLERR alone is no hangup: the
// kernel reports it when a signal interrupts the poll while a call in
// flight holds the listener's lock, and the supervisor polls again. For
// the same reason every ioctl on the listener is made again on EINTR (it
// did nothing), and the serving threads block the signals a fault does
// not raise: a signal that interrupts SECCOMP_IOCTL_NOTIF_ADDFD with
// SECCOMP_ADDFD_FLAG_SEND once the call is marked answered would leave
// socket(2) returning 0. With --verbose the supervisor says when it
// exits.
//
// # Limits
//
//   - The supervisor must live as long as the program: if it is killed
//     (SIGKILL, the OOM killer), every later trapped socket(2) call fails
//     with ENOSYS. It ignores SIGHUP, SIGINT, SIGQUIT, SIGTERM and SIGPIPE,
//     answers CONTINUE on any error of its own, recovers from a panic
//     while serving a call, and never panics on what it decodes.
//   - A process tree has at most one listener: a program that installs its
//     own (a container runtime, mptcpctl run inside mptcpctl run) gets EBUSY
//     from seccomp(2).
//   - Without CAP_SYS_ADMIN, no_new_privs is set: setuid bits and file
//     capabilities of the programs run grant nothing.
//   - Calls made through another ABI (32-bit programs, x32 on amd64) and
//     io_uring's IORING_OP_SOCKET are not trapped: they stay TCP.
//   - The socket is created in the supervisor's cgroup: the same as the
//     program's unless the program moves to another one.
//   - Each trapped call costs a round trip to the supervisor (about 35 µs
//     on the development machine); other calls cost nothing.
//   - Without cgo only SIGHUP and SIGINT are known to have been ignored at
//     start (the Go runtime replaces the other dispositions before any code
//     of ours runs); with cgo a constructor records them all.
//
// # Why it is written this way
//
// golang.org/x/sys/unix has the seccomp constants but not the notification
// structures or the ID_VALID and ADDFD ioctls (uapi_linux.go has them,
// with a TODO to upstream them); libraries such as elastic/go-seccomp-bpf
// install filters but discard the listener. The filter is assembled with
// golang.org/x/net/bpf and its tests run it in that package's VM on
// synthetic struct seccomp_data. The supervisor is a process of its own,
// not a thread of the launcher, because the launcher's image is replaced
// by the program's; it is started before the filter exists so that it is
// never under it.
package transparent
