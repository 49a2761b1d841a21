//go:build linux

package genl

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink/nlenc"
)

func be16(typ uint16, v uint16) attr {
	return attr{Type: typ, Data: binary.BigEndian.AppendUint16(nil, v)}
}

func ip(typ uint16, s string) attr {
	return attr{Type: typ, Data: netip.MustParseAddr(s).AsSlice()}
}

func eventMsg(t *testing.T, typ EventType, as ...attr) genetlink.Message {
	t.Helper()
	return genetlink.Message{
		Header: genetlink.Header{Command: uint8(typ), Version: _MPTCP_PM_VER},
		Data:   encodeAttrs(t, as),
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  EventType
		in   []attr
		want Event
		ok   bool
	}{
		{
			name: "created client side IPv4",
			typ:  EventCreated,
			in: []attr{
				u32(_MPTCP_ATTR_TOKEN, 0x7350dc40), u16(_MPTCP_ATTR_FAMILY, 2),
				ip(_MPTCP_ATTR_SADDR4, "192.0.2.1"), ip(_MPTCP_ATTR_DADDR4, "198.51.100.2"),
				be16(_MPTCP_ATTR_SPORT, 51578), be16(_MPTCP_ATTR_DPORT, 8081),
				u8(_MPTCP_ATTR_LOC_ID, 0), u8(_MPTCP_ATTR_REM_ID, 0),
			},
			want: Event{
				Type: EventCreated, Token: 0x7350dc40,
				Local:  netip.MustParseAddrPort("192.0.2.1:51578"),
				Remote: netip.MustParseAddrPort("198.51.100.2:8081"),
			},
			ok: true,
		},
		{
			name: "established server side 6.18: flags and server_side",
			typ:  EventEstablished,
			in: []attr{
				u32(_MPTCP_ATTR_TOKEN, 1), u8(_MPTCP_ATTR_SERVER_SIDE, 1), u16(_MPTCP_ATTR_FLAGS, 2),
				u16(_MPTCP_ATTR_FAMILY, 10),
				ip(_MPTCP_ATTR_SADDR6, "2001:db8::1"), ip(_MPTCP_ATTR_DADDR6, "2001:db8::2"),
				be16(_MPTCP_ATTR_SPORT, 8080), be16(_MPTCP_ATTR_DPORT, 44157),
			},
			want: Event{
				Type: EventEstablished, Token: 1, Flags: EventFlagServerSide, ServerSide: true,
				Local:  netip.MustParseAddrPort("[2001:db8::1]:8080"),
				Remote: netip.MustParseAddrPort("[2001:db8::2]:44157"),
			},
			ok: true,
		},
		{
			name: "established, server side from flags only, deny join id 0",
			typ:  EventEstablished,
			in:   []attr{u32(_MPTCP_ATTR_TOKEN, 1), u16(_MPTCP_ATTR_FLAGS, 3)},
			want: Event{Type: EventEstablished, Token: 1, Flags: EventFlagDenyJoinID0 | EventFlagServerSide, ServerSide: true},
			ok:   true,
		},
		{
			name: "created, legacy server_side only",
			typ:  EventCreated,
			in:   []attr{u32(_MPTCP_ATTR_TOKEN, 1), u8(_MPTCP_ATTR_SERVER_SIDE, 1)},
			want: Event{Type: EventCreated, Token: 1, ServerSide: true},
			ok:   true,
		},
		{
			name: "announced: remote address and port only",
			typ:  EventAnnounced,
			in: []attr{
				u32(_MPTCP_ATTR_TOKEN, 9), u8(_MPTCP_ATTR_REM_ID, 5),
				be16(_MPTCP_ATTR_DPORT, 443), ip(_MPTCP_ATTR_DADDR6, "2001:db8::3"),
			},
			want: Event{Type: EventAnnounced, Token: 9, RemoteID: 5, Remote: netip.MustParseAddrPort("[2001:db8::3]:443")},
			ok:   true,
		},
		{
			name: "sub closed with everything",
			typ:  EventSubClosed,
			in: []attr{
				u32(_MPTCP_ATTR_TOKEN, 9), u16(_MPTCP_ATTR_FAMILY, 2),
				ip(_MPTCP_ATTR_SADDR4, "192.0.2.1"), ip(_MPTCP_ATTR_DADDR4, "203.0.113.2"),
				be16(_MPTCP_ATTR_SPORT, 1), be16(_MPTCP_ATTR_DPORT, 2),
				u8(_MPTCP_ATTR_LOC_ID, 3), u8(_MPTCP_ATTR_REM_ID, 4), u8(_MPTCP_ATTR_BACKUP, 1),
				s32(_MPTCP_ATTR_IF_IDX, 6), u8(_MPTCP_ATTR_ERROR, 104),
				u32(_MPTCP_ATTR_RESET_REASON, 5), u32(_MPTCP_ATTR_RESET_FLAGS, 1),
				u32(_MPTCP_ATTR_TIMEOUT, 120),
			},
			want: Event{
				Type: EventSubClosed, Token: 9, LocalID: 3, RemoteID: 4,
				Local:  netip.MustParseAddrPort("192.0.2.1:1"),
				Remote: netip.MustParseAddrPort("203.0.113.2:2"),
				Backup: true, IfIndex: 6, Error: 104, ResetReason: 5, ResetFlags: 1, Timeout: 120,
			},
			ok: true,
		},
		{
			name: "IPv4-mapped addresses are unmapped",
			typ:  EventSubEstablished,
			in: []attr{
				u16(_MPTCP_ATTR_FAMILY, 10),
				ip(_MPTCP_ATTR_SADDR6, "::ffff:192.0.2.1"), ip(_MPTCP_ATTR_DADDR6, "::ffff:198.51.100.2"),
				be16(_MPTCP_ATTR_SPORT, 1), be16(_MPTCP_ATTR_DPORT, 2),
			},
			want: Event{
				Type:   EventSubEstablished,
				Local:  netip.MustParseAddrPort("192.0.2.1:1"),
				Remote: netip.MustParseAddrPort("198.51.100.2:2"),
			},
			ok: true,
		},
		{
			name: "listener created",
			typ:  EventListenerCreated,
			in:   []attr{u16(_MPTCP_ATTR_FAMILY, 10), be16(_MPTCP_ATTR_SPORT, 8081), ip(_MPTCP_ATTR_SADDR6, "::")},
			want: Event{Type: EventListenerCreated, Local: netip.MustParseAddrPort("[::]:8081")},
			ok:   true,
		},
		{
			name: "unknown attributes and event types are kept going",
			typ:  EventType(42),
			in:   []attr{u32(_MPTCP_ATTR_TOKEN, 7), raw(200, 1, 2, 3), raw(19, 9)},
			want: Event{Type: 42, Token: 7},
			ok:   true,
		},
		{name: "short token", typ: EventClosed, in: []attr{raw(_MPTCP_ATTR_TOKEN, 1, 2)}},
		{name: "short IPv6 address", typ: EventSubEstablished, in: []attr{raw(_MPTCP_ATTR_SADDR6, 1, 2, 3, 4)}},
		{name: "long IPv4 address", typ: EventSubEstablished, in: []attr{raw(_MPTCP_ATTR_DADDR4, 1, 2, 3, 4, 5)}},
		{name: "long port", typ: EventSubEstablished, in: []attr{raw(_MPTCP_ATTR_SPORT, 1, 2, 3, 4)}},
		{name: "empty backup", typ: EventSubPriority, in: []attr{raw(_MPTCP_ATTR_BACKUP)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEvent(eventMsg(t, tt.typ, tt.in...))
			if tt.ok != (err == nil) {
				t.Fatalf("parseEvent error = %v, want ok %v", err, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddrs); diff != "" {
				t.Errorf("unexpected event (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenSubEstablished decodes a SUB_ESTABLISHED event of an IPv6
// subflow bound to a device, byte for byte as Linux 6.18 sends it
// (little-endian host; attributes in the order the kernel emits them).
func TestGoldenSubEstablished(t *testing.T) {
	t.Parallel()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the golden bytes are little-endian")
	}
	b := []byte{
		// struct genlmsghdr: cmd 10 (MPTCP_EVENT_SUB_ESTABLISHED), version 1.
		0x0a, 0x01, 0x00, 0x00,
		// TOKEN: len 8, type 1, u32 0xa7cb5af9.
		0x08, 0x00, 0x01, 0x00, 0xf9, 0x5a, 0xcb, 0xa7,
		// FAMILY: len 6, type 2, u16 AF_INET6 (10), padding.
		0x06, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x00,
		// SADDR6: len 20, type 6, 2001:db8::3.
		0x14, 0x00, 0x06, 0x00,
		0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
		// DADDR6: len 20, type 8, 2001:db8::1.
		0x14, 0x00, 0x08, 0x00,
		0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
		// SPORT: len 6, type 9, be16 47667 (0xba33), padding.
		0x06, 0x00, 0x09, 0x00, 0xba, 0x33, 0x00, 0x00,
		// DPORT: len 6, type 10, be16 8080 (0x1f90), padding.
		0x06, 0x00, 0x0a, 0x00, 0x1f, 0x90, 0x00, 0x00,
		// LOC_ID: len 5, type 3, u8 5, padding.
		0x05, 0x00, 0x03, 0x00, 0x05, 0x00, 0x00, 0x00,
		// REM_ID: len 5, type 4, u8 0, padding.
		0x05, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,
		// BACKUP: len 5, type 11, u8 0, padding.
		0x05, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00,
		// IF_IDX: len 8, type 15, s32 1 (the subflow is bound to lo).
		0x08, 0x00, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x00,
	}
	var m genetlink.Message
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	got, err := parseEvent(m)
	if err != nil {
		t.Fatalf("parseEvent: %v", err)
	}
	want := Event{
		Type:    EventSubEstablished,
		Token:   0xa7cb5af9,
		LocalID: 5,
		Local:   netip.MustParseAddrPort("[2001:db8::3]:47667"),
		Remote:  netip.MustParseAddrPort("[2001:db8::1]:8080"),
		IfIndex: 1,
	}
	if diff := cmp.Diff(want, got, cmpAddrs); diff != "" {
		t.Errorf("unexpected event (-want +got):\n%s", diff)
	}
}

func TestParseEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []attr
		want Endpoint
		ok   bool
	}{
		{
			name: "IPv6 signal with port",
			in:   []attr{nest(_MPTCP_PM_ATTR_ADDR, fam6(), port(9000), id(9), flags(FlagSignal), addr6("2001:db8::1"))},
			want: Endpoint{ID: 9, Addr: netip.MustParseAddr("2001:db8::1"), Port: 9000, Flags: FlagSignal},
			ok:   true,
		},
		{
			name: "family picks the address",
			in:   []attr{nest(_MPTCP_PM_ATTR_ADDR, fam6(), addr4("192.0.2.1"), addr6("2001:db8::1"))},
			want: Endpoint{Addr: netip.MustParseAddr("2001:db8::1")},
			ok:   true,
		},
		{
			name: "unknown attributes ignored",
			in:   []attr{u32(77, 1), nest(_MPTCP_PM_ATTR_ADDR, id(1), raw(42, 1), addr4("192.0.2.1"))},
			want: Endpoint{ID: 1, Addr: netip.MustParseAddr("192.0.2.1")},
			ok:   true,
		},
		{name: "no address nest", in: []attr{u32(_MPTCP_PM_ATTR_TOKEN, 1)}},
		{name: "short flags", in: []attr{nest(_MPTCP_PM_ATTR_ADDR, raw(_MPTCP_PM_ADDR_ATTR_FLAGS, 1))}},
		{name: "bad if_idx", in: []attr{nest(_MPTCP_PM_ATTR_ADDR, raw(_MPTCP_PM_ADDR_ATTR_IF_IDX, 1, 2))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseEndpoint(encodeAttrs(t, tt.in))
			if tt.ok != (err == nil) {
				t.Fatalf("parseEndpoint error = %v, want ok %v", err, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddrs); diff != "" {
				t.Errorf("unexpected endpoint (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := parseEndpoint([]byte{1, 2, 3}); err == nil {
		t.Error("parseEndpoint accepted a truncated attribute header")
	}
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want Limits
		ok   bool
	}{
		{"both", encodeAttrs(t, []attr{u32(2, 1), u32(3, 8)}), Limits{AddAddrAccepted: 1, Subflows: 8}, true},
		{"none", nil, Limits{}, true},
		{"short", encodeAttrs(t, []attr{raw(3, 1)}), Limits{}, false},
		{"truncated header", nlenc.Uint16Bytes(8), Limits{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseLimits(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("parseLimits error = %v, want ok %v", err, tt.ok)
			}
			if tt.ok {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("unexpected limits (-want +got):\n%s", diff)
				}
			}
		})
	}
}
