package metrics

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
)

// The link metrics, from the link monitor's states (SetHost). Only the
// links the [links] filters include are exported: the others are never
// used, and containers' veth links would come and go by the thousand.
var (
	linkUp = prometheus.NewDesc("mptcpgod_link_up",
		"1 when a link the daemon may use is operationally up, 0 when it is down, by link and kind.", []string{"link", "kind"}, nil)
	linkUsableAddrs = prometheus.NewDesc("mptcpgod_link_usable_addresses",
		"Addresses of a link the daemon may use that are usable as MPTCP endpoints now (not tentative, routable).", []string{"link", "kind"}, nil)
)

// Link changes, the values of the change label of mptcpgod_link_changes_total.
const (
	changeUp         = "up"
	changeDown       = "down"
	changeAddrUsable = "address_usable"
	changeAddrGone   = "address_unusable"
)

// linkState is what the link metrics keep of a link between two states.
type linkState struct {
	name, kind string
	included   bool
	up         bool
	usable     []netip.Addr // sorted
}

// linkTracker turns the link monitor's states into the link gauges and
// counts the changes between two states.
type linkTracker struct {
	changes *prometheus.CounterVec

	mu    sync.Mutex
	seen  bool              // a first state was given
	links map[int]linkState // by interface index
}

var _ prometheus.Collector = (*linkTracker)(nil)

func newLinkTracker() *linkTracker {
	return &linkTracker{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mptcpgod_link_changes_total",
			Help: "Changes of a link the daemon may use, as the link monitor reported them (after links.settle): change=down|up (its operational state; a link that disappears goes down), address_usable|address_unusable (one of its addresses became usable as an endpoint, or stopped being: removed, tentative, no route).",
		}, []string{"link", "change"}),
		links: map[int]linkState{},
	}
}

// set records st and counts what changed since the previous state. The
// first state is the baseline: nothing is counted.
func (lt *linkTracker) set(st linkmon.State) {
	next := make(map[int]linkState, len(st.Links))
	for idx, l := range st.Links {
		next[idx] = linkState{name: l.Name, kind: l.Kind.String(), included: l.Included, up: l.Up}
	}
	for _, a := range st.Addrs {
		if s, ok := next[a.LinkIndex]; ok && a.Usable {
			s.usable = append(s.usable, a.Prefix.Addr())
			next[a.LinkIndex] = s
		}
	}
	for idx, s := range next {
		slices.SortFunc(s.usable, netip.Addr.Compare)
		next[idx] = s
	}

	lt.mu.Lock()
	defer lt.mu.Unlock()
	for _, s := range next {
		if s.included {
			lt.initChanges(s.name)
		}
	}
	if lt.seen {
		for idx, old := range lt.links {
			cur, ok := next[idx]
			switch {
			case !ok && old.included:
				// Gone: down, with its addresses.
				lt.count(old.name, old, linkState{})
			case ok && old.included && cur.included:
				lt.count(cur.name, old, cur)
			}
		}
		for idx, cur := range next {
			if _, ok := lt.links[idx]; !ok && cur.included {
				// New: it was down, without addresses.
				lt.count(cur.name, linkState{}, cur)
			}
		}
	}
	lt.seen, lt.links = true, next
}

// initChanges makes the change counters of a link exist, at 0.
func (lt *linkTracker) initChanges(name string) {
	for _, c := range []string{changeUp, changeDown, changeAddrUsable, changeAddrGone} {
		lt.changes.WithLabelValues(name, c)
	}
}

// count counts the changes from old to cur of the link name.
func (lt *linkTracker) count(name string, old, cur linkState) {
	switch {
	case old.up && !cur.up:
		lt.changes.WithLabelValues(name, changeDown).Inc()
	case !old.up && cur.up:
		lt.changes.WithLabelValues(name, changeUp).Inc()
	}
	for _, a := range cur.usable {
		if _, found := slices.BinarySearchFunc(old.usable, a, netip.Addr.Compare); !found {
			lt.changes.WithLabelValues(name, changeAddrUsable).Inc()
		}
	}
	for _, a := range old.usable {
		if _, found := slices.BinarySearchFunc(cur.usable, a, netip.Addr.Compare); !found {
			lt.changes.WithLabelValues(name, changeAddrGone).Inc()
		}
	}
}

// Describe implements prometheus.Collector.
func (lt *linkTracker) Describe(ch chan<- *prometheus.Desc) {
	ch <- linkUp
	ch <- linkUsableAddrs
	lt.changes.Describe(ch)
}

// Collect implements prometheus.Collector.
func (lt *linkTracker) Collect(ch chan<- prometheus.Metric) {
	lt.mu.Lock()
	links := make([]linkState, 0, len(lt.links))
	for _, s := range lt.links {
		if s.included {
			links = append(links, s)
		}
	}
	lt.mu.Unlock()
	slices.SortFunc(links, func(a, b linkState) int { return cmp.Compare(a.name, b.name) })
	for _, s := range links {
		ch <- prometheus.MustNewConstMetric(linkUp, prometheus.GaugeValue, boolFloat(s.up), s.name, s.kind)
		ch <- prometheus.MustNewConstMetric(linkUsableAddrs, prometheus.GaugeValue, float64(len(s.usable)), s.name, s.kind)
	}
	lt.changes.Collect(ch)
}
