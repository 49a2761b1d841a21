package ownertest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

// The environment of a child: its mode ("dial", "listen", "listentcp" or
// "socket"), the address to dial or listen on, and the uid and gid to
// take.
const (
	modeEnv = "MPTCPGOD_OWNERTEST_MODE"
	addrEnv = "MPTCPGOD_OWNERTEST_ADDR"
	uidEnv  = "MPTCPGOD_OWNERTEST_UID"
	gidEnv  = "MPTCPGOD_OWNERTEST_GID"
	// tcpEnv makes a dialing child ask for a plain TCP socket, which
	// `mptcpctl run` makes MPTCP.
	tcpEnv = "MPTCPGOD_OWNERTEST_TCP"
)

// StartLimit bounds the wait for a child's report: a loaded machine can
// take seconds to start a process.
const StartLimit = 60 * time.Second

// RunChild runs the child the environment asks for and exits, or
// returns at once when it asks for none. Call it first in TestMain.
func RunChild() {
	mode := os.Getenv(modeEnv)
	if mode == "" {
		return
	}
	if err := runChild(mode, os.Getenv(addrEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "ownertest child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runChild takes the ids, opens the socket, reports its address and holds
// it until stdin closes; in mode "socket", it reports the protocol of a
// plain TCP socket and returns.
func runChild(mode, addr string) error {
	if err := takeIDs(); err != nil {
		return err
	}
	var (
		conns []net.Conn
		local net.Addr
	)
	switch mode {
	case "dial":
		var d net.Dialer
		d.SetMultipathTCP(os.Getenv(tcpEnv) == "")
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		if mp, err := c.(*net.TCPConn).MultipathTCP(); err != nil || !mp {
			return fmt.Errorf("the connection to %s is not MPTCP (%v)", addr, err)
		}
		// Data makes the connection fully established.
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		conns, local = append(conns, c), c.LocalAddr()
	case "listen", "listentcp":
		var lc net.ListenConfig
		lc.SetMultipathTCP(mode == "listen")
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return err
		}
		local = ln.Addr()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, c) }()
			}
		}()
	case "socket":
		return reportProtocol()
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	fmt.Printf("ADDR %s\n", local)
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

// reportProtocol opens socket(AF_INET, SOCK_STREAM, 0) and reports its
// SO_PROTOCOL.
func reportProtocol() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	p, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return fmt.Errorf("SO_PROTOCOL: %w", err)
	}
	fmt.Printf("PROTOCOL %d\n", p)
	return nil
}

// Protocol runs a child in h as o that opens socket(AF_INET,
// SOCK_STREAM, 0), as a program that never asked for MPTCP does, and
// returns the socket's SO_PROTOCOL: IPPROTO_TCP, or IPPROTO_MPTCP where
// the child's cgroup or uid is forced (the BPF mechanism). o.Run is not
// used.
func Protocol(t testing.TB, h *netnstest.Host, o Owner) int {
	t.Helper()
	o.Run = ""
	cmd, cg := command(t, h, o, "socket", "")
	defer cg.Close()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ownertest: socket child as uid %d in %s: %v", o.UID, o.Cgroup, err)
	}
	p, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(string(out)), "PROTOCOL "))
	if err != nil {
		t.Fatalf("ownertest: socket child as uid %d in %s reported %q", o.UID, o.Cgroup, out)
	}
	return p
}

// takeIDs makes the process's uid and gid those of the environment.
func takeIDs() error {
	gid, err := strconv.Atoi(os.Getenv(gidEnv))
	if err != nil {
		return fmt.Errorf("gid: %w", err)
	}
	uid, err := strconv.Atoi(os.Getenv(uidEnv))
	if err != nil {
		return fmt.Errorf("uid: %w", err)
	}
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return err
	}
	return syscall.Setresuid(uid, uid, uid)
}

// Owner is where and as whom a child runs.
type Owner struct {
	// UID and GID are the child's ids.
	UID, GID uint32
	// Cgroup is the cgroup v2 directory the child starts in.
	Cgroup string
	// Run is the path of mptcpctl: the child runs under `mptcpctl run`,
	// started as root and taking UID and GID itself, and a dialing child
	// opens a plain TCP socket, which the supervisor makes MPTCP. Empty:
	// the child asks for MPTCP itself.
	Run string
}

// Child is a running child with its socket.
type Child struct {
	// Addr is the socket's local address: the connection's local end
	// (Dial) or the listener's (Listen).
	Addr  netip.AddrPort
	stdin io.WriteCloser
	done  chan error
}

// Dial starts a child in h as o that opens an MPTCP connection to raddr
// and holds it, and returns once the connection is open.
func Dial(t testing.TB, h *netnstest.Host, o Owner, raddr netip.AddrPort) *Child {
	t.Helper()
	return start(t, h, o, "dial", raddr.String())
}

// Listen starts a child in h as o that listens with MPTCP on laddr
// (":0" for any port) and accepts and reads every connection, and
// returns once it listens.
func Listen(t testing.TB, h *netnstest.Host, o Owner, laddr string) *Child {
	t.Helper()
	return start(t, h, o, "listen", laddr)
}

// ListenTCP is Listen with a plain TCP listener, as a program that never
// asked for MPTCP has.
func ListenTCP(t testing.TB, h *netnstest.Host, o Owner, laddr string) *Child {
	t.Helper()
	return start(t, h, o, "listentcp", laddr)
}

func start(t testing.TB, h *netnstest.Host, o Owner, mode, addr string) *Child {
	t.Helper()
	cmd, cg := command(t, h, o, mode, addr)
	defer cg.Close()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ownertest: start %s child as uid %d in %s: %v", mode, o.UID, o.Cgroup, err)
	}
	c := &Child{stdin: stdin, done: make(chan error, 1)}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		s, _ := r.ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, r)
		c.done <- cmd.Wait()
	}()
	t.Cleanup(c.Stop)
	select {
	case s := <-line:
		a, ok := strings.CutPrefix(strings.TrimSpace(s), "ADDR ")
		ap, err := netip.ParseAddrPort(a)
		if !ok || err != nil {
			t.Fatalf("ownertest: %s child as uid %d in %s reported %q", mode, o.UID, o.Cgroup, s)
		}
		c.Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case <-time.After(StartLimit):
		t.Fatalf("ownertest: %s child as uid %d in %s: no report within %v", mode, o.UID, o.Cgroup, StartLimit)
	}
	return c
}

// command returns the command of a child in h as o in mode, to start in
// o.Cgroup, whose directory the caller closes once the child started.
func command(t testing.TB, h *netnstest.Host, o Owner, mode, addr string) (*exec.Cmd, *os.File) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := os.Open(o.Cgroup)
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(self, "-test.run=^$")
	if o.Run != "" {
		cmd = h.Command(o.Run, "run", "--", self, "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), modeEnv+"="+mode, addrEnv+"="+addr,
		uidEnv+"="+strconv.Itoa(int(o.UID)), gidEnv+"="+strconv.Itoa(int(o.GID)))
	if o.Run != "" {
		cmd.Env = append(cmd.Env, tcpEnv+"=1")
	}
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	cmd.Stderr = os.Stderr
	return cmd, cg
}

// Stop closes the child's stdin and waits for it to exit, which closes
// its sockets.
func (c *Child) Stop() {
	if c.stdin == nil {
		return
	}
	_ = c.stdin.Close()
	c.stdin = nil
	<-c.done
}

// Cgroups is a cgroup v2 subtree of a test's own.
type Cgroups struct {
	t    testing.TB
	top  string
	dirs []string
	// shared, for SystemSlice, is the cgroup root open with a shared
	// lock: top is not the test's own.
	shared *os.File
}

// sliceMark is the extended attribute SystemSlice sets on the
// system.slice it made, for the last test using it to remove it.
const sliceMark = "trusted.mptcpgod-test"

var cgroupSeq atomic.Int64

// NewCgroups creates ROOT/mgt-PID-N, an empty cgroup under the cgroup
// v2 root, and removes it and everything New created in it at cleanup,
// killing the processes left in them first.
func NewCgroups(t testing.TB) *Cgroups {
	t.Helper()
	root, err := bpf.CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(root, fmt.Sprintf("mgt-%d-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(top, 0o755); err != nil {
		t.Fatalf("ownertest: %v", err)
	}
	cg := &Cgroups{t: t, top: top, dirs: []string{top}}
	t.Cleanup(cg.remove)
	return cg
}

// SystemSlice returns system.slice under the cgroup v2 root as a
// subtree of the test's: where mptcpgod looks for a forced unit's cgroup
// when systemd does not say otherwise (no systemd, as in the
// compatibility matrix's guests, or a unit systemd does not know). At
// cleanup only the cgroups New made are killed and removed: tests of
// other packages and other test runs use system.slice at the same time.
// Each holds a shared lock on the cgroup root while it does; system.slice
// is created when missing, and the last test to leave it removes it if a
// test made it.
func SystemSlice(t testing.TB) *Cgroups {
	t.Helper()
	root, err := bpf.CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.Open(root)
	if err != nil {
		t.Fatalf("ownertest: %v", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_SH); err != nil {
		lock.Close()
		t.Fatalf("ownertest: lock %s: %v", root, err)
	}
	cg := &Cgroups{t: t, top: filepath.Join(root, "system.slice"), shared: lock}
	t.Cleanup(cg.remove)
	if err := os.Mkdir(cg.top, 0o755); err == nil {
		if err := unix.Setxattr(cg.top, sliceMark, []byte("1"), 0); err != nil {
			t.Logf("ownertest: %s will be left: marking it made by a test: %v", cg.top, err)
		}
	} else if !os.IsExist(err) {
		t.Fatalf("ownertest: %v", err)
	}
	return cg
}

// Top returns the subtree's directory.
func (cg *Cgroups) Top() string { return cg.top }

// New creates the cgroup rel (slash-separated, parents first) in the
// subtree and returns its directory.
func (cg *Cgroups) New(rel string) string {
	cg.t.Helper()
	dir := filepath.Join(cg.top, filepath.FromSlash(rel))
	if err := os.Mkdir(dir, 0o755); err != nil {
		cg.t.Fatalf("ownertest: %v", err)
	}
	cg.dirs = append(cg.dirs, dir)
	return dir
}

// ID returns the cgroup id of dir (the inode number of its directory).
func ID(t testing.TB, dir string) uint64 {
	t.Helper()
	id, err := bpf.CgroupID(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// remove kills what runs in the cgroups it created and removes them,
// children first.
func (cg *Cgroups) remove() {
	if cg.shared != nil {
		defer cg.leave()
	}
	// cgroup.kill (Linux 5.14) kills the whole subtree.
	for _, d := range cg.dirs {
		_ = os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0)
	}
	deadline := time.Now().Add(StartLimit)
	for i := len(cg.dirs) - 1; i >= 0; i-- {
		for {
			err := os.Remove(cg.dirs[i])
			if err == nil || os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				cg.t.Errorf("ownertest: remove test cgroup: %v", err)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// leave gives up the shared lock on the cgroup root and, when no other
// test holds it and a test made system.slice, removes system.slice.
func (cg *Cgroups) leave() {
	defer cg.shared.Close()
	// The shared lock becomes an exclusive one only when no other test
	// holds one.
	if err := unix.Flock(int(cg.shared.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return
	}
	if _, err := unix.Getxattr(cg.top, sliceMark, nil); err != nil {
		return
	}
	if err := os.Remove(cg.top); err != nil && !os.IsNotExist(err) {
		cg.t.Errorf("ownertest: remove %s: %v", cg.top, err)
	}
}
