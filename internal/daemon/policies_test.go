package daemon

import (
	"encoding/json"
	"testing"

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
