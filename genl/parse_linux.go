//go:build linux

package genl

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// parseFamily decodes a CTRL_CMD_NEWFAMILY reply.
func parseFamily(b []byte) (family, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return family{}, err
	}
	var (
		f   family
		ops []uint32
	)
	for ad.Next() {
		switch ad.Type() {
		case unix.CTRL_ATTR_FAMILY_ID:
			f.id = ad.Uint16()
		case unix.CTRL_ATTR_VERSION:
			f.version = ad.Uint32()
		case unix.CTRL_ATTR_MCAST_GROUPS:
			ad.Nested(parseArray(func(nad *netlink.AttributeDecoder) {
				var g genetlink.MulticastGroup
				for nad.Next() {
					switch nad.Type() {
					case unix.CTRL_ATTR_MCAST_GRP_NAME:
						g.Name = nad.String()
					case unix.CTRL_ATTR_MCAST_GRP_ID:
						g.ID = nad.Uint32()
					}
				}
				f.groups = append(f.groups, g)
			}))
		case unix.CTRL_ATTR_OPS:
			ad.Nested(parseArray(func(nad *netlink.AttributeDecoder) {
				for nad.Next() {
					if nad.Type() == unix.CTRL_ATTR_OP_ID {
						ops = append(ops, nad.Uint32())
					}
				}
			}))
		}
	}
	if err := ad.Err(); err != nil {
		return family{}, err
	}
	f.commands = sortedCommands(ops)
	return f, nil
}

// parseArray decodes a netlink array: nests whose types are indices.
func parseArray(fn func(*netlink.AttributeDecoder)) func(*netlink.AttributeDecoder) error {
	return func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				fn(nad)
				return nil
			})
		}
		return nil
	}
}

// parseEndpoint decodes a GET_ADDR reply: an ATTR_ADDR nest.
func parseEndpoint(b []byte) (Endpoint, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Endpoint{}, err
	}
	var (
		ep    Endpoint
		found bool
	)
	for ad.Next() {
		if ad.Type() == _MPTCP_PM_ATTR_ADDR {
			found = true
			ad.Nested(parseAddrNest(&ep))
		}
	}
	if err := ad.Err(); err != nil {
		return Endpoint{}, err
	}
	if !found {
		return Endpoint{}, fmt.Errorf("reply has no address attribute")
	}
	return ep, nil
}

// parseAddrNest decodes the MPTCP_PM_ADDR_ATTR_* attributes of an address
// nest into ep.
func parseAddrNest(ep *Endpoint) func(*netlink.AttributeDecoder) error {
	return func(ad *netlink.AttributeDecoder) error {
		var (
			fam          uint16
			addr4, addr6 netip.Addr
		)
		for ad.Next() {
			switch ad.Type() {
			case _MPTCP_PM_ADDR_ATTR_FAMILY:
				fam = ad.Uint16()
			case _MPTCP_PM_ADDR_ATTR_ID:
				ep.ID = ad.Uint8()
			case _MPTCP_PM_ADDR_ATTR_ADDR4:
				ad.Do(parseIP(&addr4, 4))
			case _MPTCP_PM_ADDR_ATTR_ADDR6:
				ad.Do(parseIP(&addr6, 16))
			case _MPTCP_PM_ADDR_ATTR_PORT:
				ep.Port = ad.Uint16() // host byte order
			case _MPTCP_PM_ADDR_ATTR_FLAGS:
				ep.Flags = EndpointFlags(ad.Uint32())
			case _MPTCP_PM_ADDR_ATTR_IF_IDX:
				ep.IfIndex = ad.Int32()
			}
		}
		ep.Addr = pickAddr(fam, addr4, addr6)
		return nil
	}
}

// pickAddr chooses the address the family attribute names, or the one that
// is present, and unmaps IPv4-mapped IPv6 addresses.
func pickAddr(fam uint16, addr4, addr6 netip.Addr) netip.Addr {
	var a netip.Addr
	switch {
	case fam == unix.AF_INET && addr4.IsValid():
		a = addr4
	case fam == unix.AF_INET6 && addr6.IsValid():
		a = addr6
	case addr4.IsValid():
		a = addr4
	default:
		a = addr6
	}
	return a.Unmap()
}

// parseIP decodes an address of exactly n bytes.
func parseIP(a *netip.Addr, n int) func([]byte) error {
	return func(b []byte) error {
		if len(b) != n {
			return fmt.Errorf("address attribute of %d bytes, want %d", len(b), n)
		}
		*a, _ = netip.AddrFromSlice(b)
		return nil
	}
}

// parseBE16 decodes a big-endian u16.
func parseBE16(v *uint16) func([]byte) error {
	return func(b []byte) error {
		if len(b) != 2 {
			return fmt.Errorf("port attribute of %d bytes, want 2", len(b))
		}
		*v = binary.BigEndian.Uint16(b)
		return nil
	}
}

// parseLimits decodes a GET_LIMITS reply.
func parseLimits(b []byte) (Limits, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return Limits{}, err
	}
	var l Limits
	for ad.Next() {
		switch ad.Type() {
		case _MPTCP_PM_ATTR_RCV_ADD_ADDRS:
			l.AddAddrAccepted = ad.Uint32()
		case _MPTCP_PM_ATTR_SUBFLOWS:
			l.Subflows = ad.Uint32()
		}
	}
	return l, ad.Err()
}

// parseEvent decodes one event: the generic netlink command is the event
// type, the attributes are MPTCP_ATTR_*. Unknown attributes are ignored.
func parseEvent(m genetlink.Message) (Event, error) {
	ev := Event{Type: EventType(m.Header.Command)}
	ad, err := netlink.NewAttributeDecoder(m.Data)
	if err != nil {
		return Event{}, fmt.Errorf("decode %s event: %w", ev.Type, err)
	}
	var (
		fam                            uint16
		saddr4, saddr6, daddr4, daddr6 netip.Addr
		sport, dport                   uint16
		serverSide                     bool
	)
	for ad.Next() {
		switch ad.Type() {
		case _MPTCP_ATTR_TOKEN:
			ev.Token = ad.Uint32()
		case _MPTCP_ATTR_FAMILY:
			fam = ad.Uint16()
		case _MPTCP_ATTR_LOC_ID:
			ev.LocalID = ad.Uint8()
		case _MPTCP_ATTR_REM_ID:
			ev.RemoteID = ad.Uint8()
		case _MPTCP_ATTR_SADDR4:
			ad.Do(parseIP(&saddr4, 4))
		case _MPTCP_ATTR_SADDR6:
			ad.Do(parseIP(&saddr6, 16))
		case _MPTCP_ATTR_DADDR4:
			ad.Do(parseIP(&daddr4, 4))
		case _MPTCP_ATTR_DADDR6:
			ad.Do(parseIP(&daddr6, 16))
		case _MPTCP_ATTR_SPORT:
			ad.Do(parseBE16(&sport))
		case _MPTCP_ATTR_DPORT:
			ad.Do(parseBE16(&dport))
		case _MPTCP_ATTR_BACKUP:
			ev.Backup = ad.Uint8() != 0
		case _MPTCP_ATTR_ERROR:
			ev.Error = ad.Uint8()
		case _MPTCP_ATTR_FLAGS:
			ev.Flags = EventFlags(ad.Uint16())
		case _MPTCP_ATTR_TIMEOUT:
			ev.Timeout = ad.Uint32()
		case _MPTCP_ATTR_IF_IDX:
			ev.IfIndex = ad.Int32()
		case _MPTCP_ATTR_RESET_REASON:
			ev.ResetReason = ad.Uint32()
		case _MPTCP_ATTR_RESET_FLAGS:
			ev.ResetFlags = ad.Uint32()
		case _MPTCP_ATTR_SERVER_SIDE:
			serverSide = ad.Uint8() == 1
		}
	}
	if err := ad.Err(); err != nil {
		return Event{}, fmt.Errorf("decode %s event: %w", ev.Type, err)
	}
	ev.Local = netip.AddrPortFrom(pickAddr(fam, saddr4, saddr6), sport)
	ev.Remote = netip.AddrPortFrom(pickAddr(fam, daddr4, daddr6), dport)
	ev.ServerSide = serverSide || ev.Flags&EventFlagServerSide != 0
	return ev, nil
}
