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
	var as []policy.LocalAddr
	seen := make(map[netip.Addr]bool)
	for _, a := range v.UsableAddrs() {
		a.Addr = a.Addr.Unmap()
		if seen[a.Addr] || !a.Addr.IsGlobalUnicast() || !f.family(a.Addr) {
			continue
		}
		seen[a.Addr] = true
		as = append(as, a)
	}
	slices.SortFunc(as, func(a, b policy.LocalAddr) int {
		return cmp.Or(cmp.Compare(a.IfIndex, b.IfIndex), cmp.Compare(a.Link, b.Link), a.Addr.Compare(b.Addr))
	})
	rank := make([]int, len(as))
	for i := 1; i < len(as); i++ {
		if as[i].IfIndex == as[i-1].IfIndex && as[i].Link == as[i-1].Link {
			rank[i] = rank[i-1] + 1
		}
	}
	order := make([]int, len(as))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int { return cmp.Compare(rank[i], rank[j]) })
	out := make([]policy.LocalAddr, len(as))
	for i, o := range order {
		out[i] = as[o]
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
	seen := make(map[netip.AddrPort]bool)
	for _, p := range ps {
		ap := unmap(p.Addr)
		if ap.Port() == 0 {
			ap = netip.AddrPortFrom(ap.Addr(), initial.Port())
		}
		if seen[ap] || !ap.Addr().IsGlobalUnicast() || ap.Port() == 0 || !f.family(ap.Addr()) {
			continue
		}
		seen[ap] = true
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
type mesh struct {
	c       policy.Conn
	initial pathKey
	locals  []policy.LocalAddr
	local   map[netip.Addr]policy.LocalAddr // the usable locals
	listed  map[netip.Addr]policy.LocalAddr // every address of the view
	live    map[pathKey]policy.Subflow      // current subflows
	paths   []policy.Path
	have    map[pathKey]bool
	extra   int // paths other than the initial one
	usedL   map[netip.Addr]bool
	usedR   map[netip.AddrPort]bool
}

func newMesh(v policy.View, c policy.Conn, next policy.ConnPlan, locals []policy.LocalAddr) *mesh {
	m := &mesh{
		c:       c,
		initial: pathKey{c.Local.Addr().Unmap(), unmap(c.Remote)},
		locals:  locals,
		local:   make(map[netip.Addr]policy.LocalAddr, len(locals)),
		listed:  make(map[netip.Addr]policy.LocalAddr, len(v.Addrs)),
		live:    make(map[pathKey]policy.Subflow, len(c.Subflows)),
		paths:   next.Paths,
		have:    make(map[pathKey]bool),
		usedL:   make(map[netip.Addr]bool),
		usedR:   make(map[netip.AddrPort]bool),
	}
	for _, a := range locals {
		m.local[a.Addr] = a
	}
	usable := make(map[netip.Addr]bool)
	for _, a := range v.UsableAddrs() {
		usable[a.Addr.Unmap()] = true
	}
	for _, a := range v.Addrs {
		a.Usable = usable[a.Addr.Unmap()]
		m.listed[a.Addr.Unmap()] = a
	}
	for _, s := range c.Subflows {
		m.live[pathKey{s.Local.Addr().Unmap(), unmap(s.Remote)}] = s
	}
	for _, p := range next.Paths {
		m.mark(pathKey{p.Local.Unmap(), unmap(p.Remote)})
	}
	return m
}

func (m *mesh) mark(k pathKey) {
	m.have[k] = true
	m.usedL[k.local] = true
	m.usedR[k.remote] = true
	if k != m.initial {
		m.extra++
	}
}

// add appends the path k unless it is already there.
func (m *mesh) add(k pathKey, backup bool) {
	if m.have[k] {
		return
	}
	m.mark(k)
	p := policy.Path{Local: k.local, Remote: k.remote, Backup: backup}
	if a, ok := m.listed[k.local]; ok {
		p.Dev, p.IfIndex = a.Link, a.IfIndex
	} else if s, ok := m.live[k]; ok {
		p.IfIndex = s.IfIndex
	}
	m.paths = append(m.paths, p)
}

// keepable reports whether a live subflow from local may stay: the view
// does not list its address as unusable. Addresses the view does not list
// (loopback) are not fullmesh's to judge.
func (m *mesh) keepable(local netip.Addr) bool {
	a, ok := m.listed[local]
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
	_, live := m.live[k]
	_, usable := m.local[k.local]
	if (live && m.keepable(k.local)) || (!live && usable && !m.c.DenyJoinID0) {
		m.add(k, false)
	}
}

// keepSubflows adds every live subflow whose address is still usable,
// with its current backup bit: on the server side the peer chooses paths.
func (m *mesh) keepSubflows() {
	keys := make([]pathKey, 0, len(m.live))
	for k := range m.live {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, comparePaths)
	for _, k := range keys {
		if k.local.IsValid() && k.remote.IsValid() && m.keepable(k.local) {
			m.add(k, m.live[k].Backup)
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
			case m.have[k]:
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
			if !m.have[k] && ok(k) {
				m.add(k, false)
			}
		}
	}
	take(func(k pathKey) bool { _, live := m.live[k]; return live })
	take(func(k pathKey) bool { return !m.usedL[k.local] && !m.usedR[k.remote] })
	take(func(k pathKey) bool { return !m.usedL[k.local] || !m.usedR[k.remote] })
	take(func(pathKey) bool { return true })
}

// announces returns next with the usable addresses other than the initial
// one appended, up to policy.MaxEndpoints in all.
func (m *mesh) announces(next []policy.Announce) []policy.Announce {
	have := make(map[netip.Addr]bool, len(next))
	for _, a := range next {
		have[a.Addr.Unmap()] = true
	}
	for _, a := range m.locals {
		if len(next) >= policy.MaxEndpoints {
			break
		}
		if a.Addr == m.initial.local || have[a.Addr] {
			continue
		}
		next = append(next, policy.Announce{Addr: a.Addr, Dev: a.Link, IfIndex: a.IfIndex})
	}
	return next
}
