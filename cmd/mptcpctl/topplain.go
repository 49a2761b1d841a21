package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

// top's output when it does not draw a screen (--once, --count, --json, or
// an output that is not a terminal): a frame as plain tables, or as one
// line of JSON. The JSON types below are documented in docs/mptcpctl.md;
// add fields, never rename or remove one.

// topFrameOut is one refresh of top --json.
type topFrameOut struct {
	Time            time.Time    `json:"time"`
	IntervalSeconds float64      `json:"interval_seconds"`
	Netns           string       `json:"netns,omitempty"`
	Daemon          topDaemonOut `json:"daemon"`
	Links           []topLinkOut `json:"links"`
	// TotalConnections is the number the kernel lists; Connections those
	// the filter keeps, sorted, at most --limit.
	TotalConnections int           `json:"total_connections"`
	Sort             string        `json:"sort"`
	Reverse          bool          `json:"reverse"`
	Filter           string        `json:"filter"`
	Connections      []topConnOut  `json:"connections"`
	Events           []topEventOut `json:"events"`
	Errors           []string      `json:"errors,omitempty"`
}

// topDaemonOut is the daemon in a frame.
type topDaemonOut struct {
	// Asked: top asks a daemon (not with -n unless --socket is given);
	// Reachable: it answered, else Error says why.
	Asked     bool   `json:"asked"`
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Status is the answer of GET /v1/status.
	Status *ctlapi.Status `json:"status,omitempty"`
	// Programs are the policy programs (the exec plugin) and whether they
	// run.
	Programs    []topProgramOut `json:"programs,omitempty"`
	EventsError string          `json:"events_error,omitempty"`
}

// topProgramOut is a policy program.
type topProgramOut struct {
	Command  string  `json:"command"`
	Up       bool    `json:"up"`
	Crashes  float64 `json:"crashes"`
	Timeouts float64 `json:"timeouts"`
}

// topLinkOut is a link in a frame.
type topLinkOut struct {
	Name  string `json:"name"`
	Index int32  `json:"index"`
	Up    bool   `json:"up"`
	// State is the daemon's words ("up, usable, metered") or the kernel's
	// up or down; Kind the daemon's kind, "" without it.
	State   string `json:"state"`
	Kind    string `json:"kind"`
	Metered bool   `json:"metered"`
	// UsedBytes and QuotaBytes are the period's usage and quota (the
	// daemon's [usage] accounting).
	UsedBytes  uint64 `json:"used_bytes,omitempty"`
	QuotaBytes uint64 `json:"quota_bytes,omitempty"`
	OverQuota  bool   `json:"over_quota,omitempty"`
	// RxBytes and TxBytes are the interface's counters; the rates are
	// bytes per second since the last refresh, the histories the last
	// minute's, oldest first.
	RxBytes           uint64    `json:"rx_bytes"`
	TxBytes           uint64    `json:"tx_bytes"`
	InBytesPerSecond  float64   `json:"in_bytes_per_second"`
	OutBytesPerSecond float64   `json:"out_bytes_per_second"`
	InHistory         []float64 `json:"in_history"`
	OutHistory        []float64 `json:"out_history"`
	Subflows          int       `json:"subflows"`
}

// topConnOut is a connection in a frame.
type topConnOut struct {
	Token  string `json:"token"`
	Local  string `json:"local"`
	Remote string `json:"remote"`
	State  string `json:"state"`
	// AgeSeconds is the time since top first saw it; AgeKnown is false
	// when it was there when top started (it is at least that old).
	AgeSeconds float64 `json:"age_seconds"`
	AgeKnown   bool    `json:"age_known"`
	// BytesIn and BytesOut are received and acknowledged (MPTCP level);
	// the rates are null until a second refresh.
	BytesIn           uint64   `json:"bytes_in"`
	BytesOut          uint64   `json:"bytes_out"`
	InBytesPerSecond  *float64 `json:"in_bytes_per_second"`
	OutBytesPerSecond *float64 `json:"out_bytes_per_second"`
	Subflows          int      `json:"subflows"`
	Links             []string `json:"links"`
	Fallback          bool     `json:"fallback"`
	UID               uint32   `json:"uid"`
}

// topEventOut is an event.
type topEventOut struct {
	Time  time.Time    `json:"time"`
	Kind  topEventKind `json:"kind"`
	Token string       `json:"token,omitempty"`
	Text  string       `json:"text"`
}

// frameOut converts a frame: at most limit connections (0: all) and the
// events after seq.
func frameOut(f *topFrame, netns string, limit int, seq uint64) topFrameOut {
	out := topFrameOut{
		Time: f.Time, IntervalSeconds: f.Interval.Seconds(), Netns: netns, TotalConnections: f.Total,
		Sort: f.Settings.Sort.String(), Reverse: f.Settings.Reverse, Filter: f.Settings.Filter.String(),
		Links: make([]topLinkOut, 0, len(f.Links)), Connections: []topConnOut{}, Events: []topEventOut{}, Errors: f.Errors,
		Daemon: topDaemonOut{Asked: f.Daemon.Asked, Reachable: f.Daemon.Status != nil, Error: f.Daemon.Error,
			Status: f.Daemon.Status, EventsError: f.Daemon.EventsErr},
	}
	for _, p := range f.Daemon.Plugins {
		out.Daemon.Programs = append(out.Daemon.Programs, topProgramOut(p))
	}
	for _, l := range f.Links {
		lo := topLinkOut{Name: l.Name, Index: l.Index, Up: l.Up, State: topLinkStateText(l),
			RxBytes: l.RxBytes, TxBytes: l.TxBytes, InBytesPerSecond: l.RateIn, OutBytesPerSecond: l.RateOut,
			InHistory: l.HistIn, OutHistory: l.HistOut, Subflows: l.Subflows}
		if l.Daemon != nil {
			lo.Kind, lo.Metered = string(l.Daemon.Kind), l.Daemon.Metered
		}
		if u := l.Usage; u != nil {
			lo.Metered = lo.Metered || u.Metered
			lo.UsedBytes, lo.QuotaBytes, lo.OverQuota = u.UsedBytes, u.QuotaBytes, levelOf(u) == quotaReached
		}
		out.Links = append(out.Links, lo)
	}
	conns := f.Conns
	if limit > 0 && len(conns) > limit {
		conns = conns[:limit]
	}
	for _, r := range conns {
		co := topConnOut{Token: formatToken(r.Token), Local: r.Local.String(), Remote: r.Remote.String(),
			State: subflowState(r.State), AgeSeconds: f.Time.Sub(r.FirstSeen).Seconds(), AgeKnown: r.AgeKnown,
			BytesIn: r.In, BytesOut: r.Out, Subflows: r.Subflows, Links: []string{}, Fallback: r.Fallback, UID: r.UID}
		if r.Rated {
			in, out := r.RateIn, r.RateOut
			co.InBytesPerSecond, co.OutBytesPerSecond = &in, &out
		}
		if s := rowLinks(r, f.LinkNames); s != "" {
			co.Links = strings.Split(s, ",")
		}
		out.Connections = append(out.Connections, co)
	}
	for _, ev := range f.Events {
		if ev.Seq <= seq {
			continue
		}
		eo := topEventOut{Time: ev.Time, Kind: ev.Kind, Text: ev.Text}
		if ev.Token != 0 {
			eo.Token = formatToken(ev.Token)
		}
		out.Events = append(out.Events, eo)
	}
	return out
}

// writeTopPlain prints a frame as tables: a title line, the links, the
// connections, and the events since the last frame printed.
func writeTopPlain(w io.Writer, fo topFrameOut) error {
	title := "mptcpctl top  " + fo.Time.Local().Format(timeFormat)
	if fo.Netns != "" {
		title += "  netns " + fo.Netns
	}
	switch d := fo.Daemon; {
	case !d.Asked:
		title += "  kernel view"
	case d.Status == nil:
		title += "  kernel view (mptcpgod: " + d.Error + ")"
	default:
		title += fmt.Sprintf("  mptcpgod %s, %s mode, policy %s", d.Status.Version, d.Status.Mode, d.Status.Policy.Name)
	}
	if _, err := fmt.Fprintln(w, title); err != nil {
		return err
	}
	for _, e := range fo.Errors {
		if _, err := fmt.Fprintln(w, "error: "+e); err != nil {
			return err
		}
	}
	t := newTable(w)
	fmt.Fprintln(t, "LINK\tSTATE\tKIND\tQUOTA\tIN\tOUT\tSUBFLOWS")
	for _, l := range fo.Links {
		quota := "-"
		switch {
		case l.QuotaBytes > 0 && l.OverQuota:
			quota = "reached " + humanize.Bytes(l.QuotaBytes)
		case l.QuotaBytes > 0:
			quota = fmt.Sprintf("%d%% of %s", l.UsedBytes*100/l.QuotaBytes, humanize.Bytes(l.QuotaBytes))
		case l.Metered:
			quota = "metered"
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", l.Name, l.State, dash(l.Kind), quota,
			formatBits(l.InBytesPerSecond), formatBits(l.OutBytesPerSecond), l.Subflows)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	head := fmt.Sprintf("\n%d of %d connections, sort %s", len(fo.Connections), fo.TotalConnections, fo.Sort)
	if fo.Reverse {
		head += " reversed"
	}
	if fo.Filter != "" {
		head += ", filter " + fo.Filter
	}
	if _, err := fmt.Fprintln(w, head); err != nil {
		return err
	}
	t = newTable(w)
	fmt.Fprintln(t, "TOKEN\tPEER\tLOCAL\tAGE\tIN\tOUT\tRATE IN\tRATE OUT\tSUBFLOWS\tLINKS")
	for _, c := range fo.Connections {
		in, out := "-", "-"
		if c.InBytesPerSecond != nil {
			in, out = formatBits(*c.InBytesPerSecond), formatBits(*c.OutBytesPerSecond)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", c.Token, c.Remote, c.Local,
			formatAge(time.Duration(c.AgeSeconds*float64(time.Second)), c.AgeKnown),
			humanize.Bytes(c.BytesIn), humanize.Bytes(c.BytesOut), in, out, c.Subflows, dash(strings.Join(c.Links, ",")))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(fo.Events) == 0 {
		_, err := fmt.Fprintln(w)
		return err
	}
	if _, err := fmt.Fprintln(w, "\nevents"); err != nil {
		return err
	}
	t = newTable(w)
	for _, e := range fo.Events {
		fmt.Fprintf(t, "%s\t%s\t%s\n", e.Time.Local().Format(timeFormat), e.Kind, e.Text)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w)
	return err
}
