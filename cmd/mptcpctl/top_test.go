package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// topT0 is the time of the first reading of the model tests.
var topT0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// fakeReading is one reading of a fake kernel.
type fakeReading struct {
	links    []topKernelLink
	byAddr   map[netip.Addr]int32
	conns    []sockdiag.Connection
	subflows []sockdiag.Subflow
}

// read feeds the state one reading taken at t.
func (r fakeReading) read(s *topState, t time.Time, open uint32) {
	s.begin(t, open)
	s.setLinks(t, r.links, r.byAddr)
	s.beginConns(t)
	for i := range r.conns {
		s.addConn(&r.conns[i])
	}
	s.beginSubflows(t)
	for i := range r.subflows {
		s.addSubflow(&r.subflows[i])
	}
	s.end()
}

// testConn is a connection of the model tests: token, peer, bytes
// received and acknowledged.
func testConn(token uint32, peer string, in, out uint64) sockdiag.Connection {
	return sockdiag.Connection{Token: token, Cookie: uint64(token), State: sockdiag.StateEstablished,
		Local: netip.MustParseAddrPort("192.0.2.1:40000"), Remote: netip.MustParseAddrPort(peer),
		Info: sockdiag.MPTCPInfo{Size: 96, SubflowsTotal: 2, BytesReceived: in, BytesAcked: out}}
}

// testSubflow is a subflow of token from local, with its TCP bytes.
func testSubflow(token uint32, cookie uint64, local string, in, out uint64, flags sockdiag.SubflowFlags) sockdiag.Subflow {
	return sockdiag.Subflow{Token: token, Cookie: cookie, State: sockdiag.StateEstablished, Flags: flags,
		Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort("203.0.113.2:443"),
		TCP: sockdiag.TCPInfo{BytesReceived: in, BytesAcked: out, RTT: 1500 * time.Microsecond, SndCwnd: 10, TotalRetrans: 2}}
}

// closing returns sf closing: its FIN sent, not acknowledged.
func closing(sf sockdiag.Subflow) sockdiag.Subflow {
	sf.State = sockdiag.StateFinWait1
	return sf
}

func testLinks(rx0, tx0, rx1, tx1 uint64, up1 bool) []topKernelLink {
	return []topKernelLink{
		{Name: "lo", Index: 1, Up: true, Loopback: true},
		{Name: "eth0", Index: 2, Up: true, RxBytes: rx0, TxBytes: tx0},
		{Name: "eth1", Index: 3, Up: up1, RxBytes: rx1, TxBytes: tx1},
	}
}

var testByAddr = map[netip.Addr]int32{
	netip.MustParseAddr("192.0.2.1"):    2,
	netip.MustParseAddr("198.51.100.1"): 3,
}

// TestTopStateRates: two readings a second apart give the links' and the
// connections' rates, the subflows per link, the links of each
// connection, ages, and the opened connection's subflows with theirs; a
// connection gone from the kernel leaves, a link going down is an event.
func TestTopStateRates(t *testing.T) {
	t.Parallel()
	s := newTopState(time.Second)
	r0 := fakeReading{
		links:  testLinks(1000, 2000, 0, 0, true),
		byAddr: testByAddr,
		conns:  []sockdiag.Connection{testConn(0xa, "203.0.113.2:443", 0, 0), testConn(0xb, "203.0.113.3:80", 500, 0)},
		subflows: []sockdiag.Subflow{
			testSubflow(0xa, 1, "192.0.2.1:40000", 0, 0, 0),
			testSubflow(0xa, 2, "198.51.100.1:40001", 0, 0, sockdiag.SubflowJoinLocal|sockdiag.SubflowBackupLocal),
			testSubflow(0xb, 3, "192.0.2.1:40002", 500, 0, 0),
		},
	}
	r0.read(s, topT0, 0xa)
	f := arrange(s.snapshot(), topSettings{})
	if len(f.Conns) != 2 || f.Conns[0].Rated || f.Conns[0].AgeKnown {
		t.Fatalf("first reading: %+v; want 2 connections, no rates, ages not known", f.Conns)
	}
	if len(f.Events) != 0 {
		t.Errorf("first reading gave events %+v", f.Events)
	}

	r1 := fakeReading{
		links:  testLinks(1000+1_250_000, 2000+125_000, 0, 0, false),
		byAddr: testByAddr,
		conns: []sockdiag.Connection{testConn(0xa, "203.0.113.2:443", 1_000_000, 100_000),
			testConn(0xc, "198.51.100.9:22", 0, 0)},
		subflows: []sockdiag.Subflow{
			testSubflow(0xa, 1, "192.0.2.1:40000", 600_000, 100_000, 0),
			testSubflow(0xa, 2, "198.51.100.1:40001", 400_000, 0, sockdiag.SubflowJoinLocal|sockdiag.SubflowBackupLocal),
			testSubflow(0xc, 4, "192.0.2.1:40003", 0, 0, 0),
			closing(testSubflow(0xc, 5, "198.51.100.1:40004", 0, 0, sockdiag.SubflowJoinLocal)),
		},
	}
	r1.read(s, topT0.Add(time.Second), 0xa)
	f = arrange(s.snapshot(), topSettings{Open: 0xa})
	if got := len(f.Links); got != 2 {
		t.Fatalf("%d links shown, want eth0 and eth1 (loopback without subflows hidden): %+v", got, f.Links)
	}
	eth0 := f.Links[0]
	if eth0.Name != "eth0" || eth0.RateIn != 1_250_000 || eth0.RateOut != 125_000 || eth0.Subflows != 2 {
		t.Errorf("eth0 = %+v; want 1,250,000 B/s in, 125,000 out, 2 subflows", eth0)
	}
	if diff := cmp.Diff([]float64{1_250_000}, eth0.HistIn); diff != "" {
		t.Errorf("eth0 history (-want +got):\n%s", diff)
	}
	if f.Links[1].Up || f.Links[1].Subflows != 1 {
		t.Errorf("eth1 = %+v; want down with 1 subflow (the closing one left out)", f.Links[1])
	}
	if len(f.Conns) != 2 || f.Conns[0].Token != 0xa || f.Conns[1].Token != 0xc {
		t.Fatalf("connections %+v; want 0xa (fastest) then 0xc; 0xb is gone", f.Conns)
	}
	a := f.Conns[0]
	if !a.Rated || a.RateIn != 1_000_000 || a.RateOut != 100_000 || a.AgeKnown || rowLinks(a, f.LinkNames) != "eth0,eth1" {
		t.Errorf("0xa = %+v (links %q); want 1,000,000 B/s in, 100,000 out, age not known, links eth0,eth1", a, rowLinks(a, f.LinkNames))
	}
	if c := f.Conns[1]; c.Rated || !c.AgeKnown || !c.FirstSeen.Equal(topT0.Add(time.Second)) || rowLinks(c, f.LinkNames) != "eth0" {
		t.Errorf("0xc = %+v (links %q); want no rate yet, a known age, links eth0 (its closing subflow on eth1 left out)",
			c, rowLinks(c, f.LinkNames))
	}
	d := f.Detail
	if d == nil || d.Conn == nil || len(d.Subflows) != 2 {
		t.Fatalf("detail %+v; want 0xa with 2 subflows", d)
	}
	if sf := d.Subflows[0]; sf.Joined || !sf.Rated || sf.RateIn != 600_000 || sf.RateOut != 100_000 || f.LinkNames[sf.Link] != "eth0" {
		t.Errorf("initial subflow %+v; want first, on eth0, 600,000 B/s in, 100,000 out", sf)
	}
	if sf := d.Subflows[1]; !sf.Joined || subflowBackup(sf.Flags) != "yes" || sf.RateIn != 400_000 {
		t.Errorf("joined subflow %+v; want backup, 400,000 B/s in", sf)
	}
	if len(f.Events) != 1 || f.Events[0].Kind != topEventLink || f.Events[0].Text != "eth1 down" {
		t.Errorf("events %+v; want eth1 down", f.Events)
	}
}

// TestTopStateReset: a counter that went back (a link recreated, a
// token reused by a new connection) gives no negative or huge rate.
func TestTopStateReset(t *testing.T) {
	t.Parallel()
	s := newTopState(time.Second)
	fakeReading{links: testLinks(5000, 5000, 0, 0, true), conns: []sockdiag.Connection{testConn(0xa, "203.0.113.2:443", 9000, 9000)}}.
		read(s, topT0, 0)
	c := testConn(0xa, "203.0.113.2:443", 10, 10)
	c.Cookie = 99 // another socket with the same token
	fakeReading{links: testLinks(10, 10, 0, 0, true), conns: []sockdiag.Connection{c}}.read(s, topT0.Add(time.Second), 0)
	f := arrange(s.snapshot(), topSettings{})
	if f.Links[0].RateIn != 0 || f.Links[0].RateOut != 0 {
		t.Errorf("eth0 rates %v/%v after its counters went back; want 0", f.Links[0].RateIn, f.Links[0].RateOut)
	}
	if r := f.Conns[0]; r.Rated || !r.AgeKnown {
		t.Errorf("reused token: %+v; want a new connection without a rate", r)
	}
}

// TestTopHistory: a link's history keeps the last minute, oldest first.
func TestTopHistory(t *testing.T) {
	t.Parallel()
	s := newTopState(10 * time.Second) // 6 readings a minute
	for i := range 9 {
		fakeReading{links: testLinks(uint64(i*i)*10, 0, 0, 0, true)}.read(s, topT0.Add(time.Duration(i)*10*time.Second), 0)
	}
	// Readings 1..8; the rate of reading i is (i²-(i-1)²)*10/10 = 2i-1.
	if diff := cmp.Diff([]float64{5, 7, 9, 11, 13, 15}, arrange(s.snapshot(), topSettings{}).Links[0].HistIn); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// TestTopArrange: each sort key, reversed or not, and filters by peer,
// port, link and token.
func TestTopArrange(t *testing.T) {
	t.Parallel()
	s := newTopState(time.Second)
	r0 := fakeReading{links: testLinks(0, 0, 0, 0, true), byAddr: testByAddr,
		conns: []sockdiag.Connection{testConn(0x1, "203.0.113.2:443", 0, 0), testConn(0x2, "198.51.100.7:80", 0, 0)}}
	r0.read(s, topT0, 0)
	r1 := fakeReading{links: testLinks(0, 0, 0, 0, true), byAddr: testByAddr,
		conns: []sockdiag.Connection{testConn(0x1, "203.0.113.2:443", 100, 0), testConn(0x2, "198.51.100.7:80", 50, 10_000),
			testConn(0xbeef, "[2001:db8::2]:443", 0, 0)},
		subflows: []sockdiag.Subflow{testSubflow(0x1, 1, "198.51.100.1:1", 0, 0, 0), testSubflow(0x2, 2, "192.0.2.1:2", 0, 0, 0),
			testSubflow(0xbeef, 3, "192.0.2.1:3", 0, 0, 0)}}
	r1.read(s, topT0.Add(time.Second), 0)
	tokens := func(set topSettings) []uint32 {
		var out []uint32
		for _, r := range arrange(s.snapshot(), set).Conns {
			out = append(out, r.Token)
		}
		return out
	}
	mustFilter := func(text string) topFilter {
		f, err := parseFilter(text)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		set  topSettings
		want []uint32
	}{
		{"rate", topSettings{Sort: sortRate}, []uint32{0x2, 0x1, 0xbeef}},
		{"rate reversed", topSettings{Sort: sortRate, Reverse: true}, []uint32{0xbeef, 0x1, 0x2}},
		{"bytes", topSettings{Sort: sortBytes}, []uint32{0x2, 0x1, 0xbeef}},
		{"age", topSettings{Sort: sortAge}, []uint32{0x1, 0x2, 0xbeef}},
		{"peer", topSettings{Sort: sortPeer}, []uint32{0x2, 0x1, 0xbeef}},
		{"token reversed", topSettings{Sort: sortToken, Reverse: true}, []uint32{0xbeef, 0x2, 0x1}},
		{"peer prefix", topSettings{Filter: mustFilter("peer:203.0.113.0/24")}, []uint32{0x1}},
		{"bare peer address", topSettings{Filter: mustFilter("198.51.100.7")}, []uint32{0x2}},
		{"IPv6 peer", topSettings{Filter: mustFilter("2001:db8::/32")}, []uint32{0xbeef}},
		{"port", topSettings{Filter: mustFilter("port:443")}, []uint32{0x1, 0xbeef}},
		{"bare port", topSettings{Filter: mustFilter("80")}, []uint32{0x2}},
		{"link", topSettings{Filter: mustFilter("link:eth1")}, []uint32{0x1}},
		{"link glob", topSettings{Filter: mustFilter("eth*")}, []uint32{0x2, 0x1, 0xbeef}},
		{"token prefix", topSettings{Filter: mustFilter("0000be")}, []uint32{0xbeef}},
		{"two terms", topSettings{Filter: mustFilter("port:443 link:eth0")}, []uint32{0xbeef}},
		{"nothing", topSettings{Filter: mustFilter("peer:192.0.2.0/24")}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tokens(tt.set)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestParseFilter: bad filters are refused with the word and the reason.
func TestParseFilter(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, err string }{
		{"peer:nowhere", `filter "peer:nowhere": peer "nowhere": not an address or a prefix such as 203.0.113.0/24`},
		{"port:0", `filter "port:0": port "0": expected a number from 1 to 65535`},
		{"port:65536", `filter "port:65536": port "65536": expected a number from 1 to 65535`},
		{"link:[", `filter "link:[": link "[": expected an interface name or a glob such as eth*`},
		{"user:root", `filter "user:root": unknown key "user": expected peer, port or link`},
		{"[x", `filter "[x": not an address, a prefix, a port, a link or a token`},
		{"  peer:192.0.2.1   port:22 ", ""},
	}
	for _, tt := range tests {
		f, err := parseFilter(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("parseFilter(%q): %v", tt.in, err)
		case tt.err == "" && f.String() != "peer:192.0.2.1 port:22":
			t.Errorf("parseFilter(%q).String() = %q", tt.in, f.String())
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("parseFilter(%q) = %v; want %s", tt.in, err, tt.err)
		}
	}
}

// TestDecisionEvents: the daemon's decisions that matter are events of
// the strip, in words; routine ones are not; a kind this mptcpctl does not
// know shows as the daemon names it.
func TestDecisionEvents(t *testing.T) {
	t.Parallel()
	at := topT0
	local, remote := netip.MustParseAddrPort("198.51.100.1:40001"), netip.MustParseAddrPort("203.0.113.2:443")
	d := func(dd pmstate.Decision) ctlapi.Event { dd.Time = at; return ctlapi.Event{Decision: dd} }
	tests := []struct {
		ev   ctlapi.Event
		kind topEventKind
		text string
	}{
		{d(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpSetSubflowBackup, Token: 0xa, Local: local, Remote: remote}),
			topEventFailover, "0000000a: subflow 198.51.100.1:40001 → 203.0.113.2:443 is active (was backup)"},
		{d(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpSetSubflowBackup, Token: 0xa, Local: local, Remote: remote, Backup: true}),
			topEventFailback, "0000000a: subflow 198.51.100.1:40001 → 203.0.113.2:443 made backup"},
		{d(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpSetEndpointFlags, ID: 101, Addr: local.Addr(), Flags: "subflow"}),
			topEventFailover, "endpoint 198.51.100.1 (id 101) is active (was backup)"},
		{d(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpRemove, Token: 0xa, ID: 2, Addr: local.Addr()}),
			topEventWithdraw, "0000000a: address 198.51.100.1 (id 2) withdrawn"},
		{d(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpDestroySubflow, Token: 0xa, Local: local, Remote: remote}),
			topEventWithdraw, "0000000a: subflow 198.51.100.1:40001 → 203.0.113.2:443 closed"},
		{d(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow, Token: 0xa, Local: netip.AddrPortFrom(local.Addr(), 0),
			Remote: remote, Error: "Network is unreachable"}),
			topEventFailed, "0000000a: create_subflow 198.51.100.1 → 203.0.113.2:443 failed: Network is unreachable"},
		{d(pmstate.Decision{Kind: pmstate.DecisionPathFailed, Token: 0xa, Local: local, Remote: remote, Error: "closed"}),
			topEventPathFailed, "0000000a: path 198.51.100.1:40001 → 203.0.113.2:443 failed: closed"},
		{d(pmstate.Decision{Kind: pmstate.DecisionPolicy, Detail: "fullmesh -> fullmesh | backup-cellular"}),
			"policy", "replaced: fullmesh -> fullmesh | backup-cellular"},
		{d(pmstate.Decision{Kind: "deferred", Token: 0xa, Local: local, Remote: remote}),
			"deferred", "0000000a: token=0000000a local=198.51.100.1:40001 remote=203.0.113.2:443"},
		{ctlapi.Event{Decision: pmstate.Decision{Time: at, Kind: ctlapi.EventDropped}, Dropped: 7},
			"dropped", "missed 7 decisions: mptcpctl did not keep up"},
	}
	for _, tt := range tests {
		e, ok := decisionEvent(tt.ev)
		if !ok || e.Kind != tt.kind || e.Text != tt.text || !e.Time.Equal(at) {
			t.Errorf("%s %s: %+v, %v; want %s %q", tt.ev.Kind, tt.ev.Op, e, ok, tt.kind, tt.text)
		}
	}
	if e, ok := decisionEvent(d(pmstate.Decision{Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow, Token: 1})); ok {
		t.Errorf("a subflow created is an event: %+v", e)
	}
}

// TestQuotaEvents: a link crossing 90% and 100% of its quota, and starting
// a new period, are events; the first reading is the baseline.
func TestQuotaEvents(t *testing.T) {
	t.Parallel()
	s := newTopState(time.Second)
	usage := func(used uint64, over bool) *ctlapi.Usage {
		return &ctlapi.Usage{Links: []ctlapi.UsageLink{{Name: "wwan0", Metered: true, UsedBytes: used, QuotaBytes: 10_000_000,
			OverQuota: over, PeriodStart: topT0}}}
	}
	var texts []string
	for i, u := range []*ctlapi.Usage{usage(9_500_000, false), usage(9_600_000, false), usage(10_000_000, true),
		usage(1000, false), usage(9_000_000, false)} {
		s.begin(topT0.Add(time.Duration(i)*time.Second), 0)
		s.setUsage(u)
	}
	for _, e := range s.events {
		if e.Kind != topEventQuota {
			t.Errorf("event %+v is not a quota event", e)
		}
		texts = append(texts, e.Text)
	}
	want := []string{
		"wwan0 reached its quota (10 MB of 10 MB)",
		"wwan0 is under its quota again (1.0 kB of 10 MB, period from " + topT0.Local().Format(time.DateTime) + ")",
		"wwan0 used 90% of its quota (9.0 MB of 10 MB)",
	}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("quota events (-want +got):\n%s", diff)
	}
	row := topLinkRow{Name: "wwan0"}
	s.daemon.decorate(&row)
	if got := linkQuota(row); got != "90% of 10 MB" {
		t.Errorf("quota cell %q, want 90%% of 10 MB", got)
	}
}

// TestPluginEvents: the policy programs' states come from the daemon's
// metrics; a program going down, crashing, missing answers or coming back
// is an event.
func TestPluginEvents(t *testing.T) {
	t.Parallel()
	metrics := func(up, crashes, timeouts int) []byte {
		return []byte(strings.NewReplacer("UP", strconv.Itoa(up), "CRASHES", strconv.Itoa(crashes), "TIMEOUTS", strconv.Itoa(timeouts)).Replace(
			`# HELP mptcpgod_plugin_up 1 when the policy program runs.
# TYPE mptcpgod_plugin_up gauge
mptcpgod_plugin_up{command="/usr/lib/mptcpgod/policy --verbose \"x\""} UP
# HELP mptcpgod_plugin_crashes_total Times the policy program exited without being asked to.
# TYPE mptcpgod_plugin_crashes_total counter
mptcpgod_plugin_crashes_total{command="/usr/lib/mptcpgod/policy --verbose \"x\""} CRASHES
# HELP mptcpgod_plugin_timeouts_total Requests the policy program did not answer in time.
# TYPE mptcpgod_plugin_timeouts_total counter
mptcpgod_plugin_timeouts_total{command="/usr/lib/mptcpgod/policy --verbose \"x\""} TIMEOUTS
# HELP mptcpgod_engine_up 1.
# TYPE mptcpgod_engine_up gauge
mptcpgod_engine_up 1
`))
	}
	s := newTopState(time.Second)
	for i, m := range [][]byte{metrics(1, 0, 0), metrics(0, 1, 0), metrics(1, 1, 3)} {
		ps, err := parsePlugins(m)
		if err != nil {
			t.Fatal(err)
		}
		s.begin(topT0.Add(time.Duration(i)*time.Second), 0)
		s.setPlugins(ps)
	}
	var texts []string
	for _, e := range s.events {
		texts = append(texts, string(e.Kind)+": "+e.Text)
	}
	const cmdline = `/usr/lib/mptcpgod/policy --verbose "x"`
	want := []string{
		"plugin: policy program " + cmdline + ": down, crashed (1 times so far)",
		"plugin: policy program " + cmdline + ": 3 requests unanswered in time, up",
	}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("plugin events (-want +got):\n%s", diff)
	}
	if _, err := parsePlugins([]byte("mptcpgod_plugin_up{command=\"x\" 1\n")); err == nil {
		t.Error("a broken exposition parsed")
	}
	if !runsPrograms(ctlapi.Policy{Rules: []ctlapi.PolicyRule{{Chain: []ctlapi.PolicySpec{{Name: "exec"}}}}}) ||
		runsPrograms(ctlapi.Policy{Chain: []ctlapi.PolicySpec{{Name: "fullmesh"}}}) {
		t.Error("runsPrograms does not look at the chain and the rules")
	}
}

// TestPathCounts: the path states come in pmstate's order, deferred
// among them, then the ones a newer daemon adds, by name.
func TestPathCounts(t *testing.T) {
	t.Parallel()
	got := pathCounts(map[pmstate.PathState]int{"unheard": 1, pmstate.PathBackoff: 2, pmstate.PathDeferred: 3, pmstate.PathEstablished: 4,
		pmstate.PathKept: 0, "also-unheard": 5})
	want := []pathCount{{pmstate.PathEstablished, 4}, {pmstate.PathDeferred, 3}, {pmstate.PathBackoff, 2}, {"also-unheard", 5}, {"unheard", 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestTopFormats: rates, ages and sparklines as the screen shows them.
func TestTopFormats(t *testing.T) {
	t.Parallel()
	bits := map[float64]string{0: "0 b/s", 1: "8.00 b/s", 1250: "10.0 kb/s", 1_250_000: "10.0 Mb/s", 2_450_000: "19.6 Mb/s",
		125_000_000: "1.00 Gb/s", 124_999: "1.00 Mb/s", 12_400: "99.2 kb/s", 12_500: "100 kb/s"}
	for in, want := range bits {
		if got := formatBits(in); got != want {
			t.Errorf("formatBits(%v) = %q, want %q", in, got, want)
		}
	}
	ages := []struct {
		d     time.Duration
		known bool
		want  string
	}{
		{1500 * time.Millisecond, true, "1s"}, {61 * time.Second, true, "1m01s"}, {3*time.Hour + 5*time.Minute, false, ">3h05m"},
		{50 * time.Hour, true, "2d02h"},
	}
	for _, tt := range ages {
		if got := formatAge(tt.d, tt.known); got != tt.want {
			t.Errorf("formatAge(%v, %v) = %q, want %q", tt.d, tt.known, got, tt.want)
		}
	}
	sparks := []struct {
		in    []float64
		width int
		want  string
	}{
		{[]float64{0, 1, 2, 4, 8}, 5, " ▁▂▄█"},
		{[]float64{8, 8}, 4, "  ██"},
		{[]float64{0, 0, 0}, 3, "   "},
		{[]float64{1, 1, 8, 8, 0, 0}, 3, "▁█ "},
		{[]float64{8, 1, 1, 8, 8}, 2, "▇█"},
		{nil, 0, ""},
	}
	for _, tt := range sparks {
		if got := sparkline(tt.in, tt.width); got != tt.want {
			t.Errorf("sparkline(%v, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}

// TestTopPlain: --once and --json print a frame as tables and as JSON
// whose fields are the documented ones.
func TestTopPlain(t *testing.T) {
	t.Parallel()
	s := newTopState(time.Second)
	r := fakeReading{links: testLinks(0, 0, 0, 0, true), byAddr: testByAddr,
		conns:    []sockdiag.Connection{testConn(0xa, "203.0.113.2:443", 0, 0)},
		subflows: []sockdiag.Subflow{testSubflow(0xa, 1, "192.0.2.1:40000", 0, 0, 0)}}
	r.read(s, topT0, 0)
	r.links = testLinks(1_250_000, 0, 0, 0, false)
	r.conns = []sockdiag.Connection{testConn(0xa, "203.0.113.2:443", 1_000_000, 2000)}
	r.read(s, topT0.Add(time.Second), 0)
	f := arrange(s.snapshot(), topSettings{Sort: sortBytes})
	var b bytes.Buffer
	if err := writeTopPlain(&b, frameOut(f, "cli", 0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  netns cli  kernel view\n",
		"eth0  up     -     -      10.0 Mb/s  0 b/s  1\n",
		"1 of 1 connections, sort bytes\n",
		"0000000a  203.0.113.2:443  192.0.2.1:40000  >1s  1.0 MB  2.0 kB  8.00 Mb/s  16.0 kb/s  2         eth0\n",
		"link  eth1 down\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plain output lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := writeJSONLine(&b, frameOut(f, "cli", 0, f.Events[0].Seq)); err != nil {
		t.Fatal(err)
	}
	if err := decodeInto[topFrameOut](b.String()); err != nil {
		t.Fatal(err)
	}
	var fo topFrameOut
	if err := json.Unmarshal(b.Bytes(), &fo); err != nil {
		t.Fatal(err)
	}
	if len(fo.Events) != 0 || len(fo.Connections) != 1 || *fo.Connections[0].InBytesPerSecond != 1_000_000 ||
		fo.Links[0].InBytesPerSecond != 1_250_000 || fo.Connections[0].Links[0] != "eth0" {
		t.Errorf("JSON frame %s", b.String())
	}
	var keys map[string]any
	if err := json.Unmarshal(b.Bytes(), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"time", "interval_seconds", "netns", "daemon", "links", "total_connections", "sort", "reverse",
		"filter", "connections", "events"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON frame lacks %q", k)
		}
	}
	if got := len(frameOut(f, "", 0, 0).Connections); got != 1 {
		t.Errorf("%d connections", got)
	}
}

// fakeKernel is a topKernel answering a reading.
type fakeKernel struct{ r fakeReading }

func (k *fakeKernel) Links() ([]topKernelLink, map[netip.Addr]int32, error) {
	return k.r.links, k.r.byAddr, nil
}

func (k *fakeKernel) Connections(fn func(*sockdiag.Connection) error) error {
	for i := range k.r.conns {
		if err := fn(&k.r.conns[i]); err != nil {
			return err
		}
	}
	return nil
}

func (k *fakeKernel) Subflows(fn func(*sockdiag.Subflow) error) error {
	for i := range k.r.subflows {
		if err := fn(&k.r.subflows[i]); err != nil {
			return err
		}
	}
	return nil
}

// TestTopSamplerDaemon reads a fake daemon through its control socket: its
// status and usage decorate the links, the opened connection gets its
// paths, and the decisions of its event stream become events.
func TestTopSamplerDaemon(t *testing.T) {
	t.Parallel()
	sock, fd := serveFake(t, "")
	k := &fakeKernel{fakeReading{
		links: []topKernelLink{{Name: "eth0", Index: 2, Up: true}, {Name: "wwan0", Index: 4, Up: true}},
		conns: []sockdiag.Connection{testConn(0x3f97be70, "192.0.2.2:8080", 0, 0)},
	}}
	ts := newTopSampler(k, ctlDaemon{&ctlapi.Client{Socket: sock}}, time.Second)
	set := topSettings{Open: 0x3f97be70}
	f := ts.sample(t.Context(), set.Open)
	if f.Daemon.Status == nil || f.Daemon.Status.Version != "v1.2.3" {
		t.Fatalf("daemon %+v; want the fake's status", f.Daemon)
	}
	if got := topLinkStateText(f.Links[1]) + " " + linkKind(f.Links[1]) + " " + linkQuota(f.Links[1]); got != "up, usable, metered cellular 15% of 10 GB" {
		t.Errorf("wwan0: %q", got)
	}
	if d := f.Detail; d == nil || d.Paths == nil || len(d.Paths.Paths) != len(testPaths().Conns[0].Paths) {
		t.Errorf("detail %+v; want the fake's paths", d)
	}
	if got := ts.sample(t.Context(), 0xbad).Detail.PathsErr; got != "the daemon does not run this connection" {
		t.Errorf("unknown connection: %q", got)
	}
	enginetest.Poll(t, "event stream subscribed", func() string {
		if fd.feed.Subscribers() == 0 {
			return "no subscriber"
		}
		return ""
	})
	fd.feed.Publish(pmstate.Decision{Time: time.Now(), Kind: pmstate.DecisionAction, Op: pmstate.OpSetSubflowBackup, Token: 0x3f97be70,
		Local: netip.MustParseAddrPort("203.0.113.1:40001"), Remote: netip.MustParseAddrPort("192.0.2.2:8080")})
	enginetest.Poll(t, "failover event", func() string {
		f = ts.sample(t.Context(), set.Open)
		for _, e := range f.Events {
			if e.Kind == topEventFailover && e.Token == 0x3f97be70 {
				return ""
			}
		}
		return fmt.Sprintf("events %+v", f.Events)
	})
	if len(f.Detail.Decisions) != 1 {
		t.Errorf("decisions of the opened connection: %+v", f.Detail.Decisions)
	}
}

// TestTopSamplerNoDaemon: without a daemon top shows the kernel's view and
// says why.
func TestTopSamplerNoDaemon(t *testing.T) {
	t.Parallel()
	k := &fakeKernel{fakeReading{links: testLinks(0, 0, 0, 0, true)}}
	ts := newTopSampler(k, ctlDaemon{&ctlapi.Client{Socket: filepath.Join(t.TempDir(), "none.sock")}}, time.Second)
	f := ts.sample(t.Context(), 0)
	if f.Daemon.Status != nil || f.Daemon.Error != "not running" || daemonTitle(f.Daemon) != "kernel view (mptcpgod: not running)" {
		t.Errorf("daemon %+v", f.Daemon)
	}
	if f := newTopSampler(k, nil, time.Second).sample(t.Context(), 0); f.Daemon.Asked || daemonTitle(f.Daemon) != "kernel view" {
		t.Errorf("no daemon asked: %+v", f.Daemon)
	}
}

// TestTopUsage: bad options are refused before anything is read.
func TestTopUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"top", "--interval", "10ms"}, "--interval 10ms: expected 100ms to 1h0m0s"},
		{[]string{"top", "--sort", "speed"}, `--sort "speed": expected rate, bytes, age, subflows, peer or token`},
		{[]string{"top", "--filter", "port:x"}, `--filter "port:x": port "x": expected a number from 1 to 65535`},
		{[]string{"top", "--count", "-1"}, "--count -1: expected 0 or more"},
		{[]string{"top", "--limit", "-2"}, "--limit -2: expected 0 or more"},
		{[]string{"top", "now"}, `unexpected word "now": top takes no arguments`},
	}
	for _, tt := range tests {
		r := mptcpctl(t, tt.args...)
		if want := "mptcpctl: top: " + tt.err + "\n"; r.code != exitUsage || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tt.args, r.code, r.stderr, want)
		}
	}
}
