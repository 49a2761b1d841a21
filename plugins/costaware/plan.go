package costaware

import (
	"net/netip"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Kernel implements policy.Policy. An endpoint on a link that used its
// quota gets the at_quota action; an endpoint on a metered link gets the
// standby action while an endpoint of the same address family in next
// sits on a link that costs nothing, unless the link is within its
// aggregation budget. Withdraw drops the endpoint, backup sets its backup
// flag. Endpoints on links the view does not list are left alone.
func (p *CostAware) Kernel(v policy.View, next policy.KernelPlan) policy.KernelPlan {
	var free [2]bool
	for _, e := range next.Endpoints {
		if l, ok := linkOf(v, e.IfIndex, e.Dev, e.Addr); ok && costsNothing(l) {
			free[family(e.Addr)] = true
		}
	}
	eps := next.Endpoints[:0]
	for _, e := range next.Endpoints {
		if l, ok := linkOf(v, e.IfIndex, e.Dev, e.Addr); ok {
			if a, act := p.verdict(l, free[family(e.Addr)]); act {
				if a == Withdraw {
					continue
				}
				e.Backup = true
			}
		}
		eps = append(eps, e)
	}
	next.Endpoints = eps
	return next
}

// Conn implements policy.Policy, path by path as Kernel does endpoint by
// endpoint: the alternative that keeps a metered path in standby is
// another path of the connection, or an address announced to its peer,
// of the same family, over a link that costs nothing. Withdraw drops the
// path, which asks the engine to close its subflow (a client's initial
// subflow it makes backup instead); but on the server
// side the peer opened every subflow and the engine never closes those,
// so there withdraw makes the paths backup instead. Announces of
// addresses whose link is withdrawn are dropped; backup keeps them.
func (p *CostAware) Conn(v policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	var free [2]bool
	for _, pa := range next.Paths {
		if l, ok := linkOf(v, pa.IfIndex, pa.Dev, pa.Local); ok && costsNothing(l) {
			free[family(pa.Local)] = true
		}
	}
	for _, an := range next.Announces {
		if l, ok := linkOf(v, an.IfIndex, an.Dev, an.Addr); ok && costsNothing(l) {
			free[family(an.Addr)] = true
		}
	}
	paths := next.Paths[:0]
	for _, pa := range next.Paths {
		if l, ok := linkOf(v, pa.IfIndex, pa.Dev, pa.Local); ok {
			if a, act := p.verdict(l, free[family(pa.Local)]); act {
				if a == Withdraw && c.Side != policy.SideServer {
					if exhausted(l) {
						// Over its quota: closed even when it
						// carries the connection's last subflow.
						next.Withdraw = append(next.Withdraw, pa.Local)
					}
					continue
				}
				pa.Backup = true
			}
		}
		paths = append(paths, pa)
	}
	next.Paths = paths
	announces := next.Announces[:0]
	for _, an := range next.Announces {
		if l, ok := linkOf(v, an.IfIndex, an.Dev, an.Addr); ok {
			if a, act := p.verdict(l, free[family(an.Addr)]); act && a == Withdraw {
				continue
			}
		}
		announces = append(announces, an)
	}
	next.Announces = announces
	return next
}

// verdict returns the action for the paths over l, and false when they
// stay as proposed. free reports that a link that costs nothing can carry
// the same traffic.
func (p *CostAware) verdict(l policy.Link, free bool) (Action, bool) {
	r := p.ruleFor(l.Name)
	switch {
	case exhausted(l):
		return r.atQuota, true
	case l.Metered && free && !r.aggregating(l):
		return r.standby, true
	}
	return "", false
}

// exhausted reports whether l used its quota.
func exhausted(l policy.Link) bool { return l.QuotaBytes > 0 && l.UsedBytes >= l.QuotaBytes }

// costsNothing reports whether l can carry traffic for free: it is not
// metered, usable, not stalled, and has quota left.
func costsNothing(l policy.Link) bool {
	return !l.Metered && l.Usable && !l.Health.Stalled && !exhausted(l)
}

// aggregating reports whether the metered link l is within its
// aggregation budget: below the byte budget if there is one, and below
// the cost budget if there is one and the link has a price. A link
// without a price has no aggregation by cost.
func (r rule) aggregating(l policy.Link) bool {
	byBytes, byCost := r.budget > 0, r.cost > 0 && l.CostPerGB > 0
	switch {
	case !byBytes && !byCost:
		return false
	case byBytes && l.UsedBytes >= r.budget:
		return false
	case byCost && l.CostPerGB*float64(l.UsedBytes)/1e9 >= r.cost:
		return false
	}
	return true
}

// linkOf finds the link of an endpoint, path or announce: by interface
// index, else by device name, else by the interface of its address.
func linkOf(v policy.View, ifindex int32, dev string, addr netip.Addr) (policy.Link, bool) {
	if ifindex != 0 {
		if l, ok := v.Link(ifindex); ok {
			return l, true
		}
	}
	if dev != "" {
		for _, l := range v.Links {
			if l.Name == dev {
				return l, true
			}
		}
	}
	addr = addr.Unmap()
	for _, a := range v.Addrs {
		if a.Addr.Unmap() == addr {
			return v.Link(a.IfIndex)
		}
	}
	return policy.Link{}, false
}

// family returns 0 for IPv4 and 1 for IPv6.
func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 0
	}
	return 1
}
