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
}

func newTable(cfg *config, sysfs func(string) (sysInfo, error)) *table {
	t := &table{cfg: cfg, sysfs: sysfs}
	t.reset()
	return t
}

func (t *table) reset() {
	t.links = make(map[int]*linkEntry)
	t.addrs = make(map[addrKey]addrMsg)
	t.routes = make(map[routeKey]map[nexthop]hopInfo)
	t.routed = make(map[linkFamily]int)
}

// apply changes the table by one message. It returns false when the
// message cannot have changed the State: a routes listing that leaves every
// link's routes as they were.
func (t *table) apply(m msg) bool {
	switch m := m.(type) {
	case linkMsg:
		t.applyLink(m)
	case addrMsg:
		t.applyAddr(m)
	case routeMsg:
		t.applyRoute(m)
	case routesMsg:
		before := t.routed
		t.routes = make(map[routeKey]map[nexthop]hopInfo)
		t.routed = make(map[linkFamily]int)
		for _, r := range m.routes {
			t.applyRoute(r)
		}
		return !maps.Equal(before, t.routed)
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
	}
	return true
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

// state builds the State the table describes.
func (t *table) state() State {
	s := State{Links: make(map[int]Link, len(t.links)), Addrs: make([]Addr, 0, len(t.addrs))}
	for i, e := range t.links {
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
		s.Links[i] = l
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
