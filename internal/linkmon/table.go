package linkmon

import (
	"bytes"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
)

// msg is one message from a source: a link, address or route change, or a
// snapshot that replaces everything.
type msg interface{ isMsg() }

// linkMsg is an RTM_NEWLINK or RTM_DELLINK.
type linkMsg struct {
	del    bool
	index  int
	name   string
	typ    string // link type, as vishvananda/netlink's Link.Type
	encap  string // ARPHRD name, as LinkAttrs.EncapType
	flags  uint32 // IFF_* (ifi_flags)
	oper   uint8  // IF_OPER_*
	mtu    int
	hw     net.HardwareAddr
	parent int // IFLA_LINK: the lower link of a vlan
}

// addrMsg is an RTM_NEWADDR or RTM_DELADDR.
type addrMsg struct {
	del    bool
	link   int
	prefix netip.Prefix
	flags  AddrFlags
	scope  Scope
}

// nexthop is where a route sends packets.
type nexthop struct {
	link int
	gw   netip.Addr // invalid when the destination is on-link
}

// routeMsg is an RTM_NEWROUTE or RTM_DELROUTE.
type routeMsg struct {
	del, replace bool
	family       int // afInet or afInet6
	table        int
	typ          int // RTN_*
	protocol     int // RTPROT_*
	cloned       bool
	dst          netip.Prefix // 0/0 (::/0) for a default route
	tos          int
	priority     int
	hops         []nexthop // one, or a multipath route's next hops
}

// snapshotMsg is a complete dump: the table is rebuilt from it.
type snapshotMsg struct {
	links  []linkMsg
	addrs  []addrMsg
	routes []routeMsg
}

// routesMsg is a complete dump of the routes: the table's routes are
// replaced by it. Sources send one after a link message and after an IPv4
// address deletion, because the kernel removes routes with both without
// reporting it (dropLink models the link's routes; kernels older than 2023
// also flush the routes whose preferred source was the address silently),
// and because the link, address and route notifications come on separate
// sockets and their order is lost: a link-down or an address deletion
// processed after the routes re-added by its undoing would otherwise leave
// them dropped.
type routesMsg struct {
	routes []routeMsg
}

func (linkMsg) isMsg()     {}
func (addrMsg) isMsg()     {}
func (routeMsg) isMsg()    {}
func (snapshotMsg) isMsg() {}
func (routesMsg) isMsg()   {}

// linkEntry is a link of the table with its sysfs facts.
type linkEntry struct {
	m   linkMsg
	sys sysInfo
}

// routeKey identifies a route within its table, as the kernel does.
type routeKey struct {
	family, table, tos, priority int
	dst                          netip.Prefix
}

// hopInfo is what the table keeps of one next hop of a route.
type hopInfo struct {
	multipath bool // one of several next hops of the route
}

// linkFamily indexes the per-link route counts.
type linkFamily struct {
	link   int
	family int
}

// table is the monitor's model of the namespace, fed by messages. Only the
// Run goroutine touches it.
type table struct {
	cfg   *config
	sysfs func(name string) (sysInfo, error)

	links map[int]*linkEntry
	addrs map[addrKey]addrMsg
	// routes holds the routes that give their link a way out (see
	// routeCounts); routed counts their next hops per link and family.
	routes map[routeKey]map[nexthop]hopInfo
	routed map[linkFamily]int

	// open holds the links with a change since endBurst that later
	// messages may complete (see effectPartial); openAll is set by a
	// snapshot.
	open    map[int]bool
	openAll bool
}

func newTable(cfg *config, sysfs func(string) (sysInfo, error)) *table {
	t := &table{cfg: cfg, sysfs: sysfs, open: make(map[int]bool)}
	t.reset()
	return t
}

func (t *table) reset() {
	t.links = make(map[int]*linkEntry)
	t.addrs = make(map[addrKey]addrMsg)
	t.routes = make(map[routeKey]map[nexthop]hopInfo)
	t.routed = make(map[linkFamily]int)
}

// effect is what applying one message did to the State the table
// describes, and so how long the monitor waits before reporting it.
type effect uint8

const (
	// effectNone: the message cannot have changed the State (a route that
	// does not count, a routes listing that leaves every link's routes as
	// they were); nothing to settle.
	effectNone effect = iota
	// effectComplete: the change is complete by itself; no message the
	// kernel sends with it can make an address it touched usable or
	// unusable again.
	effectComplete
	// effectPartial: messages that complete the change may follow (routes
	// around a link coming up, an address whose route comes after it, a
	// route deleted to be replaced); the table notes its links as open.
	effectPartial
)

// apply changes the table by one message and reports its effect.
func (t *table) apply(m msg) effect {
	switch m := m.(type) {
	case linkMsg:
		t.applyLink(m)
		e := t.links[m.index]
		if m.del || e == nil || !linkUp(e.m) {
			// A link that goes down or away makes its addresses
			// unusable, and nothing sent with it can make them usable:
			// its addresses and routes only go (seen on 6.18: the IPv6
			// addresses and routes are deleted around the link message).
			return effectComplete
		}
		return t.partial(m.index)
	case addrMsg:
		k := addrKey{m.link, m.prefix}
		wasUsable := t.addrUsable(k)
		t.applyAddr(m)
		switch {
		case m.del && wasUsable && m.prefix.Addr().Is6():
			// The kernel deletes the IPv6 addresses of a link set
			// down right after the link message, which the link
			// socket may deliver later (seen on 6.18): reported alone,
			// the deletion would show a State that never was, the
			// link up without its address.
			return t.partial(m.link)
		case m.del || t.addrUsable(k):
			// An address added usable, or deleted, is complete: its
			// local, prefix and broadcast routes come with it, in
			// either order, but do not count (see routeCounts) unless
			// connected routes do, and then they only add.
			return effectComplete
		}
		// Not usable yet: its link's state or route may follow.
		return t.partial(m.link)
	case routeMsg:
		keys := t.routeLinks(m)
		before := t.routeFlags(keys)
		t.applyRoute(m)
		after := t.routeFlags(keys)
		if maps.Equal(before, after) {
			return effectNone
		}
		return t.partial(t.routeOpen(!m.del && !m.replace, before, after)...)
	case routesMsg:
		before := t.routed
		t.routes = make(map[routeKey]map[nexthop]hopInfo)
		t.routed = make(map[linkFamily]int)
		for _, r := range m.routes {
			t.applyRoute(r)
		}
		had, has := presence(before), presence(t.routed)
		if maps.Equal(had, has) {
			return effectNone
		}
		for lf := range has {
			if _, ok := had[lf]; !ok {
				had[lf] = false
			}
		}
		return t.partial(t.routeOpen(false, had, has)...)
	case snapshotMsg:
		t.reset()
		for _, l := range m.links {
			t.applyLink(l)
		}
		for _, a := range m.addrs {
			t.applyAddr(a)
		}
		for _, r := range m.routes {
			t.applyRoute(r)
		}
		t.openAll = true
	}
	return effectPartial
}

// partial notes links as open and returns effectPartial, or effectComplete
// when there are none.
func (t *table) partial(links ...int) effect {
	if len(links) == 0 {
		return effectComplete
	}
	for _, l := range links {
		t.open[l] = true
	}
	return effectPartial
}

// complete reports whether the changes applied since endBurst are complete:
// no snapshot came, and every link a partial change left open has since gone
// down or away (nothing sent with a link going down can make its addresses
// usable again, so what was pending on it no longer matters). It is how the
// monitor learns that a route deletion the route socket delivered before
// the link's own down message is complete after all.
func (t *table) complete() bool {
	if t.openAll {
		return false
	}
	for l := range t.open {
		if e := t.links[l]; e != nil && linkUp(e.m) {
			return false
		}
	}
	return true
}

// endBurst forgets the open links: the monitor reported the State.
func (t *table) endBurst() {
	clear(t.open)
	t.openAll = false
}

// presence returns the links and families that have a route in routed.
func presence(routed map[linkFamily]int) map[linkFamily]bool {
	p := make(map[linkFamily]bool, len(routed))
	for lf := range routed {
		p[lf] = true
	}
	return p
}

// routeLinks returns the links and family whose routes m may change: those
// of its next hops and, when it deletes or replaces a route, those of the
// route's next hops in the table.
func (t *table) routeLinks(m routeMsg) []linkFamily {
	var lfs []linkFamily
	for _, h := range m.hops {
		lfs = append(lfs, linkFamily{h.link, m.family})
	}
	if m.del || m.replace {
		for h := range t.routes[routeKey{family: m.family, table: m.table, tos: m.tos, priority: m.priority, dst: m.dst}] {
			lfs = append(lfs, linkFamily{h.link, m.family})
		}
	}
	return lfs
}

// routeFlags reports, for each of lfs, whether the link has a route of the
// family.
func (t *table) routeFlags(lfs []linkFamily) map[linkFamily]bool {
	f := make(map[linkFamily]bool, len(lfs))
	for _, lf := range lfs {
		f[lf] = t.routed[lf] > 0
	}
	return f
}

// routeOpen returns the links a route message or listing, which changed the
// route flags of links from before to after (before has every link and
// family whose flag changed), leaves open. A link's change is complete when
// it is up and gained its first route of the family from a route added (one
// RTM_NEWROUTE, added is true; nothing follows it), or is down or gone and
// lost its route (the routes the kernel deletes after a link goes down,
// which nothing sent with them can undo). A route deleted from an up link may
// be replaced by the next message, one added to a down link comes with the
// link coming up (the kernel sends the connected routes before the link
// message), and a listing that gives a link its route corrects an order the
// sockets lost.
func (t *table) routeOpen(added bool, before, after map[linkFamily]bool) []int {
	var open []int
	for lf, had := range before {
		if after[lf] == had {
			continue
		}
		e := t.links[lf.link]
		up := e != nil && linkUp(e.m)
		if !(up && !had && added) && !(!up && had) {
			open = append(open, lf.link)
		}
	}
	return open
}

// addrUsable reports whether the address k of the table is usable.
func (t *table) addrUsable(k addrKey) bool {
	m, ok := t.addrs[k]
	if !ok {
		return false
	}
	e := t.links[k.link]
	if e == nil {
		return false
	}
	l := t.link(k.link, e)
	return unusable(Addr{Prefix: m.prefix, LinkIndex: m.link, Flags: m.flags, Scope: m.scope}, &l, t.cfg) == ""
}

func (t *table) applyLink(m linkMsg) {
	prev := t.links[m.index]
	if m.del {
		if prev != nil {
			delete(t.links, m.index)
			t.dropLink(m.index, false)
		}
		return
	}
	e := &linkEntry{m: m}
	if prev != nil {
		e.sys = prev.sys
		// The kernel flushes the IPv4 routes of a link that is set down
		// without telling anyone (seen on 6.18; IPv6 sends RTM_DELROUTE).
		if prev.m.flags&iffUp != 0 && m.flags&iffUp == 0 {
			t.dropLink(m.index, true)
		}
	}
	if prev == nil || prev.m.name != m.name || prev.m.typ != m.typ || !bytes.Equal(prev.m.hw, m.hw) {
		e.sys = t.readSysfs(m)
	}
	t.links[m.index] = e
}

// readSysfs returns the sysfs facts of link m, or none when sysfs has no such
// device or shows another namespace's device of the same name.
func (t *table) readSysfs(m linkMsg) sysInfo {
	if t.sysfs == nil {
		return sysInfo{}
	}
	si, err := t.sysfs(m.name)
	if err != nil {
		t.cfg.log.Debug("no sysfs facts", "link", m.name, "err", err)
		return sysInfo{}
	}
	if si.ifindex != m.index || (len(m.hw) > 0 && si.addr != m.hw.String()) {
		t.cfg.log.Debug("sysfs shows another namespace's device", "link", m.name,
			"ifindex", m.index, "sysfs_ifindex", si.ifindex)
		return sysInfo{}
	}
	return si
}

// dropLink forgets what the kernel removed with a link: its routes (only the
// IPv4 single-path ones when v4Down, the link being set down or its last
// IPv4 address deleted) and, when the link is gone, its addresses.
func (t *table) dropLink(index int, v4Down bool) {
	for k, hops := range t.routes {
		if v4Down && k.family != afInet {
			continue
		}
		for h, info := range hops {
			if h.link == index && !(v4Down && info.multipath) {
				t.delHop(k, h)
			}
		}
	}
	if v4Down {
		return
	}
	for k := range t.addrs {
		if k.link == index {
			delete(t.addrs, k)
		}
	}
}

func (t *table) applyAddr(m addrMsg) {
	k := addrKey{m.link, m.prefix}
	if m.del {
		if _, ok := t.addrs[k]; !ok {
			return
		}
		delete(t.addrs, k)
		// The kernel flushes the IPv4 routes through a link whose last
		// IPv4 address is deleted without telling anyone, as when the link
		// is set down (seen on 6.18: fib_inetaddr_event calls
		// fib_disable_ip).
		if m.prefix.Addr().Is4() && !t.hasAddr4(m.link) {
			t.dropLink(m.link, true)
		}
		return
	}
	t.addrs[k] = m
}

// hasAddr4 reports whether link index has an IPv4 address.
func (t *table) hasAddr4(index int) bool {
	for k := range t.addrs {
		if k.link == index && k.prefix.Addr().Is4() {
			return true
		}
	}
	return false
}

// routeCounts reports whether next hop h of route m gives its link a way out:
// a unicast route outside the local table that is a default route, goes
// through a gateway, or was not made by the kernel for an address (unless
// connected routes count).
func (t *table) routeCounts(m routeMsg, h nexthop) bool {
	if m.typ != rtnUnicast || m.table == rtTableLocal || m.cloned || h.link <= 0 {
		return false
	}
	return m.dst.Bits() == 0 || h.gw.IsValid() || m.protocol != rtprotKernel || t.cfg.connectedRoutes
}

func (t *table) applyRoute(m routeMsg) {
	if m.family != afInet && m.family != afInet6 {
		return
	}
	k := routeKey{family: m.family, table: m.table, tos: m.tos, priority: m.priority, dst: m.dst}
	if m.del || m.replace {
		hops := t.routes[k]
		if m.del && len(m.hops) > 0 {
			for _, h := range m.hops {
				if _, ok := hops[h]; ok {
					t.delHop(k, h)
				}
			}
		} else {
			for h := range hops {
				t.delHop(k, h)
			}
		}
		if m.del {
			return
		}
	}
	for _, h := range m.hops {
		if !t.routeCounts(m, h) {
			continue
		}
		hops := t.routes[k]
		if hops == nil {
			hops = make(map[nexthop]hopInfo)
			t.routes[k] = hops
		}
		if _, ok := hops[h]; !ok {
			t.routed[linkFamily{h.link, m.family}]++
		}
		hops[h] = hopInfo{multipath: len(m.hops) > 1}
	}
}

func (t *table) delHop(k routeKey, h nexthop) {
	hops := t.routes[k]
	delete(hops, h)
	if len(hops) == 0 {
		delete(t.routes, k)
	}
	lf := linkFamily{h.link, k.family}
	if t.routed[lf]--; t.routed[lf] <= 0 {
		delete(t.routed, lf)
	}
}

// kindOf classifies link index; depth bounds the walk down stacked vlans.
func (t *table) kindOf(index, depth int) Kind {
	e := t.links[index]
	if e == nil {
		return KindUnknown
	}
	f := linkFacts{name: e.m.name, typ: e.m.typ, encap: e.m.encap, flags: e.m.flags, sys: e.sys}
	if e.m.typ == "vlan" && depth < 8 && e.m.parent != index {
		f.parentKind = t.kindOf(e.m.parent, depth+1)
	}
	return classify(f, t.cfg.filter.cellular)
}

// linkUp reports whether a link is operationally up. Links whose driver does
// not report an operational state (loopback, tun, wireguard) count as up when
// they are administratively up with a carrier.
func linkUp(m linkMsg) bool {
	if m.oper == operUp {
		return true
	}
	return m.oper == operUnknown && m.flags&iffUp != 0 && m.flags&iffLowerUp != 0
}

// link builds the Link of entry e, link index i.
func (t *table) link(i int, e *linkEntry) Link {
	l := Link{
		Index:        i,
		Name:         e.m.name,
		Kind:         t.kindOf(i, 0),
		Type:         e.m.typ,
		Up:           linkUp(e.m),
		MTU:          e.m.mtu,
		HardwareAddr: bytes.Clone(e.m.hw),
		HasRoute4:    t.routed[linkFamily{i, afInet}] > 0,
		HasRoute6:    t.routed[linkFamily{i, afInet6}] > 0,
	}
	l.Reason = t.cfg.filter.check(l.Name, l.Kind)
	l.Included = l.Reason == ""
	return l
}

// state builds the State the table describes.
func (t *table) state() State {
	s := State{Links: make(map[int]Link, len(t.links)), Addrs: make([]Addr, 0, len(t.addrs))}
	for i, e := range t.links {
		s.Links[i] = t.link(i, e)
	}
	for _, m := range t.addrs {
		a := Addr{Prefix: m.prefix, LinkIndex: m.link, Flags: m.flags, Scope: m.scope}
		l, ok := s.Links[m.link]
		var lp *Link
		if ok {
			lp = &l
		}
		a.Reason = unusable(a, lp, t.cfg)
		a.Usable = a.Reason == ""
		s.Addrs = append(s.Addrs, a)
	}
	slices.SortFunc(s.Addrs, compareAddrs)
	return s
}

// unusable returns why address a on link l (nil if unknown) cannot be used,
// or "" when it can. The checks run in the order the package documentation
// lists them.
func unusable(a Addr, l *Link, cfg *config) string {
	ip := a.Prefix.Addr()
	switch {
	case l == nil:
		return "unknown link"
	case !l.Included:
		return l.Reason
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast() || ip.IsUnspecified():
		return "not unicast"
	case ip.Is6() && ip.IsPrivate() && !cfg.includeULA:
		return "ula"
	case ip.Is6() && a.Flags&AddrTemporary != 0 && !cfg.includeTemporary:
		return "temporary"
	case a.Scope != ScopeGlobal:
		return "scope " + a.Scope.String()
	case !l.Up:
		return "link down"
	case a.Flags&AddrDADFailed != 0:
		return "dad failed"
	case a.Flags&(AddrTentative|AddrOptimistic) != 0:
		return "tentative"
	case a.Flags&AddrDeprecated != 0:
		return "deprecated"
	case ip.Is4() && !l.HasRoute4, ip.Is6() && !l.HasRoute6:
		return "no route"
	}
	return ""
}

// logAttrs describes the table's size for logs.
func (t *table) logAttrs() []any {
	return []any{slog.Int("links", len(t.links)), slog.Int("addrs", len(t.addrs)), slog.Int("routes", len(t.routes))}
}
