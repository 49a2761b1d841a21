package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

func TestParseControl(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		control ControlConfig
		listen  string
		warning string
		err     string
	}{
		{name: "defaults", control: ControlConfig{Socket: DefaultSocket, Group: "mptcpgod"}},
		{name: "off", in: "[control]\nsocket = \"\"\ngroup = \"\"\n"},
		{name: "elsewhere", in: "[control]\nsocket = \"/run/mptcpgod-ns1/ctl.sock\"\ngroup = \"4242\"\n",
			control: ControlConfig{Socket: "/run/mptcpgod-ns1/ctl.sock", Group: "4242"}},
		{name: "metrics", in: "[metrics]\nlisten = \"127.0.0.1:9464\"\n",
			control: ControlConfig{Socket: DefaultSocket, Group: "mptcpgod"}, listen: "127.0.0.1:9464"},
		{name: "metrics ipv6", in: "[metrics]\nlisten = \"[::1]:9464\"\n",
			control: ControlConfig{Socket: DefaultSocket, Group: "mptcpgod"}, listen: "[::1]:9464"},
		{name: "metrics localhost", in: "[metrics]\nlisten = \"localhost:0\"\n",
			control: ControlConfig{Socket: DefaultSocket, Group: "mptcpgod"}, listen: "localhost:0"},
		{name: "metrics everywhere", in: "[metrics]\nlisten = \":9464\"\n",
			control: ControlConfig{Socket: DefaultSocket, Group: "mptcpgod"}, listen: ":9464",
			warning: `f.toml:2: key "metrics.listen": ":9464" serves the metrics (addresses, peers, traffic) beyond this host, to anyone who can reach it; ` +
				`listen on 127.0.0.1 or [::1] and scrape through a proxy that authenticates, or keep a firewall in front (metrics.allow_remote = true says it is meant)`},
		{name: "metrics everywhere, meant", in: "[metrics]\nlisten = \":9464\"\nallow_remote = true\n",
			control: ControlConfig{Socket: DefaultSocket, Group: "mptcpgod"}, listen: ":9464"},
		{name: "metrics on an interface", in: "[metrics]\nlisten = \"192.0.2.1:9464\"\n",
			control: ControlConfig{Socket: DefaultSocket, Group: "mptcpgod"}, listen: "192.0.2.1:9464",
			warning: `f.toml:2: key "metrics.listen": "192.0.2.1:9464" serves the metrics (addresses, peers, traffic) beyond this host, to anyone who can reach it; ` +
				`listen on 127.0.0.1 or [::1] and scrape through a proxy that authenticates, or keep a firewall in front (metrics.allow_remote = true says it is meant)`},
		{name: "longest socket path", in: "[control]\nsocket = \"/" + strings.Repeat("s", 106) + "\"\n",
			control: ControlConfig{Socket: "/" + strings.Repeat("s", 106), Group: "mptcpgod"}},
		{name: "socket path too long", in: "[control]\nsocket = \"/" + strings.Repeat("s", 107) + "\"\n",
			err: `f.toml:2: key "control.socket": "/` + strings.Repeat("s", 107) + `" is 108 bytes long; a Unix socket's path has at most 107`},
		{name: "relative socket", in: "[control]\nsocket = \"ctl.sock\"\n",
			err: `f.toml:2: key "control.socket": "ctl.sock" is not an absolute path ("" turns the socket off)`},
		{name: "no port", in: "[metrics]\nlisten = \"127.0.0.1\"\n",
			err: `f.toml:2: key "metrics.listen": "127.0.0.1" is not an address such as "127.0.0.1:9464" or "[::1]:9464"`},
		{name: "bad port", in: "[metrics]\nlisten = \"127.0.0.1:http\"\n",
			err: `f.toml:2: key "metrics.listen": "127.0.0.1:http" is not an address such as "127.0.0.1:9464" or "[::1]:9464"`},
		{name: "bad host", in: "[metrics]\nlisten = \"example.org:9464\"\n",
			err: `f.toml:2: key "metrics.listen": "example.org:9464" is not an address such as "127.0.0.1:9464" or "[::1]:9464"`},
		{name: "unknown key", in: "[control]\nmode = \"0666\"\n", err: `f.toml:2: unknown key "control.mode"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("f.toml", []byte(tt.in))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("Parse: %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.control, c.Control); diff != "" || c.MetricsListen != tt.listen {
				t.Errorf("control (-want +got):\n%s\nmetrics listen %q, want %q", diff, c.MetricsListen, tt.listen)
			}
			var warnings []string
			for _, w := range c.Warnings {
				warnings = append(warnings, w.Error())
			}
			if diff := cmp.Diff(tt.warning, strings.Join(warnings, "\n")); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRestartKeysControl(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Control = ControlConfig{Socket: "/run/x.sock", Group: "wheel"}
	cfg.MetricsListen = "127.0.0.1:9464"
	if diff := cmp.Diff([]string{"control.socket", "control.group", "metrics.listen"}, restartKeys(DefaultConfig(), cfg)); diff != "" {
		t.Errorf("restartKeys (-want +got):\n%s", diff)
	}
}

// TestAPILinks: the control socket's links come from the link monitor's
// state (kinds, reasons) and the engine's view (metered, changed).
func TestAPILinks(t *testing.T) {
	at := time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)
	st := linkmon.State{
		Links: map[int]linkmon.Link{
			1: {Index: 1, Name: "lo", Kind: linkmon.KindLoopback, Up: true, Reason: "excluded by kind loopback"},
			2: {Index: 2, Name: "eth0", Kind: linkmon.KindWired, Up: true, Included: true},
			3: {Index: 3, Name: "wwan0", Kind: linkmon.KindCellular, Included: true},
		},
		Addrs: []linkmon.Addr{
			{Prefix: netip.MustParsePrefix("127.0.0.1/8"), LinkIndex: 1, Reason: "excluded by kind loopback"},
			{Prefix: netip.MustParsePrefix("192.0.2.1/24"), LinkIndex: 2, Usable: true},
			{Prefix: netip.MustParsePrefix("2001:db8:1::1/64"), LinkIndex: 2, Reason: "tentative"},
			{Prefix: netip.MustParsePrefix("203.0.113.1/24"), LinkIndex: 3, Reason: "link down"},
		},
	}
	links := []policy.Link{{Name: "eth0", Index: 2, Changed: at}, {Name: "wwan0", Index: 3, Metered: true}}
	got := (&hostSnapshot{state: st, links: links}).apiLinks()
	addr := netip.MustParseAddr
	want := []pmstate.Link{
		{Name: "lo", Index: 1, Kind: pmstate.LinkLoopback, Up: true, Reason: "excluded by kind loopback",
			Addrs: []pmstate.Addr{{Addr: addr("127.0.0.1"), Reason: "excluded by kind loopback"}}},
		{Name: "eth0", Index: 2, Kind: pmstate.LinkWired, Up: true, Usable: true, Changed: at, Addrs: []pmstate.Addr{
			{Addr: addr("192.0.2.1"), Usable: true}, {Addr: addr("2001:db8:1::1"), Reason: "tentative"}}},
		{Name: "wwan0", Index: 3, Kind: pmstate.LinkCellular, Reason: "link down", Metered: true,
			Addrs: []pmstate.Addr{{Addr: addr("203.0.113.1"), Reason: "link down"}}},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("links (-want +got):\n%s", diff)
	}
}
