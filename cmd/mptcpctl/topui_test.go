package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// bigState returns a state that read n connections twice, a second apart:
// connection i (token i+1) received i*1000 bytes in that second, over eth0
// or, for odd i, eth1.
func bigState(n int) *topState {
	s := newTopState(time.Second)
	r := fakeReading{links: testLinks(0, 0, 0, 0, true), byAddr: testByAddr}
	for i := range n {
		c := testConn(uint32(i+1), fmt.Sprintf("203.0.113.%d:%d", i%250+1, 1000+i), 0, 0)
		r.conns = append(r.conns, c)
		local := "192.0.2.1:1"
		if i%2 == 1 {
			local = "198.51.100.1:1"
		}
		r.subflows = append(r.subflows, testSubflow(uint32(i+1), uint64(i+1), local, 0, 0, 0))
	}
	r.read(s, topT0, 0)
	for i := range r.conns {
		r.conns[i].Info.BytesReceived = uint64(i) * 1000
	}
	r.read(s, topT0.Add(time.Second), 0)
	return s
}

// settingsRecorder records what the screen hands the sampler.
type settingsRecorder struct{ ch chan topSettings }

func (r settingsRecorder) send(s topSettings) { r.ch <- s }

// next returns the next settings the screen sent, failing after a
// generous wait.
func (r settingsRecorder) next(t *testing.T) topSettings {
	t.Helper()
	select {
	case s := <-r.ch:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("the screen sent no settings")
	}
	return topSettings{}
}

// waitScreen waits for the program's output to hold every string of want.
func waitScreen(t *testing.T, tm *teatest.TestModel, want ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(30*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

// TestTopScreenKeys drives the screen through bubbletea with 10,000
// connections: the rows it shows, the keys that select, open, sort and
// filter, and what it hands the sampler.
func TestTopScreenKeys(t *testing.T) {
	t.Parallel()
	s := bigState(10_000)
	rec := settingsRecorder{make(chan topSettings, 16)}
	var out bytes.Buffer
	m := newTopModel(topSettings{}, rec.send, lipgloss.NewRenderer(&out), "cli")
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(140, 30))
	tm.Send(topFrameMsg{arrange(s.snapshot(), topSettings{})})
	// The fastest connection first: token 10000 received 9,999,000 B/s.
	waitScreen(t, tm, "CONNECTIONS  10000 of 10000 · sort rate", "00002710  203.0.113.250:10999", "80.0 Mb/s")

	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	if got := rec.next(t); got.Open != 9999 {
		t.Fatalf("enter on the second row opened %x, want 270f", got.Open)
	}
	// The sampler answers with the opened connection.
	s.daemon.status = &ctlapi.Status{Mode: pmstate.ModeUserspace}
	s.open = 9999
	tm.Send(topFrameMsg{arrange(s.snapshot(), topSettings{Open: 9999})})
	waitScreen(t, tm, "CONNECTION 0000270f  192.0.2.1:40000 → 203.0.113.249:10998", "esc back")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	if got := rec.next(t); got.Open != 0 {
		t.Fatalf("esc left %x open", got.Open)
	}

	tm.Type("s")
	if got := rec.next(t); got.Sort != sortBytes {
		t.Errorf("s: sort %s, want bytes", got.Sort)
	}
	tm.Type("r")
	if got := rec.next(t); !got.Reverse || got.Sort != sortBytes {
		t.Errorf("r: %+v, want bytes reversed", got)
	}
	tm.Type("/")
	tm.Type("port:99999")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitScreen(t, tm, `port "99999": expected a number from 1 to 65535`)
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlU})
	tm.Type("link:eth1")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	got := rec.next(t)
	if got.Filter.String() != "link:eth1" || !got.Reverse {
		t.Errorf("filter: %+v, want link:eth1, still reversed", got)
	}
	tm.Send(topFrameMsg{arrange(s.snapshot(), got)})
	waitScreen(t, tm, "CONNECTIONS  5000 of 10000 · sort bytes reversed · filter link:eth1")
	tm.Type("q")
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(30*time.Second)).(topModel)
	if fm.mode != modeList || fm.set.Filter.String() != "link:eth1" {
		t.Errorf("final model: mode %v, filter %q", fm.mode, fm.set.Filter)
	}
}

// TestTopScreenRows: the screen draws only the rows that fit, whatever the
// number of connections; the selection stays on the first row until the
// user moves it, then keeps to its connection as the rows move.
func TestTopScreenRows(t *testing.T) {
	t.Parallel()
	s := bigState(10_000)
	m := newTopModel(topSettings{}, func(topSettings) {}, lipgloss.NewRenderer(&bytes.Buffer{}), "")
	next, _ := m.Update(tea.WindowSizeMsg{Width: 120, Height: 24})
	// The first frame of a run has no rates yet: sorted by rate, the rows
	// go by token. The next puts the fastest first, under the cursor.
	first := arrange(s.snapshot(), topSettings{})
	for i := range first.Conns {
		first.Conns[i].RateIn = 0
	}
	first = arrange(first, topSettings{})
	next, _ = next.Update(topFrameMsg{first})
	next, _ = next.Update(topFrameMsg{arrange(s.snapshot(), topSettings{})})
	if m := next.(topModel); m.cursor != 0 || m.sel != 10_000 {
		t.Errorf("before a key: cursor %d on %x, want 0 on the fastest, 2710", m.cursor, m.sel)
	}
	for range 30 {
		next, _ = next.Update(tea.KeyMsg{Type: tea.KeyDown})
	}
	m = next.(topModel)
	view := m.View()
	if n := strings.Count(view, "\n") + 1; n > 24 {
		t.Errorf("%d lines on a 24-line screen:\n%s", n, view)
	}
	sel := m.frame.Conns[30].Token
	if m.sel != sel || !strings.Contains(view, formatToken(sel)) || strings.Contains(view, formatToken(m.frame.Conns[0].Token)) {
		t.Errorf("selected %x, want %x scrolled into view:\n%s", m.sel, sel, view)
	}
	// The selected connection is now the slowest of all: it keeps the
	// selection at its new place, the last row.
	c := s.conns[sel]
	c.rateIn = 0
	next, _ = m.Update(topFrameMsg{arrange(s.snapshot(), topSettings{})})
	m = next.(topModel)
	if m.cursor != 9999 || m.sel != sel || !strings.Contains(m.View(), formatToken(sel)) {
		t.Errorf("cursor %d on %x after its connection slowed down; want 9999 on %x", m.cursor, m.sel, sel)
	}
}

// TestTopScreenDetail: the opened connection shows its subflows from the
// kernel and, from the daemon, its paths, why a wanted one is missing (a
// deferred one: until when, or after how many bytes), and its decisions;
// the daemon's summary counts the paths by state, deferred among them,
// and names the kernel's mapping errors.
func TestTopScreenDetail(t *testing.T) {
	t.Parallel()
	s := newTopState(time.Second)
	r := fakeReading{links: testLinks(0, 0, 0, 0, true), byAddr: testByAddr,
		conns: []sockdiag.Connection{testConn(0xa, "203.0.113.2:443", 0, 0)},
		subflows: []sockdiag.Subflow{testSubflow(0xa, 1, "192.0.2.1:40000", 0, 0, 0),
			testSubflow(0xa, 2, "198.51.100.1:40001", 0, 0, sockdiag.SubflowJoinLocal|sockdiag.SubflowBackupRemote)}}
	r.read(s, topT0, 0xa)
	r.subflows[0].TCP.BytesReceived = 125_000
	r.read(s, topT0.Add(time.Second), 0xa)
	retry := topT0.Add(time.Minute)
	due := topT0.Add(50 * time.Millisecond)
	s.daemon.asked, s.daemon.status = true, &ctlapi.Status{Version: "v1.0.0", Mode: pmstate.ModeUserspace,
		Policy: ctlapi.Policy{Name: "fullmesh"}, Ready: true, Connections: 1,
		Paths:      map[pmstate.PathState]int{pmstate.PathEstablished: 1, pmstate.PathDeferred: 1, pmstate.PathBackoff: 1, pmstate.PathRefused: 1},
		Mitigation: ctlapi.Mitigation{MappingErrors: map[string]uint64{"DSSNotMatching": 2, "MPFailRx": 0}}}
	s.daemon.conn = &pmstate.Conn{Token: 0xa, Side: pmstate.SideClient, PathManager: pmstate.PathManagerUserspace, BytesReceived: 1500, Paths: []pmstate.Path{
		{Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddrPort("203.0.113.2:443"), Desired: true, State: pmstate.PathEstablished},
		{Local: netip.MustParseAddr("203.0.113.1"), Remote: netip.MustParseAddrPort("203.0.113.2:443"), Dev: "eth2", Desired: true,
			State: pmstate.PathBackoff, Failures: 2, BackoffUntil: retry, LastError: "Network is unreachable"},
		{Local: netip.MustParseAddr("192.0.2.9"), Remote: netip.MustParseAddrPort("203.0.113.2:443"), Dev: "eth3", Desired: true,
			State: pmstate.PathDeferred, DeferredUntil: due, DeferredBytes: 262144},
		{Local: netip.MustParseAddr("127.0.0.1"), Remote: netip.MustParseAddrPort("203.0.113.2:443"), Desired: true,
			State: pmstate.PathRefused, Reason: "local address not usable: excluded by kind loopback"},
	}, Announces: []pmstate.Announce{
		{Addr: netip.MustParseAddr("198.51.100.1"), ID: 5, Desired: true, Announced: true, State: pmstate.AnnounceAnnounced},
		{Addr: netip.MustParseAddr("127.0.0.1"), Desired: true, State: pmstate.AnnounceRefused, Reason: "not a usable address of this host"},
	}, PeerAddrs: []pmstate.PeerAddr{
		{Addr: netip.MustParseAddrPort("203.0.113.2:443"), Source: pmstate.SourceInitial, State: pmstate.PeerJoined},
		{ID: 3, Addr: netip.MustParseAddrPort("10.0.0.7:443"), Source: pmstate.SourceAnnounced, State: pmstate.PeerRefused,
			Reason: "more private than the peer's initial address"},
		{ID: 4, Addr: netip.MustParseAddrPort("203.0.113.8:443"), Source: pmstate.SourceAnnounced, State: pmstate.PeerGivenUp,
			Tries: 2, Reason: "connection refused"},
	}}
	s.addDecision(ctlapi.Event{Decision: pmstate.Decision{Time: topT0, Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow,
		Token: 0xa, Local: netip.MustParseAddrPort("198.51.100.1:0"), Remote: netip.MustParseAddrPort("203.0.113.2:443")}})
	s.addDecision(ctlapi.Event{Decision: pmstate.Decision{Time: topT0, Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow, Token: 0xb}})
	m := newTopModel(topSettings{Open: 0xa}, func(topSettings) {}, lipgloss.NewRenderer(&bytes.Buffer{}), "")
	m.mode = modeDetail
	next, _ := m.Update(tea.WindowSizeMsg{Width: 160, Height: 40})
	next, _ = next.Update(topFrameMsg{arrange(s.snapshot(), topSettings{Open: 0xa})})
	view := next.View()
	for _, want := range []string{
		"mptcpctl top · mptcpgod v1.0.0, userspace mode, policy fullmesh · ",
		"CONNECTION 0000000a  192.0.2.1:40000 → 203.0.113.2:443  estab",
		"192.0.2.1:40000 → 203.0.113.2:443     eth0  0/0  -       estab  1.50ms    10        2   1.00 Mb/s       0 b/s",
		"198.51.100.1:40001 → 203.0.113.2:443  eth1  0/0  peer    estab",
		"PATHS (mptcpgod: client side, path manager userspace)",
		"connections tracked 1 · paths 1 established, 1 deferred, 1 backoff, 1 refused · commands 0 in flight, 0 queued · mapping errors DSSNotMatching 2",
		"203.0.113.1 → 203.0.113.2:443  eth2  yes     backoff      2 failures; retry at " + formatClock(retry) + ": Network is unreachable",
		"192.0.2.9 → 203.0.113.2:443    eth3  yes     deferred     until " + formatClock(due) + " or 262144 bytes (moved 1500)",
		"127.0.0.1 → 203.0.113.2:443    -     yes     refused      local address not usable: excluded by kind loopback",
		"announce 198.51.100.1 id 5     -     yes     announced    -",
		"announce 127.0.0.1             -     yes     refused      not a usable address of this host",
		"peer 10.0.0.7:443 id 3         -     -       refused      more private than the peer's initial address",
		"peer 203.0.113.8:443 id 4      -     -       given_up     2 failures: connection refused",
		"DECISIONS (mptcpgod)",
		formatClock(topT0) + " action op=create_subflow token=0000000a local=198.51.100.1 remote=203.0.113.2:443 ok",
	} {
		if !strings.Contains(view, want) {
			t.Errorf("detail lacks %q:\n%s", want, view)
		}
	}
	if strings.Contains(view, "token=0000000b") {
		t.Errorf("detail shows another connection's decision:\n%s", view)
	}
	if strings.Contains(view, "peer 203.0.113.2:443") {
		t.Errorf("detail lists the peer's initial address among those it announced:\n%s", view)
	}
}
