//go:build linux

package health

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// nlAddrs lists addresses over rtnetlink in one namespace.
type nlAddrs struct{ h *netlink.Handle }

func openAddrs(netNS int) (addrSource, error) {
	ns := netns.None()
	if netNS != 0 {
		ns = netns.NsHandle(netNS)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink handle in netns %d: %w", netNS, err)
	}
	return nlAddrs{h: h}, nil
}

// Addrs implements addrSource.
func (a nlAddrs) Addrs() (map[netip.Addr]int32, error) {
	list, err := a.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("health: list addresses: %w", err)
	}
	m := make(map[netip.Addr]int32, len(list))
	for _, l := range list {
		if ip, ok := netip.AddrFromSlice(l.IP); ok {
			m[ip.Unmap()] = int32(l.LinkIndex)
		}
	}
	return m, nil
}

// Close implements addrSource.
func (a nlAddrs) Close() error {
	a.h.Close()
	return nil
}
