package runtest

import (
	"context"
	"testing"
	"time"
)

// ReadyTimeout bounds WaitReady: 10 s, longer by $MPTCPGOD_TEST_PATIENCE
// (Patience).
var ReadyTimeout = Patience(10 * time.Second)

// Running is a Run started for a test by Start or Run.
type Running struct {
	what   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's error, set before done is closed
}

// Start runs run (a Run method) in a goroutine with a context that Stop
// cancels; the test's cleanup stops it if the test did not. Run's error is
// the test's to check (Stop, Wait). what names it in failures ("engine").
func Start(tb testing.TB, what string, run func(context.Context) error) *Running {
	r := start(what, run)
	tb.Cleanup(func() { _ = r.Stop() })
	return r
}

// Run is Start, and the test's cleanup fails the test if Run returned an
// error.
func Run(tb testing.TB, what string, run func(context.Context) error) *Running {
	r := start(what, run)
	tb.Cleanup(func() {
		if err := r.Stop(); err != nil {
			tb.Errorf("%s: Run: %v", what, err)
		}
	})
	return r
}

func start(what string, run func(context.Context) error) *Running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{what: what, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx)
	}()
	return r
}

// Stop cancels Run's context, waits until Run returns and returns its
// error. Every call, from any goroutine, returns that same error.
func (r *Running) Stop() error {
	r.cancel()
	return r.Wait()
}

// Done is closed once Run has returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Wait waits until Run returns, without stopping it, and returns its
// error.
func (r *Running) Wait() error {
	<-r.done
	return r.err
}

// WaitReady waits until ready is closed, and fails the test if Run returns
// first or after ReadyTimeout.
func (r *Running) WaitReady(tb testing.TB, ready <-chan struct{}) {
	tb.Helper()
	r.WaitReadyWithin(tb, ready, ReadyTimeout)
}

// WaitReadyWithin is WaitReady with a limit of its own.
func (r *Running) WaitReadyWithin(tb testing.TB, ready <-chan struct{}, limit time.Duration) {
	tb.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-ready:
	case <-r.done:
		select {
		case <-ready: // ready, then returned: the test or the cleanup sees the error
		default:
			tb.Fatalf("%s: Run returned before ready: %v", r.what, r.err)
		}
	case <-timer.C:
		tb.Fatalf("%s not ready within %v", r.what, limit)
	}
}
