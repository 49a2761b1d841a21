package fullmesh

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Kernel implements policy.Policy. Every usable address becomes an
// endpoint bound to its device, with the flags of the configured role,
// up to policy.MaxEndpoints counting those already in next; an address
// that has an endpoint in next keeps that one. The limits are set from
// the configuration.
func (f *FullMesh) Kernel(v policy.View, next policy.KernelPlan) policy.KernelPlan {
	have := make(map[netip.Addr]bool, len(next.Endpoints))
	for _, e := range next.Endpoints {
		have[e.Addr] = true
	}
	for _, a := range f.locals(v) {
		if len(next.Endpoints) >= policy.MaxEndpoints {
			break
		}
		if have[a.Addr] {
			continue
		}
		e := policy.Endpoint{Addr: a.Addr, Dev: a.Link, IfIndex: a.IfIndex}
		switch f.cfg.Role {
		case RoleClient:
			e.Subflow, e.Fullmesh = true, true
		case RoleServer:
			e.Signal = true
		case RoleBoth:
			e.Signal, e.Subflow = true, true
		}
		next.Endpoints = append(next.Endpoints, e)
	}
	if l := f.cfg.Limits.Subflows; l != nil {
		next.Limits.Subflows = new(*l)
	}
	if l := f.cfg.Limits.AddAddrAccepted; l != nil {
		next.Limits.AddAddrAccepted = new(*l)
	}
	return next
}

// Conn implements policy.Policy. It keeps the paths in next and adds:
//
//   - on the client side, the initial path while its address is usable,
//     then every usable local address × every known peer address of the
//     same family, up to max_subflows besides the initial path: live
//     subflows first, then pairs that bring new local and peer addresses
//     into use, then the rest;
//   - on the server side, the subflows the peer opened, and with announce
//     the usable addresses other than the initial one as announces.
//
// A connection of unknown side (policy.SideAny) is taken as client-side.
func (f *FullMesh) Conn(v policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	m := newMesh(v, c, next, f.locals(v))
	m.deferral = policy.DeferJoins(c, f.cfg.JoinDelay, f.cfg.JoinBytes)
	if c.Side == policy.SideServer {
		m.keepSubflows()
		if f.cfg.Announce {
			next.Announces = m.announces(next.Announces)
		}
	} else {
		m.keepInitial()
		m.fill(f.peers(c), f.cfg.MaxSubflows)
	}
	next.Paths = m.paths
	return next
}

// locals returns the usable global-unicast addresses of the configured
// families, once each, spread over the links: the first address of every
// link (by interface index), then the second of every link, and so on;
// a link's addresses in address order (IPv4 first). A cap on the result
// then takes from every link before it takes a second address from any.
func (f *FullMesh) locals(v policy.View) []policy.LocalAddr {
	type ranked struct {
		policy.LocalAddr
		rank int // the address's place among its link's
	}
	var as []ranked
	for _, a := range v.Addrs {
		if !v.Usable(a) {
			continue
		}
		a.Addr = a.Addr.Unmap()
		if !a.Addr.IsGlobalUnicast() || !f.family(a.Addr) ||
			slices.ContainsFunc(as, func(r ranked) bool { return r.Addr == a.Addr }) {
			continue
		}
		as = append(as, ranked{LocalAddr: a})
	}
	byLink := func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.IfIndex, b.IfIndex), cmp.Compare(a.Link, b.Link), a.Addr.Compare(b.Addr))
	}
	slices.SortFunc(as, byLink)
	for i := 1; i < len(as); i++ {
		if as[i].IfIndex == as[i-1].IfIndex && as[i].Link == as[i-1].Link {
			as[i].rank = as[i-1].rank + 1
		}
	}
	slices.SortFunc(as, func(a, b ranked) int { return cmp.Or(cmp.Compare(a.rank, b.rank), byLink(a, b)) })
	out := make([]policy.LocalAddr, len(as))
	for i, a := range as {
		out[i] = a.LocalAddr
	}
	return out
}

func (f *FullMesh) family(a netip.Addr) bool {
	switch f.cfg.Families {
	case FamiliesIPv4:
		return a.Is4()
	case FamiliesIPv6:
		return a.Is6()
	}
	return true
}

// peers returns the peer's global-unicast addresses of the configured
// families, the initial one first, then by id, once each; a port of 0 is
// the initial port.
func (f *FullMesh) peers(c policy.Conn) []netip.AddrPort {
	initial := unmap(c.Remote)
	ps := append([]policy.PeerAddr{{Addr: initial}}, c.PeerAddrs...)
	slices.SortStableFunc(ps[1:], func(a, b policy.PeerAddr) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), a.Addr.Compare(b.Addr))
	})
	var out []netip.AddrPort
	for _, p := range ps {
		ap := unmap(p.Addr)
		if ap.Port() == 0 {
			ap = netip.AddrPortFrom(ap.Addr(), initial.Port())
		}
		if !ap.Addr().IsGlobalUnicast() || ap.Port() == 0 || !f.family(ap.Addr()) || slices.Contains(out, ap) {
			continue
		}
		out = append(out, ap)
	}
	return out
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

type pathKey struct {
	local  netip.Addr
	remote netip.AddrPort
}

// mesh builds one connection's paths on top of those already proposed.
// A connection has a handful of addresses and paths, so it looks them up
// in the view's and the connection's slices: the engine calls Conn for
// every connection at every change, and maps would make each call
// allocate kilobytes.
type mesh struct {
	v       policy.View
	c       policy.Conn
	initial pathKey
	locals  []policy.LocalAddr // the usable locals
	paths   []policy.Path
	extra   int // paths other than the initial one
	// deferral holds the new extra paths and the announces back
	// (join_delay, join_bytes).
	deferral policy.Deferral
}

func newMesh(v policy.View, c policy.Conn, next policy.ConnPlan, locals []policy.LocalAddr) mesh {
	m := mesh{
		v:       v,
		c:       c,
		initial: pathKey{c.Local.Addr().Unmap(), unmap(c.Remote)},
		locals:  locals,
		paths:   next.Paths,
	}
	for _, p := range next.Paths {
		m.count(keyOf(p))
	}
	return m
}

func keyOf(p policy.Path) pathKey { return pathKey{p.Local.Unmap(), unmap(p.Remote)} }

// count counts the path k, now in m.paths.
func (m *mesh) count(k pathKey) {
	if k != m.initial {
		m.extra++
	}
}

// have reports whether the plan has the path k.
func (m *mesh) have(k pathKey) bool {
	return slices.ContainsFunc(m.paths, func(p policy.Path) bool { return keyOf(p) == k })
}

// usedLocal and usedRemote report whether a path of the plan is from the
// local address or to the peer address.
func (m *mesh) usedLocal(a netip.Addr) bool {
	return slices.ContainsFunc(m.paths, func(p policy.Path) bool { return p.Local.Unmap() == a })
}

func (m *mesh) usedRemote(r netip.AddrPort) bool {
	return slices.ContainsFunc(m.paths, func(p policy.Path) bool { return unmap(p.Remote) == r })
}

// usable reports whether a is one of the usable locals.
func (m *mesh) usable(a netip.Addr) bool {
	return slices.ContainsFunc(m.locals, func(l policy.LocalAddr) bool { return l.Addr == a })
}

// listed returns the view's last entry for the address a, with Usable
// set when any entry of a is usable.
func (m *mesh) listed(a netip.Addr) (policy.LocalAddr, bool) {
	for i := len(m.v.Addrs) - 1; i >= 0; i-- {
		if l := m.v.Addrs[i]; l.Addr.Unmap() == a {
			l.Usable = slices.ContainsFunc(m.v.Addrs, func(o policy.LocalAddr) bool {
				return o.Addr.Unmap() == a && m.v.Usable(o)
			})
			return l, true
		}
	}
	return policy.LocalAddr{}, false
}

// live returns the connection's last subflow on the path k.
func (m *mesh) live(k pathKey) (policy.Subflow, bool) {
	for i := len(m.c.Subflows) - 1; i >= 0; i-- {
		s := m.c.Subflows[i]
		if (pathKey{s.Local.Addr().Unmap(), unmap(s.Remote)}) == k {
			return s, true
		}
	}
	return policy.Subflow{}, false
}

// add appends the path k unless it is already there, with the deferral
// when it is an extra path without a subflow.
func (m *mesh) add(k pathKey, backup bool) {
	if m.have(k) {
		return
	}
	m.count(k)
	p := policy.Path{Local: k.local, Remote: k.remote, Backup: backup}
	if _, live := m.live(k); !live && k != m.initial {
		p.Deferral = m.deferral
	}
	if a, ok := m.listed(k.local); ok {
		p.Dev, p.IfIndex = a.Link, a.IfIndex
	} else if s, ok := m.live(k); ok {
		p.IfIndex = s.IfIndex
	}
	m.paths = append(m.paths, p)
}

// keepable reports whether a live subflow from local may stay: the view
// does not list its address as unusable. Addresses the view does not list
// (loopback) are not fullmesh's to judge.
func (m *mesh) keepable(local netip.Addr) bool {
	a, ok := m.listed(local)
	return !ok || a.Usable
}

// keepInitial adds the initial path: kept while its subflow lives and its
// address is usable, re-created when its address is usable again unless
// the peer denies joins to its initial address and port.
func (m *mesh) keepInitial() {
	k := m.initial
	if !k.local.IsValid() || !k.remote.IsValid() {
		return
	}
	_, live := m.live(k)
	if (live && m.keepable(k.local)) || (!live && m.usable(k.local) && !m.c.DenyJoinID0) {
		m.add(k, false)
	}
}

// keepSubflows adds every live subflow whose address is still usable,
// with its current backup bit: on the server side the peer chooses paths.
func (m *mesh) keepSubflows() {
	keys := make([]pathKey, 0, len(m.c.Subflows))
	for _, s := range m.c.Subflows {
		keys = append(keys, pathKey{s.Local.Addr().Unmap(), unmap(s.Remote)})
	}
	slices.SortFunc(keys, comparePaths)
	for _, k := range slices.Compact(keys) {
		if k.local.IsValid() && k.remote.IsValid() && m.keepable(k.local) {
			s, _ := m.live(k)
			m.add(k, s.Backup)
		}
	}
}

func comparePaths(a, b pathKey) int {
	return cmp.Or(a.local.Compare(b.local), a.remote.Compare(b.remote))
}

// fill adds local × peer pairs of one family until limit paths besides the
// initial one: live subflows first, then pairs whose local and peer
// addresses are both unused, then those with one unused, then the rest,
// each pass in locals × peers order.
func (m *mesh) fill(peers []netip.AddrPort, limit int) {
	var cands []pathKey
	for _, l := range m.locals {
		for _, r := range peers {
			k := pathKey{l.Addr, r}
			switch {
			case l.Addr.Is4() != r.Addr().Is4():
			case k == m.initial:
			case m.c.DenyJoinID0 && r == m.initial.remote:
			case m.have(k):
			default:
				cands = append(cands, k)
			}
		}
	}
	take := func(ok func(pathKey) bool) {
		for _, k := range cands {
			if m.extra >= limit {
				return
			}
			if !m.have(k) && ok(k) {
				m.add(k, false)
			}
		}
	}
	take(func(k pathKey) bool { _, live := m.live(k); return live })
	take(func(k pathKey) bool { return !m.usedLocal(k.local) && !m.usedRemote(k.remote) })
	take(func(k pathKey) bool { return !m.usedLocal(k.local) || !m.usedRemote(k.remote) })
	take(func(pathKey) bool { return true })
}

// announces returns next with the usable addresses other than the initial
// one appended, up to policy.MaxEndpoints in all.
func (m *mesh) announces(next []policy.Announce) []policy.Announce {
	n := len(next)
	for _, a := range m.locals {
		if len(next) >= policy.MaxEndpoints {
			break
		}
		if a.Addr == m.initial.local ||
			slices.ContainsFunc(next[:n], func(o policy.Announce) bool { return o.Addr.Unmap() == a.Addr }) {
			continue
		}
		next = append(next, policy.Announce{Addr: a.Addr, Dev: a.Link, IfIndex: a.IfIndex, Deferral: m.deferral})
	}
	return next
}
