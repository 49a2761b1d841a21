package metrics

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// PluginSource lists the policies that run a program of their own (the
// exec plugin), asked at each scrape.
type PluginSource interface {
	Plugins() []Plugin
}

// Plugin is a policy's program and its counters since the policy was built
// (at start or by a reload).
type Plugin struct {
	// Command is the program and its arguments, joined by spaces.
	Command string
	// Running reports that a child answered the handshake and is up.
	Running bool
	// Starts counts the children started; Crashes those that exited
	// without being asked to.
	Starts, Crashes uint64
	// Requests counts the requests written to children; Timeouts those
	// not answered in time; Invalid the answers rejected.
	Requests, Timeouts, Invalid uint64
	// Fallbacks counts the calls that passed the plan on unchanged because
	// no valid answer came.
	Fallbacks uint64
}

// The plugin metrics, read from PluginSource at each scrape.
var (
	pluginUp = prometheus.NewDesc("mptcpgod_plugin_up",
		"1 when the policy program runs and answered its handshake, 0 while it is down (starting, crashed, waiting to restart), by command; a command configured twice is up when both run.", []string{"command"}, nil)
	pluginStarts = prometheus.NewDesc("mptcpgod_plugin_starts_total",
		"Times the policy program was started.", []string{"command"}, nil)
	pluginCrashes = prometheus.NewDesc("mptcpgod_plugin_crashes_total",
		"Times the policy program exited without being asked to.", []string{"command"}, nil)
	pluginRequests = prometheus.NewDesc("mptcpgod_plugin_requests_total",
		"Requests written to the policy program.", []string{"command"}, nil)
	pluginTimeouts = prometheus.NewDesc("mptcpgod_plugin_timeouts_total",
		"Requests the policy program did not answer in time.", []string{"command"}, nil)
	pluginInvalid = prometheus.NewDesc("mptcpgod_plugin_invalid_answers_total",
		"Answers of the policy program rejected: errors, and plans that do not decode or validate.", []string{"command"}, nil)
	pluginFallbacks = prometheus.NewDesc("mptcpgod_plugin_fallbacks_total",
		"Decisions made without the policy program, which was down, late or wrong: the rest of the chain decided.", []string{"command"}, nil)
)

// pluginCollector exports a PluginSource.
type pluginCollector struct {
	src PluginSource
}

var _ prometheus.Collector = (*pluginCollector)(nil)

// Describe implements prometheus.Collector.
func (c *pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pluginUp, pluginStarts, pluginCrashes, pluginRequests, pluginTimeouts,
		pluginInvalid, pluginFallbacks} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *pluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range mergePlugins(c.src.Plugins()) {
		ch <- prometheus.MustNewConstMetric(pluginUp, prometheus.GaugeValue, boolFloat(p.Running), p.Command)
		for _, m := range []struct {
			d *prometheus.Desc
			v uint64
		}{
			{pluginStarts, p.Starts}, {pluginCrashes, p.Crashes}, {pluginRequests, p.Requests},
			{pluginTimeouts, p.Timeouts}, {pluginInvalid, p.Invalid}, {pluginFallbacks, p.Fallbacks},
		} {
			ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), p.Command)
		}
	}
}

// mergePlugins sums the counters of the policies that run the same
// command, which share one set of series; such a command is up when all
// of its programs are.
func mergePlugins(ps []Plugin) []Plugin {
	var out []Plugin
	for _, p := range ps {
		i := slices.IndexFunc(out, func(o Plugin) bool { return o.Command == p.Command })
		if i < 0 {
			out = append(out, p)
			continue
		}
		o := &out[i]
		o.Running = o.Running && p.Running
		o.Starts += p.Starts
		o.Crashes += p.Crashes
		o.Requests += p.Requests
		o.Timeouts += p.Timeouts
		o.Invalid += p.Invalid
		o.Fallbacks += p.Fallbacks
	}
	slices.SortFunc(out, func(a, b Plugin) int { return cmp.Compare(a.Command, b.Command) })
	return out
}
