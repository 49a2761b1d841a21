package linkmon

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mkAddr(link int, p string, usable bool, reason string) Addr {
	return Addr{Prefix: netip.MustParsePrefix(p), LinkIndex: link, Flags: AddrPermanent, Usable: usable, Reason: reason}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	eth0 := Link{Index: 2, Name: "eth0", Kind: KindWired, Up: true, Included: true, HasRoute4: true}
	eth0down := eth0
	eth0down.Up = false
	wlan := Link{Index: 3, Name: "wlan0", Kind: KindWifi, Up: true, Included: true}
	a1 := mkAddr(2, "192.0.2.1/24", true, "")
	a2 := mkAddr(3, "198.51.100.1/24", true, "")
	a1down := mkAddr(2, "192.0.2.1/24", false, "link down")
	a1dep := a1
	a1dep.Flags |= AddrNoPrefixRoute

	tests := []struct {
		name     string
		old, new State
		want     Delta // without State
	}{
		{"equal", State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1}}, State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1}}, Delta{}},
		{"added", State{Links: map[int]Link{2: eth0}}, State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1}}, Delta{Added: []Addr{a1}}},
		{"unusable new address is no change", State{Links: map[int]Link{2: eth0}}, State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1down}}, Delta{}},
		{"became unusable", State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1}}, State{Links: map[int]Link{2: eth0down}, Addrs: []Addr{a1down}},
			Delta{Removed: []Addr{a1down}, Links: []LinkChange{{Old: eth0, New: eth0down}}}},
		{"usable again", State{Links: map[int]Link{2: eth0down}, Addrs: []Addr{a1down}}, State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1}},
			Delta{Added: []Addr{a1}, Links: []LinkChange{{Old: eth0down, New: eth0}}}},
		{"gone", State{Links: map[int]Link{2: eth0, 3: wlan}, Addrs: []Addr{a1, a2}}, State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1}},
			Delta{Removed: []Addr{mkAddr(3, "198.51.100.1/24", false, "removed")}, Links: []LinkChange{{Old: wlan}}}},
		{"flags changed", State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1}}, State{Links: map[int]Link{2: eth0}, Addrs: []Addr{a1dep}}, Delta{Changed: []Addr{a1dep}}},
		{"link added", State{}, State{Links: map[int]Link{3: wlan}}, Delta{Links: []LinkChange{{New: wlan}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := diff(tt.old, tt.new, false)
			if !got.State.Equal(tt.new) {
				t.Fatalf("delta state %+v, want %+v", got.State, tt.new)
			}
			got.State = State{}
			if diff := cmp.Diff(tt.want, got, cmpOpts); diff != "" {
				t.Fatalf("diff (-want +got):\n%s", diff)
			}
			if tt.old.Equal(tt.new) && (got.AddrsChanged() || got.LinksChanged()) {
				t.Fatalf("equal states but delta %v", got)
			}
		})
	}
}

func TestLinkChange(t *testing.T) {
	t.Parallel()
	l := Link{Index: 2, Name: "eth0"}
	for _, tt := range []struct {
		name           string
		c              LinkChange
		added, removed bool
	}{
		{"added", LinkChange{New: l}, true, false},
		{"removed", LinkChange{Old: l}, false, true},
		{"changed", LinkChange{Old: l, New: l}, false, false},
	} {
		if tt.c.Added() != tt.added || tt.c.Removed() != tt.removed {
			t.Errorf("%s: Added %v Removed %v", tt.name, tt.c.Added(), tt.c.Removed())
		}
	}
}

func TestStateCloneIsDeep(t *testing.T) {
	t.Parallel()
	s := State{Links: map[int]Link{2: {Index: 2, Name: "eth0", HardwareAddr: append(net.HardwareAddr(nil), hwA...)}}, Addrs: []Addr{mkAddr(2, "192.0.2.1/24", true, "")}}
	c := s.Clone()
	if !c.Equal(s) {
		t.Fatal("clone differs")
	}
	c.Links[2].HardwareAddr[0] = 0xff
	c.Addrs[0].Usable = false
	c.Links[3] = Link{Index: 3}
	if s.Links[2].HardwareAddr[0] == 0xff || !s.Addrs[0].Usable || len(s.Links) != 1 {
		t.Fatalf("changing the clone changed the original: %+v", s)
	}
	if c.Equal(s) {
		t.Fatal("changed clone still equal")
	}
	if got := s.UsableAddrs(); len(got) != 1 {
		t.Fatalf("UsableAddrs = %v", got)
	}
	if l, ok := s.LinkByName("eth0"); !ok || l.Index != 2 {
		t.Fatalf("LinkByName(eth0) = %v, %v", l, ok)
	}
	if _, ok := s.LinkByName("eth9"); ok {
		t.Fatal("LinkByName(eth9) found a link")
	}
}

func TestStrings(t *testing.T) {
	t.Parallel()
	if got, want := (AddrTentative | AddrNoDAD | 0x10000).String(), "nodad|tentative|0x10000"; got != want {
		t.Errorf("AddrFlags.String() = %q, want %q", got, want)
	}
	if got := ScopeLink.String(); got != "link" {
		t.Errorf("ScopeLink.String() = %q", got)
	}
	if got := Scope(7).String(); got != "7" {
		t.Errorf("Scope(7).String() = %q", got)
	}
	eth0 := Link{Index: 2, Name: "eth0", Kind: KindWired, Up: true}
	d := Delta{
		Initial: true,
		State:   State{Links: map[int]Link{2: eth0}},
		Added:   []Addr{mkAddr(2, "192.0.2.1/24", true, "")},
		Removed: []Addr{mkAddr(9, "198.51.100.1/24", false, "removed")},
		Links:   []LinkChange{{New: eth0}},
	}
	want := "initial; +192.0.2.1/24 eth0; -198.51.100.1/24 if9 (removed); link eth0 added (wired, up)"
	if got := d.String(); got != want {
		t.Errorf("Delta.String() = %q, want %q", got, want)
	}
	if got := (Delta{}).String(); got != "no usable address or link change" {
		t.Errorf("empty Delta.String() = %q", got)
	}
}

// cmpOpts compares the netip types by value.
var cmpOpts = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}
