//go:build linux

package genl

import (
	"net/netip"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// encodeEndpoint encodes the address nest of ADD_ADDR: FAMILY, [ID], ADDR4
// or ADDR6, [PORT], [FLAGS], [IF_IDX].
func encodeEndpoint(ep Endpoint) func(*netlink.AttributeEncoder) error {
	return func(ae *netlink.AttributeEncoder) error {
		a := ep.Addr.Unmap()
		ae.Uint16(_MPTCP_PM_ADDR_ATTR_FAMILY, addrFamily(a))
		if ep.ID != 0 {
			ae.Uint8(_MPTCP_PM_ADDR_ATTR_ID, ep.ID)
		}
		encodeAddrBytes(ae, a)
		if ep.Port != 0 {
			ae.Uint16(_MPTCP_PM_ADDR_ATTR_PORT, ep.Port)
		}
		if ep.Flags != 0 {
			ae.Uint32(_MPTCP_PM_ADDR_ATTR_FLAGS, uint32(ep.Flags))
		}
		if ep.IfIndex != 0 {
			ae.Int32(_MPTCP_PM_ADDR_ATTR_IF_IDX, ep.IfIndex)
		}
		return nil
	}
}

// encodeID encodes an address nest holding only an id.
func encodeID(id uint8) func(*netlink.AttributeEncoder) error {
	return func(ae *netlink.AttributeEncoder) error {
		ae.Uint8(_MPTCP_PM_ADDR_ATTR_ID, id)
		return nil
	}
}

// encodeAddr encodes FAMILY and ADDR4 or ADDR6 into an address nest. An
// IPv4-mapped IPv6 address is sent as IPv4.
func encodeAddr(ae *netlink.AttributeEncoder, a netip.Addr) {
	a = a.Unmap()
	ae.Uint16(_MPTCP_PM_ADDR_ATTR_FAMILY, addrFamily(a))
	encodeAddrBytes(ae, a)
}

func encodeAddrBytes(ae *netlink.AttributeEncoder, a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		ae.Bytes(_MPTCP_PM_ADDR_ATTR_ADDR4, b[:]) // network byte order
		return
	}
	b := a.As16()
	ae.Bytes(_MPTCP_PM_ADDR_ATTR_ADDR6, b[:])
}

// encodeAddrPort encodes an address nest of FAMILY, ADDR4 or ADDR6, [PORT]
// (host byte order) and, when flags is not nil, FLAGS.
func encodeAddrPort(ap netip.AddrPort, flags *EndpointFlags) func(*netlink.AttributeEncoder) error {
	return func(ae *netlink.AttributeEncoder) error {
		encodeAddr(ae, ap.Addr())
		if ap.Port() != 0 {
			ae.Uint16(_MPTCP_PM_ADDR_ATTR_PORT, ap.Port())
		}
		if flags != nil {
			ae.Uint32(_MPTCP_PM_ADDR_ATTR_FLAGS, uint32(*flags))
		}
		return nil
	}
}

func addrFamily(a netip.Addr) uint16 {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// encode encodes the limits that u changes.
func (u LimitsUpdate) encode(ae *netlink.AttributeEncoder) {
	if u.AddAddrAccepted != nil {
		ae.Uint32(_MPTCP_PM_ATTR_RCV_ADD_ADDRS, *u.AddAddrAccepted)
	}
	if u.Subflows != nil {
		ae.Uint32(_MPTCP_PM_ATTR_SUBFLOWS, *u.Subflows)
	}
}
