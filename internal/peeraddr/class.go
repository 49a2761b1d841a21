package peeraddr

import (
	"fmt"
	"net/netip"
)

// Class is what kind of address an address is.
type Class uint8

// Classes. Public is the zero Class.
const (
	// Public: global unicast, routed on the Internet (the documentation
	// ranges included).
	Public Class = iota
	// Private: RFC 1918 (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16), the
	// deprecated IPv6 site-local fec0::/10 and the NAT64 local-use
	// prefix 64:ff9b:1::/48.
	Private
	// Shared: RFC 6598's 100.64.0.0/10, the space of carrier-grade NAT.
	Shared
	// UniqueLocal: IPv6 unique local addresses, fc00::/7.
	UniqueLocal
	// LinkLocal: 169.254.0.0/16 and fe80::/10.
	LinkLocal
	// Loopback: 127.0.0.0/8 and ::1.
	Loopback
	// Unspecified: 0.0.0.0/8 ("this network") and ::.
	Unspecified
	// Multicast: 224.0.0.0/4 and ff00::/8.
	Multicast
	// Broadcast: 255.255.255.255, the limited broadcast.
	Broadcast
	// Reserved: 240.0.0.0/4 (but the broadcast), IPv4-compatible IPv6
	// (::/96) and the IPv6 discard prefix 100::/64; the zero Addr too.
	Reserved
	numClasses
)

var classNames = [numClasses]string{
	Public:      "public",
	Private:     "private",
	Shared:      "shared",
	UniqueLocal: "unique-local",
	LinkLocal:   "link-local",
	Loopback:    "loopback",
	Unspecified: "unspecified",
	Multicast:   "multicast",
	Broadcast:   "broadcast",
	Reserved:    "reserved",
}

// String returns the class's name: "public", "private", "shared",
// "unique-local", "link-local", "loopback", "unspecified", "multicast",
// "broadcast" or "reserved".
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", c)
}

// article returns "a" or "an", for the class's name.
func (c Class) article() string {
	if c == Unspecified {
		return "an"
	}
	return "a"
}

// Routed reports whether addresses of c are routed beyond a link: public,
// private, shared or unique local. Only those may be announced.
func (c Class) Routed() bool { return c < LinkLocal }

// Reach is how far an address of a class is reachable: 0 public, 1 within
// a private network (private, shared, unique local), 2 within a link, 3
// within the host; -1 for a class that is not unicast. An address is more
// private than another when its reach is greater.
func (c Class) Reach() int {
	switch c {
	case Public:
		return 0
	case Private, Shared, UniqueLocal:
		return 1
	case LinkLocal:
		return 2
	case Loopback:
		return 3
	}
	return -1
}

// The prefixes Classify looks up; those of netip's own predicates
// (IsPrivate, IsLoopback, ...) are not repeated.
var (
	thisNetwork  = netip.MustParsePrefix("0.0.0.0/8")
	shared       = netip.MustParsePrefix("100.64.0.0/10")
	reserved4    = netip.MustParsePrefix("240.0.0.0/4")
	siteLocal    = netip.MustParsePrefix("fec0::/10")
	compatible   = netip.MustParsePrefix("::/96")
	discard      = netip.MustParsePrefix("100::/64")
	nat64        = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local   = netip.MustParsePrefix("64:ff9b:1::/48")
	limitedBcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// Classify returns the class of a. An IPv4-mapped IPv6 address is classed
// as its IPv4 address, a NAT64 well-known address (64:ff9b::/96) as the
// IPv4 address it embeds; a zone is ignored.
func Classify(a netip.Addr) Class {
	a = a.Unmap().WithZone("")
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !a.IsValid():
		return Reserved
	case a.IsUnspecified():
		return Unspecified
	case a.IsLoopback():
		return Loopback
	case a.IsMulticast():
		return Multicast
	case a.IsLinkLocalUnicast():
		return LinkLocal
	case a.Is4():
		return classify4(a)
	}
	return classify6(a)
}

func classify4(a netip.Addr) Class {
	switch {
	case a == limitedBcast:
		return Broadcast
	case thisNetwork.Contains(a):
		return Unspecified
	case reserved4.Contains(a):
		return Reserved
	case a.IsPrivate():
		return Private
	case shared.Contains(a):
		return Shared
	}
	return Public
}

func classify6(a netip.Addr) Class {
	switch {
	case compatible.Contains(a), discard.Contains(a):
		return Reserved
	case a.IsPrivate():
		return UniqueLocal
	case siteLocal.Contains(a), nat64Local.Contains(a):
		return Private
	}
	return Public
}
