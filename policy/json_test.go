package policy

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// docView, docConn, docConnPlan and docKernelPlan are the examples of the
// package documentation.
func docView() View {
	return View{
		Mode: ModeUserspace,
		Now:  time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Links: []Link{
			{Name: "eth0", Index: 2, Kind: LinkWired, Up: true, Usable: true},
			{Name: "wwan0", Index: 3, Kind: LinkCellular, Up: true, Usable: true, Metered: true,
				CostPerGB: 2.5, QuotaBytes: 10e9, UsedBytes: 123456789,
				UsageSince: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
				Health:     Health{RTT: 48 * time.Millisecond}},
		},
		Addrs: []LocalAddr{
			{Addr: netip.MustParseAddr("192.0.2.1"), Link: "eth0", IfIndex: 2, Usable: true},
			{Addr: netip.MustParseAddr("198.51.100.1"), Link: "wwan0", IfIndex: 3, Reason: "tentative"},
		},
	}
}

func docConn() Conn {
	return Conn{
		Token: 0xdeadbeef, Side: SideClient,
		Local:  netip.MustParseAddrPort("192.0.2.1:40000"),
		Remote: netip.MustParseAddrPort("203.0.113.1:443"),
		PeerAddrs: []PeerAddr{
			{ID: 0, Addr: netip.MustParseAddrPort("203.0.113.1:443"), Source: SourceInitial},
			{ID: 1, Addr: netip.MustParseAddrPort("203.0.113.2:443"), Source: SourceAnnounced},
		},
		Subflows:  []Subflow{{Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: netip.MustParseAddrPort("203.0.113.1:443"), Established: true}},
		Owner:     &Owner{UID: 1000, Cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/backup.service"},
		Created:   time.Date(2025, 1, 2, 3, 4, 4, 980e6, time.UTC),
		BytesSent: 517, BytesReceived: 20480,
	}
}

func docConnPlan() ConnPlan {
	return ConnPlan{Paths: []Path{
		{Local: eth4, Dev: "eth0", IfIndex: 2, Remote: netip.MustParseAddrPort("203.0.113.1:443")},
		{Local: eth4, Dev: "eth0", IfIndex: 2, Remote: netip.MustParseAddrPort("203.0.113.2:443"),
			Deferral: Deferral{NotBefore: time.Date(2025, 1, 2, 3, 4, 5, 30e6, time.UTC), AfterBytes: 262144}},
	}}
}

func docKernelPlan() KernelPlan {
	return KernelPlan{
		Endpoints: []Endpoint{{Addr: eth4, Dev: "eth0", IfIndex: 2, Subflow: true, Fullmesh: true}},
		Limits:    Limits{Subflows: new(uint32(8)), AddAddrAccepted: new(uint32(8))},
	}
}

// TestJSON pins the wire form that the exec protocol documents.
func TestJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"view", docView(), `{"mode":"userspace","now":"2025-01-02T03:04:05Z",
			"links":[{"name":"eth0","index":2,"kind":"wired","up":true,"usable":true,"metered":false},
			{"name":"wwan0","index":3,"kind":"cellular","up":true,"usable":true,"metered":true,
			"cost_per_gb":2.5,"quota_bytes":10000000000,"used_bytes":123456789,
			"usage_since":"2025-01-01T00:00:00Z","health":{"rtt_ns":48000000}}],
			"addrs":[{"addr":"192.0.2.1","link":"eth0","ifindex":2,"usable":true},
			{"addr":"198.51.100.1","link":"wwan0","ifindex":3,"usable":false,"reason":"tentative"}]}`},
		{"conn", docConn(), `{"token":3735928559,"side":"client","local":"192.0.2.1:40000","remote":"203.0.113.1:443",
			"peer_addrs":[{"id":0,"addr":"203.0.113.1:443","source":"initial"},
			{"id":1,"addr":"203.0.113.2:443","source":"announced"}],
			"subflows":[{"local":"192.0.2.1:40000","remote":"203.0.113.1:443","local_id":0,
			"remote_id":0,"established":true}],
			"owner":{"uid":1000,"cgroup":"/user.slice/user-1000.slice/user@1000.service/app.slice/backup.service"},
			"created":"2025-01-02T03:04:04.98Z","bytes_sent":517,"bytes_received":20480}`},
		{"conn plan", docConnPlan(), `{"paths":[{"local":"192.0.2.1","dev":"eth0","ifindex":2,"remote":"203.0.113.1:443"},
			{"local":"192.0.2.1","dev":"eth0","ifindex":2,"remote":"203.0.113.2:443",
			"not_before":"2025-01-02T03:04:05.03Z","after_bytes":262144}],
			"announces":null}`},
		{"kernel plan", docKernelPlan(), `{"endpoints":[{"addr":"192.0.2.1","dev":"eth0","ifindex":2,"subflow":true,"fullmesh":true}],
			"limits":{"subflows":8,"add_addr_accepted":8}}`},
		{"health", Health{RTT: time.Millisecond, RTTVar: 2, RTO: 3, Loss: 0.25, Retransmits: 4, Unacked: 5,
			LastAckRecv: 6, LastDataRecv: 7, Stalled: true, StalledChanged: time.Unix(0, 0).UTC(), Sampled: time.Unix(1, 0).UTC()},
			`{"rtt_ns":1000000,"rttvar_ns":2,"rto_ns":3,"loss":0.25,"retransmits":4,"unacked":5,
			"last_ack_recv_ns":6,"last_data_recv_ns":7,"stalled":true,
			"stalled_changed":"1970-01-01T00:00:00Z","sampled":"1970-01-01T00:00:01Z"}`},
		{"rule", RuleSpec{Match: Match{PeerPrefix: mustPrefix("2001:db8::/32"), PeerPort: 443, LocalPort: 0, Side: SideServer},
			Chain: []Spec{{Name: "fullmesh", Config: json.RawMessage(`{"role":"server"}`)}}},
			`{"peer_prefix":"2001:db8::/32","peer_port":443,"side":"server","chain":[{"name":"fullmesh","config":{"role":"server"}}]}`},
		{"rule by owner", RuleSpec{Match: Match{Unit: "backup.service", UID: new(uint32(0))}, Chain: []Spec{{Name: "fullmesh"}}},
			`{"unit":"backup.service","uid":0,"chain":[{"name":"fullmesh"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := json.Compact(&want, []byte(tt.want)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.String(), string(got)); diff != "" {
				t.Errorf("JSON (-want +got):\n%s", diff)
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	testRoundTrip(t, docView())
	testRoundTrip(t, docConn())
	testRoundTrip(t, docConnPlan())
	testRoundTrip(t, docKernelPlan())
	testRoundTrip(t, Config{Chain: []Spec{{Name: "fullmesh"}}, Rules: []RuleSpec{{Match: Match{Side: SideClient, LocalPort: 1}, Chain: []Spec{{Name: "x", Config: json.RawMessage(`{"a":1}`)}}}}})
	testRoundTrip(t, Config{Chain: []Spec{{Name: "fullmesh"}}, Rules: []RuleSpec{{Match: Match{Unit: "a.service", UID: new(uint32(0))}, Chain: []Spec{{Name: "x"}}}}})
}

// testRoundTrip checks that v survives marshalling and unmarshalling.
func testRoundTrip[T any](t *testing.T, v T) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got T
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
	if diff := cmp.Diff(v, got, netOpts); diff != "" {
		t.Errorf("%T round trip (-want +got):\n%s", v, diff)
	}
}

func TestEnums(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		text string
		v    interface {
			UnmarshalText([]byte) error
			String() string
		}
		want string // String() after unmarshalling
		err  string
	}{
		{"kind", "cellular", new(LinkKind), "cellular", ""},
		{"kind unknown", "unknown", new(LinkKind), "unknown", ""},
		{"kind bad", "lte", new(LinkKind), "unknown", `policy: unknown link kind "lte" (want unknown, wired, wifi, cellular or virtual)`},
		{"kind empty", "", new(LinkKind), "unknown", `policy: unknown link kind "" (want unknown, wired, wifi, cellular or virtual)`},
		{"side", "server", new(Side), "server", ""},
		{"side empty", "", new(Side), "any", ""},
		{"side bad", "Server", new(Side), "any", `policy: unknown side "Server" (want any, client or server)`},
		{"source", "announced", new(AddrSource), "announced", ""},
		{"source bad", "peer", new(AddrSource), "initial", `policy: unknown address source "peer" (want initial or announced)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.v.UnmarshalText([]byte(tt.text))
			if diff := cmp.Diff(tt.err, errString(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if got := tt.v.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := LinkKind(9).String(); got != "link kind(9)" {
		t.Errorf("LinkKind(9).String() = %q", got)
	}
	if _, err := json.Marshal(Conn{Side: 3}); err == nil {
		t.Error("marshalled an invalid side")
	}
}

// fuzzRoundTrip unmarshals b into a T; when that works, it checks that
// the T survives marshalling and unmarshalling and returns it.
func fuzzRoundTrip[T any](t *testing.T, b []byte) (T, bool) {
	var first, second T
	if json.Unmarshal(b, &first) != nil {
		return first, false
	}
	again, err := json.Marshal(first)
	if err != nil {
		t.Fatalf("%T: marshal what was unmarshalled: %v", first, err)
	}
	if err := json.Unmarshal(again, &second); err != nil {
		t.Fatalf("%T: unmarshal %s: %v", first, again, err)
	}
	if diff := cmp.Diff(first, second, netOpts); diff != "" {
		t.Fatalf("%T round trip (-first +second):\n%s", first, diff)
	}
	return first, true
}

// FuzzPlanJSON feeds JSON as an external policy (the exec plugin's child)
// could write it: decoding must not panic, what decodes must survive a
// round trip, and Validate must not panic on a decoded plan.
func FuzzPlanJSON(f *testing.F) {
	for _, v := range []any{docConnPlan(), docKernelPlan(), docView(), docConn()} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := fuzzRoundTrip[KernelPlan](t, b); ok {
			_ = p.Validate()
		}
		if p, ok := fuzzRoundTrip[ConnPlan](t, b); ok {
			_ = p.Validate()
		}
		fuzzRoundTrip[View](t, b)
		fuzzRoundTrip[Conn](t, b)
	})
}
