// Command sockprobe is the tests' own program run under mptcpctl run,
// built with CGO_ENABLED=0 and run with GODEBUG=multipathtcp=0, so that
// nothing in it asks for MPTCP. It prints JSON on standard output.
//
//	sockprobe sockets        open sockets of every kind with raw socket(2)
//	                         calls and report each one's protocol and flags
//	sockprobe get ADDR PATH  HTTP GET over a plain net.Dial connection
//	sockprobe daemon DIR     start a child in a session of its own and exit;
//	                         the child writes its pid to DIR/pid, waits for
//	                         DIR/go, then reports one socket in DIR/result
//	sockprobe daemon DIR churn
//	                         the same, but the child opens and closes TCP
//	                         sockets on four threads (creating DIR/running
//	                         after the first) until DIR/stop exists, and
//	                         reports a Churn
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sockprobe:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 1 && args[0] == "sockets":
		return writeJSON(os.Stdout, sockets())
	case len(args) == 3 && args[0] == "get":
		return get(args[1], args[2])
	case len(args) == 2 && args[0] == "daemon":
		return daemon(args[1:])
	case len(args) == 3 && args[0] == "daemon" && args[2] == "churn":
		return daemon(args[1:])
	case len(args) == 2 && args[0] == "child":
		return child(args[1], false)
	case len(args) == 3 && args[0] == "child" && args[2] == "churn":
		return child(args[1], true)
	}
	return fmt.Errorf("usage: sockprobe sockets | get ADDR PATH | daemon DIR [churn]")
}

// Socket is what sockprobe reports of one socket(2) call.
type Socket struct {
	Name     string `json:"name"`
	Protocol int    `json:"protocol"` // SO_PROTOCOL; -1 when socket(2) failed
	Flags    uint64 `json:"flags"`    // the flags line of /proc/self/fdinfo/FD
	Error    string `json:"error,omitempty"`
}

// sockets opens one socket of every kind the tests look at, keeps them
// open until all are reported, and reports them.
func sockets() []Socket {
	kinds := []struct {
		name                  string
		family, typ, protocol int
	}{
		{"tcp4", unix.AF_INET, unix.SOCK_STREAM, 0},
		{"tcp6-tcp", unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_TCP},
		{"tcp4-nonblock", unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_NONBLOCK, 0},
		{"tcp6-cloexec", unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_CLOEXEC, 0},
		{"tcp4-both", unix.AF_INET, unix.SOCK_STREAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, unix.IPPROTO_TCP},
		{"mptcp4", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP},
		{"udp4", unix.AF_INET, unix.SOCK_DGRAM, 0},
		{"udp6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP},
		{"unix", unix.AF_UNIX, unix.SOCK_STREAM, 0},
	}
	var out []Socket
	var fds []int
	for _, k := range kinds {
		s := Socket{Name: k.name, Protocol: -1}
		fd, err := unix.Socket(k.family, k.typ, k.protocol)
		if err != nil {
			s.Error = err.Error()
			out = append(out, s)
			continue
		}
		fds = append(fds, fd)
		s.Protocol, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		if err != nil {
			s.Error = err.Error()
		}
		s.Flags, err = fdFlags(fd)
		if err != nil {
			s.Error = err.Error()
		}
		out = append(out, s)
	}
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
	return out
}

// fdFlags returns the octal flags line of /proc/self/fdinfo/FD.
func fdFlags(fd int) (uint64, error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "flags:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 8, 64)
		}
	}
	return 0, fmt.Errorf("fdinfo %d: no flags line", fd)
}

// Got is what get reports.
type Got struct {
	Protocol  int  `json:"protocol"`  // SO_PROTOCOL of the connection's socket
	Multipath bool `json:"multipath"` // net.TCPConn.MultipathTCP: MPTCP, not fallen back
	Bytes     int  `json:"bytes"`     // of the response, headers included
}

// get sends GET PATH over a connection made with a plain net.Dial.
func get(addr, path string) error {
	c, err := net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	var g Got
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		g.Protocol, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, addr); err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, c)
	if err != nil {
		return err
	}
	g.Bytes = int(n)
	g.Multipath, _ = tc.MultipathTCP()
	return writeJSON(os.Stdout, g)
}

// daemon starts the child (its arguments: DIR, and "churn" or nothing) in
// a session of its own and exits at once, as a daemon's first process
// does.
func daemon(args []string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := args[0]
	cmd := exec.Command(self, append([]string{"child"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
}

// child waits for DIR/go, then reports a TCP socket (or with churn, a
// Churn) in DIR/result.
func child(dir string, churning bool) error {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var result any = sockets()[0]
	if churning {
		c, err := churn(dir)
		if err != nil {
			return err
		}
		result = c
	}
	f, err := os.Create(filepath.Join(dir, "result.tmp"))
	if err != nil {
		return err
	}
	if err := writeJSON(f, result); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(filepath.Join(dir, "result.tmp"), filepath.Join(dir, "result"))
}

// Churn is what churn reports: how many socket(AF_INET, SOCK_STREAM, 0)
// calls it made, how many gave MPTCP, and the errors of those that failed.
type Churn struct {
	Calls  int            `json:"calls"`
	MPTCP  int            `json:"mptcp"`
	Errors map[string]int `json:"errors,omitempty"`
}

// churn opens and closes TCP sockets on churners goroutines at once until
// DIR/stop exists, creating DIR/running after the first one.
func churn(dir string) (Churn, error) {
	const churners = 4
	var (
		mu      sync.Mutex
		total   = Churn{Errors: map[string]int{}}
		running sync.Once
		wg      sync.WaitGroup
		werr    error
	)
	for range churners {
		wg.Go(func() {
			c := Churn{Errors: map[string]int{}}
			for {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
				c.Calls++
				if err != nil {
					c.Errors[err.Error()]++
				} else {
					if p, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err == nil && p == unix.IPPROTO_MPTCP {
						c.MPTCP++
					}
					_ = unix.Close(fd)
				}
				running.Do(func() { werr = os.WriteFile(filepath.Join(dir, "running"), nil, 0o644) })
				if c.Calls%64 == 0 {
					if _, err := os.Stat(filepath.Join(dir, "stop")); err == nil {
						break
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			total.Calls += c.Calls
			total.MPTCP += c.MPTCP
			for e, n := range c.Errors {
				total.Errors[e] += n
			}
		})
	}
	wg.Wait()
	return total, werr
}

func writeJSON(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
