package peeraddr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Refusal says why a connection may not follow an announced address;
// Accepted (the zero Refusal) means it may.
type Refusal uint8

// Refusals, in the order Check tries them.
const (
	Accepted Refusal = iota
	// RefusedClass: the address is not a peer's (unspecified, loopback,
	// link-local, multicast, the limited broadcast, reserved).
	RefusedClass
	// RefusedOwn: one of this host's addresses.
	RefusedOwn
	// RefusedBroadcast: the directed broadcast of one of this host's
	// IPv4 subnets.
	RefusedBroadcast
	// RefusedDenied: in a prefix of Config.Deny.
	RefusedDenied
	// RefusedNotAllowed: outside the prefixes of a non-empty
	// Config.Allow.
	RefusedNotAllowed
	// RefusedPrivate: more private than the connection's initial peer
	// address (Class.Reach), and not in Config.Allow.
	RefusedPrivate
	// RefusedPort: a port other than the connection's own, which
	// Config.Ports does not list.
	RefusedPort
	// NumRefusals is the number of Refusals, Accepted included.
	NumRefusals
)

var refusalNames = [NumRefusals]string{
	Accepted:          "accepted",
	RefusedClass:      "class",
	RefusedOwn:        "own_address",
	RefusedBroadcast:  "directed_broadcast",
	RefusedDenied:     "denied",
	RefusedNotAllowed: "not_allowed",
	RefusedPrivate:    "more_private",
	RefusedPort:       "port",
}

// String returns the refusal's name, as metrics label it: "accepted",
// "class", "own_address", "directed_broadcast", "denied", "not_allowed",
// "more_private" or "port".
func (r Refusal) String() string {
	if r < NumRefusals {
		return refusalNames[r]
	}
	return fmt.Sprintf("refusal(%d)", r)
}

// Refusals returns every Refusal but Accepted, in order.
func Refusals() []Refusal {
	out := make([]Refusal, 0, NumRefusals-1)
	for r := Accepted + 1; r < NumRefusals; r++ {
		out = append(out, r)
	}
	return out
}

// DefaultTries is Config.Tries when it is 0: like the in-kernel path
// manager, an announced address is tried once.
const DefaultTries = 1

// MaxTries bounds Config.Tries.
const MaxTries = 10

// Config is the peer-address policy. The zero Config is the default: the
// connection's own port only, no allowed or denied prefixes, one try.
type Config struct {
	// Allow, when not empty, are the only prefixes announced addresses
	// may be in; an address in one of them may be more private than the
	// connection's initial peer address.
	Allow []netip.Prefix
	// Deny are prefixes announced addresses may not be in; they win over
	// Allow.
	Deny []netip.Prefix
	// Ports are the ports an announce may name besides the connection's
	// own; AnyPort allows every port.
	Ports   []uint16
	AnyPort bool
	// Tries is how many times a path to an announced address is tried
	// before the address is given up, until a subflow to it was once
	// established; 0 means DefaultTries.
	Tries int
}

// Validate reports the first field of c that is wrong, by its name.
func (c Config) Validate() error {
	for i, p := range c.Allow {
		if err := checkPrefix(p); err != nil {
			return fmt.Errorf("peeraddr: allow[%d]: %w", i, err)
		}
	}
	for i, p := range c.Deny {
		if err := checkPrefix(p); err != nil {
			return fmt.Errorf("peeraddr: deny[%d]: %w", i, err)
		}
	}
	for i, p := range c.Ports {
		if p == 0 {
			return fmt.Errorf("peeraddr: ports[%d]: 0 is not a port", i)
		}
	}
	if c.Tries < 0 || c.Tries > MaxTries {
		return fmt.Errorf("peeraddr: tries: %d is not in 0..%d (0 means %d)", c.Tries, MaxTries, DefaultTries)
	}
	return nil
}

func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("not a prefix")
	case p.Addr().Is4In6():
		return fmt.Errorf("%s is IPv4-mapped; write the IPv4 prefix", p)
	case p.Addr().Zone() != "":
		return fmt.Errorf("%s has a zone", p)
	}
	return nil
}

// TriesOrDefault returns Tries, or DefaultTries when it is 0.
func (c Config) TriesOrDefault() int {
	if c.Tries == 0 {
		return DefaultTries
	}
	return c.Tries
}

// Host is what the checks know of this host: its addresses and the
// directed broadcasts of its IPv4 subnets. The zero Host has none.
type Host struct {
	own        map[netip.Addr]bool
	broadcasts map[netip.Addr]netip.Prefix
}

// NewHost returns the Host with the addresses of prefixes (an address
// and the length of its subnet, as `ip address` shows them), of any
// link, usable or not.
func NewHost(prefixes []netip.Prefix) *Host {
	h := &Host{own: make(map[netip.Addr]bool, len(prefixes)), broadcasts: make(map[netip.Addr]netip.Prefix)}
	for _, p := range prefixes {
		a, bits := p.Addr().WithZone(""), p.Bits()
		if a.Is4In6() {
			a, bits = a.Unmap(), bits-96
		}
		if !a.IsValid() {
			continue
		}
		h.own[a] = true
		// An IPv4 subnet of at most /30 has a directed broadcast, as
		// the kernel's local table shows.
		if a.Is4() && bits >= 0 && bits < 31 {
			p := netip.PrefixFrom(a, bits).Masked()
			b := p.Addr().As4()
			v := binary.BigEndian.Uint32(b[:]) | ^uint32(0)>>bits
			binary.BigEndian.PutUint32(b[:], v)
			h.broadcasts[netip.AddrFrom4(b)] = p
		}
	}
	return h
}

// Own reports whether a is one of the host's addresses.
func (h *Host) Own(a netip.Addr) bool {
	return h != nil && h.own[a.Unmap().WithZone("")]
}

// Check returns whether the peer of a connection whose initial peer
// address and port are initial may make this host (h) connect to ap, an
// address and port it announced, and when not, why, in a sentence for
// logs. An announced port of 0 is the connection's own.
func (c *Config) Check(h *Host, initial, ap netip.AddrPort) (Refusal, string) {
	a := ap.Addr().Unmap().WithZone("")
	port := ap.Port()
	if port == 0 {
		port = initial.Port()
	}
	in := initial.Addr().Unmap()
	cls := Classify(a)
	switch {
	case !cls.Routed():
		return RefusedClass, fmt.Sprintf("%s is %s %s address", a, cls.article(), cls)
	case h.Own(a):
		return RefusedOwn, fmt.Sprintf("%s is an address of this host", a)
	}
	if h != nil {
		if p, ok := h.broadcasts[a]; ok {
			return RefusedBroadcast, fmt.Sprintf("%s is the broadcast address of this host's subnet %s", a, p)
		}
	}
	if i := slices.IndexFunc(c.Deny, func(p netip.Prefix) bool { return p.Contains(a) }); i >= 0 {
		return RefusedDenied, fmt.Sprintf("%s is in the denied prefix %s", a, c.Deny[i])
	}
	allowed := slices.ContainsFunc(c.Allow, func(p netip.Prefix) bool { return p.Contains(a) })
	switch {
	case len(c.Allow) > 0 && !allowed:
		return RefusedNotAllowed, fmt.Sprintf("%s is in none of the allowed prefixes", a)
	case !allowed && cls.Reach() > Classify(in).Reach():
		return RefusedPrivate, fmt.Sprintf("%s is %s %s address, more private than the peer's %s address %s",
			a, cls.article(), cls, Classify(in), in)
	case port != initial.Port() && !c.AnyPort && !slices.Contains(c.Ports, port):
		return RefusedPort, fmt.Sprintf("port %d is not the connection's port %d", port, initial.Port())
	}
	return Accepted, ""
}
