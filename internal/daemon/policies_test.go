package daemon

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/metrics"
	_ "github.com/mptcpgod/mptcpgod/plugins/all"
	"github.com/mptcpgod/mptcpgod/policy"
)

// TestReadsHealth: the daemon samples path health only for a chain with a
// policy that reads it.
func TestReadsHealth(t *testing.T) {
	t.Parallel()
	build := func(names ...string) []policy.Policy {
		var ps []policy.Policy
		for _, n := range names {
			p, err := policy.New(n, json.RawMessage(`{}`))
			if err != nil {
				t.Fatalf("New(%q): %v", n, err)
			}
			ps = append(ps, p)
		}
		return ps
	}
	tests := []struct {
		chain []string
		want  bool
	}{
		{[]string{"fullmesh"}, false},
		{[]string{"fullmesh", "backup-cellular"}, true},
		{[]string{"fullmesh", "cost-aware"}, true},
	}
	for _, tt := range tests {
		if got := readsHealth(build(tt.chain...)); got != tt.want {
			t.Errorf("readsHealth(%v) = %v, want %v", tt.chain, got, tt.want)
		}
	}
}

// TestPluginMetrics: the metrics list the exec policies that run a program
// in the daemon's mode, by command line, and nothing else.
func TestPluginMetrics(t *testing.T) {
	t.Parallel()
	var members []policy.Policy
	for _, m := range []struct{ name, config string }{
		{"fullmesh", `{}`},
		{"exec", `{"command": ["/bin/sh", "/etc/mptcpgod/prefer_wired.sh"]}`},
		{"exec", `{"command": ["/bin/true"], "modes": ["kernel"]}`},
	} {
		p, err := policy.New(m.name, json.RawMessage(m.config))
		if err != nil {
			t.Fatalf("New(%s, %s): %v", m.name, m.config, err)
		}
		members = append(members, p)
	}
	want := []metrics.Plugin{{Command: "/bin/sh /etc/mptcpgod/prefer_wired.sh"}}
	if diff := cmp.Diff(want, pluginMetrics(members, policy.ModeUserspace)); diff != "" {
		t.Errorf("userspace mode (-want +got):\n%s", diff)
	}
	want = append(want, metrics.Plugin{Command: "/bin/true"})
	if diff := cmp.Diff(want, pluginMetrics(members, policy.ModeKernel)); diff != "" {
		t.Errorf("kernel mode (-want +got):\n%s", diff)
	}
}

// TestWarnUserspaceOptions: in kernel mode, a userspace-only option set
// to something is warned about once, in the default chain as in rules;
// one set to its zero value, or a kernel-mode option, is not.
func TestWarnUserspaceOptions(t *testing.T) {
	var logs bytes.Buffer
	cfg := policy.Config{
		Chain: []policy.Spec{{Name: "fullmesh", Config: json.RawMessage(`{"join_delay":"100ms","join_bytes":0,"role":"server"}`)}},
		Rules: []policy.RuleSpec{{Chain: []policy.Spec{
			{Name: "fullmesh", Config: json.RawMessage(`{"join_delay":"1s","max_subflows":2}`)},
			{Name: "backup-cellular", Config: json.RawMessage(`{"backup_at_once":false}`)},
		}}},
	}
	warnUserspaceOptions(slog.New(slog.NewTextHandler(&logs, nil)), cfg)
	got := logs.String()
	for _, want := range []string{"option=join_delay", "option=max_subflows"} {
		if strings.Count(got, want) != 1 {
			t.Errorf("%s warned %d times, want once:\n%s", want, strings.Count(got, want), got)
		}
	}
	for _, quiet := range []string{"option=join_bytes", "option=role", "option=backup_at_once"} {
		if strings.Contains(got, quiet) {
			t.Errorf("%s warned about:\n%s", quiet, got)
		}
	}
}
