package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/peeraddr"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	_ "github.com/mptcpgod/mptcpgod/plugins/all"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// configOpts compares Configs by their exported fields.
var configOpts = cmp.Options{cmpopts.IgnoreUnexported(Config{}), cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Prefix{}),
	cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() })}

func TestDefaultConfig(t *testing.T) {
	want := &Config{
		Mode:     ModeAuto,
		LogLevel: slog.LevelInfo,
		Links: linkmon.Config{
			ExcludeKinds: []linkmon.Kind{linkmon.KindVirtual, linkmon.KindLoopback},
			Settle:       time.Millisecond,
			MaxSettle:    20 * time.Millisecond,
		},
		OwnedIDs:       pm.IDRange{Min: 100, Max: 199},
		WithdrawOnExit: true,
		Workers:        4,
		Backoff:        pm.Backoff{Initial: 50 * time.Millisecond, Max: 30 * time.Second},
		Policy:         policy.Config{Chain: []policy.Spec{{Name: "fullmesh"}}},
		Control:        ControlConfig{Socket: "/run/mptcpgod/mptcpgod.sock", Group: "mptcpgod"},
		Usage:          usage.Config{StateDir: "/var/lib/mptcpgod", SaveInterval: time.Minute},
		UsageInterval:  time.Second,
		Peers:          peeraddr.Config{Tries: peeraddr.DefaultTries},
		Mitigation:     MitigationConfig{Checksums: ChecksumsKeep, MinJoinAge: DefaultMinJoinAge},
	}
	if diff := cmp.Diff(want, DefaultConfig(), configOpts); diff != "" {
		t.Errorf("DefaultConfig (-want +got):\n%s", diff)
	}
	if want.OwnedIDs != pm.DefaultOwnedIDs || want.Backoff != pm.DefaultBackoff || want.Workers != pm.DefaultWorkers {
		t.Errorf("the daemon's engine defaults differ from pm's: %v %v %d", pm.DefaultOwnedIDs, pm.DefaultBackoff, pm.DefaultWorkers)
	}
}

// The configuration tests know a user alice (uid 1000), whatever users
// this host has; other names are looked up as usual.
func init() {
	real := lookupUser
	lookupUser = func(name string) (string, error) {
		if name == "alice" {
			return "1000", nil
		}
		return real(name)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want func(c *Config)
	}{
		{
			name: "empty",
			want: func(*Config) {},
		},
		{
			name: "top level",
			in:   "mode = \"userspace\"\nset_path_manager = true\nlog_level = \"debug\"\n",
			want: func(c *Config) {
				c.Mode, c.SetPathManager, c.LogLevel = policy.ModeUserspace, true, slog.LevelDebug
			},
		},
		{
			name: "links",
			in: `[links]
include_names = ["eth*"]
exclude_names = ["docker0"]
include_kinds = ["virtual", "wifi"]
cellular_names = ["wwan*"]
include_ula = true
include_temporary = true
connected_routes = true
settle = "2ms"
max_settle = "1s"
`,
			want: func(c *Config) {
				c.Links = linkmon.Config{
					IncludeNames:     []string{"eth*"},
					ExcludeNames:     []string{"docker0"},
					IncludeKinds:     []linkmon.Kind{linkmon.KindVirtual, linkmon.KindWifi},
					ExcludeKinds:     []linkmon.Kind{linkmon.KindLoopback},
					CellularNames:    []string{"wwan*"},
					IncludeULA:       true,
					IncludeTemporary: true,
					ConnectedRoutes:  true,
					Settle:           2 * time.Millisecond,
					MaxSettle:        time.Second,
				}
			},
		},
		{
			name: "peers",
			in: `[peers]
allow = ["10.8.0.0/16", "2001:db8::/32", "203.0.113.9"]
deny = ["203.0.113.64/26"]
ports = [8443, 25]
any_port = true
tries = 3
`,
			want: func(c *Config) {
				c.Peers = peeraddr.Config{
					Allow: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/16"), netip.MustParsePrefix("2001:db8::/32"),
						netip.MustParsePrefix("203.0.113.9/32")},
					Deny:    []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26")},
					Ports:   []uint16{8443, 25},
					AnyPort: true,
					Tries:   3,
				}
			},
		},
		{
			name: "exclude no kind",
			in:   "[links]\nexclude_kinds = []\n",
			want: func(c *Config) { c.Links.ExcludeKinds = []linkmon.Kind{} },
		},
		{
			name: "kernel and engine",
			in: `[kernel]
owned_ids = "10-20"
withdraw_on_exit = false
accept_announces = true
[engine]
workers = 16
backoff_initial = "10ms"
backoff_max = "1m"
event_buffer = 4096
`,
			want: func(c *Config) {
				c.OwnedIDs, c.WithdrawOnExit, c.AcceptAnnounces = pm.IDRange{Min: 10, Max: 20}, false, true
				c.Workers, c.EventBuffer = 16, 4096
				c.Backoff = pm.Backoff{Initial: 10 * time.Millisecond, Max: time.Minute}
			},
		},
		{
			name: "policy",
			in: `[[policy.chain]]
name = "fullmesh"
[policy.chain.config]
max_subflows = 2
limits = { subflows = 3 }

[[policy.rules]]
peer_prefix = "203.0.113.7/24"
peer_port = 443
side = "client"
[[policy.rules.chain]]
name = "fullmesh"
config = { families = "ipv6" }

[[policy.rules]]
local_port = 80
[[policy.rules.chain]]
name = "fullmesh"

[[policy.rules]]
unit = "backup.service"
uid = 0
[[policy.rules.chain]]
name = "fullmesh"

[[policy.rules]]
unit = "app.slice"
uid = "alice"
[[policy.rules.chain]]
name = "fullmesh"

[[policy.rules]]
uid = "4242"
[[policy.rules.chain]]
name = "fullmesh"
`,
			want: func(c *Config) {
				c.Policy = policy.Config{
					Chain: []policy.Spec{{Name: "fullmesh", Config: []byte(`{"limits":{"subflows":3},"max_subflows":2}`)}},
					Rules: []policy.RuleSpec{
						{
							Match: policy.Match{PeerPrefix: netip.MustParsePrefix("203.0.113.0/24"), PeerPort: 443, Side: policy.SideClient},
							Chain: []policy.Spec{{Name: "fullmesh", Config: []byte(`{"families":"ipv6"}`)}},
						},
						{
							Match: policy.Match{LocalPort: 80},
							Chain: []policy.Spec{{Name: "fullmesh"}},
						},
						{
							Match: policy.Match{Unit: "backup.service", UID: new(uint32(0))},
							Chain: []policy.Spec{{Name: "fullmesh"}},
						},
						{
							Match: policy.Match{Unit: "app.slice", UID: new(uint32(1000))},
							Chain: []policy.Spec{{Name: "fullmesh"}},
						},
						{
							Match: policy.Match{UID: new(uint32(4242))},
							Chain: []policy.Spec{{Name: "fullmesh"}},
						},
					},
				}
			},
		},
		{
			name: "usage",
			in: `[usage]
state_dir = "/srv/mptcpgod"
interval = "250ms"
save_interval = "0s"
[[usage.links]]
name = "wwan*"
cost_per_gb = 2.5
quota = "20GB"
reset_day = 15
reset_time = "06:30"
timezone = "UTC"
[[usage.links]]
name = "wlan0"
metered = "auto"
period = "week"
`,
			want: func(c *Config) {
				c.Usage = usage.Config{StateDir: "/srv/mptcpgod", Links: []usage.LinkQuota{
					{Name: "wwan*", Metered: usage.MeteredYes, CostPerGB: 2.5, QuotaBytes: 20_000_000_000,
						Period: usage.PeriodMonth, ResetDay: 15, ResetHour: 6, ResetMinute: 30, Location: time.UTC},
					{Name: "wlan0", Metered: usage.MeteredAuto, Period: usage.PeriodWeek, ResetDay: 1, Location: time.Local},
				}}
				c.UsageInterval = 250 * time.Millisecond
			},
		},
		{
			name: "force",
			in:   "[force]\nunits = [\"nginx.service\", \"getty@tty1.service\"]\nuids = [1000, 0]\n",
			want: func(c *Config) {
				c.Force = ForceConfig{Units: []string{"nginx.service", "getty@tty1.service"}, UIDs: []uint32{1000, 0}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := DefaultConfig()
			tt.want(want)
			got, err := Parse("test.toml", []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(want, got, configOpts); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			r, err := got.BuildPolicy()
			if err != nil {
				t.Fatalf("BuildPolicy: %v", err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // the lines of the error
	}{
		{
			name: "unknown key",
			in:   "mode = \"auto\"\n\npolcy = 1\n",
			want: []string{`f.toml:3: unknown key "polcy"`},
		},
		{
			name: "unknown keys in tables",
			in:   "[links]\nsettle = \"1ms\"\nsetle = \"2ms\"\n[engine]\nworker = 3\n",
			want: []string{`f.toml:3: unknown key "links.setle"`, `f.toml:5: unknown key "engine.worker"`},
		},
		{
			name: "unknown key in a chain",
			in:   "[[policy.chain]]\nname = \"fullmesh\"\nconfg = {}\n",
			want: []string{`f.toml:3: unknown key "policy.chain[0].confg"`},
		},
		{
			name: "unknown key and bad value",
			in:   "[engine]\nwokers = 2\n[kernel]\nowned_ids = \"1\"\n",
			want: []string{
				`f.toml:2: unknown key "engine.wokers"`,
				`f.toml:4: key "kernel.owned_ids": "1" is not a range MIN-MAX of endpoint ids within 1-255`,
			},
		},
		{
			name: "peers",
			in: `[peers]
allow = [
  "10.8.0.0/16",
  "10.8.0.0/33",
  "::ffff:10.0.0.0/104",
]
deny = ["fe80::1%eth0"]
ports = [443, 0, 65536]
tries = 0
`,
			want: []string{
				`f.toml:4: key "peers.allow[1]": "10.8.0.0/33" is not a prefix such as "203.0.113.0/24" or "2001:db8::/32"`,
				`f.toml:5: key "peers.allow[2]": ::ffff:10.0.0.0/104 is IPv4-mapped; write the IPv4 prefix`,
				`f.toml:7: key "peers.deny[0]": "fe80::1%eth0" is not a prefix such as "203.0.113.0/24" or "2001:db8::/32"`,
				`f.toml:8: key "peers.ports[1]": 0 is not a port (1..65535)`,
				`f.toml:8: key "peers.ports[2]": 65536 is not a port (1..65535)`,
				`f.toml:9: key "peers.tries": 0 is not in 1..10`,
			},
		},
		{
			name: "too many tries",
			in:   "[peers]\ntries = 11\n",
			want: []string{`f.toml:2: key "peers.tries": 11 is not in 1..10`},
		},
		{
			name: "force",
			in: `[force]
units = [
  "nginx.service",
  "nginx",
  "getty@.service",
  "nginx.service",
]
uids = [1000, 4294967295, 1000]
`,
			want: []string{
				`f.toml:4: key "force.units[1]": "nginx" is not a service: want NAME.service`,
				`f.toml:5: key "force.units[2]": "getty@.service" is a template: force an instance such as getty@NAME.service`,
				`f.toml:6: key "force.units[3]": "nginx.service" is listed twice`,
				`f.toml:8: key "force.uids[1]": 4294967295 is not a valid uid`,
				`f.toml:8: key "force.uids[2]": 1000 is listed twice`,
			},
		},
		{
			name: "force beyond the BPF maps",
			in:   "[force]\nunits = [" + strings.Repeat(`"a.service",`, bpf.MaxEntries+1) + "]\nuids = [" + strings.Repeat("1,", bpf.MaxEntries+1) + "]\n",
			want: []string{
				`f.toml:2: key "force.units": 1025 units, more than the 1024 the BPF program can hold`,
				`f.toml:3: key "force.uids": 1025 uids, more than the 1024 the BPF program can hold`,
			},
		},
		{
			name: "force types",
			in:   "[force]\nuids = [-1]\n",
			want: []string{`f.toml:2: key "force.uids": negative integer value -1 cannot be stored in uint32`},
		},
		{
			name: "unknown force key",
			in:   "[force]\nunit = [\"a.service\"]\n",
			want: []string{`f.toml:2: unknown key "force.unit"`},
		},
		{
			name: "syntax",
			in:   "mode = \"auto\"\nlog_level = \n",
			want: []string{`f.toml:2: unexpected character U+000A at start of value`},
		},
		{
			name: "wrong type",
			in:   "[engine]\n\nworkers = \"four\"\n",
			want: []string{`f.toml:3: key "engine.workers": a TOML string where an integer belongs`},
		},
		{
			name: "wrong element type",
			in:   "[links]\ninclude_names = [\"eth0\", 1]\n",
			want: []string{`f.toml:2: key "links.include_names": a TOML integer where a string belongs`},
		},
		{
			name: "out of range integer",
			in:   "[[policy.rules]]\npeer_port = 70000\n",
			want: []string{`f.toml:2: key "policy.rules[0].peer_port": integer value 70000 cannot be stored in uint16`},
		},
		{
			name: "out of range integer in a later element",
			in:   "[[policy.rules]]\npeer_port = 443\n[[policy.rules.chain]]\nname = \"fullmesh\"\n[[policy.rules]]\npeer_port = -1\n",
			want: []string{`f.toml:6: key "policy.rules[1].peer_port": negative integer value -1 cannot be stored in uint16`},
		},
		{
			name: "unknown key in a later element",
			in:   "[[policy.rules]]\n[[policy.rules.chain]]\nname = \"fullmesh\"\n[[policy.rules.chain]]\nname = \"fullmesh\"\nconfg = {}\n",
			want: []string{`f.toml:6: unknown key "policy.rules[0].chain[1].confg"`},
		},
		{
			name: "usage",
			in: `[usage]
state_dir = "var/lib"
interval = "0s"
[[usage.links]]
name = "wwan*"
quota = "2XB"
[[usage.links]]
metered = "maybe"
[[usage.links]]
name = "eth1"
period = "year"
[[usage.links]]
name = "eth2"
cost_per_gb = "cheap"
`,
			want: []string{`f.toml:14: key "usage.links[3].cost_per_gb": a TOML string where a float belongs`},
		},
		{
			name: "usage values",
			in: `[usage]
state_dir = "var/lib"
[[usage.links]]
name = "wwan*"
quota = "2XB"
[[usage.links]]
metered = "maybe"
[[usage.links]]
name = "eth1"
period = "year"
[[usage.links]]
name = "eth2"
reset_time = "25:00"
timezone = "Mars/Olympus"
`,
			want: []string{
				`f.toml:2: key "usage.state_dir": "var/lib" is not an absolute path`,
				`f.toml:5: key "usage.links[0].quota": "2XB" is not a size such as "2MB" or "10GiB": unhandled size name: xb`,
				`f.toml:6: key "usage.links[1].name": missing`,
				`f.toml:10: key "usage.links[2].period": "year" is not day, week or month`,
				`f.toml:13: key "usage.links[3].reset_time": "25:00" is not a time of day HH:MM`,
			},
		},
		{
			name: "bad values",
			in: `mode = "kernal"
log_level = "verbose"
[links]
include_kinds = ["wired", "ethernet"]
exclude_names = ["[eth"]
settle = "5"
max_settle = "-1s"
[kernel]
owned_ids = "200-100"
[engine]
workers = 0
backoff_initial = "1m"
backoff_max = "1s"
event_buffer = -1
`,
			want: []string{
				`f.toml:1: key "mode": "kernal" is not auto, kernel or userspace`,
				`f.toml:2: key "log_level": "verbose" is not debug, info, warn or error`,
				`f.toml:4: key "links.include_kinds[1]": "ethernet" is not unknown, wired, wifi, cellular, virtual or loopback`,
				`f.toml:5: key "links.exclude_names[0]": "[eth" is not a valid glob: syntax error in pattern`,
				`f.toml:6: key "links.settle": "5" is not a duration such as "50ms" or "30s"`,
				`f.toml:7: key "links.max_settle": "-1s" is not positive`,
				`f.toml:9: key "kernel.owned_ids": "200-100" is not a range MIN-MAX of endpoint ids within 1-255`,
				`f.toml:11: key "engine.workers": 0 is not in 1..64`,
				`f.toml:13: key "engine.backoff_max": 1s is below backoff_initial 1m0s`,
				`f.toml:14: key "engine.event_buffer": -1 is not in 0..1073741824 (1 GiB)`,
			},
		},
		{
			name: "out of bounds",
			in: `[links]
settle = "1000h"
max_settle = "2h"
[engine]
backoff_initial = "2m"
backoff_max = "1000h"
event_buffer = 9223372036854775807
[control]
socket = "/run/` + strings.Repeat("d", 100) + `/mptcpgod.sock"
[usage]
interval = "1000h"
`,
			want: []string{
				`f.toml:2: key "links.settle": "1000h" is longer than 10s`,
				`f.toml:3: key "links.max_settle": "2h" is longer than 1m0s`,
				`f.toml:5: key "engine.backoff_initial": "2m" is longer than 1m0s`,
				`f.toml:6: key "engine.backoff_max": "1000h" is longer than 1h0m0s`,
				`f.toml:7: key "engine.event_buffer": 9223372036854775807 is not in 0..1073741824 (1 GiB)`,
				`f.toml:9: key "control.socket": "/run/` + strings.Repeat("d", 100) + `/mptcpgod.sock" is 119 bytes long; a Unix socket's path has at most 107`,
				`f.toml:11: key "usage.interval": "1000h" is not a duration above 0 and at most 1h0m0s`,
			},
		},
		{
			name: "mitigation",
			in:   "[mitigation]\nchecksums = \"yes\"\nmin_join_age = \"20\"\n",
			want: []string{
				`f.toml:2: key "mitigation.checksums": "yes" is not keep, on or off`,
				`f.toml:3: key "mitigation.min_join_age": "20" is not a duration such as "20ms" ("0s" turns it off)`,
			},
		},
		{
			name: "mitigation bounds",
			in:   "[mitigation]\nmin_join_age = \"-1ms\"\n",
			want: []string{`f.toml:2: key "mitigation.min_join_age": "-1ms" is negative`},
		},
		{
			name: "mitigation too long",
			in:   "[mitigation]\nmin_join_age = \"11s\"\n",
			want: []string{`f.toml:2: key "mitigation.min_join_age": "11s" is longer than 10s`},
		},
		{
			name: "set_path_manager with auto",
			in:   "\nset_path_manager = true\n",
			want: []string{`f.toml:2: key "set_path_manager": needs mode "kernel" or "userspace" (mode "auto" follows the sysctl)`},
		},
		{
			name: "max_settle below settle",
			in:   "[links]\nsettle = \"50ms\"\n",
			want: []string{`f.toml:1: key "links.max_settle": 20ms is shorter than settle 50ms`},
		},
		{
			name: "owned ids",
			in:   "[kernel]\nowned_ids = \"0-10\"\n",
			want: []string{`f.toml:2: key "kernel.owned_ids": "0-10" is not a range MIN-MAX of endpoint ids within 1-255`},
		},
		{
			name: "owned ids past 255",
			in:   "[kernel]\nowned_ids = \"100-256\"\n",
			want: []string{`f.toml:2: key "kernel.owned_ids": "100-256" is not a range MIN-MAX of endpoint ids within 1-255`},
		},
		{
			name: "empty chain",
			in:   "[policy]\nchain = []\n",
			want: []string{`f.toml:2: key "policy.chain": empty, want at least one policy`},
		},
		{
			name: "chain entry without a name",
			in:   "[[policy.chain]]\nconfig = { max_subflows = 1 }\n",
			want: []string{`f.toml:1: key "policy.chain[0].name": missing`},
		},
		{
			name: "rules",
			in: `[[policy.rules]]
peer_prefix = "203.0.113.0"
side = "both"
[[policy.rules.chain]]
name = "fullmesh"

[[policy.rules]]
peer_prefix = "::ffff:192.0.2.0/120"
`,
			want: []string{
				`f.toml:2: key "policy.rules[0].peer_prefix": "203.0.113.0" is not a prefix such as "203.0.113.0/24"`,
				`f.toml:3: key "policy.rules[0].side": "both" is not any, client or server`,
				`f.toml:7: key "policy.rules[1].chain": empty, want at least one policy`,
				`f.toml:8: key "policy.rules[1].peer_prefix": ::ffff:192.0.2.0/120 is IPv4-mapped; write the IPv4 prefix`,
			},
		},
		{
			name: "rules by owner",
			in: `[[policy.rules]]
unit = "backup.timer"
uid = "nosuchuser"
[[policy.rules.chain]]
name = "fullmesh"

[[policy.rules]]
unit = "getty@.service"
uid = -1
[[policy.rules.chain]]
name = "fullmesh"

[[policy.rules]]
unit = "a/b.slice"
uid = 4294967295
[[policy.rules.chain]]
name = "fullmesh"

[[policy.rules]]
uid = 1.5
[[policy.rules.chain]]
name = "fullmesh"

[[policy.rules]]
uid = ["alice"]
[[policy.rules.chain]]
name = "fullmesh"
`,
			want: []string{
				`f.toml:2: key "policy.rules[0].unit": "backup.timer" is not a service, scope or slice: want NAME.service, NAME.scope or NAME.slice`,
				`f.toml:3: key "policy.rules[0].uid": no user "nosuchuser" on this host (a user that exists only while its service runs, DynamicUser=, is selected by unit)`,
				`f.toml:8: key "policy.rules[1].unit": "getty@.service" is a template: name an instance such as getty@NAME.service`,
				`f.toml:9: key "policy.rules[1].uid": -1 is not a uid (0 to 4294967294)`,
				`f.toml:14: key "policy.rules[2].unit": "a/b.slice" contains '/', which systemd does not allow in a unit name`,
				`f.toml:15: key "policy.rules[2].uid": 4294967295 is not a uid (0 to 4294967294)`,
				`f.toml:20: key "policy.rules[3].uid": a TOML float where a uid or a user name belongs`,
				`f.toml:25: key "policy.rules[4].uid": a TOML array where a uid or a user name belongs`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.toml", []byte(tt.in))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if diff := cmp.Diff(tt.want, strings.Split(err.Error(), "\n")); diff != "" {
				t.Errorf("Parse error (-want +got):\n%s", diff)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("Parse error %T is not an *Error", err)
			}
		})
	}
}

func TestBuildPolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{
			name: "unknown policy",
			in:   "[[policy.chain]]\nname = \"fulmesh\"\n",
			want: `f.toml:2: key "policy.chain[0].name": ` + newError("fulmesh"),
		},
		{
			name: "unknown option",
			in:   "[[policy.chain]]\nname = \"fullmesh\"\n[policy.chain.config]\nrole = \"client\"\nmax_subflow = 2\n",
			want: `f.toml:5: key "policy.chain[0].config.max_subflow": policy/fullmesh: unknown option "max_subflow"`,
		},
		{
			name: "bad nested option, inline",
			in:   "[[policy.chain]]\nname = \"fullmesh\"\n\nconfig = { limits = { subflows = 9 } }\n",
			want: `f.toml:4: key "policy.chain[0].config.limits.subflows": policy/fullmesh: option "limits.subflows": 9 is above the kernel's maximum 8`,
		},
		{
			name: "bad option type in a rule",
			in: `[[policy.rules]]
side = "server"
[[policy.rules.chain]]
name = "fullmesh"
[[policy.rules.chain]]
name = "fullmesh"
[policy.rules.chain.config]
announce = "yes"
`,
			want: `f.toml:8: key "policy.rules[0].chain[1].config.announce": policy/fullmesh: option "announce": cannot use string as bool`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("f.toml", []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			r, err := c.BuildPolicy()
			if err == nil {
				_ = r.Close()
				t.Fatal("BuildPolicy succeeded")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("BuildPolicy error (-want +got):\n%s", diff)
			}
		})
	}
}

// newError returns the error of policy.New for name, which names the
// registered policies.
func newError(name string) string {
	if _, err := policy.New(name, nil); err != nil {
		return err.Error()
	}
	return ""
}

func TestIndexLines(t *testing.T) {
	doc := `mode = "auto"
[links]
include_names = [
  "eth0",
  "eth1",
]
a.b = 1
[[policy.chain]]
name = "x"
[policy.chain.config]
k = { m = 1,
  n = [ { o = 2 } ] }
[[policy.chain]]
name = "y"
[[policy.rules]]
[[policy.rules.chain]]
name = "z"
[[policy.rules]]
[[policy.rules.chain]]
[[policy.rules.chain]]
name = "w"
`
	want := keyLines{
		"mode":                       1,
		"links":                      2,
		"links.include_names":        3,
		"links.include_names[0]":     4,
		"links.include_names[1]":     5,
		"links.a.b":                  7,
		"policy.chain":               8,
		"policy.chain[0]":            8,
		"policy.chain[0].name":       9,
		"policy.chain[0].config":     10,
		"policy.chain[0].config.k":   11,
		"policy.chain[0].config.k.m": 11,
		"policy.chain[0].config.k.n": 12,
		// An element that is an inline table starts at its first key.
		"policy.chain[0].config.k.n[0]":   12,
		"policy.chain[0].config.k.n[0].o": 12,
		"policy.chain[1]":                 13,
		"policy.chain[1].name":            14,
		"policy.rules":                    15,
		"policy.rules[0]":                 15,
		"policy.rules[0].chain":           16,
		"policy.rules[0].chain[0]":        16,
		"policy.rules[0].chain[0].name":   17,
		"policy.rules[1]":                 18,
		"policy.rules[1].chain":           19,
		"policy.rules[1].chain[0]":        19,
		"policy.rules[1].chain[1]":        20,
		"policy.rules[1].chain[1].name":   21,
	}
	if diff := cmp.Diff(want, indexLines([]byte(doc))); diff != "" {
		t.Errorf("indexLines (-want +got):\n%s", diff)
	}
	lines := indexLines([]byte(doc))
	for path, want := range map[string]int{
		"policy.chain[0].config.zz": 10, // a parent's line
		"links.exclude_names":       2,
		"kernel.owned_ids":          0,
	} {
		if got := lines.line(path); got != want {
			t.Errorf("line(%q) = %d, want %d", path, got, want)
		}
	}
}

// TestLoadSpecialFiles: a configuration file that is a FIFO (whose open
// would wait for a writer), a device (/dev/zero never ends) or too large
// is refused at once, with the reason.
func TestLoadSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.toml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.toml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", MaxFileSize+10)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{fifo, "daemon: read config: " + fifo + " is a FIFO, not a regular file"},
		{zero, "daemon: read config: " + zero + " is a character device, not a regular file"},
		{"/dev/zero", "daemon: read config: /dev/zero is a character device, not a regular file"},
		{big, fmt.Sprintf("daemon: read config: %s has %d bytes, more than %d: file too large", big, MaxFileSize+10, MaxFileSize)},
	}
	for _, tt := range tests {
		done := make(chan error, 1)
		go func() {
			_, err := Load(tt.path)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != tt.want {
				t.Errorf("Load(%s): %v, want %s", tt.path, err, tt.want)
			}
		case <-time.After(time.Minute):
			t.Fatalf("Load(%s) blocks", tt.path)
		}
	}
}
