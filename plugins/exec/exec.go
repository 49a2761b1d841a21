package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// defaultGrace is how long Close waits after SIGTERM before SIGKILL.
const defaultGrace = 2 * time.Second

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("exec: closed")

// Exec is the exec policy: a child process decides, over the line
// protocol of docs/plugins.md, and the policy falls back to the plan it
// was given whenever the child is not there to answer in time.
type Exec struct {
	cfg   Config
	grace time.Duration

	mu      sync.Mutex // serialises requests and guards what follows
	log     *slog.Logger
	onReady func()
	started bool // the supervisor runs (or ran)
	closed  bool
	cur     *child // the child that answered the handshake; nil while down
	id      uint64 // of the last request to cur
	stats   Stats
	// attempt is closed, and replaced, after every handshake attempt;
	// lastErr is that attempt's error.
	attempt chan struct{}
	lastErr error

	quit      chan struct{}
	done      chan struct{} // closed when the supervisor returns
	closeOnce sync.Once
}

var (
	_ policy.Policy       = (*Exec)(nil)
	_ policy.Validator    = (*Exec)(nil)
	_ policy.Closer       = (*Exec)(nil)
	_ policy.Describer    = (*Exec)(nil)
	_ policy.HealthReader = (*Exec)(nil)
)

// Stats counts what an Exec did. Its JSON keys are snake_case.
type Stats struct {
	// Running reports that a child answered the handshake and is up.
	Running bool `json:"running"`
	// PID is the running child's process id.
	PID int `json:"pid,omitempty"`
	// Plugin is the name the child gave in its hello.
	Plugin string `json:"plugin,omitempty"`
	// Starts counts the children started.
	Starts uint64 `json:"starts"`
	// Requests counts the requests written to children.
	Requests uint64 `json:"requests"`
	// Answers counts the plans the children returned and the policy used.
	Answers uint64 `json:"answers"`
	// Fallbacks counts the calls that returned the plan they were given
	// because no valid answer came: the child was down, late, crashed,
	// or answered with an error or an invalid plan.
	Fallbacks uint64 `json:"fallbacks"`
	// Timeouts counts the requests not answered in time.
	Timeouts uint64 `json:"timeouts"`
	// Crashes counts the children that exited without being asked to.
	Crashes uint64 `json:"crashes"`
	// Invalid counts the answers rejected: error replies, and plans that
	// do not decode or do not validate.
	Invalid uint64 `json:"invalid"`
}

// New returns the exec policy for cfg, or an error naming the first bad
// option. It starts nothing: the child starts with Start, or with the
// first call in one of the configured modes. Validate checks that the
// command can be run.
func New(cfg Config) (*Exec, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.clone()
	return &Exec{
		cfg:     cfg,
		grace:   defaultGrace,
		log:     slog.Default().With("component", "policy/exec", "command", cfg.Command),
		attempt: make(chan struct{}),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}, nil
}

// Name implements policy.Policy.
func (p *Exec) Name() string { return Name }

// ReadsHealth implements policy.HealthReader: the external program may decide from it.
func (p *Exec) ReadsHealth() bool { return true }

// Config returns the policy's configuration.
func (p *Exec) Config() Config { return p.cfg.clone() }

// Validate implements policy.Validator: the command must name an
// executable file.
func (p *Exec) Validate() error { return p.cfg.checkCommand() }

// SetLogger sets the logger of the policy and its children's standard
// error; the policy adds component=policy/exec and the command. Until it
// is called the policy logs to slog.Default().
func (p *Exec) SetLogger(l *slog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = l.With("component", "policy/exec", "command", p.cfg.Command)
}

// OnReady sets fn to be called, from a goroutine of the policy, each time
// a child has answered the handshake: at the first start and after every
// restart. The policy answered with the plans it was given while no child
// was up; fn is where the caller has the engine ask again.
func (p *Exec) OnReady(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onReady = fn
}

// Start starts the child for mode, unless it runs already, and waits
// until it has answered the handshake or ctx is done. It returns the
// error of the failed start; the policy keeps trying with backoff either
// way. In a mode the configuration does not list, Start does nothing.
func (p *Exec) Start(ctx context.Context, mode policy.Mode) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if !p.handles(mode) || p.cur != nil {
		p.mu.Unlock()
		return nil
	}
	wait := p.attempt
	p.ensureStarted(mode)
	p.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return nil
	}
	if p.closed {
		return ErrClosed
	}
	return p.lastErr
}

// Stats returns the policy's counters.
func (p *Exec) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	if p.cur != nil {
		s.Running, s.PID = true, p.cur.pid
		if n := p.cur.name.Load(); n != nil {
			s.Plugin = *n
		}
	}
	return s
}

// Close implements policy.Closer: it stops the child (its standard input
// closes and it gets SIGTERM, then SIGKILL after a grace period of 2s),
// waits until it is reaped, and stops restarting it. Calls after Close
// return the plan they are given.
func (p *Exec) Close() error {
	p.mu.Lock()
	p.closed = true
	started := p.started
	p.mu.Unlock()
	p.closeOnce.Do(func() { close(p.quit) })
	if started {
		<-p.done
	}
	return nil
}

// Kernel implements policy.Policy: the child's kernel-mode plan, or next
// when there is no valid answer in time.
func (p *Exec) Kernel(v policy.View, next policy.KernelPlan) policy.KernelPlan {
	var plan policy.KernelPlan
	ok := p.ask(v.Mode, typeKernel, func(id uint64) any {
		return kernelRequest{Type: typeKernel, ID: id, View: v, Next: next}
	}, func(raw json.RawMessage) error { return decodePlan(raw, &plan) })
	if !ok {
		return next
	}
	return plan
}

// Conn implements policy.Policy: the child's plan for c, or next when
// there is no valid answer in time.
func (p *Exec) Conn(v policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	var plan policy.ConnPlan
	ok := p.ask(v.Mode, typeConn, func(id uint64) any {
		return connRequest{Type: typeConn, ID: id, View: v, Conn: c, Next: next}
	}, func(raw json.RawMessage) error { return decodePlan(raw, &plan) })
	if !ok {
		return next
	}
	return plan
}

func (p *Exec) handles(mode policy.Mode) bool { return slices.Contains(p.cfg.Modes, mode) }

// ensureStarted starts the supervisor once; p.mu is held.
func (p *Exec) ensureStarted(mode policy.Mode) {
	if p.started || p.closed {
		return
	}
	p.started = true
	go p.supervise(mode)
}

// ask sends a request built by req to the running child and hands the
// plan of its answer to decode. It reports whether the answer is to be
// used; it never waits longer than the configured timeout, and not at all
// while no child is up.
func (p *Exec) ask(mode policy.Mode, typ string, req func(id uint64) any, decode func(json.RawMessage) error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.handles(mode) {
		return false
	}
	p.ensureStarted(mode)
	ch := p.cur
	if ch == nil {
		p.stats.Fallbacks++
		return false
	}
	ok := p.exchange(ch, typ, req, decode)
	if ok {
		p.stats.Answers++
	} else {
		p.stats.Fallbacks++
	}
	return ok
}

// exchange is one request and its answer; p.mu is held.
func (p *Exec) exchange(ch *child, typ string, req func(id uint64) any, decode func(json.RawMessage) error) bool {
	// A line the child wrote while it had nothing to answer breaks the
	// protocol.
	select {
	case l, open := <-ch.replies:
		if !open {
			p.down(ch, "standard output closed")
		} else {
			p.fail(ch, "a line without a request", "line", l.r.Type, "error", l.err)
		}
		return false
	default:
	}
	id := p.id + 1
	b, err := json.Marshal(req(id))
	if err != nil {
		p.log.Error("cannot encode request", "type", typ, "error", err)
		return false
	}
	p.id = id
	deadline := time.Now().Add(p.cfg.Timeout)
	if err := ch.write(append(b, '\n'), deadline); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.stats.Timeouts++
			p.fail(ch, "request not read in time", "id", id, "timeout", p.cfg.Timeout)
		} else {
			p.down(ch, "write: "+err.Error())
		}
		return false
	}
	p.stats.Requests++
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case l, open := <-ch.replies:
		switch {
		case !open:
			p.down(ch, "standard output closed")
			return false
		case l.err != nil:
			p.fail(ch, "bad line", "id", id, "error", l.err)
			return false
		case l.r.ID != id:
			p.fail(ch, "answer to another request", "id", id, "got_id", l.r.ID, "type", l.r.Type)
			return false
		case l.r.Type == typeError:
			p.stats.Invalid++
			p.log.Warn("plugin error", "id", id, "type", typ, "message", truncate([]byte(l.r.Message), 1024))
			return false
		case l.r.Type != typ:
			p.stats.Invalid++
			p.log.Warn("plugin answer rejected", "id", id, "type", typ, "error", fmt.Sprintf("answer of type %q", l.r.Type))
			return false
		}
		if err := decode(l.r.Plan); err != nil {
			p.stats.Invalid++
			p.log.Warn("plugin answer rejected", "id", id, "type", typ, "error", err)
			return false
		}
		return true
	case <-t.C:
		p.stats.Timeouts++
		p.fail(ch, "no answer in time", "id", id, "timeout", p.cfg.Timeout)
		return false
	case <-ch.exited:
		p.down(ch, "exited: "+ch.exitString())
		return false
	}
}

// fail kills ch, which broke the protocol or missed its deadline, and
// takes it out of service; the supervisor restarts it. p.mu is held.
func (p *Exec) fail(ch *child, why string, args ...any) {
	p.log.Warn("plugin failed; restarting it", append([]any{"pid", ch.pid, "reason", why}, args...)...)
	if p.cur == ch {
		p.cur = nil
	}
	ch.kill()
}

// down takes ch out of service when it is gone or going: its output or
// input closed, or it exited. The supervisor logs how it ended, counts
// the crash and restarts it. p.mu is held.
func (p *Exec) down(ch *child, why string) {
	p.log.Debug("plugin gone", "pid", ch.pid, "reason", why)
	if p.cur == ch {
		p.cur = nil
	}
	ch.signal(syscall.SIGKILL)
}

// supervise starts children one after another, with backoff between
// starts, until Close.
func (p *Exec) supervise(mode policy.Mode) {
	defer func() {
		// Wake a Start that waits for an attempt that will not come.
		p.mu.Lock()
		p.lastErr = ErrClosed
		close(p.attempt)
		p.attempt = make(chan struct{})
		p.mu.Unlock()
		close(p.done)
	}()
	b := p.cfg.RestartBackoff
	delay := b.Initial
	for {
		began := time.Now()
		ch, err := p.startChild(mode)
		p.mu.Lock()
		if err == nil {
			p.cur, p.id = ch, 0
		}
		p.lastErr = err
		close(p.attempt)
		p.attempt = make(chan struct{})
		log, onReady := p.log, p.onReady
		p.mu.Unlock()

		if err == nil {
			log.Info("plugin started", "pid", ch.pid, "plugin", *ch.name.Load(), "mode", mode)
			if onReady != nil {
				onReady()
			}
			select {
			case <-ch.exited:
				p.mu.Lock()
				if p.cur == ch {
					p.cur = nil
				}
				crashed := !ch.killed.Load()
				if crashed {
					p.stats.Crashes++
				}
				p.mu.Unlock()
				if time.Since(began) >= b.Max {
					// It ran long enough to count as healthy.
					delay = b.Initial
				}
				if crashed {
					log.Warn("plugin exited; restarting it", "pid", ch.pid, "status", ch.exitString(), "after", delay)
				}
				ch.cleanup()
			case <-p.quit:
				p.mu.Lock()
				if p.cur == ch {
					p.cur = nil
				}
				p.mu.Unlock()
				ch.stop(p.grace)
				return
			}
		} else {
			if errors.Is(err, ErrClosed) {
				return
			}
			log.Warn("plugin did not start; retrying", "error", err, "after", delay)
		}

		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-p.quit:
			t.Stop()
			return
		}
		delay = min(2*delay, b.Max)
	}
}

// startChild starts a child and runs the handshake.
func (p *Exec) startChild(mode policy.Mode) (*child, error) {
	p.mu.Lock()
	log := p.log
	p.stats.Starts++
	p.mu.Unlock()
	ch, err := spawn(p.cfg, log)
	if err != nil {
		return nil, err
	}
	if err := p.handshake(ch, mode); err != nil {
		if errors.Is(err, ErrClosed) {
			ch.stop(p.grace)
		} else {
			ch.kill()
			ch.cleanup()
		}
		return nil, err
	}
	return ch, nil
}

// handshake sends the hello and reads the child's within StartTimeout.
func (p *Exec) handshake(ch *child, mode policy.Mode) error {
	deadline := time.Now().Add(p.cfg.StartTimeout)
	b, err := json.Marshal(helloRequest{Type: typeHello, Version: Version, Mode: mode})
	if err != nil {
		return fmt.Errorf("exec: hello: %w", err)
	}
	if err := ch.write(append(b, '\n'), deadline); err != nil {
		return fmt.Errorf("exec: hello: %w", err)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case l, open := <-ch.replies:
		switch {
		case !open:
			return errors.New("exec: hello: standard output closed")
		case l.err != nil:
			return fmt.Errorf("exec: hello: %w", l.err)
		case l.r.Type != typeHello:
			return fmt.Errorf("exec: hello: answer of type %q, want \"hello\"", l.r.Type)
		case l.r.Version != Version:
			return fmt.Errorf("exec: hello: the plugin speaks version %d, the daemon %d", l.r.Version, Version)
		}
		name := l.r.Name
		if name == "" {
			name = "unnamed"
		}
		ch.name.Store(&name)
		return nil
	case <-ch.exited:
		return fmt.Errorf("exec: hello: exited: %s", ch.exitString())
	case <-t.C:
		return fmt.Errorf("exec: hello: no answer within %s", p.cfg.StartTimeout)
	case <-p.quit:
		return ErrClosed
	}
}
