package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/metrics"
	"github.com/mptcpgod/mptcpgod/plugins/exec"
	"github.com/mptcpgod/mptcpgod/policy"
)

// What the daemon does for policies beyond the Policy interface, found by
// type assertion: the exec plugin logs through the daemon, runs a child
// process that Start starts, and tells through OnReady when a child
// answers, so that the engine asks again what it decided without it.
type (
	loggerSetter  interface{ SetLogger(*slog.Logger) }
	readyNotifier interface{ OnReady(func()) }
	starter       interface {
		Start(context.Context, policy.Mode) error
	}
)

// programRunner is a policy that runs a program of its own: the exec
// plugin.
type programRunner interface {
	Config() exec.Config
	Stats() exec.Stats
}

var _ programRunner = (*exec.Exec)(nil)

// pluginMetrics returns what the metrics show of the members that run a
// program in mode; in the other modes they start none.
func pluginMetrics(members []policy.Policy, mode policy.Mode) []metrics.Plugin {
	var out []metrics.Plugin
	for _, p := range members {
		r, ok := p.(programRunner)
		if !ok {
			continue
		}
		cfg := r.Config()
		if !slices.Contains(cfg.Modes, mode) {
			continue
		}
		st := r.Stats()
		out = append(out, metrics.Plugin{Command: strings.Join(cfg.Command, " "), Running: st.Running,
			Starts: st.Starts, Crashes: st.Crashes, Requests: st.Requests, Timeouts: st.Timeouts,
			Invalid: st.Invalid, Fallbacks: st.Fallbacks})
	}
	return out
}

// policyStartLimit bounds how long a policy's start is waited for; the
// policy keeps retrying on its own after that. It is the longest start an
// exec policy may be configured to wait (exec.MaxStartTimeout), so the
// policy's own start_timeout decides: an interpreter behind a shim on a
// busy host can take tens of seconds.
const policyStartLimit = time.Minute

// preparePolicies gives the members of a new router the daemon's logger
// and the engine's re-decision on their children's starts.
func (d *Daemon) preparePolicies(members []policy.Policy) {
	for _, p := range members {
		if s, ok := p.(loggerSetter); ok {
			s.SetLogger(d.log)
		}
		if r, ok := p.(readyNotifier); ok {
			r.OnReady(d.reask)
		}
	}
}

// startPolicies starts the members' children in the background: the rest
// of the chain decides meanwhile, and OnReady makes the engine decide
// again once a child answers.
func (d *Daemon) startPolicies(ctx context.Context, members []policy.Policy) {
	for _, p := range members {
		s, ok := p.(starter)
		if !ok {
			continue
		}
		go func() {
			sctx, cancel := context.WithTimeout(ctx, policyStartLimit)
			defer cancel()
			if err := s.Start(sctx, d.mode); err != nil && ctx.Err() == nil {
				d.log.Warn("policy did not start; the rest of its chain decides meanwhile",
					"policy", p.Name(), "error", err)
			}
		}()
	}
}

// reask makes the engine decide again with the current policy. Policies
// call it from their own goroutines, so it never blocks: one pending
// request covers any number.
func (d *Daemon) reask() {
	select {
	case d.reaskC <- struct{}{}:
	default:
	}
}

// runReask hands reask's requests to the engine until ctx is done.
func (d *Daemon) runReask(ctx context.Context) error {
	for {
		select {
		case <-d.reaskC:
			d.engine.SetPolicy(d.current.Load())
		case <-ctx.Done():
			return nil
		}
	}
}

// readsHealth reports whether one of members reads path health.
func readsHealth(members []policy.Policy) bool {
	for _, p := range members {
		if h, ok := p.(policy.HealthReader); ok && h.ReadsHealth() {
			return true
		}
	}
	return false
}

// runHealth samples path health and hands every report to the engine
// until ctx is done. A kernel without MPTCP sock_diag only loses the
// sampling: the daemon goes on without it.
func (d *Daemon) runHealth(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for h := range d.health.Updates() {
			d.engine.SetHealth(h)
		}
	}()
	if err := d.health.Run(ctx); err != nil {
		d.log.Warn("no path-health sampling", "error", err)
	}
	<-done
	return nil
}

// warnUserspaceOptions logs a warning, in kernel mode, for every policy
// option the configuration sets, to anything but a zero value, that acts
// only in userspace mode (its policy.Option.Mode): fullmesh's join_delay
// and join_bytes above all,
// since the in-kernel path manager joins as soon as a connection is
// established and nothing defers it.
func warnUserspaceOptions(log *slog.Logger, cfg policy.Config) {
	specs := slices.Clone(cfg.Chain)
	for _, r := range cfg.Rules {
		specs = append(specs, r.Chain...)
	}
	warned := map[string]bool{}
	for _, s := range specs {
		var keys map[string]json.RawMessage
		if json.Unmarshal(s.Config, &keys) != nil {
			continue
		}
		d, err := policy.Describe(s.Name)
		if err != nil {
			continue
		}
		for _, o := range d.Options {
			v, set := keys[o.Name]
			if !set || o.Mode != policy.ModeUserspace || isZeroOption(v) || warned[s.Name+"."+o.Name] {
				continue
			}
			warned[s.Name+"."+o.Name] = true
			log.Warn("policy option has no effect in kernel mode: the in-kernel path manager opens subflows and announces as soon as a connection is established",
				"policy", s.Name, "option", o.Name, "fix", `mode = "userspace", or remove the option`)
		}
	}
}

// isZeroOption reports whether an option's JSON value asks for nothing:
// null, false, 0, "" or a zero duration ("0s"), as in kernel mode anyway.
func isZeroOption(v json.RawMessage) bool {
	var x any
	if json.Unmarshal(v, &x) != nil {
		return false
	}
	switch x := x.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		d, err := time.ParseDuration(x)
		return x == "" || (err == nil && d == 0)
	}
	return false
}
