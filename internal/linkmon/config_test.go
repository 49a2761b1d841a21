package linkmon

import (
	"strings"
	"testing"
	"time"
)

func TestNewConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Config
		want string // part of the error
	}{
		{"bad include glob", Config{IncludeNames: []string{"eth["}}, "include names: glob"},
		{"bad exclude glob", Config{ExcludeNames: []string{"\\"}}, "exclude names: glob"},
		{"bad cellular glob", Config{CellularNames: []string{"[a-"}}, "cellular names: glob"},
		{"bad include kind", Config{IncludeKinds: []Kind{Kind(9)}}, "include kinds: invalid kind 9"},
		{"bad exclude kind", Config{ExcludeKinds: []Kind{numKinds}}, "exclude kinds: invalid kind"},
		{"negative settle", Config{Settle: -time.Millisecond}, "settle: -1ms is negative"},
		{"negative max settle", Config{MaxSettle: -1}, "max settle: -1ns is negative"},
		{"max shorter than settle", Config{Settle: 10 * time.Millisecond, MaxSettle: 5 * time.Millisecond}, "max settle: 5ms is shorter than settle 10ms"},
		{"negative netns", Config{NetNS: -1}, "netns: -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newConfig(&tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "linkmon: ") {
				t.Fatalf("newConfig error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNewConfigDefaults(t *testing.T) {
	t.Parallel()
	c, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.settle != DefaultSettle || c.maxSettle != DefaultMaxSettle || c.log == nil {
		t.Fatalf("defaults: settle %v, max settle %v, logger %v", c.settle, c.maxSettle, c.log)
	}
	// A settle window longer than the default maximum raises the maximum.
	c, err = newConfig(&Config{Settle: time.Second})
	if err != nil || c.maxSettle != time.Second {
		t.Fatalf("Settle 1s: max settle %v, err %v; want 1s", c.maxSettle, err)
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		link string
		kind Kind
		want string // reason; "" = included
	}{
		{"default wired", Config{}, "enp3s0", KindWired, ""},
		{"default wifi", Config{}, "wlan0", KindWifi, ""},
		{"default unknown", Config{}, "ppp0", KindUnknown, ""},
		{"default virtual", Config{}, "veth0", KindVirtual, "excluded by kind virtual"},
		{"default loopback", Config{}, "lo", KindLoopback, "excluded by kind loopback"},
		{"include virtual kind", Config{IncludeKinds: []Kind{KindVirtual}}, "eth0", KindVirtual, ""},
		{"include kinds excludes others", Config{IncludeKinds: []Kind{KindVirtual}}, "enp3s0", KindWired, "kind wired not included"},
		{"include kinds keeps loopback excluded", Config{IncludeKinds: []Kind{KindVirtual}}, "lo", KindLoopback, "excluded by kind loopback"},
		{"include name beats default kind exclusion", Config{IncludeNames: []string{"eth*"}}, "eth1", KindVirtual, ""},
		{"include names is an allow list", Config{IncludeNames: []string{"eth*"}}, "wlan0", KindWifi, "name not included"},
		{"include name or kind", Config{IncludeNames: []string{"eth*"}, IncludeKinds: []Kind{KindWifi}}, "wlan0", KindWifi, ""},
		{"exclude name beats include name", Config{IncludeNames: []string{"eth*"}, ExcludeNames: []string{"eth2"}}, "eth2", KindWired, "excluded by name"},
		{"exclude name", Config{ExcludeNames: []string{"docker*"}}, "docker0", KindWired, "excluded by name"},
		{"explicit exclude kinds replace the default", Config{ExcludeKinds: []Kind{KindCellular}}, "veth0", KindVirtual, ""},
		{"explicit exclude kinds", Config{ExcludeKinds: []Kind{KindCellular}}, "wwan0", KindCellular, "excluded by kind cellular"},
		{"exclude kind beats include kind", Config{IncludeKinds: []Kind{KindCellular}, ExcludeKinds: []Kind{KindCellular}}, "wwan0", KindCellular, "excluded by kind cellular"},
		{"empty exclude kinds excludes nothing", Config{ExcludeKinds: []Kind{}}, "lo", KindLoopback, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := newConfig(&tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.filter.check(tt.link, tt.kind); got != tt.want {
				t.Fatalf("check(%q, %v) = %q, want %q", tt.link, tt.kind, got, tt.want)
			}
		})
	}
}
