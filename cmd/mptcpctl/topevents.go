package main

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// topEventKind says what a notable event is.
type topEventKind string

// Kinds of the events strip. The daemon's decisions of a kind this
// mptcpctl does not know keep the daemon's name for it.
const (
	// topEventFailover: a backup subflow or endpoint was made active.
	topEventFailover topEventKind = "failover"
	// topEventFailback: an active one was made backup again.
	topEventFailback topEventKind = "failback"
	// topEventWithdraw: an address announce, a subflow or an endpoint
	// taken away.
	topEventWithdraw topEventKind = "withdraw"
	// topEventPathFailed: a subflow the daemon opened closed or never came
	// up.
	topEventPathFailed topEventKind = "path_failed"
	// topEventFailed: a kernel command failed.
	topEventFailed topEventKind = "failed"
	// topEventQuota: a metered link neared or reached its quota, or started
	// a new period.
	topEventQuota topEventKind = "quota"
	// topEventPlugin: a policy program went down, crashed, timed out or
	// came back.
	topEventPlugin topEventKind = "plugin"
	// topEventLink: a link went up or down, appeared or went away.
	topEventLink topEventKind = "link"
	// topEventDaemon: the daemon became reachable or not.
	topEventDaemon topEventKind = "daemon"
)

// topEvent is an event of the strip.
type topEvent struct {
	// Seq numbers the events of one run, from 1.
	Seq   uint64
	Time  time.Time
	Kind  topEventKind
	Token uint32
	Text  string
}

// decisionEvent returns the strip's event for one of the daemon's
// decisions, or false when the decision is routine (a subflow created, an
// address announced): the opened connection lists those.
func decisionEvent(ev ctlapi.Event) (topEvent, bool) {
	e := topEvent{Time: ev.Time, Kind: topEventKind(ev.Kind), Token: ev.Token}
	conn := ""
	if ev.Token != 0 {
		conn = formatToken(ev.Token) + ": "
	}
	switch ev.Kind {
	case pmstate.DecisionAction:
		if ev.Error != "" {
			e.Kind = topEventFailed
			e.Text = fmt.Sprintf("%s%s %s failed: %s", conn, ev.Op, decisionWhat(ev), ev.Error)
			return e, true
		}
		switch ev.Op {
		case pmstate.OpSetSubflowBackup:
			e.Kind, e.Text = backupChange(!ev.Backup), fmt.Sprintf("%ssubflow %s %s", conn, decisionWhat(ev), activeOrBackup(!ev.Backup))
		case pmstate.OpSetEndpointFlags:
			active := !slices.Contains(strings.Fields(ev.Flags), "backup")
			e.Kind, e.Text = backupChange(active), fmt.Sprintf("endpoint %s %s", decisionWhat(ev), activeOrBackup(active))
		case pmstate.OpRemove:
			e.Kind, e.Text = topEventWithdraw, fmt.Sprintf("%saddress %s withdrawn", conn, decisionWhat(ev))
		case pmstate.OpDestroySubflow:
			e.Kind, e.Text = topEventWithdraw, fmt.Sprintf("%ssubflow %s closed", conn, decisionWhat(ev))
		case pmstate.OpDelEndpoint:
			e.Kind, e.Text = topEventWithdraw, fmt.Sprintf("endpoint %s removed", decisionWhat(ev))
		default:
			return topEvent{}, false
		}
		return e, true
	case pmstate.DecisionPathFailed:
		e.Kind = topEventPathFailed
		e.Text = fmt.Sprintf("%spath %s failed", conn, decisionWhat(ev))
		if ev.Error != "" {
			e.Text += ": " + ev.Error
		}
		if !ev.RetryAt.IsZero() {
			e.Text += "; retry at " + ev.RetryAt.Local().Format(time.TimeOnly)
		}
		return e, true
	case pmstate.DecisionPolicy:
		e.Text = "replaced: " + ev.Detail
		return e, true
	case ctlapi.EventDropped:
		e.Text = fmt.Sprintf("missed %d decisions: mptcpctl did not keep up", ev.Dropped)
		return e, true
	}
	// resync, unmanaged and kinds newer than this mptcpctl.
	line := decisionLine(ev)
	if _, rest, ok := strings.Cut(line, " "+string(ev.Kind)); ok {
		line = strings.TrimSpace(rest)
	}
	e.Text = strings.TrimSpace(conn + line)
	return e, true
}

// decisionWhat names what a decision acted on: "L → R" for a subflow,
// "ADDR (id N)" for an address or endpoint.
func decisionWhat(ev ctlapi.Event) string {
	if ev.Remote.IsValid() {
		local := ev.Local.String()
		if ev.Local.Port() == 0 {
			local = ev.Local.Addr().String()
		}
		return local + " → " + ev.Remote.String()
	}
	var parts []string
	if ev.Addr.IsValid() {
		parts = append(parts, ev.Addr.String())
	}
	if ev.ID != 0 {
		parts = append(parts, fmt.Sprintf("(id %d)", ev.ID))
	}
	return strings.Join(parts, " ")
}

// backupChange is the kind of a change of backup bit.
func backupChange(active bool) topEventKind {
	if active {
		return topEventFailover
	}
	return topEventFailback
}

func activeOrBackup(active bool) string {
	if active {
		return "is active (was backup)"
	}
	return "made backup"
}

// quotaLevel is how much of its quota a link used.
type quotaLevel int

const (
	quotaBelow quotaLevel = iota
	quotaNear             // quotaNearFraction or more
	quotaReached
)

// quotaNearFraction is the used part of a quota from which top reports it
// near, as the alert rule MptcpgodQuotaNearlyReached does.
const quotaNearFraction = 0.9

// levelOf is a link's quota level.
func levelOf(u *ctlapi.UsageLink) quotaLevel {
	switch {
	case u.QuotaBytes == 0:
		return quotaBelow
	case u.OverQuota || u.UsedBytes >= u.QuotaBytes:
		return quotaReached
	case float64(u.UsedBytes) >= quotaNearFraction*float64(u.QuotaBytes):
		return quotaNear
	}
	return quotaBelow
}

// setUsage records the daemon's usage accounting and the quota crossings
// since the last reading; nil means none.
func (s *topState) setUsage(u *ctlapi.Usage) {
	s.daemon.usage = map[string]*ctlapi.UsageLink{}
	if u == nil {
		return
	}
	for i := range u.Links {
		ul := &u.Links[i]
		s.daemon.usage[ul.Name] = ul
		lvl := levelOf(ul)
		prev, seen := s.quota[ul.Name]
		s.quota[ul.Name] = lvl
		if !seen || lvl == prev {
			continue
		}
		e := topEvent{Time: s.now, Kind: topEventQuota}
		used := fmt.Sprintf("%s of %s", humanize.Bytes(ul.UsedBytes), humanize.Bytes(ul.QuotaBytes))
		switch {
		case lvl == quotaReached:
			e.Text = fmt.Sprintf("%s reached its quota (%s)", ul.Name, used)
		case lvl == quotaNear && prev == quotaBelow:
			e.Text = fmt.Sprintf("%s used %.0f%% of its quota (%s)", ul.Name, 100*float64(ul.UsedBytes)/float64(ul.QuotaBytes), used)
		case lvl < prev:
			e.Text = fmt.Sprintf("%s is under its quota again (%s, period from %s)", ul.Name, used,
				ul.PeriodStart.Local().Format(time.DateTime))
		default:
			continue
		}
		s.addEvent(e)
	}
}

// topPlugin is a policy program's state, from the daemon's metrics.
type topPlugin struct {
	Command  string
	Up       bool
	Crashes  float64
	Timeouts float64
}

// The plugin metrics top reads.
const (
	metricPluginUp       = "mptcpgod_plugin_up"
	metricPluginCrashes  = "mptcpgod_plugin_crashes_total"
	metricPluginTimeouts = "mptcpgod_plugin_timeouts_total"
)

// parsePlugins reads the policy programs' states from the daemon's
// Prometheus text exposition.
func parsePlugins(text []byte) (map[string]topPlugin, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := map[string]topPlugin{}
	for _, name := range []string{metricPluginUp, metricPluginCrashes, metricPluginTimeouts} {
		fam := fams[name]
		if fam == nil {
			continue
		}
		for _, m := range fam.GetMetric() {
			var command string
			for _, l := range m.GetLabel() {
				if l.GetName() == "command" {
					command = l.GetValue()
				}
			}
			pl := out[command]
			pl.Command = command
			switch name {
			case metricPluginUp:
				pl.Up = m.GetGauge().GetValue() == 1
			case metricPluginCrashes:
				pl.Crashes = m.GetCounter().GetValue()
			case metricPluginTimeouts:
				pl.Timeouts = m.GetCounter().GetValue()
			}
			out[command] = pl
		}
	}
	return out, nil
}

// setPlugins records the policy programs' states and what changed since
// the last reading.
func (s *topState) setPlugins(ps map[string]topPlugin) {
	for _, cmdline := range slices.Sorted(maps.Keys(ps)) {
		p := ps[cmdline]
		prev, seen := s.plugins[cmdline]
		if !seen {
			continue
		}
		var what []string
		if prev.Up && !p.Up {
			what = append(what, "down")
		}
		if p.Crashes > prev.Crashes {
			what = append(what, fmt.Sprintf("crashed (%.0f times so far)", p.Crashes))
		}
		if p.Timeouts > prev.Timeouts {
			what = append(what, fmt.Sprintf("%.0f requests unanswered in time", p.Timeouts-prev.Timeouts))
		}
		if !prev.Up && p.Up {
			what = append(what, "up")
		}
		if len(what) > 0 {
			s.addEvent(topEvent{Time: s.now, Kind: topEventPlugin, Text: "policy program " + cmdline + ": " + strings.Join(what, ", ")})
		}
	}
	s.plugins = ps
}

// runsPrograms reports whether the daemon's policy runs programs (the
// exec plugin), in its default chain or a rule's.
func runsPrograms(p ctlapi.Policy) bool {
	isExec := func(s ctlapi.PolicySpec) bool { return s.Name == "exec" }
	if slices.ContainsFunc(p.Chain, isExec) {
		return true
	}
	return slices.ContainsFunc(p.Rules, func(r ctlapi.PolicyRule) bool { return slices.ContainsFunc(r.Chain, isExec) })
}

// sortedPlugins returns the plugins by command.
func sortedPlugins(ps map[string]topPlugin) []topPlugin {
	out := slices.Collect(maps.Values(ps))
	slices.SortFunc(out, func(x, y topPlugin) int { return cmp.Compare(x.Command, y.Command) })
	return out
}
