package main

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/genl"
)

// checkErr fails unless err is a usage error with message want, or nil when
// want is "".
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error message (-want +got):\n%s", diff)
	}
	if code := exitCode(err); code != exitUsage {
		t.Errorf("exit code %d, want %d", code, exitUsage)
	}
}

func TestParseAdd(t *testing.T) {
	t.Parallel()
	v4 := netip.MustParseAddr("192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name string
		args []string
		want addRequest
		err  string
	}{
		{name: "address only", args: []string{"192.0.2.1"}, want: addRequest{Endpoint: genl.Endpoint{Addr: v4}}},
		{name: "ipv6", args: []string{"2001:db8::1", "subflow"}, want: addRequest{Endpoint: genl.Endpoint{Addr: v6, Flags: genl.FlagSubflow}}},
		{
			name: "every keyword",
			args: []string{"192.0.2.1", "dev", "eth0", "id", "7", "subflow", "backup", "fullmesh", "laminar"},
			want: addRequest{Dev: "eth0", Endpoint: genl.Endpoint{Addr: v4, ID: 7,
				Flags: genl.FlagSubflow | genl.FlagBackup | genl.FlagFullmesh | genl.FlagLaminar}},
		},
		{
			name: "signal with port",
			args: []string{"2001:db8::1", "port", "8080", "signal", "id", "255"},
			want: addRequest{Endpoint: genl.Endpoint{Addr: v6, ID: 255, Port: 8080, Flags: genl.FlagSignal}},
		},
		{name: "id 1", args: []string{"192.0.2.1", "id", "1", "signal"}, want: addRequest{Endpoint: genl.Endpoint{Addr: v4, ID: 1, Flags: genl.FlagSignal}}},
		{name: "port 65535", args: []string{"192.0.2.1", "signal", "port", "65535"}, want: addRequest{Endpoint: genl.Endpoint{Addr: v4, Port: 65535, Flags: genl.FlagSignal}}},
		{name: "signal and subflow", args: []string{"192.0.2.1", "signal", "subflow"}, want: addRequest{Endpoint: genl.Endpoint{Addr: v4, Flags: genl.FlagSignal | genl.FlagSubflow}}},
		{name: "no address", args: nil, err: "missing address: expected ADDR [dev] [id] [port] [signal] [subflow] [backup] [fullmesh] [laminar]"},
		{name: "bad address", args: []string{"192.0.2.300"}, err: `invalid address "192.0.2.300"`},
		{name: "keyword as address", args: []string{"dev", "eth0"}, err: `invalid address "dev"`},
		{name: "prefix", args: []string{"192.0.2.1/24"}, err: `invalid address "192.0.2.1/24": give an address without a prefix length`},
		{name: "zone", args: []string{"fe80::1%eth0"}, err: `invalid address "fe80::1%eth0": zones are not supported, use dev`},
		{name: "unknown word", args: []string{"192.0.2.1", "fulmesh"}, err: `unknown word "fulmesh": expected dev, id, port, signal, subflow, backup, fullmesh or laminar`},
		{name: "implicit", args: []string{"192.0.2.1", "implicit"}, err: "implicit: the kernel creates implicit endpoints itself; expected dev, id, port, signal, subflow, backup, fullmesh or laminar"},
		{name: "dev missing", args: []string{"192.0.2.1", "dev"}, err: "dev: missing interface name"},
		{name: "dev invalid", args: []string{"192.0.2.1", "dev", "a/b"}, err: `dev "a/b": invalid interface name`},
		{name: "dev too long", args: []string{"192.0.2.1", "dev", "abcdefghijklmnop"}, err: `dev "abcdefghijklmnop": invalid interface name`},
		{name: "dev twice", args: []string{"192.0.2.1", "dev", "eth0", "dev", "eth1"}, err: `"dev" given twice`},
		{name: "flag twice", args: []string{"192.0.2.1", "signal", "signal"}, err: `"signal" given twice`},
		{name: "id missing", args: []string{"192.0.2.1", "id"}, err: "id: missing value: expected a number 1..255"},
		{name: "id not a number", args: []string{"192.0.2.1", "id", "x"}, err: `id "x": expected a number 1..255`},
		{name: "id 0", args: []string{"192.0.2.1", "id", "0"}, err: "id 0: out of range 1..255"},
		{name: "id 300", args: []string{"192.0.2.1", "id", "300"}, err: "id 300: out of range 1..255"},
		{name: "id negative", args: []string{"192.0.2.1", "id", "-1"}, err: `id "-1": expected a number 1..255`},
		{name: "port missing", args: []string{"192.0.2.1", "signal", "port"}, err: "port: missing value: expected a number 1..65535"},
		{name: "port 0", args: []string{"192.0.2.1", "signal", "port", "0"}, err: "port 0: out of range 1..65535"},
		{name: "port 65536", args: []string{"192.0.2.1", "signal", "port", "65536"}, err: "port 65536: out of range 1..65535"},
		{name: "port without signal", args: []string{"192.0.2.1", "port", "80"}, err: "port without signal: an endpoint with a port must be signal and not subflow"},
		{name: "port with subflow", args: []string{"192.0.2.1", "port", "80", "signal", "subflow"}, err: "port with subflow: an endpoint with a port must be signal and not subflow"},
		{name: "signal with fullmesh", args: []string{"192.0.2.1", "signal", "fullmesh"}, err: "signal with fullmesh: an endpoint cannot be both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseAdd(tt.args)
			checkErr(t, err, tt.err)
			if tt.err != "" {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("parseAdd(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestParseDelAndRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want endpointRef
		err  string
	}{
		{name: "id", args: []string{"3"}, want: endpointRef{ID: 3}},
		{name: "id 255", args: []string{"255"}, want: endpointRef{ID: 255}},
		{name: "ipv4", args: []string{"192.0.2.1"}, want: endpointRef{Addr: netip.MustParseAddr("192.0.2.1")}},
		{name: "ipv6", args: []string{"2001:db8::1"}, want: endpointRef{Addr: netip.MustParseAddr("2001:db8::1")}},
		{name: "missing", args: nil, err: "missing endpoint: expected an id 1..255 or an address"},
		{name: "id 0", args: []string{"0"}, err: "id 0: out of range 1..255"},
		{name: "id 256", args: []string{"256"}, err: "id 256: out of range 1..255"},
		{name: "garbage", args: []string{"eth0"}, err: `invalid endpoint "eth0": expected an id 1..255 or an address`},
		{name: "bad address", args: []string{"192.0.2.300"}, err: `invalid endpoint "192.0.2.300": expected an id 1..255 or an address`},
		{name: "zone", args: []string{"fe80::1%lo"}, err: `invalid endpoint "fe80::1%lo": expected an id 1..255 or an address`},
		{name: "two words", args: []string{"3", "4"}, err: `unexpected word "4": expected only ID or ADDR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseDel(tt.args)
			checkErr(t, err, tt.err)
			if tt.err == "" && got != tt.want {
				t.Errorf("parseDel(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want setRequest
		err  string
	}{
		{name: "backup", args: []string{"1", "backup"}, want: setRequest{Ref: endpointRef{ID: 1}, Set: genl.FlagBackup}},
		{name: "nobackup", args: []string{"1", "nobackup"}, want: setRequest{Ref: endpointRef{ID: 1}, Clear: genl.FlagBackup}},
		{name: "fullmesh", args: []string{"1", "fullmesh"}, want: setRequest{Ref: endpointRef{ID: 1}, Set: genl.FlagFullmesh}},
		{name: "nofullmesh", args: []string{"1", "nofullmesh"}, want: setRequest{Ref: endpointRef{ID: 1}, Clear: genl.FlagFullmesh}},
		{
			name: "both by address",
			args: []string{"192.0.2.1", "backup", "nofullmesh"},
			want: setRequest{Ref: endpointRef{Addr: netip.MustParseAddr("192.0.2.1")}, Set: genl.FlagBackup, Clear: genl.FlagFullmesh},
		},
		{name: "missing all", args: nil, err: "missing endpoint: expected ID|ADDR backup|nobackup|fullmesh|nofullmesh"},
		{name: "missing change", args: []string{"1"}, err: "missing change: expected backup, nobackup, fullmesh or nofullmesh"},
		{name: "bad ref", args: []string{"x", "backup"}, err: `invalid endpoint "x": expected an id 1..255 or an address`},
		{name: "unknown word", args: []string{"1", "bakup"}, err: `unknown word "bakup": expected backup, nobackup, fullmesh or nofullmesh`},
		{name: "unchangeable", args: []string{"1", "signal"}, err: "signal: the kernel can change only backup and fullmesh; expected backup, nobackup, fullmesh or nofullmesh"},
		{name: "conflict", args: []string{"1", "backup", "nobackup"}, err: `"nobackup" conflicts with an earlier word: give each of backup and fullmesh once`},
		{name: "repeat", args: []string{"1", "fullmesh", "fullmesh"}, err: `"fullmesh" conflicts with an earlier word: give each of backup and fullmesh once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseSet(tt.args)
			checkErr(t, err, tt.err)
			if tt.err == "" && got != tt.want {
				t.Errorf("parseSet(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestSetApply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  setRequest
		cur  genl.EndpointFlags
		want genl.EndpointFlags
	}{
		{name: "backup keeps fullmesh", req: setRequest{Set: genl.FlagBackup}, cur: genl.FlagSubflow | genl.FlagFullmesh,
			want: genl.FlagSubflow | genl.FlagFullmesh | genl.FlagBackup},
		{name: "nofullmesh keeps backup", req: setRequest{Clear: genl.FlagFullmesh}, cur: genl.FlagSubflow | genl.FlagFullmesh | genl.FlagBackup,
			want: genl.FlagSubflow | genl.FlagBackup},
		{name: "both", req: setRequest{Set: genl.FlagFullmesh, Clear: genl.FlagBackup}, cur: genl.FlagBackup,
			want: genl.FlagFullmesh},
	}
	for _, tt := range tests {
		if got := tt.req.apply(tt.cur); got != tt.want {
			t.Errorf("%s: apply(%v) = %v, want %v", tt.name, tt.cur, got, tt.want)
		}
	}
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	u32 := func(n uint32) *uint32 { return &n }
	tests := []struct {
		name string
		args []string
		want genl.LimitsUpdate
		err  string
	}{
		{name: "subflows", args: []string{"subflows", "4"}, want: genl.LimitsUpdate{Subflows: u32(4)}},
		{name: "add-addr-accepted", args: []string{"add-addr-accepted", "0"}, want: genl.LimitsUpdate{AddAddrAccepted: u32(0)}},
		{name: "both", args: []string{"add-addr-accepted", "8", "subflows", "1"}, want: genl.LimitsUpdate{Subflows: u32(1), AddAddrAccepted: u32(8)}},
		{name: "nothing", args: nil, err: "nothing to set: expected subflows N or add-addr-accepted N"},
		{name: "unknown", args: []string{"subflow", "2"}, err: `unknown word "subflow": expected subflows or add-addr-accepted`},
		{name: "missing value", args: []string{"subflows"}, err: "subflows: missing value: expected a number 0..8"},
		{name: "not a number", args: []string{"subflows", "many"}, err: `subflows "many": expected a number 0..8`},
		{name: "too big", args: []string{"add-addr-accepted", "9"}, err: "add-addr-accepted 9: out of range 0..8"},
		{name: "twice", args: []string{"subflows", "1", "subflows", "2"}, err: `"subflows" given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseLimits(tt.args)
			checkErr(t, err, tt.err)
			if tt.err != "" {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseLimits(%q) (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestParsePMAndToken(t *testing.T) {
	t.Parallel()
	for _, w := range []string{"kernel", "userspace"} {
		if pm, err := parsePM(w); err != nil || string(pm) != w {
			t.Errorf("parsePM(%q) = %q, %v", w, pm, err)
		}
	}
	_, err := parsePM("user")
	checkErr(t, err, `unknown path manager "user": expected kernel or userspace`)

	tokens := []struct {
		in   string
		want uint32
		err  string
	}{
		{in: "3f97be70", want: 0x3f97be70},
		{in: "0x3F97BE70", want: 0x3f97be70},
		{in: "1", want: 1},
		{in: "", err: `invalid token "": expected up to 8 hexadecimal digits`},
		{in: "0x", err: `invalid token "0x": expected up to 8 hexadecimal digits`},
		{in: "xyz", err: `invalid token "xyz": expected up to 8 hexadecimal digits`},
		{in: "123456789", err: `invalid token "123456789": expected up to 8 hexadecimal digits`},
	}
	for _, tt := range tokens {
		got, err := parseToken(tt.in)
		checkErr(t, err, tt.err)
		if tt.err == "" && got != tt.want {
			t.Errorf("parseToken(%q) = %x, want %x", tt.in, got, tt.want)
		}
	}
	if got := formatToken(0xbe70); got != "0000be70" {
		t.Errorf("formatToken = %q, want 0000be70", got)
	}
}

func TestParseAnnounce(t *testing.T) {
	t.Parallel()
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		args []string
		want announceRequest
		err  string
	}{
		{[]string{"3f97be70", "192.0.2.1", "id", "5"}, announceRequest{Token: 0x3f97be70, Endpoint: genl.Endpoint{Addr: v4, ID: 5, Flags: genl.FlagSignal}}, ""},
		{[]string{"0x1", "2001:db8::1", "port", "8443", "id", "255", "dev", "eth1"},
			announceRequest{Token: 1, Endpoint: genl.Endpoint{Addr: v6, ID: 255, Port: 8443, Flags: genl.FlagSignal}, Dev: "eth1"}, ""},
		{nil, announceRequest{}, "missing token: expected TOKEN ADDR id N [port P] [dev IFNAME]"},
		{[]string{"1"}, announceRequest{}, "missing address: expected TOKEN ADDR id N [port P] [dev IFNAME]"},
		{[]string{"xyz", "192.0.2.1", "id", "1"}, announceRequest{}, `invalid token "xyz": expected up to 8 hexadecimal digits`},
		{[]string{"1", "192.0.2.1"}, announceRequest{}, "missing id: an announced address needs an id 1..255, which the peer uses to withdraw it"},
		{[]string{"1", "192.0.2.1", "id", "0"}, announceRequest{}, "id 0: out of range 1..255"},
		{[]string{"1", "192.0.2.1", "id"}, announceRequest{}, "id: missing value: expected a number 1..255"},
		{[]string{"1", "192.0.2.1", "id", "1", "id", "2"}, announceRequest{}, `"id" given twice`},
		{[]string{"1", "192.0.2.1", "id", "1", "port", "0"}, announceRequest{}, "port 0: out of range 1..65535"},
		{[]string{"1", "192.0.2.1", "id", "1", "signal"}, announceRequest{}, `unknown word "signal": expected id, port or dev`},
		{[]string{"1", "192.0.2.0/24", "id", "1"}, announceRequest{}, `invalid address "192.0.2.0/24": give an address without a prefix length`},
	}
	for _, tt := range tests {
		got, err := parseAnnounce(tt.args)
		checkErr(t, err, tt.err)
		if err == nil {
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("parseAnnounce(%q) (-want +got):\n%s", tt.args, diff)
			}
		}
	}
}

func TestParseRemove(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args  []string
		token uint32
		id    uint8
		err   string
	}{
		{[]string{"3f97be70", "id", "5"}, 0x3f97be70, 5, ""},
		{[]string{"1", "id", "0"}, 1, 0, ""},
		{nil, 0, 0, "missing token: expected TOKEN id N"},
		{[]string{"1"}, 0, 0, "missing id: expected TOKEN id N"},
		{[]string{"1", "5"}, 0, 0, `unknown word "5": expected id`},
		{[]string{"1", "id"}, 0, 0, "id: missing value: expected a number 0..255"},
		{[]string{"1", "id", "256"}, 0, 0, "id 256: out of range 0..255"},
		{[]string{"1", "id", "1", "2"}, 0, 0, `unexpected word "2": expected only TOKEN id N`},
	}
	for _, tt := range tests {
		token, id, err := parseRemove(tt.args)
		checkErr(t, err, tt.err)
		if err == nil && (token != tt.token || id != tt.id) {
			t.Errorf("parseRemove(%q) = %x, %d; want %x, %d", tt.args, token, id, tt.token, tt.id)
		}
	}
}

func TestParseSubflow(t *testing.T) {
	t.Parallel()
	a4, r4 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddrPort("203.0.113.1:443")
	tests := []struct {
		op   string
		args []string
		want subflowRequest
		err  string
	}{
		{"create", []string{"1", "192.0.2.1", "203.0.113.1:443"}, subflowRequest{Token: 1, Local: genl.Endpoint{Addr: a4}, Remote: r4}, ""},
		{"create", []string{"1", "192.0.2.1", "203.0.113.1:443", "backup", "id", "3", "dev", "eth1"},
			subflowRequest{Token: 1, Local: genl.Endpoint{Addr: a4, ID: 3, Flags: genl.FlagBackup}, Remote: r4, Dev: "eth1", IDSet: true}, ""},
		{"create", []string{"1", "2001:db8::2", "[2001:db8::1]:443"}, subflowRequest{Token: 1,
			Local: genl.Endpoint{Addr: netip.MustParseAddr("2001:db8::2")}, Remote: netip.MustParseAddrPort("[2001:db8::1]:443")}, ""},
		{"destroy", []string{"1", "192.0.2.1:40000", "203.0.113.1:443"}, subflowRequest{Token: 1, Local: genl.Endpoint{Addr: a4, Port: 40000}, Remote: r4}, ""},
		{"backup", []string{"1", "192.0.2.1", "203.0.113.1", "on"}, subflowRequest{Token: 1, Local: genl.Endpoint{Addr: a4},
			Remote: netip.AddrPortFrom(r4.Addr(), 0), Backup: true}, ""},
		{"backup", []string{"1", "192.0.2.1:40000", "203.0.113.1:443", "off"}, subflowRequest{Token: 1, Local: genl.Endpoint{Addr: a4, Port: 40000}, Remote: r4}, ""},
		{"create", []string{"1", "192.0.2.1"}, subflowRequest{}, "missing remote address: expected TOKEN LOCAL REMOTE:PORT [id N] [dev IFNAME] [backup]"},
		{"create", []string{"1", "192.0.2.1", "203.0.113.1"}, subflowRequest{}, `remote address "203.0.113.1": the port is missing: expected ADDR:PORT ([ADDR]:PORT for IPv6)`},
		{"create", []string{"1", "192.0.2.1:5", "203.0.113.1:443"}, subflowRequest{}, `local address "192.0.2.1:5": the kernel picks the local port of a new subflow; give the address alone`},
		{"create", []string{"1", "192.0.2.1", "[2001:db8::1]:443"}, subflowRequest{}, "local 192.0.2.1 and remote 2001:db8::1: the addresses must be of one family"},
		{"create", []string{"1", "192.0.2.1", "203.0.113.1:443", "signal"}, subflowRequest{}, `unknown word "signal": expected id, dev or backup`},
		{"destroy", []string{"1", "192.0.2.1", "203.0.113.1:443"}, subflowRequest{}, `local address "192.0.2.1": the port is missing: expected ADDR:PORT ([ADDR]:PORT for IPv6)`},
		{"destroy", []string{"1", "192.0.2.1:1", "203.0.113.1:0"}, subflowRequest{}, `remote address "203.0.113.1:0": port 0: give the port or leave it out`},
		{"destroy", []string{"1", "192.0.2.1:1", "203.0.113.1:443", "now"}, subflowRequest{}, `unexpected word "now": expected only TOKEN LOCAL:PORT REMOTE:PORT`},
		{"backup", []string{"1", "192.0.2.1", "203.0.113.1"}, subflowRequest{}, "missing on|off: expected TOKEN LOCAL[:PORT] REMOTE[:PORT] on|off"},
		{"backup", []string{"1", "192.0.2.1", "203.0.113.1", "yes"}, subflowRequest{}, `unknown word "yes": expected on or off`},
		{"backup", []string{"1", "fe80::1%eth0", "203.0.113.1", "on"}, subflowRequest{}, `invalid local address "fe80::1%eth0": expected ADDR or ADDR:PORT ([ADDR]:PORT for IPv6)`},
		{"backup", []string{"token", "192.0.2.1", "203.0.113.1", "on"}, subflowRequest{}, `invalid token "token": expected up to 8 hexadecimal digits`},
	}
	for _, tt := range tests {
		got, err := parseSubflow(tt.op, tt.args)
		checkErr(t, err, tt.err)
		if err == nil {
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
				t.Errorf("parseSubflow(%s, %q) (-want +got):\n%s", tt.op, tt.args, diff)
			}
		}
	}
}
