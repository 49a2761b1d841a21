package policytest

import (
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Host is a test host: the links and addresses of its views. Link and
// Addr return changed copies and leave h alone, so the cases of a table
// can start from one base host.
type Host struct {
	Links []policy.Link
	Addrs []policy.LocalAddr
}

// Local returns a, usable, on the link l.
func Local(a netip.Addr, l policy.Link) policy.LocalAddr {
	return policy.LocalAddr{Addr: a, Link: l.Name, IfIndex: l.Index, Usable: true}
}

// View returns the host's view for mode at now, with slices of its own.
func (h Host) View(mode policy.Mode, now time.Time) policy.View {
	return policy.View{Mode: mode, Now: now, Links: slices.Clone(h.Links), Addrs: slices.Clone(h.Addrs)}
}

// Link returns a copy of h in which f changed the link named name.
func (h Host) Link(name string, f func(*policy.Link)) Host {
	h.Links = slices.Clone(h.Links)
	for i := range h.Links {
		if h.Links[i].Name == name {
			f(&h.Links[i])
		}
	}
	return h
}

// Addr returns a copy of h in which f changed the address a.
func (h Host) Addr(a netip.Addr, f func(*policy.LocalAddr)) Host {
	h.Addrs = slices.Clone(h.Addrs)
	for i := range h.Addrs {
		if h.Addrs[i].Addr == a {
			f(&h.Addrs[i])
		}
	}
	return h
}
