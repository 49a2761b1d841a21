package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchdogStuckEngine: the watchdog pings while the engine answers,
// and stops pinging while it does not, so systemd restarts a daemon whose
// loop is stuck.
func TestWatchdogStuckEngine(t *testing.T) {
	t.Parallel()
	var stuck atomic.Bool
	var pings atomic.Int64
	w := &watchdog{
		period: 40 * time.Millisecond,
		alive: func(ctx context.Context) error {
			if stuck.Load() {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		},
		ping: func() { pings.Add(1) },
		log:  slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	waitFor(t, "pings from a live engine", func() bool { return pings.Load() >= 3 })
	stuck.Store(true)
	time.Sleep(w.period) // a ping that was under way may still land
	before := pings.Load()
	time.Sleep(5 * w.period)
	if got := pings.Load(); got != before {
		t.Fatalf("%d pings while the engine was stuck, want none", got-before)
	}
	stuck.Store(false)
	waitFor(t, "pings once the engine answers again", func() bool { return pings.Load() > before })
}

// TestWatchdogStopsWithContext: run returns when its context ends, even
// while the engine does not answer.
func TestWatchdogStopsWithContext(t *testing.T) {
	t.Parallel()
	w := &watchdog{
		period: time.Hour,
		alive: func(ctx context.Context) error {
			<-ctx.Done()
			return errors.New("stuck")
		},
		ping: func() { t.Error("ping from a stuck engine") },
		log:  slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(ctx)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
