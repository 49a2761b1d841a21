package main

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// errNoNetns is wrapped when -n names a namespace that does not exist.
var errNoNetns = errors.New("no such network namespace")

// session holds the kernel handles of one command, all in the namespace
// chosen with -n (or the current one). Handles are opened on first use.
type session struct {
	// fd is the namespace's file descriptor; 0 means the current one.
	fd int
	gc *genl.Client
	sd *sockdiag.Client
	nl *netlink.Handle
}

// open opens the target namespace. Call it only after the arguments have
// been validated.
func (a *app) open() (*session, error) {
	s := &session{}
	if a.netns == "" {
		return s, nil
	}
	p := filepath.Join(netnsDir, a.netns)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, &refusedError{msg: fmt.Sprintf("network namespace %q not found (no %s; see ip netns list)", a.netns, p), err: errNoNetns}
		}
		return nil, &refusedError{msg: fmt.Sprintf("open network namespace %q: %v", a.netns, err), err: err}
	}
	s.fd = fd
	return s, nil
}

// Close closes every handle and the namespace.
func (s *session) Close() {
	if s.gc != nil {
		_ = s.gc.Close()
	}
	if s.sd != nil {
		_ = s.sd.Close()
	}
	if s.nl != nil {
		s.nl.Close()
	}
	if s.fd != 0 {
		_ = unix.Close(s.fd)
	}
}

// genl returns the path-manager client.
func (s *session) genl() (*genl.Client, error) {
	if s.gc == nil {
		c, err := genl.New(&genl.Config{NetNS: s.fd})
		if err != nil {
			return nil, kernelError("open mptcp_pm", err)
		}
		s.gc = c
	}
	return s.gc, nil
}

// diag returns the sock_diag client.
func (s *session) diag() (*sockdiag.Client, error) {
	if s.sd == nil {
		c, err := sockdiag.Dial(&sockdiag.Config{NetNS: s.fd})
		if err != nil {
			return nil, kernelError("open sock_diag", err)
		}
		s.sd = c
	}
	return s.sd, nil
}

// rtnl returns the rtnetlink handle, for interface names and addresses.
func (s *session) rtnl() (*netlink.Handle, error) {
	if s.nl == nil {
		var h *netlink.Handle
		var err error
		if s.fd == 0 {
			h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		} else {
			h, err = netlink.NewHandleAt(netns.NsHandle(s.fd), unix.NETLINK_ROUTE)
		}
		if err != nil {
			return nil, kernelError("open rtnetlink", err)
		}
		s.nl = h
	}
	return s.nl, nil
}

// ifaces maps interface indexes to names and local addresses to the
// interface that holds them, in the session's namespace.
type ifaces struct {
	names  map[int32]string
	byAddr map[netip.Addr]int32
}

// name returns the name of interface index i, "" if i is 0 or unknown.
func (f *ifaces) name(i int32) string {
	return f.names[i]
}

// index returns the index of the interface called name, 0 if none.
func (f *ifaces) index(name string) int32 {
	for i, n := range f.names {
		if n == name {
			return i
		}
	}
	return 0
}

// ifaces lists the namespace's interfaces and addresses.
func (s *session) ifaces() (*ifaces, error) {
	links, addrs, err := s.dumpLinks()
	if err != nil {
		return nil, err
	}
	f := &ifaces{names: map[int32]string{}, byAddr: addrIndex(addrs)}
	for _, l := range links {
		attrs := l.Attrs()
		f.names[int32(attrs.Index)] = attrs.Name
	}
	return f, nil
}

// dumpLinks lists the namespace's interfaces and addresses. Dumps
// interrupted by a concurrent change are retried a few times, then used as
// they are.
func (s *session) dumpLinks() ([]netlink.Link, []netlink.Addr, error) {
	h, err := s.rtnl()
	if err != nil {
		return nil, nil, err
	}
	var links []netlink.Link
	var addrs []netlink.Addr
	for range 3 {
		links, err = h.LinkList()
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, nil, kernelError("list interfaces", err)
	}
	for range 3 {
		addrs, err = h.AddrList(nil, netlink.FAMILY_ALL)
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, nil, kernelError("list addresses", err)
	}
	return links, addrs, nil
}

// addrIndex maps each address to the index of the interface holding it.
func addrIndex(addrs []netlink.Addr) map[netip.Addr]int32 {
	m := make(map[netip.Addr]int32, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			m[ip.Unmap()] = int32(a.LinkIndex)
		}
	}
	return m
}

// openKernel opens a session and its mptcp_pm client; the caller closes
// the session.
func (a *app) openKernel() (*session, *genl.Client, error) {
	s, err := a.open()
	if err != nil {
		return nil, nil, err
	}
	gc, err := s.genl()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, gc, nil
}

// resolveDev returns the interface index of dev ("": 0).
func resolveDev(s *session, dev string) (int32, error) {
	if dev == "" {
		return 0, nil
	}
	f, err := s.ifaces()
	if err != nil {
		return 0, err
	}
	idx := f.index(dev)
	if idx == 0 {
		return 0, &refusedError{msg: fmt.Sprintf("dev %q: no such interface", dev)}
	}
	return idx, nil
}
