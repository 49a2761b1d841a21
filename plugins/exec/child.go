package exec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// drainTimeout is how long a child's output is read after it exited,
// for the last lines of its standard error, before the pipes are closed
// (a grandchild may hold them open).
const drainTimeout = time.Second

// stderrLine is the longest standard error line logged in one piece.
const stderrLine = 4096

// child is one run of the plugin: the process in a process group of its
// own, its pipes and the goroutines that read them and reap it.
type child struct {
	cmd    *osexec.Cmd
	pid    int
	stdin  *os.File // the daemon's end; supports deadlines
	stdout *os.File
	stderr *os.File
	log    *slog.Logger

	// replies carries the lines of its standard output, decoded; it is
	// closed when standard output ends. Sends give up once abandon is
	// closed.
	replies chan lineReply
	abandon chan struct{}
	// exited is closed when the process has exited and been reaped;
	// state is then its exit status.
	exited chan struct{}
	state  *os.ProcessState
	// readers counts the output readers.
	readers sync.WaitGroup

	// name is the name from the hello reply, for the logs.
	name atomic.Pointer[string]
	// killed is set when the daemon killed or stopped the child, so its
	// exit is not reported as a crash.
	killed atomic.Bool

	stopOnce, cleanupOnce sync.Once
}

// lineReply is a decoded line of the plugin's standard output, or the
// error that makes it unusable.
type lineReply struct {
	r   reply
	err error
}

// spawn starts the plugin of cfg without a capability, with its resource
// limits, in a process group of its own, in /, with cfg's environment,
// killed if the daemon dies (start, in reap_linux.go).
func spawn(cfg Config, log *slog.Logger) (*child, error) {
	cmdline := cfg.Command
	env := cfg.environ()
	path, err := lookPath(cmdline[0], env["PATH"])
	if err != nil {
		return nil, err
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return nil, fmt.Errorf("exec: stdin pipe: %w", err)
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("exec: stdout pipe: %w", err)
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("exec: stderr pipe: %w", err)
	}

	cmd := &osexec.Cmd{Path: path, Args: cmdline, Env: envList(env), Dir: "/"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	// A process group of its own: the daemon's terminal signals do not
	// reach it, and killing the group takes the plugin's own children.
	// SIGKILL when the daemon dies, even by SIGKILL.
	cmd.SysProcAttr = sysProcAttr()
	if err := start(cmd, cfg.Limits); err != nil {
		closeAll()
		return nil, fmt.Errorf("exec: start %s: %w", cmdline[0], err)
	}
	// The child's ends belong to the child now.
	_ = inR.Close()
	_ = outW.Close()
	_ = errW.Close()

	c := &child{
		cmd:     cmd,
		pid:     cmd.Process.Pid,
		stdin:   inW,
		stdout:  outR,
		stderr:  errR,
		replies: make(chan lineReply, 4),
		abandon: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	c.log = log.With("pid", c.pid)
	c.readers.Add(2)
	go c.readStdout()
	go c.readStderr(filepath.Base(cmdline[0]))
	go func() {
		_ = cmd.Wait()
		c.state = cmd.ProcessState
		close(c.exited)
		// Nobody reads replies of a dead child.
		close(c.abandon)
		// Leftovers of the group go with the leader, and so do the
		// orphans that left it.
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		reaped(c.pid)
	}()
	return c, nil
}

// envList returns env as KEY=VALUE, sorted.
func envList(env map[string]string) []string {
	vars := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		vars = append(vars, k+"="+env[k])
	}
	return vars
}

// readStdout decodes standard output line by line into replies.
func (c *child) readStdout() {
	defer c.readers.Done()
	defer close(c.replies)
	br := bufio.NewReaderSize(c.stdout, 64<<10)
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			buf = append(buf, frag...)
			if len(buf) >= MaxLine {
				c.send(lineReply{err: fmt.Errorf("line longer than %d bytes", MaxLine)})
				return
			}
			continue
		}
		if err != nil {
			if len(buf)+len(frag) > 0 && !errors.Is(err, os.ErrClosed) {
				c.send(lineReply{err: errors.New("output ended inside a line")})
			}
			return
		}
		line := frag
		if len(buf) > 0 {
			buf = append(buf, frag...)
			line = buf
		}
		if len(line) > MaxLine {
			c.send(lineReply{err: fmt.Errorf("line longer than %d bytes", MaxLine)})
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		r, err := decodeReply(line)
		if err != nil {
			err = fmt.Errorf("%w: %q", err, truncate(line, 80))
		}
		if !c.send(lineReply{r: r, err: err}) {
			// Abandoned: keep reading so the child never blocks on a
			// full pipe while it is being stopped.
			_, _ = io.Copy(io.Discard, br)
			return
		}
		buf = buf[:0]
	}
}

func (c *child) send(l lineReply) bool {
	select {
	case c.replies <- l:
		return true
	case <-c.abandon:
		return false
	}
}

// readStderr logs standard error line by line, long lines in pieces.
func (c *child) readStderr(program string) {
	defer c.readers.Done()
	br := bufio.NewReaderSize(c.stderr, stderrLine)
	for {
		frag, err := br.ReadSlice('\n')
		if line := bytes.TrimRight(frag, "\r\n"); len(line) > 0 {
			name := program
			if n := c.name.Load(); n != nil {
				name = *n
			}
			c.log.Info("plugin stderr", "plugin", name, "line", string(line))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// write writes one line to the child's standard input before deadline.
func (c *child) write(line []byte, deadline time.Time) error {
	if err := c.stdin.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := c.stdin.Write(line)
	return err
}

// kill kills the child's process group at once, as the daemon's
// decision (not a crash); it does not wait.
func (c *child) kill() {
	c.killed.Store(true)
	c.signal(syscall.SIGKILL)
}

// signal sends sig to the child's process group unless the child was
// reaped.
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.exited:
	default:
		_ = syscall.Kill(-c.pid, sig)
	}
}

// stop ends the child: its standard input closes and it gets SIGTERM,
// then SIGKILL when it has not exited after grace. It returns when the
// child is reaped and its output drained.
func (c *child) stop(grace time.Duration) {
	c.stopOnce.Do(func() {
		c.killed.Store(true)
		_ = c.stdin.Close()
		c.signal(syscall.SIGTERM)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.exited:
		case <-t.C:
			c.log.Warn("plugin ignored SIGTERM; killing it", "grace", grace)
			c.signal(syscall.SIGKILL)
			<-c.exited
		}
	})
	c.cleanup()
}

// cleanup waits for the child to be reaped and its output read to the
// end (at most drainTimeout after it exited), then closes the pipes.
func (c *child) cleanup() {
	c.cleanupOnce.Do(func() {
		<-c.exited
		done := make(chan struct{})
		go func() { c.readers.Wait(); close(done) }()
		t := time.NewTimer(drainTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			// Someone else holds the pipes open: stop reading.
			_ = c.stdout.Close()
			_ = c.stderr.Close()
			<-done
		}
		_ = c.stdin.Close()
		_ = c.stdout.Close()
		_ = c.stderr.Close()
	})
}

// exitString describes how the child ended.
func (c *child) exitString() string {
	if c.state == nil {
		return "running"
	}
	return c.state.String()
}

// truncate returns b cut to at most n bytes, marked when cut.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
