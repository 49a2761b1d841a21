package policy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUsable(t *testing.T) {
	t.Parallel()
	v := View{Links: []Link{
		{Name: "eth0", Index: 2, Usable: true},
		{Name: "wwan0", Index: 3, Usable: false},
	}}
	addr := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		in   LocalAddr
		want bool
	}{
		{name: "usable on a usable link", in: LocalAddr{Addr: addr, IfIndex: 2, Usable: true}, want: true},
		{name: "usable on an unlisted link", in: LocalAddr{Addr: addr, IfIndex: 9, Usable: true}, want: true},
		{name: "usable on an unusable link", in: LocalAddr{Addr: addr, IfIndex: 3, Usable: true}, want: false},
		{name: "not usable", in: LocalAddr{Addr: addr, IfIndex: 2, Reason: "tentative"}, want: false},
		{name: "no address", in: LocalAddr{IfIndex: 2, Usable: true}, want: false},
	}
	var all, want []LocalAddr
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := v.Usable(tt.in); got != tt.want {
				t.Errorf("Usable(%+v) = %v, want %v", tt.in, got, tt.want)
			}
		})
		all = append(all, tt.in)
		if tt.want {
			want = append(want, tt.in)
		}
	}
	v.Addrs = all
	if diff := cmp.Diff(want, v.UsableAddrs(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("UsableAddrs (-want +got):\n%s", diff)
	}
}
