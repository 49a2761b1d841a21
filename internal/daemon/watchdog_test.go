package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
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

	enginetest.Poll(t, "3 pings from a live engine", func() string {
		if n := pings.Load(); n < 3 {
			return fmt.Sprintf("%d pings", n)
		}
		return ""
	})
	stuck.Store(true)
	time.Sleep(w.period) // a ping that was under way may still land
	before := pings.Load()
	time.Sleep(5 * w.period)
	if got := pings.Load(); got != before {
		t.Fatalf("%d pings while the engine was stuck, want none", got-before)
	}
	stuck.Store(false)
	enginetest.Poll(t, "pings once the engine answers again", func() string {
		if pings.Load() == before {
			return "none"
		}
		return ""
	})
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
