package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
)

// UAPI constants from include/uapi/linux/netlink_diag.h.
const (
	afNetlink = 16 // AF_NETLINK

	netlinkDiagReqLen = 20 // sizeof(struct netlink_diag_req)
	netlinkDiagMsgLen = 28 // sizeof(struct netlink_diag_msg)

	ndiagShowGroups   = 0x2 // NDIAG_SHOW_GROUPS
	netlinkDiagGroups = 1   // NETLINK_DIAG_GROUPS: u32 words, bit g-1 for group g
)

// NetlinkSocket is a netlink socket of the namespace, as netlink_diag
// reports it.
type NetlinkSocket struct {
	// Protocol is the netlink protocol (16: generic netlink).
	Protocol uint8
	// PortID is the socket's port id, the process id for the first
	// socket a process binds.
	PortID uint32
	// Inode is the socket's inode number.
	Inode uint32
	// Groups are the multicast groups it joined, ascending.
	Groups []uint32
}

// Joined reports whether the socket joined group.
func (s *NetlinkSocket) Joined(group uint32) bool {
	for _, g := range s.Groups {
		if g == group {
			return true
		}
	}
	return false
}

// encodeNetlinkRequest returns a netlink_diag_req for the sockets of
// protocol, with their groups.
func encodeNetlinkRequest(protocol uint8) []byte {
	b := make([]byte, netlinkDiagReqLen)
	b[0] = afNetlink
	b[1] = protocol
	binary.NativeEndian.PutUint32(b[8:], ndiagShowGroups)
	return b
}

var errShortNetlinkMsg = errors.New("netlink_diag_msg too short")

// parseNetlinkSocket parses a netlink_diag_msg and its attributes.
func parseNetlinkSocket(b []byte) (*NetlinkSocket, error) {
	if len(b) < netlinkDiagMsgLen {
		return nil, fmt.Errorf("%w: %d bytes", errShortNetlinkMsg, len(b))
	}
	s := &NetlinkSocket{
		Protocol: b[2],
		PortID:   binary.NativeEndian.Uint32(b[4:]),
		Inode:    binary.NativeEndian.Uint32(b[16:]),
	}
	ad, err := netlink.NewAttributeDecoder(b[netlinkDiagMsgLen:])
	if err != nil {
		return nil, fmt.Errorf("netlink_diag attributes: %w", err)
	}
	for ad.Next() {
		if ad.Type() != netlinkDiagGroups {
			continue
		}
		s.Groups = nil // the last one counts
		words := ad.Bytes()
		for i := 0; i+4 <= len(words); i += 4 {
			w := binary.NativeEndian.Uint32(words[i:])
			for bit := range uint32(32) {
				if w&(1<<bit) != 0 {
					s.Groups = append(s.Groups, uint32(i/4)*32+bit+1)
				}
			}
		}
	}
	if err := ad.Err(); err != nil {
		return nil, fmt.Errorf("netlink_diag attributes: %w", err)
	}
	return s, nil
}
