package main

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// top's model. The sampler's goroutine owns a topState: it feeds it the
// kernel's and the daemon's readings, one refresh at a time, and asks it
// for a topFrame, an immutable picture that the screen (or the plain
// output) draws without touching the state. A frame holds every
// connection the filter keeps, already sorted, as plain values: the
// screen formats only the rows it shows.

// topHistory is how much of each link's throughput a frame keeps: the last
// minute.
const topHistory = time.Minute

// Bounds of the event lists.
const (
	// topEventsKept is how many notable events (the strip) a state keeps.
	topEventsKept = 256
	// topDecisionsKept is how many of the daemon's decisions a state keeps,
	// for the decisions of an opened connection.
	topDecisionsKept = 1024
)

// maxRowLinks is how many distinct links a connection row lists; a
// connection has at most 8 subflows by the kernel's limits.
const maxRowLinks = 8

// topConn is what a state keeps of a connection between two readings.
type topConn struct {
	token         uint32
	cookie        uint64
	local, remote netip.AddrPort
	state         uint8
	uid           uint32
	fallback      bool
	subflows      int
	firstSeen     time.Time
	// ageKnown: the connection appeared after the first reading, so
	// firstSeen is its age; otherwise it is at least that old.
	ageKnown bool
	// in and out are the bytes received and acknowledged (MPTCP level)
	// at the last reading; a fresh connection has no rate yet.
	in, out         uint64
	rateIn, rateOut float64
	fresh           bool
	links           [maxRowLinks]int32
	nlinks          int
	gen             uint64
}

// topSubflowCounters are a subflow's byte counters at the last reading.
type topSubflowCounters struct {
	in, out uint64
	at      time.Time
	gen     uint64
}

// topLinkState is what a state keeps of a link.
type topLinkState struct {
	name            string
	index           int32
	up, loopback    bool
	rx, tx          uint64
	rateIn, rateOut float64
	// histIn and histOut are rings of the last minute's rates; histN the
	// number of samples in them, histNext the next slot.
	histIn, histOut []float64
	histN, histNext int
	subflows        int
	gen             uint64
}

// topKernelLink is a link as the kernel reports it.
type topKernelLink struct {
	Name     string
	Index    int32
	Up       bool
	Loopback bool
	RxBytes  uint64
	TxBytes  uint64
}

// topState is top's model: rates, histories and events across readings.
type topState struct {
	interval time.Duration
	histLen  int

	gen   uint64
	now   time.Time // when the reading in progress started
	first bool      // the reading in progress is the first
	// linksAt, connsAt and subflowsAt are when the links were read and the
	// walks of the connections and the subflows started, this reading;
	// connsPrev the previous walk's start. Rates divide by these times,
	// which on a busy machine differ from one part to the next.
	linksAt, connsAt, connsPrev, subflowsAt time.Time

	conns    map[uint32]*topConn
	subflows map[uint64]*topSubflowCounters
	links    map[int32]*topLinkState
	byAddr   map[netip.Addr]int32

	// open is the token of the opened connection; detail its subflows of
	// the reading in progress.
	open   uint32
	detail []topSubflowRow

	daemon    topDaemon
	quota     map[string]quotaLevel
	plugins   map[string]topPlugin
	eventSeq  uint64
	events    []topEvent
	decisions []ctlapi.Event
}

// newTopState returns a state for readings every interval.
func newTopState(interval time.Duration) *topState {
	return &topState{
		interval: interval,
		histLen:  historyCells(interval),
		first:    true,
		conns:    map[uint32]*topConn{},
		subflows: map[uint64]*topSubflowCounters{},
		links:    map[int32]*topLinkState{},
		byAddr:   map[netip.Addr]int32{},
		quota:    map[string]quotaLevel{},
		plugins:  map[string]topPlugin{},
	}
}

// historyCells is the number of readings every interval in the last
// minute, at least 2.
func historyCells(interval time.Duration) int {
	return max(2, int((topHistory+interval-1)/interval))
}

// begin starts a reading taken at now, with the connection open opened.
func (s *topState) begin(now time.Time, open uint32) {
	s.gen++
	s.now = now
	s.open = open
	s.detail = s.detail[:0]
}

// since is the time in seconds from prev to now, 0 when prev is zero.
func since(prev, now time.Time) float64 {
	if prev.IsZero() {
		return 0
	}
	return now.Sub(prev).Seconds()
}

// rate is the rate of a counter that went from prev to cur over dt
// seconds; a counter that went back (reset) gives 0.
func rate(prev, cur uint64, dt float64) float64 {
	if dt <= 0 || cur < prev {
		return 0
	}
	return float64(cur-prev) / dt
}

// setLinks records the kernel's links, read at at, and the addresses that
// say which link a subflow from them is on.
func (s *topState) setLinks(at time.Time, links []topKernelLink, byAddr map[netip.Addr]int32) {
	dt := since(s.linksAt, at)
	s.linksAt = at
	s.byAddr = byAddr
	for _, kl := range links {
		l, ok := s.links[kl.Index]
		if ok && l.name != kl.Name {
			ok = false // the index was reused
		}
		if !ok {
			l = &topLinkState{name: kl.Name, index: kl.Index, up: kl.Up, rx: kl.RxBytes, tx: kl.TxBytes,
				histIn: make([]float64, s.histLen), histOut: make([]float64, s.histLen)}
			s.links[kl.Index] = l
			if !s.first {
				s.linkEvent(l, true)
			}
		} else {
			if l.up != kl.Up {
				l.up = kl.Up
				s.linkEvent(l, false)
			}
			l.rateIn, l.rateOut = rate(l.rx, kl.RxBytes, dt), rate(l.tx, kl.TxBytes, dt)
			l.rx, l.tx = kl.RxBytes, kl.TxBytes
			l.histIn[l.histNext], l.histOut[l.histNext] = l.rateIn, l.rateOut
			l.histNext = (l.histNext + 1) % s.histLen
			l.histN = min(l.histN+1, s.histLen)
		}
		l.loopback = kl.Loopback
		l.subflows = 0
		l.gen = s.gen
	}
	for idx, l := range s.links {
		if l.gen != s.gen {
			delete(s.links, idx)
			s.addEvent(topEvent{Time: s.now, Kind: topEventLink, Text: l.name + " removed"})
		}
	}
}

// linkEvent records a link that appeared or changed state.
func (s *topState) linkEvent(l *topLinkState, added bool) {
	what := "down"
	if l.up {
		what = "up"
	}
	if added {
		what = "added, " + what
	}
	s.addEvent(topEvent{Time: s.now, Kind: topEventLink, Text: l.name + " " + what})
}

// beginConns starts the walk of the connections, at at.
func (s *topState) beginConns(at time.Time) {
	s.connsPrev, s.connsAt = s.connsAt, at
}

// beginSubflows starts the walk of the subflows, at at.
func (s *topState) beginSubflows(at time.Time) {
	s.subflowsAt = at
}

// addConn records a connection of the kernel's walk.
func (s *topState) addConn(c *sockdiag.Connection) {
	if c.Token == 0 {
		return // a listener
	}
	dt := since(s.connsPrev, s.connsAt)
	tc, ok := s.conns[c.Token]
	if !ok || tc.cookie != c.Cookie {
		tc = &topConn{token: c.Token, cookie: c.Cookie, firstSeen: s.now, ageKnown: !s.first, fresh: true}
		s.conns[c.Token] = tc
	} else {
		tc.rateIn, tc.rateOut = rate(tc.in, c.Info.BytesReceived, dt), rate(tc.out, c.Info.BytesAcked, dt)
		tc.fresh = false
	}
	tc.local, tc.remote = c.Local, c.Remote
	tc.state, tc.uid = c.State, c.UID
	tc.fallback = c.Info.Flags&sockdiag.InfoFallback != 0
	tc.subflows = c.Info.Subflows()
	tc.in, tc.out = c.Info.BytesReceived, c.Info.BytesAcked
	tc.nlinks = 0
	tc.gen = s.gen
}

// subflowLink is the link a subflow runs over: the interface it is bound
// to, else the one holding its local address.
func (s *topState) subflowLink(sf *sockdiag.Subflow) int32 {
	if sf.IfIndex != 0 {
		return int32(sf.IfIndex)
	}
	return s.byAddr[sf.Local.Addr().Unmap()]
}

// liveSubflow reports whether a subflow carries data or is joining. A
// closing one stays in the kernel's walk until its FIN is through: on a
// dead link, for minutes after the daemon or the peer closed it.
func liveSubflow(sf *sockdiag.Subflow) bool {
	switch sf.State {
	case sockdiag.StateEstablished, sockdiag.StateSynSent, sockdiag.StateSynRecv:
		return true
	}
	return false
}

// addSubflow records a subflow of the kernel's walk; the walk of the
// connections comes first. A link's subflows and a connection's links
// count the live subflows; the opened connection lists them all.
func (s *topState) addSubflow(sf *sockdiag.Subflow) {
	link := s.subflowLink(sf)
	live := liveSubflow(sf)
	if l := s.links[link]; l != nil && live {
		l.subflows++
	}
	if tc := s.conns[sf.Token]; tc != nil && tc.gen == s.gen && live && link != 0 &&
		!slices.Contains(tc.links[:tc.nlinks], link) && tc.nlinks < maxRowLinks {
		tc.links[tc.nlinks] = link
		tc.nlinks++
	}
	s.peekSubflow(sf, true)
	sc, ok := s.subflows[sf.Cookie]
	if !ok {
		sc = &topSubflowCounters{}
		s.subflows[sf.Cookie] = sc
	}
	sc.in, sc.out, sc.at, sc.gen = sf.TCP.BytesReceived, sf.TCP.BytesAcked, s.subflowsAt, s.gen
}

// peekSubflow keeps the subflow when it is one of the opened
// connection's, with its rate since the last reading when rated: between
// two readings the time since the last one may be too short for a rate.
func (s *topState) peekSubflow(sf *sockdiag.Subflow, rated bool) {
	if sf.Token != s.open || s.open == 0 {
		return
	}
	row := subflowRow(sf, s.subflowLink(sf))
	if sc, ok := s.subflows[sf.Cookie]; ok && rated {
		dt := since(sc.at, s.subflowsAt)
		row.RateIn, row.RateOut = rate(sc.in, sf.TCP.BytesReceived, dt), rate(sc.out, sf.TCP.BytesAcked, dt)
		row.Rated = true
	}
	s.detail = append(s.detail, row)
}

// subflowRow describes a subflow for the opened connection.
func subflowRow(sf *sockdiag.Subflow, link int32) topSubflowRow {
	return topSubflowRow{
		Local: sf.Local, Remote: sf.Remote, Link: link, LocalID: sf.LocalID, RemoteID: sf.RemoteID,
		Backup: sf.Flags.Backup(), Joined: sf.Flags&joinFlags != 0, State: sf.State,
		RTT: sf.TCP.RTT, Cwnd: sf.TCP.SndCwnd, Retransmits: sf.TCP.TotalRetrans,
		In: sf.TCP.BytesReceived, Out: sf.TCP.BytesAcked, Flags: sf.Flags,
	}
}

// end finishes a reading: connections and subflows the walks did not see
// are gone; the links of each connection go by index.
func (s *topState) end() {
	for tok, tc := range s.conns {
		if tc.gen != s.gen {
			delete(s.conns, tok)
			continue
		}
		slices.Sort(tc.links[:tc.nlinks])
	}
	for ck, sc := range s.subflows {
		if sc.gen != s.gen {
			delete(s.subflows, ck)
		}
	}
	s.sortDetail()
	s.first = false
}

// sortDetail orders the opened connection's subflows: the initial one
// first, then by local address id and addresses.
func (s *topState) sortDetail() {
	slices.SortFunc(s.detail, func(x, y topSubflowRow) int {
		if x.Joined != y.Joined {
			if x.Joined {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(x.LocalID, y.LocalID), x.Local.Compare(y.Local), x.Remote.Compare(y.Remote))
	})
}

// addEvent appends a notable event, dropping the oldest past the bound.
func (s *topState) addEvent(ev topEvent) {
	s.eventSeq++
	ev.Seq = s.eventSeq
	if len(s.events) == topEventsKept {
		copy(s.events, s.events[1:])
		s.events = s.events[:topEventsKept-1]
	}
	s.events = append(s.events, ev)
}

// addDecision keeps one of the daemon's decisions and, when it is notable,
// an event for it.
func (s *topState) addDecision(ev ctlapi.Event) {
	if len(s.decisions) == topDecisionsKept {
		copy(s.decisions, s.decisions[1:])
		s.decisions = s.decisions[:topDecisionsKept-1]
	}
	s.decisions = append(s.decisions, ev)
	if e, ok := decisionEvent(ev); ok {
		s.addEvent(e)
	}
}

// topSettings are what the user chose to see: how connections are sorted
// and filtered, and which one is open.
type topSettings struct {
	Sort    topSortKey
	Reverse bool
	Filter  topFilter
	Open    uint32
}

// snapshot returns the picture of the state: every connection, in no
// order (arrange sorts and filters them), and the opened connection.
func (s *topState) snapshot() *topFrame {
	f := &topFrame{
		Time:      s.now,
		Interval:  s.interval,
		Total:     len(s.conns),
		Daemon:    s.daemonInfo(),
		LinkNames: make(map[int32]string, len(s.links)),
		Conns:     make([]topConnRow, 0, len(s.conns)),
	}
	for _, l := range s.links {
		f.LinkNames[l.index] = l.name
	}
	f.Links = s.linkRows()
	for _, tc := range s.conns {
		f.Conns = append(f.Conns, s.connRow(tc))
	}
	if s.open != 0 {
		f.Detail = s.detailOf(s.open)
	}
	f.Events = slices.Clone(s.events)
	return f
}

// connRow is the frame's row of a connection.
func (s *topState) connRow(tc *topConn) topConnRow {
	return topConnRow{
		Token: tc.token, Local: tc.local, Remote: tc.remote, State: tc.state, UID: tc.uid, Fallback: tc.fallback,
		Subflows: tc.subflows, FirstSeen: tc.firstSeen, AgeKnown: tc.ageKnown,
		In: tc.in, Out: tc.out, RateIn: tc.rateIn, RateOut: tc.rateOut, Rated: !tc.fresh,
		Links: tc.links, NLinks: tc.nlinks,
	}
}

// linkRows are the frame's links, by index: every link but loopback, which
// shows only while subflows use it.
func (s *topState) linkRows() []topLinkRow {
	rows := make([]topLinkRow, 0, len(s.links))
	for _, l := range s.links {
		if l.loopback && l.subflows == 0 {
			continue
		}
		r := topLinkRow{
			Name: l.name, Index: l.index, Up: l.up, RxBytes: l.rx, TxBytes: l.tx,
			RateIn: l.rateIn, RateOut: l.rateOut, Subflows: l.subflows,
			HistIn: unring(l.histIn, l.histN, l.histNext), HistOut: unring(l.histOut, l.histN, l.histNext),
		}
		s.daemon.decorate(&r)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(x, y topLinkRow) int { return cmp.Compare(x.Index, y.Index) })
	return rows
}

// unring returns the n samples of ring before next, oldest first.
func unring(ring []float64, n, next int) []float64 {
	out := make([]float64, 0, n)
	for i := range n {
		out = append(out, ring[(next-n+i+len(ring))%len(ring)])
	}
	return out
}

// detailOf is the opened connection token's detail.
func (s *topState) detailOf(token uint32) *topDetail {
	d := &topDetail{Token: token, Subflows: slices.Clone(s.detail)}
	if tc := s.conns[token]; tc != nil {
		row := s.connRow(tc)
		d.Conn = &row
	}
	d.Paths, d.PathsErr = s.daemon.conn, s.daemon.connErr
	if d.Paths != nil && d.Paths.Token != token {
		d.Paths, d.PathsErr = nil, ""
	}
	for _, ev := range s.decisions {
		if ev.Token == token {
			d.Decisions = append(d.Decisions, ev)
		}
	}
	return d
}

// topFrame is a picture of the state: what one refresh shows.
type topFrame struct {
	Time     time.Time
	Interval time.Duration
	Settings topSettings
	// Total is the number of connections the kernel lists; Conns those the
	// filter keeps, sorted.
	Total     int
	Conns     []topConnRow
	Links     []topLinkRow
	LinkNames map[int32]string
	Daemon    topDaemonInfo
	Detail    *topDetail
	// Events are the last notable events, oldest first.
	Events []topEvent
	// Errors are the readings that failed this time.
	Errors []string
}

// topConnRow is a connection in a frame.
type topConnRow struct {
	Token         uint32
	Local, Remote netip.AddrPort
	State         uint8
	UID           uint32
	Fallback      bool
	Subflows      int
	FirstSeen     time.Time
	AgeKnown      bool
	// In and Out are the bytes received and acknowledged; Rated reports
	// that RateIn and RateOut (bytes per second) are known.
	In, Out         uint64
	RateIn, RateOut float64
	Rated           bool
	Links           [maxRowLinks]int32
	NLinks          int
}

// topLinkRow is a link in a frame.
type topLinkRow struct {
	Name             string
	Index            int32
	Up               bool
	RxBytes, TxBytes uint64
	// RateIn and RateOut are bytes per second; HistIn and HistOut the last
	// minute's, oldest first.
	RateIn, RateOut float64
	HistIn, HistOut []float64
	Subflows        int
	Daemon          *pmstate.Link
	Usage           *ctlapi.UsageLink
}

// topSubflowRow is a subflow of the opened connection.
type topSubflowRow struct {
	Local, Remote     netip.AddrPort
	Link              int32
	LocalID, RemoteID uint8
	Backup, Joined    bool
	State             uint8
	RTT               time.Duration
	Cwnd              uint32
	Retransmits       uint32
	In, Out           uint64
	RateIn, RateOut   float64
	Rated             bool
	Flags             sockdiag.SubflowFlags
}

// topDetail is the opened connection: the kernel's subflows and, with the
// daemon, its paths and decisions.
type topDetail struct {
	Token uint32
	// Conn is nil once the connection is gone.
	Conn      *topConnRow
	Subflows  []topSubflowRow
	Paths     *pmstate.Conn
	PathsErr  string
	Decisions []ctlapi.Event
}
