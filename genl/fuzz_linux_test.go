//go:build linux

package genl

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// The seed corpora under testdata/fuzz/ were captured from Linux 6.18 in a
// throw-away namespace: events of IPv4, IPv6 and dual-stack connections
// with userspace-PM subflows, endpoint and connection-address dump
// replies, and GET_LIMITS replies.

// FuzzParseEvent decodes arbitrary generic netlink messages as events and
// checks that a decoded event survives encoding and decoding again.
func FuzzParseEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		var m genetlink.Message
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		ev, err := parseEvent(m)
		if err != nil {
			return
		}
		again, err := parseEvent(genetlink.Message{Header: m.Header, Data: encodeEvent(t, ev)})
		if err != nil {
			t.Fatalf("decode re-encoded %+v: %v", ev, err)
		}
		if diff := cmp.Diff(ev, again, cmpAddrs); diff != "" {
			t.Fatalf("round trip changed the event (-first +again):\n%s", diff)
		}
	})
}

// FuzzParseEndpoint decodes arbitrary GET_ADDR replies and checks that an
// endpoint with an address survives the client's own encoder.
func FuzzParseEndpoint(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ep, err := parseEndpoint(b)
		if err != nil || !ep.Addr.IsValid() {
			return
		}
		ae := netlink.NewAttributeEncoder()
		ae.Nested(_MPTCP_PM_ATTR_ADDR, encodeEndpoint(ep))
		enc, err := ae.Encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", ep, err)
		}
		again, err := parseEndpoint(enc)
		if err != nil {
			t.Fatalf("decode re-encoded %+v: %v", ep, err)
		}
		if diff := cmp.Diff(ep, again, cmpAddrs); diff != "" {
			t.Fatalf("round trip changed the endpoint (-first +again):\n%s", diff)
		}
	})
}

// FuzzParseLimits decodes arbitrary GET_LIMITS replies and checks the round
// trip through the SET_LIMITS encoder.
func FuzzParseLimits(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := parseLimits(b)
		if err != nil {
			return
		}
		ae := netlink.NewAttributeEncoder()
		LimitsUpdate{AddAddrAccepted: &l.AddAddrAccepted, Subflows: &l.Subflows}.encode(ae)
		enc, err := ae.Encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", l, err)
		}
		again, err := parseLimits(enc)
		if err != nil {
			t.Fatalf("decode re-encoded %+v: %v", l, err)
		}
		if diff := cmp.Diff(l, again); diff != "" {
			t.Fatalf("round trip changed the limits (-first +again):\n%s", diff)
		}
	})
}

// encodeEvent encodes ev as the kernel would, for round trips.
func encodeEvent(t *testing.T, ev Event) []byte {
	t.Helper()
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(_MPTCP_ATTR_TOKEN, ev.Token)
	ae.Uint8(_MPTCP_ATTR_LOC_ID, ev.LocalID)
	ae.Uint8(_MPTCP_ATTR_REM_ID, ev.RemoteID)
	if a := ev.Local.Addr(); a.IsValid() {
		if a.Is4() {
			ae.Bytes(_MPTCP_ATTR_SADDR4, a.AsSlice())
		} else {
			ae.Bytes(_MPTCP_ATTR_SADDR6, a.AsSlice())
		}
	}
	if a := ev.Remote.Addr(); a.IsValid() {
		if a.Is4() {
			ae.Bytes(_MPTCP_ATTR_DADDR4, a.AsSlice())
		} else {
			ae.Bytes(_MPTCP_ATTR_DADDR6, a.AsSlice())
		}
	}
	ae.Bytes(_MPTCP_ATTR_SPORT, binary.BigEndian.AppendUint16(nil, ev.Local.Port()))
	ae.Bytes(_MPTCP_ATTR_DPORT, binary.BigEndian.AppendUint16(nil, ev.Remote.Port()))
	var backup uint8
	if ev.Backup {
		backup = 1
	}
	ae.Uint8(_MPTCP_ATTR_BACKUP, backup)
	ae.Uint8(_MPTCP_ATTR_ERROR, ev.Error)
	ae.Uint16(_MPTCP_ATTR_FLAGS, uint16(ev.Flags))
	ae.Uint32(_MPTCP_ATTR_TIMEOUT, ev.Timeout)
	ae.Int32(_MPTCP_ATTR_IF_IDX, ev.IfIndex)
	ae.Uint32(_MPTCP_ATTR_RESET_REASON, ev.ResetReason)
	ae.Uint32(_MPTCP_ATTR_RESET_FLAGS, ev.ResetFlags)
	if ev.ServerSide {
		ae.Uint8(_MPTCP_ATTR_SERVER_SIDE, 1)
	}
	b, err := ae.Encode()
	if err != nil {
		t.Fatalf("encode %+v: %v", ev, err)
	}
	return b
}

// FuzzParseDatagram decodes arbitrary datagrams of the event socket, as a
// message type and bytes, and checks that the events survive being encoded
// into a datagram of one message each and decoded again. The seeds are
// datagrams read from a Linux 6.18 event socket (family 28 there), and
// three of them back to back as the kernel may batch them.
func FuzzParseDatagram(f *testing.F) {
	f.Fuzz(func(t *testing.T, family uint16, b []byte) {
		evs, err := parseDatagram(nil, b, family)
		if err != nil {
			if len(evs) != 0 {
				t.Fatalf("parseDatagram returned %d events with error %v", len(evs), err)
			}
			return
		}
		var again []byte
		for _, ev := range evs {
			gm := genetlink.Message{
				Header: genetlink.Header{Command: uint8(ev.Type), Version: _MPTCP_PM_VER},
				Data:   encodeEvent(t, ev),
			}
			again = append(again, netlinkMsg(t, netlink.HeaderType(family), gm)...)
		}
		got, err := parseDatagram(nil, again, family)
		if err != nil {
			t.Fatalf("decode re-encoded %+v: %v", evs, err)
		}
		if diff := cmp.Diff(evs, got, cmpAddrs, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed the events (-first +again):\n%s", diff)
		}
	})
}
