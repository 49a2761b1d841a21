//go:build linux

package soak_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRaces: every race report of every run is found, cut at its end.
func TestRaces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		logs []string
		want []string
	}{
		{name: "none", logs: []string{"level=INFO msg=ready\n"}},
		{
			name: "two runs",
			logs: []string{
				"a\n==================\nWARNING: DATA RACE\nWrite at 1\n==================\nb\n",
				"c\n",
				"WARNING: DATA RACE\nRead at 2\n==================\nWARNING: DATA RACE\nRead at 3\n==================\n",
			},
			want: []string{"run 1: \nWrite at 1\n", "run 3: \nRead at 2\n", "run 3: \nRead at 3\n"},
		},
	}
	for _, tt := range tests {
		d := &daemon{}
		for _, l := range tt.logs {
			b := &syncBuffer{}
			_, _ = b.Write([]byte(l))
			d.logs = append(d.logs, b)
		}
		if diff := cmp.Diff(tt.want, d.races()); diff != "" {
			t.Errorf("%s: races (-want +got):\n%s", tt.name, diff)
		}
	}
}
