//go:build linux

package transparent

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DefaultWorkers is the size of the supervisor's pool of threads. One
// thread serves about 21,000 sockets per second; more let one program's
// threads, or several programs, be served at once.
var DefaultWorkers = min(max(runtime.NumCPU(), 2), 16)

// controlReady is the supervisor's answer once it serves the listener.
const controlReady = "ready"

// Supervise serves the seccomp listener it receives on cfg.Control until
// the last process under the filter is gone: every trapped socket(2) call
// gets an MPTCP socket made in the caller's network namespace with the
// caller's filesystem uid and gid, or, where that cannot be had, the TCP
// socket it asked for (SECCOMP_USER_NOTIF_FLAG_CONTINUE). It ignores the
// signals that would end it with the program (SIGHUP, SIGINT, SIGQUIT,
// SIGTERM, SIGPIPE): a dead supervisor makes every later trapped call fail
// with ENOSYS.
func Supervise(cfg SuperviseConfig) error {
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGPIPE)
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	s, err := newSupervisor(cfg)
	if err != nil {
		_, _ = cfg.Control.Write([]byte(err.Error()))
		_ = cfg.Control.Close()
		return err
	}
	defer unix.Close(s.listener)
	defer unix.Close(s.wake)
	for range cfg.Workers {
		go s.worker()
	}
	if _, err := cfg.Control.Write([]byte(controlReady)); err != nil {
		_ = cfg.Control.Close()
		return fmt.Errorf("transparent: tell the launcher: %w", err)
	}
	_ = cfg.Control.Close()
	return s.waitHangup()
}

// supervisor is the state the workers share; only warned is written.
type supervisor struct {
	cfg      SuperviseConfig
	listener int
	audit    uint32
	recvSize int // of the buffer handed to NOTIF_RECV
	respSize int // of the buffer handed to NOTIF_SEND
	// ownNetNS identifies the supervisor's network namespace: workers
	// start there.
	ownNetNS nsID
	own      fsIDs

	mu     sync.Mutex
	warned map[string]bool
	// fatal holds the first error that ends every worker; wake, an
	// eventfd, tells waitHangup that it is there.
	fatal chan error
	wake  int
}

// maxWarnings bounds the distinct warnings the supervisor remembers having
// printed; past it, warnings are no longer printed.
const maxWarnings = 64

func newSupervisor(cfg SuperviseConfig) (*supervisor, error) {
	listener, err := receiveListener(cfg.Control)
	if err != nil {
		return nil, err
	}
	s := &supervisor{cfg: cfg, listener: listener, warned: map[string]bool{}, fatal: make(chan error, 1)}
	fail := func(err error) (*supervisor, error) {
		_ = unix.Close(listener)
		return nil, err
	}
	if s.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
		return fail(fmt.Errorf("transparent: eventfd: %w", err))
	}
	if s.audit, err = nativeAuditArch(); err != nil {
		return fail(err)
	}
	sizes, err := notifSizes()
	if err != nil {
		return fail(err)
	}
	s.recvSize = max(int(sizes.Notif), sizeofSeccompNotif)
	s.respSize = max(int(sizes.NotifResp), sizeofSeccompNotifResp)
	if s.ownNetNS, err = netnsOf("/proc/thread-self/ns/net"); err != nil {
		return fail(err)
	}
	s.own = fsIDs{uid: uint32(unix.Getuid()), gid: uint32(unix.Getgid())}
	if uid, err := unix.SetfsuidRetUid(-1); err == nil {
		s.own.uid = uint32(uid)
	}
	if gid, err := unix.SetfsgidRetGid(-1); err == nil {
		s.own.gid = uint32(gid)
	}
	return s, nil
}

// receiveListener reads the listener's file descriptor from the control
// socket and checks that it is one.
func receiveListener(control *os.File) (int, error) {
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4*4)) // room for more than one, to catch them
	n, oobn, _, _, err := unix.Recvmsg(int(control.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("transparent: receive the listener: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return -1, err
	}
	if len(fds) != 1 || string(buf[:n]) != "listener" {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return -1, fmt.Errorf("transparent: control message: got %q with %d descriptors, want \"listener\" with 1", buf[:n], len(fds))
	}
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fds[0]))
	if err != nil || link != "anon_inode:seccomp notify" {
		_ = unix.Close(fds[0])
		return -1, fmt.Errorf("transparent: the descriptor received is %q, not a seccomp listener", link)
	}
	return fds[0], nil
}

// parseRights returns the descriptors of the SCM_RIGHTS messages in oob.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("transparent: control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		r, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, r...)
	}
	return fds, nil
}

// waitHangup returns once no process uses the filter any more (the
// listener reports POLLHUP), or a worker met an error that ends them all.
//
// POLLERR without POLLHUP is no hangup: the listener reports it when a
// signal (the Go runtime's own SIGURG, say) interrupts the poll while the
// listener's lock is held, which a trapped call in flight does. Taking it
// for one would end the supervisor under a living program, whose later
// calls would then fail with ENOSYS.
func (s *supervisor) waitHangup() error {
	fds := []unix.PollFd{{Fd: int32(s.listener)}, {Fd: int32(s.wake), Events: unix.POLLIN}}
	for {
		select {
		case err := <-s.fatal:
			return err
		default:
		}
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("transparent: poll the listener: %w", err)
		}
		switch {
		case fds[0].Revents&unix.POLLHUP != 0:
			if s.cfg.Verbose {
				s.cfg.Logf("the last process under the filter is gone: exiting")
			}
			return nil
		case fds[0].Revents&unix.POLLNVAL != 0:
			return errors.New("transparent: poll the listener: it is no longer open")
		}
	}
}

// worker serves notifications on a locked OS thread whose network
// namespace, fsuid and fsgid it changes; the thread is never handed back
// to the Go scheduler. A worker whose thread it cannot put back into a
// known state starts a new worker and ends, and the thread with it.
func (s *supervisor) worker() {
	runtime.LockOSThread()
	if err := blockAsyncSignals(); err != nil {
		s.warn(0, "%v", err)
	}
	w := &worker{s: s, netns: s.ownNetNS, recv: make([]byte, s.recvSize), resp: make([]byte, s.respSize), status: make([]byte, 4096)}
	for {
		clear(w.recv)
		if _, err := s.ioctl(ioctlNotifRecv, unsafe.Pointer(&w.recv[0])); err != nil {
			if errors.Is(err, unix.ENOENT) {
				// The caller died before we read it.
				continue
			}
			select {
			case s.fatal <- fmt.Errorf("transparent: receive a notification: %w", err):
				_, _ = unix.Write(s.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
			default:
			}
			return
		}
		if err := w.serve(); err != nil {
			s.warn(0, "%v: replacing the thread", err)
			go s.worker()
			return
		}
	}
}

// blockAsyncSignals blocks, on the calling thread, every signal but those
// a fault raises, so that signals (the Go runtime's SIGURG among them) go
// to the supervisor's other threads. A signal that interrupts a worker's
// wait in SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND, after
// the kernel marked the call answered but before the program took the
// descriptor, withdraws the descriptor and leaves the call answered with
// 0: socket(2) would return descriptor 0.
func blockAsyncSignals() error {
	var set unix.Sigset_t
	for sig := unix.Signal(1); sig <= 64; sig++ {
		switch sig {
		case unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGSYS:
			continue
		}
		set.Val[(sig-1)/64] |= 1 << ((sig - 1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		return fmt.Errorf("block signals on a serving thread: %w", err)
	}
	return nil
}

// ioctl runs an ioctl on the listener with a pointer argument, again when
// a signal interrupted it: every one of them first takes the listener's
// lock interruptibly, and fails with EINTR, having done nothing, when a
// signal comes while another thread holds it. Taken for an answer, that
// EINTR would leave the call unanswered (ID_VALID's "gone", SEND's lost
// reply) and the program waiting for ever.
func (s *supervisor) ioctl(req uintptr, arg unsafe.Pointer) (uintptr, error) {
	for {
		r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(s.listener), req, uintptr(arg))
		switch e {
		case 0:
			return r, nil
		case unix.EINTR:
			continue
		}
		return r, e
	}
}

// warn prints a warning the first time its text is seen; pid, if not 0,
// names the first process it was seen for.
func (s *supervisor) warn(pid uint32, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	first := !s.warned[msg] && len(s.warned) < maxWarnings
	if first {
		s.warned[msg] = true
	}
	s.mu.Unlock()
	switch {
	case !first:
	case pid != 0:
		s.cfg.Logf("%s (pid %d; not repeated for later calls)", msg, pid)
	default:
		s.cfg.Logf("%s", msg)
	}
}

// worker is one serving thread's state.
type worker struct {
	s     *supervisor
	netns nsID // the thread's current network namespace
	recv  []byte
	resp  []byte
	// status holds the start of a /proc/PID/status file: the Uid and Gid
	// lines come within its first kilobyte.
	status []byte
}

// serve answers the notification in w.recv. It returns an error only
// when the thread is left in a state it cannot undo.
func (w *worker) serve() (threadErr error) {
	n, err := decodeNotif(w.recv)
	if err != nil {
		w.s.warn(0, "%v", err)
		return nil // without an id there is nothing to answer
	}
	defer func() {
		if r := recover(); r != nil {
			w.s.warn(n.Pid, "internal error: %v: giving TCP", r)
			w.continueCall(n.ID)
			threadErr = fmt.Errorf("internal error: %v", r)
		}
	}()
	call, ok := n.call(w.s.audit, unix.SYS_SOCKET)
	if !ok || !call.wantsMPTCP() {
		w.continueCall(n.ID)
		return nil
	}
	fd, reason, threadErr := w.mptcpSocket(n, call)
	if fd < 0 {
		if reason != "" {
			w.s.warn(n.Pid, "%s: giving TCP", reason)
			if w.s.cfg.Verbose {
				w.s.cfg.Logf("%s by pid %d: TCP (%s)", call, n.Pid, reason)
			}
			w.continueCall(n.ID)
		}
		return threadErr
	}
	add := seccompNotifAddfd{ID: n.ID, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, Srcfd: uint32(fd)}
	if call.typ&unix.SOCK_CLOEXEC != 0 {
		add.NewfdFlags = unix.O_CLOEXEC
	}
	r, e := w.s.ioctl(ioctlNotifAddfd, unsafe.Pointer(&add))
	_ = unix.Close(fd)
	switch {
	case errors.Is(e, unix.ENOENT):
		// The caller is gone, or was interrupted and its restarted call
		// comes as a new notification.
	case errors.Is(e, unix.EINPROGRESS):
		// A signal interrupted the caller's wait: the kernel queued the
		// same notification again, and a worker will read it anew.
	case e != nil:
		w.s.warn(n.Pid, "install the MPTCP socket: %v: giving TCP", e)
		w.continueCall(n.ID)
	case w.s.cfg.Verbose:
		w.s.cfg.Logf("%s by pid %d: MPTCP, fd %d", call, n.Pid, r)
	}
	return threadErr
}

// continueCall lets the trapped call go on to the kernel as the program
// made it.
func (w *worker) continueCall(id uint64) {
	encodeResp(w.resp, seccompNotifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
	// ENOENT: the caller is gone or was interrupted; nothing to answer.
	_, _ = w.s.ioctl(ioctlNotifSend, unsafe.Pointer(&w.resp[0]))
}

// mptcpSocket creates the MPTCP socket for call in the caller's network
// namespace with its filesystem ids. It returns the descriptor, or -1 and
// why TCP it is ("" when the caller is gone and nothing is to be
// answered). threadErr is set when the thread's ids could not be restored.
func (w *worker) mptcpSocket(n seccompNotif, call socketCall) (fd int, reason string, threadErr error) {
	proc := "/proc/" + strconv.FormatUint(uint64(n.Pid), 10)
	var st unix.Stat_t
	if err := unix.Stat(proc+"/ns/net", &st); err != nil {
		return -1, w.goneOr(n.ID, fmt.Sprintf("its network namespace: %v", err)), nil
	}
	status, err := w.readStatus(proc + "/status")
	if err != nil {
		return -1, w.goneOr(n.ID, fmt.Sprintf("read %s/status: %v", proc, err)), nil
	}
	// The pid may have been reused between the notification and our
	// reads: what we read counts only if the notification still waits.
	if !w.valid(n.ID) {
		return -1, "", nil
	}
	ids, err := parseStatusIDs(status)
	if err != nil {
		return -1, fmt.Sprintf("read %s/status: %v", proc, err), nil
	}
	if ns := (nsID{st.Dev, st.Ino}); ns != w.netns {
		if reason := w.enterNetNS(n.ID, proc+"/ns/net", ns); reason != "" || !w.valid(n.ID) {
			return -1, reason, nil
		}
	}
	if ids != w.s.own {
		if err := setFSIDs(ids); err != nil {
			return -1, fmt.Sprintf("cannot take its filesystem uid %d and gid %d: %v", ids.uid, ids.gid, err), setFSIDs(w.s.own)
		}
	}
	fd, err = unix.Socket(int(call.family), unix.SOCK_STREAM|unix.SOCK_CLOEXEC|int(call.typ&unix.SOCK_NONBLOCK), unix.IPPROTO_MPTCP)
	if ids != w.s.own {
		if err := setFSIDs(w.s.own); err != nil {
			if fd >= 0 {
				_ = unix.Close(fd)
			}
			return -1, fmt.Sprintf("restore the supervisor's ids: %v", err), err
		}
	}
	if err != nil {
		return -1, mptcpRefusal(err), nil
	}
	return fd, "", nil
}

// readStatus reads the start of a /proc/PID/status file, where the Uid
// and Gid lines are, in one read into the worker's buffer.
func (w *worker) readStatus(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, w.status)
	if err != nil {
		return nil, err
	}
	return w.status[:n], nil
}

// enterNetNS moves the thread into the caller's network namespace ns,
// whose file is path, and returns "" or why it could not.
func (w *worker) enterNetNS(id uint64, path string, ns nsID) string {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return w.goneOr(id, fmt.Sprintf("open its network namespace: %v", err))
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || (nsID{st.Dev, st.Ino}) != ns {
		return w.goneOr(id, "its network namespace changed while being read")
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Sprintf("cannot enter its network namespace: %v", err)
	}
	w.netns = ns
	return ""
}

// valid reports whether notification id still waits for an answer.
func (w *worker) valid(id uint64) bool {
	_, err := w.s.ioctl(ioctlNotifIDValid, unsafe.Pointer(&id))
	return err == nil
}

// goneOr returns "" when notification id no longer waits (the caller is
// gone, and so are its /proc files), else reason.
func (w *worker) goneOr(id uint64, reason string) string {
	if !w.valid(id) {
		return ""
	}
	return reason
}

// mptcpRefusal says why socket(IPPROTO_MPTCP) failed.
func mptcpRefusal(err error) string {
	switch {
	case errors.Is(err, unix.ENOPROTOOPT):
		return "MPTCP is disabled in its network namespace (net.mptcp.enabled=0)"
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.EAFNOSUPPORT):
		return "the kernel has no MPTCP for this family (CONFIG_MPTCP, CONFIG_MPTCP_IPV6)"
	}
	return "socket(IPPROTO_MPTCP): " + err.Error()
}

// setFSIDs sets the calling thread's fsgid and fsuid and checks that they
// took: setfsuid(2) reports no error, only the previous value.
func setFSIDs(ids fsIDs) error {
	_, _ = unix.SetfsgidRetGid(int(ids.gid))
	_, _ = unix.SetfsuidRetUid(int(ids.uid))
	gid, _ := unix.SetfsgidRetGid(-1)
	uid, _ := unix.SetfsuidRetUid(-1)
	if uint32(uid) != ids.uid || uint32(gid) != ids.gid {
		return fmt.Errorf("fsuid %d fsgid %d after asking for %d and %d", uid, gid, ids.uid, ids.gid)
	}
	return nil
}

// nsID identifies a namespace by its nsfs device and inode.
type nsID struct {
	dev, ino uint64
}

// netnsOf returns the identity of the network namespace file path.
func netnsOf(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, fmt.Errorf("transparent: %w", err)
	}
	return nsID{st.Dev, st.Ino}, nil
}

// String formats the call as C would read it.
func (c socketCall) String() string {
	fam := map[int32]string{unix.AF_INET: "AF_INET", unix.AF_INET6: "AF_INET6"}[c.family]
	if fam == "" {
		fam = strconv.Itoa(int(c.family))
	}
	typ := []string{"SOCK_STREAM"}
	if c.typ&unix.SOCK_NONBLOCK != 0 {
		typ = append(typ, "SOCK_NONBLOCK")
	}
	if c.typ&unix.SOCK_CLOEXEC != 0 {
		typ = append(typ, "SOCK_CLOEXEC")
	}
	if c.typ&^typeFlags != unix.SOCK_STREAM {
		typ = []string{strconv.Itoa(int(c.typ))}
	}
	proto := strconv.Itoa(int(c.protocol))
	if c.protocol == unix.IPPROTO_TCP {
		proto = "IPPROTO_TCP"
	}
	return fmt.Sprintf("socket(%s, %s, %s)", fam, strings.Join(typ, "|"), proto)
}
