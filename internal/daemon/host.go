package daemon

import (
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/policy"
)

// hostView turns the link monitor's States into the links and addresses
// of the engine's view, remembering since when each link and address has
// been up and usable (policy.Link.Changed, policy.LocalAddr.Changed); what
// the first State holds has an unknown (zero) time. It belongs to the one
// goroutine that feeds the engine.
type hostView struct {
	started bool
	links   map[int32]since
	addrs   map[addrKey]since
}

// addrKey identifies an address: the same prefix may sit on two links.
type addrKey struct {
	link   int
	prefix netip.Prefix
}

// since is whether a link or address is up or usable, and since when.
type since struct {
	up, usable bool
	at         time.Time
}

func newHostView() *hostView {
	return &hostView{links: map[int32]since{}, addrs: map[addrKey]since{}}
}

// convert returns the view of st at now.
func (h *hostView) convert(st linkmon.State, now time.Time) ([]policy.Link, []policy.LocalAddr) {
	if !h.started {
		h.started, now = true, time.Time{}
	}
	links := make([]policy.Link, 0, len(st.Links))
	seen := make(map[int32]since, len(st.Links))
	for _, l := range st.Links {
		idx := int32(l.Index)
		s := since{up: l.Up, usable: l.Up && l.Included}
		s.at = changedAt(h.links, idx, s, now)
		seen[idx] = s
		links = append(links, policy.Link{
			Name:    l.Name,
			Index:   idx,
			Kind:    policyKind(l.Kind),
			Up:      s.up,
			Usable:  s.usable,
			Changed: s.at,
		})
	}
	slices.SortFunc(links, func(a, b policy.Link) int { return int(a.Index - b.Index) })
	h.links = seen

	addrs := make([]policy.LocalAddr, 0, len(st.Addrs))
	seenAddrs := make(map[addrKey]since, len(st.Addrs))
	for _, a := range st.Addrs {
		key := addrKey{a.LinkIndex, a.Prefix}
		s := since{usable: a.Usable}
		s.at = changedAt(h.addrs, key, s, now)
		seenAddrs[key] = s
		name := ""
		if l, ok := st.Links[a.LinkIndex]; ok {
			name = l.Name
		}
		addrs = append(addrs, policy.LocalAddr{
			Addr:      a.Prefix.Addr().Unmap(),
			PrefixLen: a.Prefix.Bits(),
			Link:      name,
			IfIndex:   int32(a.LinkIndex),
			Usable:    a.Usable,
			Reason:    a.Reason,
			Changed:   s.at,
		})
	}
	h.addrs = seenAddrs
	return links, addrs
}

// changedAt returns when the thing at key entered state s: its old time
// if it was in s before, else now.
func changedAt[K comparable](old map[K]since, key K, s since, now time.Time) time.Time {
	if o, ok := old[key]; ok && o.up == s.up && o.usable == s.usable {
		return o.at
	}
	return now
}

// policyKind maps a link monitor kind to the view's; a loopback link is
// virtual to policies.
func policyKind(k linkmon.Kind) policy.LinkKind {
	switch k {
	case linkmon.KindWired:
		return policy.LinkWired
	case linkmon.KindWifi:
		return policy.LinkWiFi
	case linkmon.KindCellular:
		return policy.LinkCellular
	case linkmon.KindVirtual, linkmon.KindLoopback:
		return policy.LinkVirtual
	}
	return policy.LinkUnknown
}
