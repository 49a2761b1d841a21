package main

import (
	"errors"
	"maps"
	"slices"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// topDaemon is what a state keeps of the daemon's answers.
type topDaemon struct {
	// asked: top asks a daemon at all; err says why the last status
	// question failed ("" when it was answered).
	asked  bool
	err    string
	status *ctlapi.Status
	links  map[string]*pmstate.Link
	usage  map[string]*ctlapi.UsageLink
	// conn is the opened connection's paths, or connErr why not.
	conn    *pmstate.Conn
	connErr string
	// eventsErr says why the event stream ended.
	eventsErr string
}

// topDaemonInfo is the daemon in a frame.
type topDaemonInfo struct {
	Asked     bool
	Error     string
	Status    *ctlapi.Status
	Plugins   []topPlugin
	EventsErr string
}

// setStatus records the daemon's status, or why there is none.
func (s *topState) setStatus(st *ctlapi.Status, err error) {
	d := &s.daemon
	known := d.asked
	d.asked = true
	if err != nil {
		msg := daemonReason(err)
		if d.status != nil {
			s.addEvent(topEvent{Time: s.now, Kind: topEventDaemon, Text: "mptcpgod unreachable: " + msg})
		}
		d.err, d.status, d.links, d.usage, d.conn = msg, nil, nil, nil, nil
		return
	}
	if d.status == nil && known {
		s.addEvent(topEvent{Time: s.now, Kind: topEventDaemon, Text: "mptcpgod reachable, mode " + string(st.Mode)})
	}
	d.err, d.status = "", st
	d.links = make(map[string]*pmstate.Link, len(st.Links))
	for i := range st.Links {
		d.links[st.Links[i].Name] = &st.Links[i]
	}
}

// daemonReason is why the daemon did not answer, in a few words.
func daemonReason(err error) string {
	var ad *ctlapi.AccessDeniedError
	switch {
	case errors.Is(err, ctlapi.ErrNotRunning):
		return "not running"
	case errors.As(err, &ad):
		return "access denied (try sudo)"
	}
	return oneLine(err)
}

// info is the daemon for a frame.
func (s *topState) daemonInfo() topDaemonInfo {
	d := &s.daemon
	info := topDaemonInfo{Asked: d.asked, Error: d.err, Status: d.status, EventsErr: d.eventsErr}
	if d.status != nil {
		info.Plugins = sortedPlugins(s.plugins)
	}
	return info
}

// decorate adds the daemon's view of the link to a row.
func (d *topDaemon) decorate(r *topLinkRow) {
	r.Daemon = d.links[r.Name]
	r.Usage = d.usage[r.Name]
}

// pathCounts lists the paths by state: the known states in their order,
// then any other a newer daemon reports, by name.
func pathCounts(paths map[pmstate.PathState]int) []pathCount {
	var out []pathCount
	for _, st := range pmstate.PathStates {
		if n := paths[st]; n > 0 {
			out = append(out, pathCount{st, n})
		}
	}
	for _, st := range slices.Sorted(maps.Keys(paths)) {
		if !slices.Contains(pmstate.PathStates, st) && paths[st] > 0 {
			out = append(out, pathCount{st, paths[st]})
		}
	}
	return out
}

// pathCount is the number of paths in a state.
type pathCount struct {
	State pmstate.PathState
	N     int
}
