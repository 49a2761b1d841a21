package health

import (
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults of a zero Config.
const (
	DefaultInterval     = 25 * time.Millisecond
	DefaultIdleInterval = 500 * time.Millisecond
	DefaultRefresh      = time.Second
)

// DefaultThreshold is the stall threshold of a zero Threshold: the
// subflow's un-backed-off RTO, at least 150 ms and at most 2 s.
var DefaultThreshold = Threshold{Min: 150 * time.Millisecond, Max: 2 * time.Second, RTOFactor: 1}

// Config configures a Sampler. The zero value samples the calling
// thread's namespace with the defaults.
type Config struct {
	// NetNS is a file descriptor of the network namespace to sample; 0
	// means the namespace of the thread that calls New.
	NetNS int
	// Interval is the sampling period while the namespace has MPTCP
	// subflows; 0 means DefaultInterval.
	Interval time.Duration
	// IdleInterval is the sampling period while it has none; 0 means
	// DefaultIdleInterval. It is not shorter than Interval.
	IdleInterval time.Duration
	// Refresh is how often a report goes out when no stall began or
	// ended, while anything may have changed; 0 means DefaultRefresh.
	Refresh time.Duration
	// Stall is the stall threshold; zero fields take DefaultThreshold's.
	Stall Threshold
	// Logger receives the sampler's logs (component "health"); nil
	// discards them.
	Logger *slog.Logger
}

// Threshold is how long a subflow with data in flight may go without an
// ACK before it is stalled: RTOFactor times its retransmission timeout
// before backoff, within [Min, Max].
type Threshold struct {
	Min, Max  time.Duration
	RTOFactor float64
}

// For returns the threshold of a subflow whose retransmission timeout
// before backoff is rto (0 when unknown, which gives Min).
func (t Threshold) For(rto time.Duration) time.Duration {
	d := time.Duration(float64(rto) * t.RTOFactor)
	return min(max(d, t.Min), t.Max)
}

func (t Threshold) withDefaults() (Threshold, error) {
	if t.Min == 0 {
		t.Min = DefaultThreshold.Min
	}
	if t.Max == 0 {
		t.Max = max(DefaultThreshold.Max, t.Min)
	}
	if t.RTOFactor == 0 {
		t.RTOFactor = DefaultThreshold.RTOFactor
	}
	switch {
	case t.Min < 0:
		return t, fmt.Errorf("health: stall threshold: min %v is negative", t.Min)
	case t.Max < t.Min:
		return t, fmt.Errorf("health: stall threshold: max %v is below min %v", t.Max, t.Min)
	case t.RTOFactor < 0 || math.IsNaN(t.RTOFactor) || math.IsInf(t.RTOFactor, 0):
		return t, fmt.Errorf("health: stall threshold: rto factor %v is not a positive number", t.RTOFactor)
	}
	return t, nil
}

// withDefaults returns cfg with the defaults filled in, or an error naming
// the first bad field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.NetNS < 0 {
		return cfg, fmt.Errorf("health: netns: %d is not a file descriptor", cfg.NetNS)
	}
	for _, f := range []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"interval", &cfg.Interval, DefaultInterval},
		{"refresh", &cfg.Refresh, DefaultRefresh},
		{"idle interval", &cfg.IdleInterval, max(DefaultIdleInterval, cfg.Interval)},
	} {
		switch {
		case *f.d < 0:
			return cfg, fmt.Errorf("health: %s: %v is negative", f.name, *f.d)
		case *f.d == 0:
			*f.d = f.def
		}
	}
	if cfg.IdleInterval < cfg.Interval {
		return cfg, fmt.Errorf("health: idle interval: %v is shorter than interval %v", cfg.IdleInterval, cfg.Interval)
	}
	var err error
	if cfg.Stall, err = cfg.Stall.withDefaults(); err != nil {
		return cfg, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
