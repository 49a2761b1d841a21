package runtest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeTB records failures and cleanups; Fatalf ends its goroutine.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	failures []string
	skipped  []string
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeTB) Skip(args ...any) {
	f.skipped = append(f.skipped, fmt.Sprint(args...))
	runtime.Goexit()
}

// end runs the cleanups, last registered first, and returns the failures.
func (f *fakeTB) end() []string {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return f.failures
}

// inTest runs fn as a test's goroutine would, where Fatalf ends it.
func inTest(fn func()) {
	var wg sync.WaitGroup
	wg.Go(fn)
	wg.Wait()
}

var errBoom = errors.New("boom")

// untilDone runs until its context is done, closes ready first, and
// returns err.
func untilDone(ready chan struct{}, err error) func(context.Context) error {
	return func(ctx context.Context) error {
		close(ready)
		<-ctx.Done()
		return err
	}
}

// TestStop: Stop cancels, waits, and returns Run's error to every caller;
// Start leaves the error to the test, Run's cleanup fails the test with it.
func TestStop(t *testing.T) {
	t.Parallel()
	tb := &fakeTB{}
	ready := make(chan struct{})
	r := Start(tb, "engine", untilDone(ready, errBoom))
	r.WaitReady(t, ready)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := r.Stop(); err != errBoom {
				t.Errorf("Stop = %v, want %v", err, errBoom)
			}
		})
	}
	wg.Wait()
	select {
	case <-r.Done():
	default:
		t.Error("Done open after Stop")
	}
	if got := tb.end(); len(got) != 0 {
		t.Errorf("Start's cleanup failed the test: %q", got)
	}

	tb = &fakeTB{}
	Run(tb, "server", untilDone(make(chan struct{}), errBoom))
	if diff := cmp.Diff([]string{"server: Run: boom"}, tb.end()); diff != "" {
		t.Errorf("Run's cleanup (-want +got):\n%s", diff)
	}
	tb = &fakeTB{}
	Run(tb, "server", untilDone(make(chan struct{}), nil))
	if got := tb.end(); len(got) != 0 {
		t.Errorf("Run's cleanup of a clean exit: %q", got)
	}
}

// TestWait: Wait and Done see a Run that returns by itself, without a
// cancel.
func TestWait(t *testing.T) {
	t.Parallel()
	r := Start(t, "monitor", func(context.Context) error { return errBoom })
	<-r.Done()
	if err := r.Wait(); err != errBoom {
		t.Errorf("Wait = %v, want %v", err, errBoom)
	}
}

// TestWaitReadyFails: WaitReady fails the test when Run returns before
// ready and when ready does not come within the limit, and not when Run
// returned after it was ready.
func TestWaitReadyFails(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		tb := &fakeTB{}
		early := Start(tb, "engine", func(context.Context) error { return errBoom })
		inTest(func() { early.WaitReady(tb, make(chan struct{})) })

		never := Start(tb, "daemon", func(ctx context.Context) error { <-ctx.Done(); return nil })
		inTest(func() { never.WaitReadyWithin(tb, make(chan struct{}), time.Minute) })

		ready := make(chan struct{})
		after := Start(tb, "server", func(context.Context) error { close(ready); return errBoom })
		<-after.Done()
		inTest(func() { after.WaitReady(tb, ready) })

		want := []string{"engine: Run returned before ready: boom", "daemon not ready within 1m0s"}
		if diff := cmp.Diff(want, tb.end()); diff != "" {
			t.Errorf("failures (-want +got):\n%s", diff)
		}
	})
}
