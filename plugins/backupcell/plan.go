package backupcell

import (
	"net/netip"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Kernel implements policy.Policy. Endpoints on cellular links get the
// backup flag while a usable address of a primary link has worked for
// hold_time, and lose it otherwise; other endpoints are left as proposed.
func (b *BackupCell) Kernel(v policy.View, next policy.KernelPlan) policy.KernelPlan {
	var cells []int
	for i, e := range next.Endpoints {
		if b.locate(v, e.IfIndex, e.Dev, e.Addr).cell {
			cells = append(cells, i)
		}
	}
	if len(cells) == 0 {
		return next
	}
	backup := b.hostHeld(v)
	for _, i := range cells {
		next.Endpoints[i].Backup = backup
	}
	return next
}

// hostHeld reports whether a usable global-unicast address of a primary
// link that is not stalled has worked for hold_time.
func (b *BackupCell) hostHeld(v policy.View) bool {
	for _, a := range v.UsableAddrs() {
		addr := a.Addr.Unmap()
		if !addr.IsGlobalUnicast() {
			continue
		}
		w := b.locate(v, a.IfIndex, a.Link, addr)
		if !w.cell && !w.stalled() && b.held(v.Now, w.since()) {
			return true
		}
	}
	return false
}

// Conn implements policy.Policy. The paths over cellular links are backup
// while a primary path of the connection has worked for hold_time, and
// promoted otherwise. A promoted cellular path is never deferred, nor a
// backup one with backup_at_once. With close_dead, on a client-side connection, the
// primary paths whose subflow is stalled are left out while another
// subflow is established and not stalled.
func (b *BackupCell) Conn(v policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	infos := make([]pathInfo, len(next.Paths))
	for i, p := range next.Paths {
		infos[i] = pathInfo{w: b.locate(v, p.IfIndex, p.Dev, p.Local), sub: subflowOf(c, p)}
	}
	held := false
	for i := range infos {
		in := &infos[i]
		if !in.w.cell && in.working() && b.held(v.Now, in.since(c)) {
			held = true
			break
		}
	}
	for i := range next.Paths {
		if infos[i].w.cell {
			next.Paths[i].Backup = held
			if !held || b.cfg.BackupAtOnce {
				next.Paths[i].Deferral = policy.Deferral{}
			}
		}
	}
	if b.cfg.CloseDead && c.Side != policy.SideServer && slices.ContainsFunc(infos, pathInfo.dead) &&
		slices.ContainsFunc(c.Subflows, func(s policy.Subflow) bool { return s.Established && !s.Health.Stalled }) {
		keep := next.Paths[:0]
		for i, p := range next.Paths {
			if !infos[i].dead() {
				keep = append(keep, p)
			}
		}
		next.Paths = keep
	}
	return next
}

// held reports whether something that has worked since since has worked
// for hold_time at now; an unknown (zero) since is long ago.
func (b *BackupCell) held(now, since time.Time) bool {
	return since.IsZero() || now.Sub(since) >= b.cfg.HoldTime
}

// where is what the view knows of the link and address a path or an
// endpoint uses.
type where struct {
	link   policy.Link
	known  bool // the view lists the link
	addr   policy.LocalAddr
	listed bool // the view lists the address
	cell   bool
}

// locate finds the link of the interface ifindex or dev, else of the
// address addr.
func (b *BackupCell) locate(v policy.View, ifindex int32, dev string, addr netip.Addr) where {
	var w where
	addr = addr.Unmap()
	if i := slices.IndexFunc(v.Addrs, func(a policy.LocalAddr) bool { return a.Addr.Unmap() == addr }); i >= 0 {
		w.addr, w.listed = v.Addrs[i], true
		if ifindex == 0 && dev == "" {
			ifindex, dev = w.addr.IfIndex, w.addr.Link
		}
	}
	if ifindex != 0 {
		w.link, w.known = v.Link(ifindex)
	}
	if !w.known && dev != "" {
		if i := slices.IndexFunc(v.Links, func(l policy.Link) bool { return l.Name == dev }); i >= 0 {
			w.link, w.known = v.Links[i], true
		}
	}
	w.cell = (w.known && b.cellular(w.link)) || b.named(dev)
	return w
}

// stalled reports whether the link is stalled.
func (w where) stalled() bool { return w.known && w.link.Health.Stalled }

// usable reports whether the view lets subflows use the link and address.
func (w where) usable() bool { return (!w.known || w.link.Usable) && (!w.listed || w.addr.Usable) }

// since is when the link and address last came up or recovered, as far as
// the view knows.
func (w where) since() time.Time {
	var t time.Time
	if w.known {
		t = later(t, w.link.Changed)
		if !w.link.Health.Stalled {
			t = later(t, w.link.Health.StalledChanged)
		}
	}
	if w.listed {
		t = later(t, w.addr.Changed)
	}
	return t
}

// pathInfo is a proposed path with where it runs and its subflow.
type pathInfo struct {
	w   where
	sub *policy.Subflow
}

// working reports whether the path's subflow is established and neither
// it nor its link is stalled, over a usable address and link.
func (p pathInfo) working() bool {
	return p.sub != nil && p.sub.Established && !p.sub.Health.Stalled && !p.w.stalled() && p.w.usable()
}

// dead reports whether the path is primary and its established subflow is
// stalled.
func (p pathInfo) dead() bool {
	return !p.w.cell && p.sub != nil && p.sub.Established && p.sub.Health.Stalled
}

// since is when the working path last started to work: its link or address
// came up, it recovered from a stall, or its subflow was established
// (unless it is the connection's initial subflow, which was never
// interrupted).
func (p pathInfo) since(c policy.Conn) time.Time {
	t := later(p.w.since(), p.sub.Health.StalledChanged)
	if unmap(p.sub.Local) != unmap(c.Local) || unmap(p.sub.Remote) != unmap(c.Remote) {
		t = later(t, p.sub.EstablishedAt)
	}
	return t
}

// subflowOf returns the subflow of path p, preferring one that is
// established and not stalled, or nil.
func subflowOf(c policy.Conn, p policy.Path) *policy.Subflow {
	var found *policy.Subflow
	for i := range c.Subflows {
		s := &c.Subflows[i]
		if s.Local.Addr().Unmap() != p.Local.Unmap() || unmap(s.Remote) != unmap(p.Remote) {
			continue
		}
		switch {
		case s.Established && !s.Health.Stalled:
			return s
		case found == nil || (s.Established && !found.Established):
			found = s
		}
	}
	return found
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
