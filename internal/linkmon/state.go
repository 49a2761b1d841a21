package linkmon

import (
	"bytes"
	"cmp"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Link is one network interface.
type Link struct {
	Index        int
	Name         string
	Kind         Kind
	Type         string // rtnetlink link type: "device" for a driver's own netdev, "veth", "bridge", ...
	Up           bool   // operationally up: oper state up, or unknown with IFF_UP and IFF_LOWER_UP
	MTU          int
	HardwareAddr net.HardwareAddr

	// Included reports whether the Config's filters let the link's addresses
	// be used; Reason says why not ("excluded by kind virtual").
	Included bool
	Reason   string

	// HasRoute4 and HasRoute6 report whether the link has a route out for
	// IPv4 and IPv6, under the rule in the package documentation.
	HasRoute4, HasRoute6 bool
}

// equal reports whether l and o are the same.
func (l Link) equal(o Link) bool {
	return l.Index == o.Index && l.Name == o.Name && l.Kind == o.Kind && l.Type == o.Type &&
		l.Up == o.Up && l.MTU == o.MTU && bytes.Equal(l.HardwareAddr, o.HardwareAddr) &&
		l.Included == o.Included && l.Reason == o.Reason &&
		l.HasRoute4 == o.HasRoute4 && l.HasRoute6 == o.HasRoute6
}

func (l Link) clone() Link {
	l.HardwareAddr = bytes.Clone(l.HardwareAddr)
	return l
}

// AddrFlags are the kernel's IFA_F_* address flags.
type AddrFlags uint32

// Address flags, with the values of linux/if_addr.h.
const (
	AddrTemporary      AddrFlags = 0x01 // IPv6 privacy address
	AddrNoDAD          AddrFlags = 0x02
	AddrOptimistic     AddrFlags = 0x04
	AddrDADFailed      AddrFlags = 0x08
	AddrHomeAddress    AddrFlags = 0x10
	AddrDeprecated     AddrFlags = 0x20
	AddrTentative      AddrFlags = 0x40
	AddrPermanent      AddrFlags = 0x80
	AddrManageTempAddr AddrFlags = 0x100
	AddrNoPrefixRoute  AddrFlags = 0x200
	AddrMcAutoJoin     AddrFlags = 0x400
	AddrStablePrivacy  AddrFlags = 0x800
)

var addrFlagNames = []struct {
	f    AddrFlags
	name string
}{
	{AddrTemporary, "temporary"}, {AddrNoDAD, "nodad"}, {AddrOptimistic, "optimistic"},
	{AddrDADFailed, "dadfailed"}, {AddrHomeAddress, "home"}, {AddrDeprecated, "deprecated"},
	{AddrTentative, "tentative"}, {AddrPermanent, "permanent"}, {AddrManageTempAddr, "mngtmpaddr"},
	{AddrNoPrefixRoute, "noprefixroute"}, {AddrMcAutoJoin, "autojoin"}, {AddrStablePrivacy, "stable-privacy"},
}

// String returns the flags as ip(8) names them, joined by "|"; bits without a
// name are printed in hex.
func (f AddrFlags) String() string {
	var names []string
	for _, n := range addrFlagNames {
		if f&n.f != 0 {
			names = append(names, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		names = append(names, "0x"+strconv.FormatUint(uint64(f), 16))
	}
	return strings.Join(names, "|")
}

// Scope is an address scope (RT_SCOPE_*).
type Scope uint8

// Address scopes, with the values of linux/rtnetlink.h.
const (
	ScopeGlobal  Scope = 0 // RT_SCOPE_UNIVERSE
	ScopeSite    Scope = 200
	ScopeLink    Scope = 253
	ScopeHost    Scope = 254
	ScopeNowhere Scope = 255
)

// String returns the scope as ip(8) names it.
func (s Scope) String() string {
	switch s {
	case ScopeGlobal:
		return "global"
	case ScopeSite:
		return "site"
	case ScopeLink:
		return "link"
	case ScopeHost:
		return "host"
	case ScopeNowhere:
		return "nowhere"
	}
	return strconv.Itoa(int(s))
}

// Addr is one address of a link.
type Addr struct {
	Prefix    netip.Prefix // the address and its prefix length
	LinkIndex int
	Flags     AddrFlags
	Scope     Scope

	// Usable reports whether the address may be an MPTCP endpoint now;
	// Reason says why not ("link down", "tentative", "no route", ...).
	Usable bool
	Reason string
}

// compareAddrs orders addresses by link index, then prefix.
func compareAddrs(a, b Addr) int {
	if c := cmp.Compare(a.LinkIndex, b.LinkIndex); c != 0 {
		return c
	}
	if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
}

// State is the monitored namespace's links and addresses. A State a Monitor
// hands out belongs to the receiver.
type State struct {
	Links map[int]Link // by interface index
	Addrs []Addr       // ordered by link index, then prefix
}

// Equal reports whether s and o hold the same links and addresses.
func (s State) Equal(o State) bool {
	return maps.EqualFunc(s.Links, o.Links, Link.equal) && slices.Equal(s.Addrs, o.Addrs)
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	c := State{Addrs: slices.Clone(s.Addrs)}
	if s.Links != nil {
		c.Links = make(map[int]Link, len(s.Links))
		for i, l := range s.Links {
			c.Links[i] = l.clone()
		}
	}
	return c
}

// UsableAddrs returns the usable addresses, in State order.
func (s State) UsableAddrs() []Addr {
	var out []Addr
	for _, a := range s.Addrs {
		if a.Usable {
			out = append(out, a)
		}
	}
	return out
}

// LinkByName returns the link named name.
func (s State) LinkByName(name string) (Link, bool) {
	for _, l := range s.Links {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// Delta is a change of State: the new State and what changed since the
// previous Delta the receiver got.
type Delta struct {
	// Initial marks the first Delta of a Monitor: State is the namespace as
	// it was when monitoring started, and Added lists its usable addresses.
	Initial bool

	State State

	// Added are addresses that became usable (new, or usable again).
	// Removed are addresses that stopped being usable: as they are now, with
	// their Reason, or with Reason "removed" when they are gone. Changed are
	// addresses usable before and after whose flags or scope changed.
	Added, Removed, Changed []Addr

	// Links are the links that appeared, disappeared or changed.
	Links []LinkChange
}

// LinkChange is one link's change. Old is the zero Link for a new link, New
// the zero Link for a removed one.
type LinkChange struct {
	Old, New Link
}

// Added reports whether the link is new.
func (c LinkChange) Added() bool { return c.Old.Index == 0 }

// Removed reports whether the link is gone.
func (c LinkChange) Removed() bool { return c.New.Index == 0 }

// AddrsChanged reports whether the set of usable addresses (or their flags)
// changed.
func (d Delta) AddrsChanged() bool {
	return len(d.Added)+len(d.Removed)+len(d.Changed) > 0
}

// LinksChanged reports whether any link appeared, disappeared or changed.
func (d Delta) LinksChanged() bool { return len(d.Links) > 0 }

// UsableAddrs returns the usable addresses of the new State.
func (d Delta) UsableAddrs() []Addr { return d.State.UsableAddrs() }

// String summarises the delta for logs, e.g.
// "+192.0.2.1/24 eth0; -198.51.100.1/24 eth1 (link down); link eth1 down".
func (d Delta) String() string {
	var parts []string
	if d.Initial {
		parts = append(parts, "initial")
	}
	name := func(a Addr) string {
		if l, ok := d.State.Links[a.LinkIndex]; ok {
			return l.Name
		}
		return "if" + strconv.Itoa(a.LinkIndex)
	}
	for _, a := range d.Added {
		parts = append(parts, "+"+a.Prefix.String()+" "+name(a))
	}
	for _, a := range d.Removed {
		parts = append(parts, "-"+a.Prefix.String()+" "+name(a)+" ("+a.Reason+")")
	}
	for _, a := range d.Changed {
		parts = append(parts, "~"+a.Prefix.String()+" "+name(a)+" ["+a.Flags.String()+"]")
	}
	for _, c := range d.Links {
		switch {
		case c.Added():
			parts = append(parts, "link "+c.New.Name+" added ("+c.New.Kind.String()+", "+upDown(c.New.Up)+")")
		case c.Removed():
			parts = append(parts, "link "+c.Old.Name+" removed")
		default:
			parts = append(parts, "link "+c.New.Name+" "+upDown(c.New.Up)+" ("+c.New.Kind.String()+")")
		}
	}
	if len(parts) == 0 {
		return "no usable address or link change"
	}
	return strings.Join(parts, "; ")
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// addrKey identifies an address: the same prefix may sit on two links.
type addrKey struct {
	link   int
	prefix netip.Prefix
}

// diff computes the Delta from old to new. The Delta's State is a copy of
// new, so the receiver may keep or change it.
func diff(old, new State, initial bool) Delta {
	d := Delta{Initial: initial, State: new.Clone()}
	before := make(map[addrKey]Addr, len(old.Addrs))
	for _, a := range old.Addrs {
		before[addrKey{a.LinkIndex, a.Prefix}] = a
	}
	seen := make(map[addrKey]bool, len(new.Addrs))
	for _, a := range new.Addrs {
		k := addrKey{a.LinkIndex, a.Prefix}
		seen[k] = true
		b, had := before[k]
		switch {
		case a.Usable && !(had && b.Usable):
			d.Added = append(d.Added, a)
		case !a.Usable && had && b.Usable:
			d.Removed = append(d.Removed, a)
		case a.Usable && (b.Flags != a.Flags || b.Scope != a.Scope):
			d.Changed = append(d.Changed, a)
		}
	}
	for _, b := range old.Addrs {
		if b.Usable && !seen[addrKey{b.LinkIndex, b.Prefix}] {
			b.Usable, b.Reason = false, "removed"
			d.Removed = append(d.Removed, b)
		}
	}
	slices.SortFunc(d.Removed, compareAddrs)

	for _, i := range slices.Sorted(maps.Keys(new.Links)) {
		n := new.Links[i]
		o, had := old.Links[i]
		if !had || !o.equal(n) {
			d.Links = append(d.Links, LinkChange{Old: o.clone(), New: n.clone()})
		}
	}
	for _, i := range slices.Sorted(maps.Keys(old.Links)) {
		if _, ok := new.Links[i]; !ok {
			d.Links = append(d.Links, LinkChange{Old: old.Links[i].clone()})
		}
	}
	return d
}
