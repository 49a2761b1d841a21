package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/dustin/go-humanize"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// topModel is top's screen: a bubbletea model that draws the frames the
// sampler sends (topFrameMsg) and turns keys into settings, which it hands
// the sampler (send). It never reads the kernel or the daemon itself, and
// formats only the rows it shows.
type topModel struct {
	frame  *topFrame
	set    topSettings
	send   func(topSettings)
	styles topStyles
	netns  string

	width, height int
	mode          topMode
	input         textinput.Model
	// cursor is the selected row, sel its token, offset the first row
	// shown. Once the user moved the selection (moved), it follows its
	// connection when the rows move; until then it stays on the first
	// row, the fastest connection when sorted by rate.
	cursor, offset int
	sel            uint32
	moved          bool
	// note is the footer's message, such as a filter's error.
	note string
}

// topMode is what the keys act on.
type topMode int

const (
	modeList   topMode = iota // the connections
	modeDetail                // one connection
	modeFilter                // typing a filter
)

// topFrameMsg carries a new frame to the screen.
type topFrameMsg struct{ frame *topFrame }

// topEventRows is the height of the events strip.
const topEventRows = 5

// newTopModel returns a screen starting with set, handing later settings to
// send, with the styles of r.
func newTopModel(set topSettings, send func(topSettings), r *lipgloss.Renderer, netns string) topModel {
	in := textinput.New()
	in.Prompt = "filter: "
	in.Placeholder = "peer:203.0.113.0/24 port:443 link:eth1"
	in.CharLimit = 256
	return topModel{set: set, send: send, styles: newTopStyles(r), netns: netns, input: in, width: 80, height: 24}
}

// Init implements tea.Model.
func (m topModel) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (m topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.follow()
	case topFrameMsg:
		m.frame = msg.frame
		m.follow()
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

// key handles a key press.
func (m topModel) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if k.String() == "ctrl+c" {
		return m, tea.Quit
	}
	if m.mode != modeFilter && k.Type == tea.KeyRunes && len(k.Runes) > 1 {
		// Keys typed faster than the screen reads them come as one
		// message: each is a command of its own.
		var next tea.Model = m
		var cmds []tea.Cmd
		for _, r := range k.Runes {
			var cmd tea.Cmd
			next, cmd = next.(topModel).key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: k.Alt})
			cmds = append(cmds, cmd)
		}
		return next, tea.Sequence(cmds...)
	}
	switch m.mode {
	case modeFilter:
		return m.filterKey(k)
	case modeDetail:
		switch k.String() {
		case "q":
			return m, tea.Quit
		case "esc", "backspace", "left", "h":
			m.mode = modeList
			m.set.Open = 0
			m.send(m.set)
		}
		return m, nil
	}
	m.note = ""
	page := max(1, m.layout().conns)
	switch k.String() {
	case "q":
		return m, tea.Quit
	case "up", "k":
		m.move(-1)
	case "down", "j":
		m.move(1)
	case "pgup", "ctrl+b":
		m.move(-page)
	case "pgdown", "ctrl+f", " ":
		m.move(page)
	case "home", "g":
		m.move(-m.rows())
	case "end", "G":
		m.move(m.rows())
	case "enter", "right", "l":
		if m.sel != 0 {
			m.mode = modeDetail
			m.set.Open = m.sel
			m.send(m.set)
		}
	case "s":
		m.set.Sort = (m.set.Sort + 1) % sortKeys
		m.send(m.set)
	case "S":
		m.set.Sort = (m.set.Sort + sortKeys - 1) % sortKeys
		m.send(m.set)
	case "r":
		m.set.Reverse = !m.set.Reverse
		m.send(m.set)
	case "/":
		m.mode = modeFilter
		m.input.SetValue(m.set.Filter.String())
		m.input.CursorEnd()
		return m, m.input.Focus()
	case "esc":
		if m.set.Filter.String() != "" {
			m.set.Filter = topFilter{}
			m.send(m.set)
		}
	}
	return m, nil
}

// filterKey handles a key while the filter is typed.
func (m topModel) filterKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch k.String() {
	case "enter":
		f, err := parseFilter(m.input.Value())
		if err != nil {
			m.note = err.Error()
			return m, nil
		}
		m.note = ""
		m.mode = modeList
		m.input.Blur()
		m.set.Filter = f
		m.cursor, m.offset, m.sel, m.moved = 0, 0, 0, false
		m.send(m.set)
		return m, nil
	case "esc":
		m.note = ""
		m.mode = modeList
		m.input.Blur()
		return m, nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return m, cmd
}

// rows is the number of connections the frame shows.
func (m *topModel) rows() int {
	if m.frame == nil {
		return 0
	}
	return len(m.frame.Conns)
}

// move moves the selection by n rows.
func (m *topModel) move(n int) {
	if m.rows() == 0 {
		return
	}
	m.cursor = min(max(m.cursor+n, 0), m.rows()-1)
	m.sel = m.frame.Conns[m.cursor].Token
	m.moved = true
	m.scroll()
}

// follow keeps the selection on its connection after a new frame or a
// resize, or on the same row when the user has not moved it or the
// connection went away.
func (m *topModel) follow() {
	n := m.rows()
	if n == 0 {
		m.cursor, m.offset, m.sel = 0, 0, 0
		return
	}
	if m.sel != 0 && m.moved {
		for i := range m.frame.Conns {
			if m.frame.Conns[i].Token == m.sel {
				m.cursor = i
				m.scroll()
				return
			}
		}
	}
	m.cursor = min(m.cursor, n-1)
	m.sel = m.frame.Conns[m.cursor].Token
	m.scroll()
}

// scroll keeps the selected row on screen.
func (m *topModel) scroll() {
	shown := max(1, m.layout().conns)
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+shown {
		m.offset = m.cursor - shown + 1
	}
	m.offset = max(0, min(m.offset, m.rows()-shown))
}

// topLayout is how many rows each part of the screen gets.
type topLayout struct {
	links, conns, events int
}

// layout divides the screen: the title lines, the links (at most a
// quarter of the screen), the events strip, the footer, and the
// connections the rest.
func (m *topModel) layout() topLayout {
	fixed := 1 + 2 + 2 + 1 + 1 // title, links' heading and header, connections' heading and header, events' heading, footer
	if m.frame != nil && m.frame.Daemon.Status != nil {
		fixed++
	}
	if m.frame != nil && len(m.frame.Errors) > 0 {
		fixed++
	}
	free := max(0, m.height-fixed)
	var l topLayout
	if m.frame != nil {
		l.links = min(len(m.frame.Links), max(1, free/4))
	}
	l.events = min(topEventRows, max(1, free/5))
	l.conns = max(1, free-l.links-l.events)
	return l
}

// View implements tea.Model.
func (m topModel) View() string {
	if m.frame == nil {
		return "mptcpctl top: reading the kernel…"
	}
	st := m.styles
	f := m.frame
	l := m.layout()
	var lines []string
	lines = append(lines, st.title.Render(m.titleLine()))
	if f.Daemon.Status != nil {
		lines = append(lines, daemonSummary(f.Daemon))
	}
	if len(f.Errors) > 0 {
		lines = append(lines, st.bad.Render("errors: "+strings.Join(f.Errors, "; ")))
	}
	lines = append(lines, m.linkLines(l.links)...)
	switch {
	case m.mode == modeDetail && f.Detail != nil:
		lines = append(lines, m.detailLines(l.conns+2)...)
	case m.mode == modeDetail:
		lines = append(lines, m.styles.section.Render("CONNECTION "+formatToken(m.set.Open)+"  reading…"))
		for range l.conns + 1 {
			lines = append(lines, "")
		}
	default:
		lines = append(lines, m.connLines(l.conns)...)
	}
	lines = append(lines, m.eventLines(l.events)...)
	lines = append(lines, m.footer())
	for i, s := range lines {
		lines[i] = ansi.Truncate(s, m.width, "")
	}
	return strings.Join(lines, "\n")
}

// titleLine says what top shows: the namespace, the daemon, the time.
func (m *topModel) titleLine() string {
	f := m.frame
	parts := []string{"mptcpctl top"}
	if m.netns != "" {
		parts = append(parts, "netns "+m.netns)
	}
	parts = append(parts, daemonTitle(f.Daemon))
	parts = append(parts, f.Time.Local().Format(time.TimeOnly)+" every "+f.Interval.String())
	return strings.Join(parts, " · ")
}

// daemonTitle says whether the daemon answers, and its mode and policy.
func daemonTitle(d topDaemonInfo) string {
	switch {
	case !d.Asked:
		return "kernel view"
	case d.Status == nil:
		return "kernel view (mptcpgod: " + d.Error + ")"
	}
	s := fmt.Sprintf("mptcpgod %s, %s mode, policy %s", d.Status.Version, d.Status.Mode, d.Status.Policy.Name)
	if !d.Status.Ready {
		s += ", not ready"
	}
	if d.EventsErr != "" {
		s += " (events: " + d.EventsErr + ")"
	}
	return s
}

// daemonSummary counts the daemon's connections, paths by state,
// commands and programs, and the kernel's mapping errors once there are
// any.
func daemonSummary(d topDaemonInfo) string {
	st := d.Status
	parts := []string{"connections tracked " + strconv.Itoa(st.Connections)}
	var paths []string
	for _, pc := range pathCounts(st.Paths) {
		paths = append(paths, fmt.Sprintf("%d %s", pc.N, pc.State))
	}
	if len(paths) > 0 {
		parts = append(parts, "paths "+strings.Join(paths, ", "))
	}
	parts = append(parts, fmt.Sprintf("commands %d in flight, %d queued", st.InFlight, st.Queued))
	if st.Resyncing {
		parts = append(parts, "resyncing")
	}
	if errs := mappingErrors(st.Mitigation.MappingErrors); len(errs) > 0 {
		parts = append(parts, "mapping errors "+strings.Join(errs, ", "))
	}
	for _, p := range d.Plugins {
		state := "down"
		if p.Up {
			state = "up"
		}
		parts = append(parts, "program "+p.Command+" "+state)
	}
	return strings.Join(parts, " · ")
}

// linkLines draws the links: heading, header and n rows.
func (m *topModel) linkLines(n int) []string {
	st := m.styles
	f := m.frame
	cols := []topColumn{{title: "LINK"}, {title: "STATE"}, {title: "KIND"}, {title: "QUOTA"},
		{title: "IN", width: 10, right: true}, {title: "LAST MINUTE IN"}, {title: "OUT", width: 10, right: true},
		{title: "LAST MINUTE OUT"}, {title: "SUBFLOWS", right: true}}
	rows := make([][]string, 0, n)
	for _, lr := range f.Links[:min(n, len(f.Links))] {
		rows = append(rows, []string{lr.Name, topLinkStateText(lr), linkKind(lr), linkQuota(lr),
			formatBits(lr.RateIn), "", formatBits(lr.RateOut), "", fmt.Sprint(lr.Subflows)})
	}
	widen(cols, rows, 32)
	used := 0
	for i, c := range cols {
		if i != 5 && i != 7 {
			used += c.width
		}
	}
	spark := min((m.width-used-2*(len(cols)-1))/2, historyCells(f.Interval))
	if spark < 5 {
		cols = append(cols[:5:5], cols[6], cols[8])
	} else {
		cols[5].width, cols[7].width = spark, spark
	}
	lines := []string{st.section.Render(fmt.Sprintf("LINKS  %d", len(f.Links))), st.head.Render(tableLine(cols, titles(cols)))}
	for i, lr := range f.Links[:min(n, len(f.Links))] {
		cells := rows[i]
		if spark >= 5 {
			cells[5], cells[7] = sparkline(lr.HistIn, spark), sparkline(lr.HistOut, spark)
		} else {
			cells = append(cells[:5:5], cells[6], cells[8])
		}
		line := tableLine(cols, cells)
		if !lr.Up {
			line = st.down.Render(line)
		}
		lines = append(lines, line)
	}
	return lines
}

// titles are the columns' titles.
func titles(cols []topColumn) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.title
	}
	return out
}

// connLines draws the connections: heading, header and the n rows from
// the offset on.
func (m *topModel) connLines(n int) []string {
	st := m.styles
	f := m.frame
	head := fmt.Sprintf("CONNECTIONS  %d of %d · sort %s", len(f.Conns), f.Total, m.set.Sort)
	if m.set.Reverse {
		head += " reversed"
	}
	if m.set.Filter.String() != "" {
		head += " · filter " + m.set.Filter.String()
	}
	cols := []topColumn{{title: "TOKEN", width: 8}, {title: "PEER"}, {title: "LOCAL"}, {title: "AGE", width: 6, right: true},
		{title: "IN", width: 8, right: true}, {title: "OUT", width: 8, right: true},
		{title: "RATE IN", width: 10, right: true}, {title: "RATE OUT", width: 10, right: true},
		{title: "SUBFLOWS", right: true}, {title: "LINKS"}}
	end := min(m.offset+n, len(f.Conns))
	rows := make([][]string, 0, end-m.offset)
	for _, r := range f.Conns[m.offset:end] {
		rows = append(rows, []string{formatToken(r.Token), r.Remote.String(), r.Local.String(),
			formatAge(f.Time.Sub(r.FirstSeen), r.AgeKnown), humanize.Bytes(r.In), humanize.Bytes(r.Out),
			formatRate(r.RateIn, r.Rated), formatRate(r.RateOut, r.Rated), fmt.Sprint(r.Subflows), rowLinks(r, f.LinkNames)})
	}
	widen(cols, rows, 47)
	cols[len(cols)-1].width = max(cols[len(cols)-1].width, m.width)
	lines := []string{st.section.Render(head), st.head.Render(tableLine(cols, titles(cols)))}
	for i, cells := range rows {
		line := tableLine(cols, cells)
		if m.offset+i == m.cursor {
			line = st.selected.Render(fit(line, m.width, false))
		}
		lines = append(lines, line)
	}
	if len(f.Conns) == 0 {
		msg := "no MPTCP connections"
		if f.Total > 0 {
			msg = "no connection matches the filter (esc clears it)"
		}
		lines = append(lines, st.faint.Render(msg))
	}
	for len(lines) < n+2 {
		lines = append(lines, "")
	}
	return lines
}

// detailLines draws the opened connection in n lines at most.
func (m *topModel) detailLines(n int) []string {
	st := m.styles
	f := m.frame
	d := f.Detail
	var lines []string
	head := "CONNECTION " + formatToken(d.Token)
	if c := d.Conn; c != nil {
		head += fmt.Sprintf("  %s → %s  %s · age %s · in %s (%s) · out %s (%s) · %d subflows · uid %d",
			c.Local, c.Remote, subflowState(c.State), formatAge(f.Time.Sub(c.FirstSeen), c.AgeKnown),
			humanize.Bytes(c.In), formatRate(c.RateIn, c.Rated), humanize.Bytes(c.Out), formatRate(c.RateOut, c.Rated),
			c.Subflows, c.UID)
		if c.Fallback {
			head += " · fell back to TCP"
		}
	} else {
		head += "  closed"
	}
	lines = append(lines, st.section.Render(head))
	cols := []topColumn{{title: "LOCAL → REMOTE"}, {title: "LINK"}, {title: "IDS"}, {title: "BACKUP"}, {title: "STATE"},
		{title: "RTT", right: true}, {title: "CWND", right: true}, {title: "RETRANS", right: true},
		{title: "RATE IN", width: 10, right: true}, {title: "RATE OUT", width: 10, right: true}}
	rows := make([][]string, 0, len(d.Subflows))
	for _, s := range d.Subflows {
		rows = append(rows, []string{s.Local.String() + " → " + s.Remote.String(), dash(f.LinkNames[s.Link]),
			fmt.Sprintf("%d/%d", s.LocalID, s.RemoteID), subflowBackup(s.Flags), subflowState(s.State),
			fmt.Sprintf("%.2fms", float64(s.RTT)/float64(time.Millisecond)), fmt.Sprint(s.Cwnd), fmt.Sprint(s.Retransmits),
			formatRate(s.RateIn, s.Rated), formatRate(s.RateOut, s.Rated)})
	}
	widen(cols, rows, 64)
	lines = append(lines, st.head.Render(tableLine(cols, titles(cols))))
	for _, r := range rows {
		lines = append(lines, tableLine(cols, r))
	}
	if len(rows) == 0 {
		lines = append(lines, st.faint.Render("no subflows"))
	}
	lines = append(lines, m.pathLines(d)...)
	if len(d.Decisions) > 0 {
		lines = append(lines, st.section.Render("DECISIONS (mptcpgod)"))
		room := max(1, n-len(lines))
		for _, ev := range d.Decisions[max(0, len(d.Decisions)-room):] {
			lines = append(lines, decisionText(ev))
		}
	}
	if len(lines) > n {
		lines = lines[:n]
	}
	for len(lines) < n {
		lines = append(lines, "")
	}
	return lines
}

// pathLines draws the daemon's paths of the opened connection, and why a
// wanted one is missing, then the addresses announced to the peer and
// those the peer announced, as mptcpctl paths lists them.
func (m *topModel) pathLines(d *topDetail) []string {
	st := m.styles
	f := m.frame
	if f.Daemon.Status == nil {
		return nil
	}
	if d.Paths == nil {
		return []string{st.section.Render("PATHS (mptcpgod)"), st.faint.Render(dash(d.PathsErr))}
	}
	c := d.Paths
	lines := []string{st.section.Render(fmt.Sprintf("PATHS (mptcpgod: %s side, path manager %s)", c.Side, c.PathManager))}
	cols := []topColumn{{title: "LOCAL → REMOTE"}, {title: "DEV"}, {title: "WANTED"}, {title: "STATE"}, {title: "WHY"}}
	peers := announcedPeers(*c)
	rows := make([][]string, 0, len(c.Paths)+len(c.Announces)+len(peers))
	// warn marks the rows of what is wanted and missing for another
	// reason than a deferral, and of the peer's addresses refused or
	// given up.
	var warn []bool
	for _, p := range c.Paths {
		rows = append(rows, []string{p.Local.String() + " → " + p.Remote.String(), dash(p.Dev), pathWanted(p), string(p.State),
			pathReason(p, *c, formatClock)})
		warn = append(warn, p.Desired && p.State != pmstate.PathEstablished && p.State != pmstate.PathDeferred)
	}
	for _, an := range c.Announces {
		rows = append(rows, []string{announceLabel(an), "-", yesNo(an.Desired), string(an.State), announceReason(an, *c, formatClock)})
		warn = append(warn, an.Desired && an.State != pmstate.AnnounceAnnounced && an.State != pmstate.AnnounceDeferred)
	}
	for _, p := range peers {
		rows = append(rows, []string{peerLabel(p), "-", "-", string(p.State), peerReason(p)})
		warn = append(warn, p.State == pmstate.PeerRefused || p.State == pmstate.PeerGivenUp)
	}
	widen(cols, rows, 48)
	cols[len(cols)-1].width = max(cols[len(cols)-1].width, m.width)
	lines = append(lines, st.head.Render(tableLine(cols, titles(cols))))
	for i, r := range rows {
		line := tableLine(cols, r)
		if warn[i] {
			line = st.warn.Render(line)
		}
		lines = append(lines, line)
	}
	if len(rows) == 0 {
		lines = append(lines, st.faint.Render("the policy wants no path and none exists"))
	}
	return lines
}

// eventLines draws the events strip, newest first, in n rows.
func (m *topModel) eventLines(n int) []string {
	st := m.styles
	evs := m.frame.Events
	lines := []string{st.section.Render(fmt.Sprintf("EVENTS  %d", len(evs)))}
	for i := len(evs) - 1; i >= 0 && len(lines) <= n; i-- {
		ev := evs[i]
		lines = append(lines, formatClock(ev.Time)+" "+st.event(ev.Kind).Render(fmt.Sprintf("%-11s", ev.Kind))+" "+ev.Text)
	}
	if len(evs) == 0 {
		msg := "none yet"
		if !m.frame.Daemon.Asked || m.frame.Daemon.Status == nil {
			msg += " (links going up or down; the daemon's failovers, withdrawals, quotas and programs when it runs)"
		}
		lines = append(lines, st.faint.Render(msg))
	}
	for len(lines) <= n {
		lines = append(lines, "")
	}
	return lines
}

// footer is the last line: the filter being typed, a message, or the keys.
func (m *topModel) footer() string {
	switch {
	case m.mode == modeFilter && m.note != "":
		return m.input.View() + "  " + m.styles.bad.Render(m.note)
	case m.mode == modeFilter:
		return m.input.View()
	case m.note != "":
		return m.styles.bad.Render(m.note)
	case m.mode == modeDetail:
		return m.styles.faint.Render("esc back · q quit")
	}
	return m.styles.faint.Render("↑↓ select · enter open · s sort · r reverse · / filter · esc clear filter · q quit")
}
