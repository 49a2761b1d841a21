package metrics

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pluginList is a PluginSource with a fixed list.
type pluginList []Plugin

func (p pluginList) Plugins() []Plugin { return p }

// TestPluginCollector: each command's series, a command configured twice
// summed and up only when both programs run.
func TestPluginCollector(t *testing.T) {
	t.Parallel()
	src := pluginList{
		{Command: "/usr/bin/python3 /etc/mptcpgod/prefer_wired.py", Running: true, Starts: 2, Crashes: 1,
			Requests: 10, Timeouts: 1, Invalid: 2, Fallbacks: 3},
		{Command: "/usr/local/bin/quota", Running: true, Starts: 1, Requests: 4},
		{Command: "/usr/local/bin/quota", Running: false, Starts: 3, Crashes: 2, Requests: 1, Fallbacks: 5},
	}
	want := `# TYPE mptcpgod_plugin_crashes_total counter
# TYPE mptcpgod_plugin_fallbacks_total counter
# TYPE mptcpgod_plugin_invalid_answers_total counter
# TYPE mptcpgod_plugin_requests_total counter
# TYPE mptcpgod_plugin_starts_total counter
# TYPE mptcpgod_plugin_timeouts_total counter
# TYPE mptcpgod_plugin_up gauge
mptcpgod_plugin_crashes_total{command="/usr/bin/python3 /etc/mptcpgod/prefer_wired.py"} 1
mptcpgod_plugin_crashes_total{command="/usr/local/bin/quota"} 2
mptcpgod_plugin_fallbacks_total{command="/usr/bin/python3 /etc/mptcpgod/prefer_wired.py"} 3
mptcpgod_plugin_fallbacks_total{command="/usr/local/bin/quota"} 5
mptcpgod_plugin_invalid_answers_total{command="/usr/bin/python3 /etc/mptcpgod/prefer_wired.py"} 2
mptcpgod_plugin_invalid_answers_total{command="/usr/local/bin/quota"} 0
mptcpgod_plugin_requests_total{command="/usr/bin/python3 /etc/mptcpgod/prefer_wired.py"} 10
mptcpgod_plugin_requests_total{command="/usr/local/bin/quota"} 5
mptcpgod_plugin_starts_total{command="/usr/bin/python3 /etc/mptcpgod/prefer_wired.py"} 2
mptcpgod_plugin_starts_total{command="/usr/local/bin/quota"} 4
mptcpgod_plugin_timeouts_total{command="/usr/bin/python3 /etc/mptcpgod/prefer_wired.py"} 1
mptcpgod_plugin_timeouts_total{command="/usr/local/bin/quota"} 0
mptcpgod_plugin_up{command="/usr/bin/python3 /etc/mptcpgod/prefer_wired.py"} 1
mptcpgod_plugin_up{command="/usr/local/bin/quota"} 0
`
	if diff := cmp.Diff(want, exposition(t, &pluginCollector{src: src})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := exposition(t, &pluginCollector{src: pluginList{}}); got != "\n" {
		t.Errorf("no plugin: %q, want nothing", got)
	}
}
