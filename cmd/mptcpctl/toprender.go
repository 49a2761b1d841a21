package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/dustin/go-humanize"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// How top's screen formats numbers, and the pieces of its screen. The
// screen (topModel.View) and the plain output share the formatting; only
// the screen draws sparklines and colours.

// formatBits formats a rate of bytes per second as bits per second with
// three significant digits: "9.81 Mb/s", "0 b/s".
func formatBits(bytesPerSec float64) string {
	bits := bytesPerSec * 8
	units := []string{"b/s", "kb/s", "Mb/s", "Gb/s", "Tb/s"}
	i := 0
	for bits >= 999.5 && i < len(units)-1 {
		bits /= 1000
		i++
	}
	switch {
	case bits == 0:
		return "0 b/s"
	case bits < 9.995:
		return fmt.Sprintf("%.2f %s", bits, units[i])
	case bits < 99.95:
		return fmt.Sprintf("%.1f %s", bits, units[i])
	}
	return fmt.Sprintf("%.0f %s", bits, units[i])
}

// formatRate formats a rate that may not be known yet.
func formatRate(bytesPerSec float64, known bool) string {
	if !known {
		return "-"
	}
	return formatBits(bytesPerSec)
}

// formatAge formats how long a connection has been seen: "45s", "3m04s",
// "2h05m", "3d04h"; with ">" when it was already there when top started.
func formatAge(d time.Duration, known bool) string {
	d = d.Truncate(time.Second)
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	if !known {
		s = ">" + s
	}
	return s
}

// sparkLevels are the bars of a sparkline, from the lowest non-zero value
// to the highest.
var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// sparkline draws values (oldest first) in width cells, right-aligned:
// when there are more values than cells, each cell is the mean of a run of
// them. Zero is a blank; the highest value is a full bar.
func sparkline(values []float64, width int) string {
	if width <= 0 {
		return ""
	}
	per := max(1, (len(values)+width-1)/width)
	cells := make([]float64, 0, width)
	for end := len(values); end > 0 && len(cells) < width; end -= per {
		start := max(0, end-per)
		var sum float64
		for _, v := range values[start:end] {
			sum += v
		}
		cells = append(cells, sum/float64(end-start))
	}
	slices.Reverse(cells)
	peak := 0.0
	for _, c := range cells {
		peak = max(peak, c)
	}
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", width-len(cells)))
	for _, c := range cells {
		if c <= 0 || peak <= 0 {
			b.WriteByte(' ')
			continue
		}
		lvl := int(math.Ceil(c/peak*float64(len(sparkLevels)))) - 1
		b.WriteRune(sparkLevels[min(max(lvl, 0), len(sparkLevels)-1)])
	}
	return b.String()
}

// topLinkState describes a link's state: the daemon's words ("up,
// usable, metered") when it answers, else the kernel's up or down.
func topLinkStateText(l topLinkRow) string {
	if l.Daemon != nil {
		return linkState(*l.Daemon)
	}
	if l.Up {
		return "up"
	}
	return "down"
}

// linkKind is a link's kind by the daemon, "-" without it.
func linkKind(l topLinkRow) string {
	if l.Daemon == nil {
		return "-"
	}
	return string(l.Daemon.Kind)
}

// linkQuota says whether a link is metered and how much of its quota it
// used: "-", "metered", "12% of 10 GB", "reached 10 GB".
func linkQuota(l topLinkRow) string {
	u := l.Usage
	metered := l.Daemon != nil && l.Daemon.Metered || u != nil && u.Metered
	switch {
	case u != nil && u.QuotaBytes > 0 && levelOf(u) == quotaReached:
		return "reached " + humanize.Bytes(u.QuotaBytes)
	case u != nil && u.QuotaBytes > 0:
		return fmt.Sprintf("%.0f%% of %s", math.Floor(100*float64(u.UsedBytes)/float64(u.QuotaBytes)), humanize.Bytes(u.QuotaBytes))
	case u != nil && u.UsedBytes > 0 && metered:
		return "metered, " + humanize.Bytes(u.UsedBytes)
	case metered:
		return "metered"
	}
	return "-"
}

// rowLinks names a connection's links: "eth0,eth1".
func rowLinks(r topConnRow, names map[int32]string) string {
	parts := make([]string, 0, r.NLinks)
	for _, idx := range r.Links[:r.NLinks] {
		if n := names[idx]; n != "" {
			parts = append(parts, n)
		} else {
			parts = append(parts, fmt.Sprintf("if%d", idx))
		}
	}
	return strings.Join(parts, ",")
}

// subflowState is a subflow's TCP state as ss names it, lower case.
func subflowState(st uint8) string {
	return strings.ToLower(sockdiag.StateName(st))
}

// subflowBackup says which side asked for backup: "-", "yes", "peer",
// "both".
func subflowBackup(f sockdiag.SubflowFlags) string {
	local, remote := f&sockdiag.SubflowBackupLocal != 0, f&sockdiag.SubflowBackupRemote != 0
	switch {
	case local && remote:
		return "both"
	case local:
		return "yes"
	case remote:
		return "peer"
	}
	return "-"
}

// formatClock formats a time of today as the screen shows it.
func formatClock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.TimeOnly)
}

// decisionText is a decision for the opened connection's list: its time
// and decisionLine's words.
func decisionText(ev ctlapi.Event) string {
	line := decisionLine(ev)
	if _, rest, ok := strings.Cut(line, " "); ok {
		line = rest
	}
	return formatClock(ev.Time) + " " + line
}

// topColumn is a column of a screen table.
type topColumn struct {
	title string
	width int
	right bool
}

// fit pads or cuts s to width cells.
func fit(s string, width int, right bool) string {
	w := ansi.StringWidth(s)
	switch {
	case w > width:
		return ansi.Truncate(s, width, "…")
	case right:
		return strings.Repeat(" ", width-w) + s
	}
	return s + strings.Repeat(" ", width-w)
}

// tableLine joins cells into a line of the columns, two spaces apart.
func tableLine(cols []topColumn, cells []string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString("  ")
		}
		cell := ""
		if i < len(cells) {
			cell = cells[i]
		}
		if i == len(cols)-1 && !c.right {
			b.WriteString(ansi.Truncate(cell, c.width, "…"))
			continue
		}
		b.WriteString(fit(cell, c.width, c.right))
	}
	return b.String()
}

// widen sets each column's width to its title's or its widest cell's, up
// to limit cells.
func widen(cols []topColumn, rows [][]string, limit int) {
	for i := range cols {
		w := ansi.StringWidth(cols[i].title)
		for _, r := range rows {
			if i < len(r) {
				w = max(w, ansi.StringWidth(r[i]))
			}
		}
		cols[i].width = max(cols[i].width, min(w, limit))
	}
}

// topStyles are the screen's styles.
type topStyles struct {
	title, head, section, selected, faint, up, down, warn, bad, good lipgloss.Style
}

// newTopStyles returns the styles for a renderer.
func newTopStyles(r *lipgloss.Renderer) topStyles {
	return topStyles{
		title:    r.NewStyle().Bold(true),
		head:     r.NewStyle().Bold(true),
		section:  r.NewStyle().Bold(true).Foreground(lipgloss.ANSIColor(6)),
		selected: r.NewStyle().Reverse(true),
		faint:    r.NewStyle().Faint(true),
		up:       r.NewStyle().Foreground(lipgloss.ANSIColor(2)),
		down:     r.NewStyle().Foreground(lipgloss.ANSIColor(1)),
		warn:     r.NewStyle().Foreground(lipgloss.ANSIColor(3)),
		bad:      r.NewStyle().Foreground(lipgloss.ANSIColor(1)).Bold(true),
		good:     r.NewStyle().Foreground(lipgloss.ANSIColor(2)),
	}
}

// eventStyle is the style of an event's kind.
func (st topStyles) event(k topEventKind) lipgloss.Style {
	switch k {
	case topEventFailover, topEventQuota:
		return st.warn
	case topEventFailed, topEventPathFailed, topEventPlugin, topEventDaemon:
		return st.bad
	case topEventFailback:
		return st.good
	}
	return st.faint
}
