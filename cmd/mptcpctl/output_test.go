package main

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// updating reports -update: rewrite the testdata/*.golden files and the
// generated docs. The flag is registered by charmbracelet/x/exp/golden,
// which teatest imports; the goldens here share it.
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// golden compares got with testdata/NAME.golden, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name+".golden")
	if updating() {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", p, diff)
	}
}

// render runs table and writeJSON on v and compares both with goldens.
func render[T any](t *testing.T, name string, v T, table func(*bytes.Buffer, T) error) {
	t.Helper()
	var tb, jb bytes.Buffer
	if err := table(&tb, v); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(&jb, v); err != nil {
		t.Fatal(err)
	}
	golden(t, name+".table", tb.Bytes())
	golden(t, name+".json", jb.Bytes())
}

var testNames = map[int32]string{2: "eth0", 3: "eth1", 4: "wwan0"}

func testName(i int32) string { return testNames[i] }

func TestEndpointsOutput(t *testing.T) {
	t.Parallel()
	eps := []genl.Endpoint{
		{ID: 1, Addr: netip.MustParseAddr("192.0.2.1"), Flags: genl.FlagSubflow, IfIndex: 2},
		{ID: 2, Addr: netip.MustParseAddr("198.51.100.1"), Flags: genl.FlagSubflow | genl.FlagBackup | genl.FlagFullmesh, IfIndex: 3},
		{ID: 7, Addr: netip.MustParseAddr("2001:db8:1::1"), Port: 8080, Flags: genl.FlagSignal},
		{ID: 8, Addr: netip.MustParseAddr("203.0.113.1"), Flags: genl.FlagImplicit | genl.FlagLaminar | 1<<9, IfIndex: 4},
		{ID: 9, Addr: netip.MustParseAddr("203.0.113.9")},
	}
	var out []endpointOut
	for _, e := range eps {
		out = append(out, toEndpointOut(e, testName))
	}
	render(t, "endpoints", out, func(b *bytes.Buffer, v []endpointOut) error { return writeEndpoints(b, v) })
	render(t, "endpoints-empty", []endpointOut{}, func(b *bytes.Buffer, v []endpointOut) error { return writeEndpoints(b, v) })
}

func TestLimitsOutput(t *testing.T) {
	t.Parallel()
	render(t, "limits", limitsOut{Subflows: 4, AddAddrAccepted: 8}, func(b *bytes.Buffer, v limitsOut) error { return writeLimits(b, v) })
}

func TestConnectionsOutput(t *testing.T) {
	t.Parallel()
	cs := []connectionOut{
		{Token: formatToken(0x3f97be70), Local: "192.0.2.1:40000", Remote: "192.0.2.2:8080", State: stateName(sockdiag.StateEstablished),
			Subflows: 3, BytesSent: 123456, BytesReceived: 789, PathManager: "kernel"},
		{Token: formatToken(0x0a), Local: "[2001:db8:1::1]:40001", Remote: "[2001:db8:1::2]:8080", State: stateName(sockdiag.StateFinWait1),
			Subflows: 1, Fallback: true, PathManager: "userspace"},
		{Token: formatToken(0xffffffff), Local: "192.0.2.1:40002", Remote: "192.0.2.2:8080", State: stateName(99),
			Subflows: 1, PathManager: "unknown"},
	}
	render(t, "connections", cs, func(b *bytes.Buffer, v []connectionOut) error { return writeConnections(b, v) })
	render(t, "connections-empty", []connectionOut{}, func(b *bytes.Buffer, v []connectionOut) error { return writeConnections(b, v) })
}

func TestSubflowsOutput(t *testing.T) {
	t.Parallel()
	ap := netip.MustParseAddrPort
	names := &ifaces{
		names:  map[int32]string{2: "eth0", 3: "eth1"},
		byAddr: map[netip.Addr]int32{netip.MustParseAddr("192.0.2.1"): 2, netip.MustParseAddr("198.51.100.1"): 3},
	}
	sfs := []*sockdiag.Subflow{
		{ // a join, listed after the initial subflow although dumped first
			Local: ap("198.51.100.1:41000"), Remote: ap("192.0.2.2:8080"), State: sockdiag.StateEstablished,
			Token: 0x3f97be70, RemoteToken: 0xa8874603, LocalID: 2, RemoteID: 0,
			Flags: sockdiag.SubflowJoinRemote | sockdiag.SubflowJoinLocal | sockdiag.SubflowBackupLocal | sockdiag.SubflowFullyEstablished | sockdiag.SubflowConnected,
			TCP:   sockdiag.TCPInfo{RTT: 1500 * time.Microsecond, BytesSent: 100, BytesAcked: 90, BytesReceived: 7},
		},
		{
			Local: ap("192.0.2.1:40000"), Remote: ap("192.0.2.2:8080"), State: sockdiag.StateEstablished,
			Token: 0x3f97be70, LocalID: 0, RemoteID: 0,
			Flags: sockdiag.SubflowMCapRemote | sockdiag.SubflowMCapLocal | sockdiag.SubflowFullyEstablished | sockdiag.SubflowConnected | sockdiag.SubflowMapValid,
			TCP:   sockdiag.TCPInfo{RTT: 62 * time.Microsecond, BytesSent: 123456, BytesAcked: 123000, BytesReceived: 789},
		},
		{ // bound to a device: IfIndex wins over the address
			Local: ap("192.0.2.1:40100"), Remote: ap("198.51.100.2:8080"), State: sockdiag.StateSynSent, IfIndex: 3,
			Token: 0x3f97be70, LocalID: 1, RemoteID: 1, Flags: sockdiag.SubflowJoinLocal | 1<<12,
		},
	}
	groups := []subflowGroupOut{
		{Token: formatToken(0x3f97be70), Local: "192.0.2.1:40000", Remote: "192.0.2.2:8080", PathManager: "kernel",
			Subflows: toSubflowsOut(sfs, names)},
		{Token: formatToken(0x0a), Local: "[2001:db8:1::1]:40001", Remote: "[2001:db8:1::2]:8080", PathManager: "userspace",
			Subflows: toSubflowsOut([]*sockdiag.Subflow{{
				Local: ap("[2001:db8:1::1]:40001"), Remote: ap("[2001:db8:1::2]:8080"), State: sockdiag.StateEstablished,
				Token: 0x0a, Flags: sockdiag.SubflowMCapLocal | sockdiag.SubflowBackupRemote,
			}}, names)},
		{Token: formatToken(0xdead), PathManager: "unknown", Subflows: toSubflowsOut(nil, names)},
	}
	render(t, "subflows", groups, func(b *bytes.Buffer, v []subflowGroupOut) error { return writeSubflows(b, v) })
	render(t, "subflows-empty", []subflowGroupOut{}, func(b *bytes.Buffer, v []subflowGroupOut) error { return writeSubflows(b, v) })
}

func TestEventsOutput(t *testing.T) {
	t.Parallel()
	ap := netip.MustParseAddrPort
	at := time.Date(2026, 11, 23, 13, 46, 18, 123456789, time.FixedZone("", 3600)).Format(timeFormat)
	evs := []genl.Event{
		{Type: genl.EventCreated, Token: 0x3f97be70, Local: ap("192.0.2.1:40000"), Remote: ap("192.0.2.2:8080")},
		{Type: genl.EventEstablished, Token: 0x3f97be70, Local: ap("192.0.2.2:8080"), Remote: ap("192.0.2.1:40000"),
			ServerSide: true, Flags: genl.EventFlagServerSide | genl.EventFlagDenyJoinID0},
		{Type: genl.EventAnnounced, Token: 0x3f97be70, RemoteID: 2, Remote: ap("[2001:db8:2::2]:8080")},
		{Type: genl.EventRemoved, Token: 0x3f97be70, RemoteID: 2},
		{Type: genl.EventSubEstablished, Token: 0x3f97be70, LocalID: 1, RemoteID: 0, Local: ap("198.51.100.1:41000"),
			Remote: ap("192.0.2.2:8080"), IfIndex: 3},
		{Type: genl.EventSubPriority, Token: 0x3f97be70, LocalID: 1, Local: ap("198.51.100.1:41000"),
			Remote: ap("192.0.2.2:8080"), Backup: true},
		{Type: genl.EventSubClosed, Token: 0x3f97be70, LocalID: 1, Local: ap("198.51.100.1:41000"),
			Remote: ap("192.0.2.2:8080"), Error: 111, ResetReason: 6, ResetFlags: 1},
		{Type: genl.EventClosed, Token: 0x3f97be70},
		{Type: genl.EventListenerCreated, Local: ap("[2001:db8:1::2]:8080")},
		{Type: genl.EventListenerClosed, Local: ap("192.0.2.2:8080")},
		{Type: 42, Token: 1, Timeout: 5},
	}
	var text, js bytes.Buffer
	for _, ev := range evs {
		out := toEventOut(at, ev, testName)
		text.WriteString(eventLine(out) + "\n")
		if err := writeJSONLine(&js, out); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "events.table", text.Bytes())
	golden(t, "events.json", js.Bytes())
}

func TestSubflowFlagNames(t *testing.T) {
	t.Parallel()
	all := sockdiag.SubflowFlags(1<<9 - 1)
	names := subflowFlagNames(all)
	if got, want := subflowLetters(names), "MmJjBbecv"; got != want {
		t.Errorf("letters = %q, want %q (ss -ti order)", got, want)
	}
	if got, want := subflowLetters(names), all.String(); got != want {
		t.Errorf("letters = %q, sockdiag says %q", got, want)
	}
	if diff := cmp.Diff([]string{"connected", "0x400"}, subflowFlagNames(sockdiag.SubflowConnected|1<<10)); diff != "" {
		t.Errorf("unknown bit (-want +got):\n%s", diff)
	}
	if got := subflowFlagNames(0); got == nil || len(got) != 0 {
		t.Errorf("no flags = %#v, want an empty, non-nil slice", got)
	}
}
