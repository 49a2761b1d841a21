package peeraddr

import (
	"net/netip"
	"slices"
	"testing"
)

// addrAt reads an address from b at i: a length byte (4 or 16, else the
// zero Addr), then the address's bytes.
func addrAt(b []byte, i int) (netip.Addr, int) {
	if i >= len(b) {
		return netip.Addr{}, i
	}
	n := int(b[i])
	i++
	if (n != 4 && n != 16) || i+n > len(b) {
		return netip.Addr{}, i
	}
	a, _ := netip.AddrFromSlice(b[i : i+n])
	return a, i + n
}

func portAt(b []byte, i int) (uint16, int) {
	if i+2 > len(b) {
		return 0, i
	}
	return uint16(b[i])<<8 | uint16(b[i+1]), i + 2
}

// FuzzCheck checks Classify and Check on arbitrary addresses: they never
// panic, are deterministic, and what Check accepts obeys every rule the
// package states. The input is the initial peer address and port, the
// announced address and port, then the host's addresses, each followed by
// its prefix length (testdata/fuzz/FuzzCheck has examples).
func FuzzCheck(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		in, i := addrAt(b, 0)
		inPort, i := portAt(b, i)
		a, i := addrAt(b, i)
		aPort, i := portAt(b, i)
		var prefixes []netip.Prefix
		for i < len(b) {
			var own netip.Addr
			own, i = addrAt(b, i)
			bits := 0
			if i < len(b) {
				bits = int(b[i])
				i++
			}
			if own.IsValid() {
				prefixes = append(prefixes, netip.PrefixFrom(own, bits%(own.BitLen()+1)))
			}
		}
		h := NewHost(prefixes)
		cls := Classify(a)
		if cls != Classify(a.Unmap()) {
			t.Fatalf("Classify(%s) = %s, of the unmapped address %s", a, cls, Classify(a.Unmap()))
		}
		if cls.Routed() != (cls.Reach() == 0 || cls.Reach() == 1) || (cls <= Loopback) != (cls.Reach() >= 0) {
			t.Fatalf("class %s: routed %v, reach %d", cls, cls.Routed(), cls.Reach())
		}
		initial := netip.AddrPortFrom(in, inPort)
		ap := netip.AddrPortFrom(a, aPort)
		configs := []Config{
			{},
			{AnyPort: true},
			{Ports: []uint16{aPort | 1}},
			{Allow: []netip.Prefix{netip.PrefixFrom(a.Unmap(), 8%(a.Unmap().BitLen()+1)).Masked()}},
			{Deny: []netip.Prefix{netip.MustParsePrefix("203.0.113.64/26"), netip.MustParsePrefix("2001:db8:ff::/48")}},
		}
		for _, c := range configs {
			if !a.IsValid() && len(c.Allow) > 0 {
				continue
			}
			r, why := c.Check(h, initial, ap)
			if r2, why2 := c.Check(h, initial, ap); r2 != r || why2 != why {
				t.Fatalf("Check not deterministic: %s %q, then %s %q", r, why, r2, why2)
			}
			if (r == Accepted) != (why == "") {
				t.Fatalf("Check(%s, %s) = %s with reason %q", initial, ap, r, why)
			}
			if r != Accepted {
				continue
			}
			u := a.Unmap().WithZone("")
			allowed := slices.ContainsFunc(c.Allow, func(p netip.Prefix) bool { return p.Contains(u) })
			port := aPort
			if port == 0 {
				port = inPort
			}
			switch {
			case !cls.Routed():
				t.Fatalf("accepted %s, a %s address", ap, cls)
			case h.Own(a):
				t.Fatalf("accepted %s, an address of the host", ap)
			case !allowed && cls.Reach() > Classify(in).Reach():
				t.Fatalf("accepted %s (%s), more private than %s (%s)", ap, cls, in, Classify(in))
			case len(c.Allow) > 0 && !allowed:
				t.Fatalf("accepted %s, outside the allowed prefixes", ap)
			case slices.ContainsFunc(c.Deny, func(p netip.Prefix) bool { return p.Contains(u) }):
				t.Fatalf("accepted %s, in a denied prefix", ap)
			case port != inPort && !c.AnyPort && !slices.Contains(c.Ports, port):
				t.Fatalf("accepted %s, port other than %d", ap, inPort)
			}
			if _, ok := h.broadcasts[u]; ok {
				t.Fatalf("accepted %s, a directed broadcast of the host", ap)
			}
		}
	})
}
