package holdtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// addrEnv, set in the environment to the address to listen on, makes the
// test binary the child (TestHoldConns).
const addrEnv = "MPTCPGOD_TEST_HOLD"

// Holder is a child Start runs: its port, and a way to ask how many
// connections it holds.
type Holder struct {
	// Port is the port the child listens on.
	Port uint16

	mu     sync.Mutex
	stdin  io.Writer
	stdout *bufio.Reader
}

// Start runs the test binary's TestHoldConns by command (the way to run a
// program in a namespace, as netnstest.Host.Command) as a child that
// listens on addr (an IP address and a port, 0 for any) and holds every
// connection it accepts until the test ends. The test's cleanup closes the
// child's stdin and waits for it to exit; its standard error is the test
// binary's. A connection the child has not accepted yet when it exits is
// reset: Holder.Held tells how many it accepted.
func Start(tb testing.TB, command func(name string, args ...string) *exec.Cmd, addr string) *Holder {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := command(self, "-test.run=^TestHoldConns$", "-test.count=1")
	cmd.Env = append(os.Environ(), addrEnv+"="+addr)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // closing it stops the child
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("holdtest: start the child: %v", err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close()
		if err := cmd.Wait(); err != nil {
			tb.Errorf("holdtest: child on %s: %v", addr, err)
		}
	})
	h := &Holder{stdin: stdin, stdout: bufio.NewReader(stdout)}
	line, err := h.stdout.ReadString('\n')
	port, perr := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(line), "listening "), 10, 16)
	if err != nil || perr != nil {
		tb.Fatalf("holdtest: child on %s: got %q, %v; want \"listening PORT\" "+
			"(the package's tests need func TestHoldConns(t *testing.T) { holdtest.Child(t) })", addr, line, err)
	}
	h.Port = uint16(port)
	return h
}

// Held asks the child how many connections it has accepted.
func (h *Holder) Held(tb testing.TB) int {
	tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := io.WriteString(h.stdin, "held\n"); err != nil {
		tb.Fatalf("holdtest: ask the child: %v", err)
	}
	line, err := h.stdout.ReadString('\n')
	n, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "held "))
	if err != nil || perr != nil {
		tb.Fatalf("holdtest: the child answered %q, %v; want \"held N\"", line, err)
	}
	return n
}

// Child is the body of TestHoldConns, run by Start: it listens with MPTCP
// on the address Start gave, prints "listening PORT", and accepts and
// holds connections until its stdin closes, then closes them; to each
// line "held" on its stdin it answers "held N", the connections it
// accepted. It skips unless the process is Start's child.
func Child(t *testing.T) {
	addr := os.Getenv(addrEnv)
	if addr == "" {
		t.Skip("the child process of holdtest.Start")
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	network := "tcp6"
	if ap.Addr().Is4() {
		network = "tcp4"
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	held := Accept(ln, nil)
	defer held.Close()
	fmt.Println("listening", netip.MustParseAddrPort(ln.Addr().String()).Port())
	for in := bufio.NewScanner(os.Stdin); in.Scan(); {
		if in.Text() == "held" {
			fmt.Println("held", held.Count())
		}
	}
}

// Held is the connections Accept holds.
type Held struct {
	ln    net.Listener
	count atomic.Int64
	done  chan struct{} // closed when the accepting goroutine returns
	// conns, the accepting goroutine's until done, is referenced so that
	// the GC does not close them.
	conns []net.Conn
}

// Accept accepts connections on ln until Close, hands each to handle
// (when not nil) and holds it.
func Accept(ln net.Listener, handle func(net.Conn)) *Held {
	h := &Held{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.conns = append(h.conns, c)
			h.count.Add(1)
			if handle != nil {
				handle(c)
			}
		}
	}()
	return h
}

// Count returns how many connections Accept has accepted.
func (h *Held) Count() int { return int(h.count.Load()) }

// Close closes the listener, waits until nothing more is accepted, and
// closes every connection held.
func (h *Held) Close() {
	_ = h.ln.Close()
	<-h.done
	for _, c := range h.conns {
		_ = c.Close()
	}
	h.conns = nil
}

// Dial opens n connections to raddr with dial (as netnstest.Host.Dial,
// which closes them when the test ends), a few at a time per CPU, and
// fails the test on the first error.
func Dial(tb testing.TB, dial func(network, laddr, raddr string) (net.Conn, error), network, raddr string, n int) {
	tb.Helper()
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		once    sync.Once
		dialErr error
	)
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := dial(network, "", raddr); err != nil {
					once.Do(func() { dialErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if dialErr != nil {
		tb.Fatal(dialErr)
	}
}

// RaiseFiles lifts the soft RLIMIT_NOFILE to at least n descriptors (and
// the hard one with it, which needs CAP_SYS_RESOURCE), or skips the test;
// the test's cleanup sets the limits back.
func RaiseFiles(tb testing.TB, n uint64) {
	tb.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	orig := lim
	lim.Cur, lim.Max = n, max(lim.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		tb.Skipf("raise the open file limit to %d: %v", n, err)
	}
	tb.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig) })
}
