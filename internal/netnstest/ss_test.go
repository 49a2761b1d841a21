package netnstest

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
		local, remote, err := SSAddrs(tt.rec)
		if (err != nil) != tt.err {
			t.Errorf("SSAddrs(%q) error %v, want error %v", tt.rec, err, tt.err)
			continue
		}
		if tt.err {
			continue
		}
		want := []netip.AddrPort{netip.MustParseAddrPort(tt.local), netip.MustParseAddrPort(tt.remote)}
		if diff := cmp.Diff(want, []netip.AddrPort{local, remote}, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("SSAddrs(%q) (-want +got):\n%s", tt.rec, diff)
		}
	}
}
