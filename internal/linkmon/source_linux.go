//go:build linux

package linkmon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	// defaultRcvBuf is the receive buffer asked for each subscription
	// socket; the kernel caps it at net.core.rmem_max.
	defaultRcvBuf = 1 << 20
	// defaultChanLen is the length of each subscription's update channel.
	defaultChanLen = 256
	// resyncAttempts bounds the tries to subscribe and dump before Receive
	// gives up; the first retry waits resyncBackoff, each next one twice as
	// long.
	resyncAttempts = 6
	resyncBackoff  = 10 * time.Millisecond
	// dumpAttempts bounds the retries of a dump the kernel interrupted
	// (NLM_F_DUMP_INTR); the last one is used as it is, later messages
	// repair it.
	dumpAttempts = 4
)

// openOS opens the netlink handle of the monitored namespace and fills the
// Monitor's OS functions.
func (m *Monitor) openOS() error {
	ns := netns.None()
	if m.cfg.netNS != 0 {
		ns = netns.NsHandle(m.cfg.netNS)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("linkmon: open netlink handle in netns %d: %w", m.cfg.netNS, err)
	}
	m.sysfs = readSysfs
	m.open = func() (source, error) {
		return newNLSource(ns, h, m.cfg.log, defaultRcvBuf, defaultChanLen), nil
	}
	m.counters = func(index int) (Counters, error) {
		l, err := h.LinkByIndex(index)
		if err != nil {
			return Counters{}, err
		}
		st := l.Attrs().Statistics
		if st == nil {
			return Counters{}, errors.New("kernel sent no statistics")
		}
		return Counters{RxBytes: st.RxBytes, TxBytes: st.TxBytes, RxPackets: st.RxPackets, TxPackets: st.TxPackets}, nil
	}
	m.closeOS = func() error {
		h.Close()
		return nil
	}
	return nil
}

// nlSource is the kernel source: three rtnetlink subscriptions (links,
// addresses, routes) made with vishvananda/netlink, and dumps on a Handle.
//
// The subscriptions are made without ListExisting, because the library drops
// the NLMSG_DONE that ends such a dump and a caller cannot tell when the
// existing state is complete. Instead the source subscribes first and then
// dumps on its Handle: messages queued during the dump replay over the
// snapshot, and since each carries an object's full state in kernel order,
// the table ends up as the kernel is.
//
// A subscription whose socket fails (ENOBUFS: the kernel dropped messages)
// ends its channel; the source then drops all three, subscribes again and
// sends a new snapshot.
type nlSource struct {
	ns      netns.NsHandle
	h       *netlink.Handle
	log     *slog.Logger
	rcvBuf  int
	chanLen int

	closed    chan struct{}
	closeOnce sync.Once

	sub *subscription // nil until the first Receive and after a loss
	// relistRoutes asks Receive to list the routes again: a link changed
	// or an IPv4 address was deleted (see routesMsg).
	relistRoutes bool
	// relisted receives the routes the listing in flight found; nil when
	// none is in flight.
	relisted chan relistResult
}

// relistResult is the outcome of a route listing made beside Receive.
type relistResult struct {
	routes []routeMsg
	err    error
}

func newNLSource(ns netns.NsHandle, h *netlink.Handle, log *slog.Logger, rcvBuf, chanLen int) *nlSource {
	return &nlSource{ns: ns, h: h, log: log, rcvBuf: rcvBuf, chanLen: chanLen, closed: make(chan struct{})}
}

// subscription is one set of the three subscriptions.
type subscription struct {
	done   chan struct{}
	links  chan netlink.LinkUpdate
	addrs  chan netlink.AddrUpdate
	routes chan netlink.RouteUpdate
	drains []func() // empty the channels of the subscriptions that started
}

// stop ends the subscriptions and waits for their goroutines to finish.
func (s *subscription) stop() {
	close(s.done)
	for _, d := range s.drains {
		d()
	}
}

func drain[T any](c <-chan T) func() {
	return func() {
		for range c {
		}
	}
}

// Receive implements source.
//
// The routes are listed again on a goroutine of their own, so that link and
// address messages are not held up by the listing; route messages wait
// until it is sent, since it replaces the routes.
func (s *nlSource) Receive() (msg, error) {
	for {
		select {
		case <-s.closed:
			s.abandonRelist()
			if s.sub != nil {
				s.sub.stop()
				s.sub = nil
			}
			return nil, errSourceClosed
		default:
		}
		if s.sub == nil {
			return s.resync()
		}
		if s.relistRoutes && s.relisted == nil {
			if !s.startRelist() {
				continue
			}
		}
		routes := s.sub.routes
		if s.relisted != nil {
			routes = nil
		}
		select {
		case <-s.closed:
		case r := <-s.relisted:
			s.relisted = nil
			if r.err != nil {
				s.log.Warn("cannot re-list routes, re-listing everything", "err", r.err)
				s.sub.stop()
				s.sub = nil
				continue
			}
			return routesMsg{routes: r.routes}, nil
		case u, ok := <-s.sub.links:
			if !ok {
				s.lost("links")
				continue
			}
			s.relistRoutes = true
			return linkFromNetlink(u.Link, u.Header.Type == unix.RTM_DELLINK), nil
		case u, ok := <-s.sub.addrs:
			if !ok {
				s.lost("addresses")
				continue
			}
			m, ok := addrFromNetlink(u.LinkAddress, u.LinkIndex, u.Flags, u.Scope, !u.NewAddr)
			if !ok {
				continue
			}
			// Deleting an IPv4 address may take routes the kernel never
			// reports deleted (see routesMsg).
			if m.del && m.prefix.Addr().Is4() {
				s.relistRoutes = true
			}
			return m, nil
		case u, ok := <-routes:
			if !ok {
				s.lost("routes")
				continue
			}
			if m, ok := routeFromNetlink(u.Route, u.Type, u.NlFlags); ok {
				return m, nil
			}
		}
	}
}

// startRelist drops the route messages already queued, which the listing
// supersedes (a stale one applied after it could bring back a route the
// kernel flushed), and starts the listing. It returns false when the route
// subscription ended.
func (s *nlSource) startRelist() bool {
	s.relistRoutes = false
drain:
	for {
		select {
		case _, ok := <-s.sub.routes:
			if !ok {
				s.lost("routes")
				return false
			}
		default:
			break drain
		}
	}
	c := make(chan relistResult, 1)
	s.relisted = c
	go func() {
		routes, err := s.dumpRoutes()
		c <- relistResult{routes: routes, err: err}
	}()
	return true
}

// Close implements source. Receive, which owns the subscriptions, ends them.
func (s *nlSource) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// lost drops the subscriptions after one of them ended.
func (s *nlSource) lost(what string) {
	s.log.Warn("rtnetlink subscription ended, re-listing", "subscription", what)
	s.abandonRelist() // the snapshot that follows supersedes it
	s.sub.stop()
	s.sub = nil
}

// abandonRelist waits for the route listing in flight, if any, to end and
// drops its result: nothing is left using the netlink handle once Receive
// returned errSourceClosed.
func (s *nlSource) abandonRelist() {
	if s.relisted != nil {
		<-s.relisted
		s.relisted = nil
	}
}

// resync subscribes and dumps, retrying with backoff.
func (s *nlSource) resync() (msg, error) {
	wait := resyncBackoff
	for attempt := 1; ; attempt++ {
		snap, err := s.subscribeAndDump()
		if err == nil {
			return snap, nil
		}
		if attempt == resyncAttempts {
			return nil, err
		}
		s.log.Warn("rtnetlink subscription failed, retrying", "err", err, "attempt", attempt, "wait", wait)
		select {
		case <-s.closed:
			return nil, errSourceClosed
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (s *nlSource) subscribeAndDump() (msg, error) {
	select {
	case <-s.closed:
		return nil, errSourceClosed
	default:
	}
	sub, err := s.subscribe()
	if err != nil {
		return nil, err
	}
	snap, err := s.dump()
	if err != nil {
		sub.stop()
		return nil, err
	}
	s.sub = sub
	return snap, nil
}

func (s *nlSource) subscribe() (*subscription, error) {
	sub := &subscription{
		done:   make(chan struct{}),
		links:  make(chan netlink.LinkUpdate, s.chanLen),
		addrs:  make(chan netlink.AddrUpdate, s.chanLen),
		routes: make(chan netlink.RouteUpdate, s.chanLen),
	}
	cb := func(err error) {
		select {
		case <-sub.done: // the subscription is being stopped
		default:
			s.log.Warn("rtnetlink subscription error", "err", err)
		}
	}
	ns := s.ns
	err := netlink.LinkSubscribeWithOptions(sub.links, sub.done, netlink.LinkSubscribeOptions{
		Namespace: &ns, ErrorCallback: cb, ReceiveBufferSize: s.rcvBuf,
	})
	if err != nil {
		sub.stop()
		return nil, fmt.Errorf("subscribe to links: %w", err)
	}
	sub.drains = append(sub.drains, drain(sub.links))
	err = netlink.AddrSubscribeWithOptions(sub.addrs, sub.done, netlink.AddrSubscribeOptions{
		Namespace: &ns, ErrorCallback: cb, ReceiveBufferSize: s.rcvBuf,
	})
	if err != nil {
		sub.stop()
		return nil, fmt.Errorf("subscribe to addresses: %w", err)
	}
	sub.drains = append(sub.drains, drain(sub.addrs))
	err = netlink.RouteSubscribeWithOptions(sub.routes, sub.done, netlink.RouteSubscribeOptions{
		Namespace: &ns, ErrorCallback: cb, ReceiveBufferSize: s.rcvBuf,
	})
	if err != nil {
		sub.stop()
		return nil, fmt.Errorf("subscribe to routes: %w", err)
	}
	sub.drains = append(sub.drains, drain(sub.routes))
	return sub, nil
}

// dump lists the existing links, addresses and routes (of every table).
func (s *nlSource) dump() (snapshotMsg, error) {
	var snap snapshotMsg
	links, err := retryDump(s.h.LinkList)
	if err != nil {
		return snap, fmt.Errorf("list links: %w", err)
	}
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return s.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return snap, fmt.Errorf("list addresses: %w", err)
	}
	if snap.routes, err = s.dumpRoutes(); err != nil {
		return snap, err
	}
	for _, l := range links {
		snap.links = append(snap.links, linkFromNetlink(l, false))
	}
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		if m, ok := addrFromNetlink(*a.IPNet, a.LinkIndex, a.Flags, a.Scope, false); ok {
			snap.addrs = append(snap.addrs, m)
		}
	}
	return snap, nil
}

// dumpRoutes lists the routes of every table.
func (s *nlSource) dumpRoutes() ([]routeMsg, error) {
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return s.h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	var out []routeMsg
	for _, r := range routes {
		if m, ok := routeFromNetlink(r, unix.RTM_NEWROUTE, 0); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// retryDump runs a dump again while the kernel reports it interrupted.
func retryDump[T any](f func() ([]T, error)) ([]T, error) {
	for i := 1; ; i++ {
		v, err := f()
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			if i < dumpAttempts {
				continue
			}
			return v, nil
		}
		return v, err
	}
}

func linkFromNetlink(l netlink.Link, del bool) linkMsg {
	a := l.Attrs()
	return linkMsg{
		del:    del,
		index:  a.Index,
		name:   a.Name,
		typ:    l.Type(),
		encap:  a.EncapType,
		flags:  a.RawFlags,
		oper:   uint8(a.OperState),
		mtu:    a.MTU,
		hw:     bytes.Clone(a.HardwareAddr),
		parent: a.ParentIndex,
	}
}

// prefixOf converts a net.IPNet. vishvananda/netlink gives IPv4 addresses
// in 4 bytes when it copies them from a message, in 16 when it makes them
// (the 0.0.0.0/0 of a default route); the mask tells which is meant.
func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	ones, bits := n.Mask.Size()
	if bits == 32 {
		ip = ip.Unmap()
	}
	if !ok || bits != ip.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, ones), true
}

func addrFromNetlink(n net.IPNet, link, flags, scope int, del bool) (addrMsg, bool) {
	p, ok := prefixOf(n)
	if !ok {
		return addrMsg{}, false
	}
	return addrMsg{
		del:    del,
		link:   link,
		prefix: p,
		flags:  AddrFlags(flags),
		scope:  Scope(scope),
	}, true
}

func routeFromNetlink(r netlink.Route, typ, nlFlags uint16) (routeMsg, bool) {
	m := routeMsg{
		del:      typ == unix.RTM_DELROUTE,
		replace:  nlFlags&unix.NLM_F_REPLACE != 0,
		family:   r.Family,
		table:    r.Table,
		typ:      r.Type,
		protocol: int(r.Protocol),
		cloned:   r.Flags&unix.RTM_F_CLONED != 0,
		tos:      r.Tos,
		priority: r.Priority,
	}
	switch r.Family {
	case unix.AF_INET:
		m.dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	case unix.AF_INET6:
		m.dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	default:
		return routeMsg{}, false
	}
	if r.Dst != nil {
		p, ok := prefixOf(*r.Dst)
		if !ok || p.Addr().Is4() != (r.Family == unix.AF_INET) {
			return routeMsg{}, false
		}
		m.dst = p
	}
	if len(r.MultiPath) == 0 {
		m.hops = []nexthop{{link: r.LinkIndex, gw: gateway(r.Gw, r.Via)}}
		return m, true
	}
	for _, nh := range r.MultiPath {
		m.hops = append(m.hops, nexthop{link: nh.LinkIndex, gw: gateway(nh.Gw, nh.Via)})
	}
	return m, true
}

// gateway returns the gateway of a next hop: RTA_GATEWAY, or RTA_VIA (an
// IPv6 gateway of an IPv4 route).
func gateway(gw net.IP, via netlink.Destination) netip.Addr {
	if a, ok := netip.AddrFromSlice(gw); ok {
		return a.Unmap()
	}
	if v, ok := via.(*netlink.Via); ok {
		if a, ok := netip.AddrFromSlice(v.Addr); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// readSysfs reads the sysfs facts of the network device name.
func readSysfs(name string) (sysInfo, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return sysInfo{}, fmt.Errorf("invalid interface name %q", name)
	}
	dir := "/sys/class/net/" + name + "/"
	b, err := os.ReadFile(dir + "uevent")
	if err != nil {
		return sysInfo{}, err
	}
	u := parseUevent(b)
	si := sysInfo{ifindex: u.ifindex, devType: u.devType}
	if a, err := os.ReadFile(dir + "address"); err == nil {
		si.addr = strings.TrimSpace(string(a))
	}
	for _, sub := range []string{"wireless", "phy80211"} {
		if _, err := os.Stat(dir + sub); err == nil {
			si.wireless = true
		}
	}
	return si, nil
}
