package metrics

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
)

// hostState builds a link monitor state: links by index, addresses with
// their usability.
func hostState(links []linkmon.Link, addrs ...linkmon.Addr) linkmon.State {
	st := linkmon.State{Links: map[int]linkmon.Link{}, Addrs: addrs}
	for _, l := range links {
		st.Links[l.Index] = l
	}
	return st
}

func addr(idx int, prefix string, usable bool) linkmon.Addr {
	return linkmon.Addr{LinkIndex: idx, Prefix: netip.MustParsePrefix(prefix), Usable: usable}
}

// TestLinkTracker feeds states in turn and compares the link metrics after
// each: the first state counts nothing; links down and up, addresses
// lost and gained, a link gone and a new one are counted; excluded links
// are neither exported nor counted.
func TestLinkTracker(t *testing.T) {
	t.Parallel()
	eth0 := linkmon.Link{Index: 2, Name: "eth0", Kind: linkmon.KindWired, Up: true, Included: true}
	wwan0 := linkmon.Link{Index: 3, Name: "wwan0", Kind: linkmon.KindCellular, Up: true, Included: true}
	veth := linkmon.Link{Index: 4, Name: "veth9", Kind: linkmon.KindVirtual, Up: true, Reason: "excluded by kind virtual"}
	down := func(l linkmon.Link) linkmon.Link { l.Up = false; return l }
	wifi := linkmon.Link{Index: 5, Name: "wlan0", Kind: linkmon.KindWifi, Up: true, Included: true}

	tests := []struct {
		name string
		st   linkmon.State
		want string // the link samples after st, in the text format, in any order
	}{
		{"baseline", hostState([]linkmon.Link{eth0, wwan0, veth},
			addr(2, "192.0.2.1/24", true), addr(2, "2001:db8:1::1/64", true), addr(3, "198.51.100.1/24", true),
			addr(4, "203.0.113.1/24", true)), `
mptcpgod_link_up{kind="cellular",link="wwan0"} 1
mptcpgod_link_up{kind="wired",link="eth0"} 1
mptcpgod_link_usable_addresses{kind="cellular",link="wwan0"} 1
mptcpgod_link_usable_addresses{kind="wired",link="eth0"} 2
mptcpgod_link_changes_total{change="address_unusable",link="eth0"} 0
mptcpgod_link_changes_total{change="address_unusable",link="wwan0"} 0
mptcpgod_link_changes_total{change="address_usable",link="eth0"} 0
mptcpgod_link_changes_total{change="address_usable",link="wwan0"} 0
mptcpgod_link_changes_total{change="down",link="eth0"} 0
mptcpgod_link_changes_total{change="down",link="wwan0"} 0
mptcpgod_link_changes_total{change="up",link="eth0"} 0
mptcpgod_link_changes_total{change="up",link="wwan0"} 0
`},
		{"cellular down, its address unusable; the veth goes down", hostState([]linkmon.Link{eth0, down(wwan0), down(veth)},
			addr(2, "192.0.2.1/24", true), addr(2, "2001:db8:1::1/64", true), addr(3, "198.51.100.1/24", false)), `
mptcpgod_link_up{kind="cellular",link="wwan0"} 0
mptcpgod_link_up{kind="wired",link="eth0"} 1
mptcpgod_link_usable_addresses{kind="cellular",link="wwan0"} 0
mptcpgod_link_usable_addresses{kind="wired",link="eth0"} 2
mptcpgod_link_changes_total{change="address_unusable",link="eth0"} 0
mptcpgod_link_changes_total{change="address_unusable",link="wwan0"} 1
mptcpgod_link_changes_total{change="address_usable",link="eth0"} 0
mptcpgod_link_changes_total{change="address_usable",link="wwan0"} 0
mptcpgod_link_changes_total{change="down",link="eth0"} 0
mptcpgod_link_changes_total{change="down",link="wwan0"} 1
mptcpgod_link_changes_total{change="up",link="eth0"} 0
mptcpgod_link_changes_total{change="up",link="wwan0"} 0
`},
		{"cellular back with a new address; eth0 loses one", hostState([]linkmon.Link{eth0, wwan0},
			addr(2, "192.0.2.1/24", true), addr(2, "2001:db8:1::1/64", false), addr(3, "198.51.100.2/24", true)), `
mptcpgod_link_up{kind="cellular",link="wwan0"} 1
mptcpgod_link_up{kind="wired",link="eth0"} 1
mptcpgod_link_usable_addresses{kind="cellular",link="wwan0"} 1
mptcpgod_link_usable_addresses{kind="wired",link="eth0"} 1
mptcpgod_link_changes_total{change="address_unusable",link="eth0"} 1
mptcpgod_link_changes_total{change="address_unusable",link="wwan0"} 1
mptcpgod_link_changes_total{change="address_usable",link="eth0"} 0
mptcpgod_link_changes_total{change="address_usable",link="wwan0"} 1
mptcpgod_link_changes_total{change="down",link="eth0"} 0
mptcpgod_link_changes_total{change="down",link="wwan0"} 1
mptcpgod_link_changes_total{change="up",link="eth0"} 0
mptcpgod_link_changes_total{change="up",link="wwan0"} 1
`},
		{"eth0 gone, wlan0 new", hostState([]linkmon.Link{wwan0, wifi},
			addr(3, "198.51.100.2/24", true), addr(5, "203.0.113.5/24", true)), `
mptcpgod_link_up{kind="cellular",link="wwan0"} 1
mptcpgod_link_up{kind="wifi",link="wlan0"} 1
mptcpgod_link_usable_addresses{kind="cellular",link="wwan0"} 1
mptcpgod_link_usable_addresses{kind="wifi",link="wlan0"} 1
mptcpgod_link_changes_total{change="address_unusable",link="eth0"} 2
mptcpgod_link_changes_total{change="address_unusable",link="wlan0"} 0
mptcpgod_link_changes_total{change="address_unusable",link="wwan0"} 1
mptcpgod_link_changes_total{change="address_usable",link="eth0"} 0
mptcpgod_link_changes_total{change="address_usable",link="wlan0"} 1
mptcpgod_link_changes_total{change="address_usable",link="wwan0"} 1
mptcpgod_link_changes_total{change="down",link="eth0"} 1
mptcpgod_link_changes_total{change="down",link="wlan0"} 0
mptcpgod_link_changes_total{change="down",link="wwan0"} 1
mptcpgod_link_changes_total{change="up",link="eth0"} 0
mptcpgod_link_changes_total{change="up",link="wlan0"} 1
mptcpgod_link_changes_total{change="up",link="wwan0"} 1
`},
	}
	lt := newLinkTracker()
	for _, tt := range tests {
		lt.set(tt.st)
		lines := strings.Split(strings.TrimSpace(tt.want), "\n")
		slices.Sort(lines)
		want := "# TYPE mptcpgod_link_changes_total counter\n# TYPE mptcpgod_link_up gauge\n" +
			"# TYPE mptcpgod_link_usable_addresses gauge\n" + strings.Join(lines, "\n") + "\n"
		if diff := cmp.Diff(want, exposition(t, lt)); diff != "" {
			t.Errorf("after %s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// exposition collects c with a pedantic registry (which checks what c
// describes against what it collects) and returns its samples in the
// text format, with the TYPE lines first and without the HELP lines, each
// block sorted.
func exposition(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range fams {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	var types, samples []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		switch {
		case strings.HasPrefix(l, "# TYPE "):
			types = append(types, l)
		case !strings.HasPrefix(l, "#"):
			samples = append(samples, l)
		}
	}
	slices.Sort(types)
	slices.Sort(samples)
	return strings.Join(append(types, samples...), "\n") + "\n"
}
