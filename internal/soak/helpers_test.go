//go:build linux

package soak_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSSAddrs: the local and remote address of an ss record, without the
// "%dev" suffix, IPv4-mapped addresses unmapped.
func TestSSAddrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rec           string
		local, remote string
		err           bool
	}{
		{rec: "ESTAB 0 0 192.0.2.1:6064 192.0.2.2:46667\n\t token:1234abcd", local: "192.0.2.1:6064", remote: "192.0.2.2:46667"},
		{rec: "ESTAB 0 0 198.51.100.1%eth1:40000 192.0.2.2:46667", local: "198.51.100.1:40000", remote: "192.0.2.2:46667"},
		{rec: "ESTAB 0 0 [::ffff:192.0.2.1]:6064 [::ffff:192.0.2.2]:80", local: "192.0.2.1:6064", remote: "192.0.2.2:80"},
		{rec: "ESTAB 0 0 [2001:db8:2::1]:1 [2001:db8:1::2]:2", local: "[2001:db8:2::1]:1", remote: "[2001:db8:1::2]:2"},
		{rec: "ESTAB", err: true},
		{rec: "ESTAB 0 0 nonsense 192.0.2.2:1", err: true},
	}
	for _, tt := range tests {
		local, remote, err := ssAddrs(tt.rec)
		if (err != nil) != tt.err {
			t.Errorf("ssAddrs(%q) error %v, want error %v", tt.rec, err, tt.err)
			continue
		}
		if tt.err {
			continue
		}
		want := []netip.AddrPort{netip.MustParseAddrPort(tt.local), netip.MustParseAddrPort(tt.remote)}
		if diff := cmp.Diff(want, []netip.AddrPort{local, remote}, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("ssAddrs(%q) (-want +got):\n%s", tt.rec, diff)
		}
	}
}

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
