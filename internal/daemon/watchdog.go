package daemon

import (
	"context"
	"log/slog"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// watchdog feeds systemd's watchdog (WatchdogSec= in the unit) from the
// engine's loop itself: every half period it asks alive, which the engine
// answers only from its loop, and pings only when that answer came within
// a quarter period. A stuck loop therefore stops the pings and systemd
// restarts the daemon, even though every other goroutine still runs.
type watchdog struct {
	period time.Duration
	alive  func(context.Context) error
	ping   func()
	log    *slog.Logger
}

// newWatchdog returns the watchdog systemd asked for in the environment
// (WATCHDOG_USEC for this process), or nil when there is none.
func newWatchdog(log *slog.Logger, alive func(context.Context) error) *watchdog {
	period, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("ignoring systemd's watchdog settings", "error", err)
		return nil
	}
	if period <= 0 {
		return nil
	}
	return &watchdog{period: period, alive: alive, ping: func() { notify(log, sd.SdNotifyWatchdog) }, log: log}
}

// run pings until ctx is done.
func (w *watchdog) run(ctx context.Context) {
	tick := time.NewTicker(w.period / 2)
	defer tick.Stop()
	missed := 0
	for {
		actx, cancel := context.WithTimeout(ctx, w.period/4)
		err := w.alive(actx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			missed++
			w.log.Warn("the engine did not answer; withholding the watchdog ping",
				"error", err, "missed", missed, "watchdog", w.period)
		default:
			if missed > 0 {
				w.log.Info("the engine answers again", "missed", missed)
			}
			missed = 0
			w.ping()
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}
