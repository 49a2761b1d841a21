//go:build linux

package genl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/genetlink/genltest"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nlenc"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

const (
	testFamilyID = 0x1d
	testEvGroup  = 7
)

// cmpAddrs lets cmp compare netip values.
var cmpAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

// testFamily is what the fake controller reports: the 6.18 family.
var testFamily = family{
	id:      testFamilyID,
	version: 1,
	groups: []genetlink.MulticastGroup{
		{ID: 6, Name: "mptcp_pm_cmds"},
		{ID: testEvGroup, Name: "mptcp_pm_events"},
	},
	commands: []Command{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
}

// familyReply encodes f as the generic netlink controller does, operations
// and multicast groups included.
func familyReply(f family) ([]genetlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, _MPTCP_PM_NAME)
	ae.Uint16(unix.CTRL_ATTR_FAMILY_ID, f.id)
	ae.Uint32(unix.CTRL_ATTR_VERSION, f.version)
	ae.Nested(unix.CTRL_ATTR_OPS, func(nae *netlink.AttributeEncoder) error {
		for i, cmd := range f.commands {
			nae.Nested(uint16(i+1), func(oae *netlink.AttributeEncoder) error {
				oae.Uint32(unix.CTRL_ATTR_OP_ID, uint32(cmd))
				oae.Uint32(unix.CTRL_ATTR_OP_FLAGS, unix.GENL_CMD_CAP_DO)
				return nil
			})
		}
		return nil
	})
	if len(f.groups) > 0 {
		ae.Nested(unix.CTRL_ATTR_MCAST_GROUPS, func(nae *netlink.AttributeEncoder) error {
			for i, g := range f.groups {
				nae.Nested(uint16(i+1), func(gae *netlink.AttributeEncoder) error {
					gae.String(unix.CTRL_ATTR_MCAST_GRP_NAME, g.Name)
					gae.Uint32(unix.CTRL_ATTR_MCAST_GRP_ID, g.ID)
					return nil
				})
			}
			return nil
		})
	}
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return []genetlink.Message{{
		Header: genetlink.Header{Command: unix.CTRL_CMD_NEWFAMILY, Version: 2},
		Data:   b,
	}}, nil
}

// serveFamily answers "get family mptcp_pm" with f and passes every other
// request to fn.
func serveFamily(f family, fn genltest.Func) genltest.Func {
	return func(greq genetlink.Message, nreq netlink.Message) ([]genetlink.Message, error) {
		if nreq.Header.Type == unix.GENL_ID_CTRL && greq.Header.Command == unix.CTRL_CMD_GETFAMILY {
			return familyReply(f)
		}
		return fn(greq, nreq)
	}
}

// testClient returns a Client over a fake kernel that serves testFamily and
// passes the mptcp_pm requests to fn.
func testClient(t *testing.T, fn genltest.Func) *Client {
	t.Helper()
	return testClientOn(t, Kernel{Release: "6.18.0"}, fn)
}

// testClientOn is testClient on a kernel with the given capabilities,
// which the client then does not probe.
func testClientOn(t *testing.T, k Kernel, fn genltest.Func) *Client {
	t.Helper()
	cl, err := newClient(genltest.Dial(serveFamily(testFamily, fn)), nil)
	if err != nil {
		t.Fatalf("newClient: %v", err)
	}
	cl.kernelOnce.Do(func() { cl.kernelInfo = k })
	t.Cleanup(func() { _ = cl.close() })
	return &Client{c: cl}
}

// attr is a decoded attribute tree; Nest is set for NLA_F_NESTED attributes.
type attr struct {
	Type uint16
	Data []byte
	Nest []attr
}

func decodeAttrs(t *testing.T, b []byte) []attr {
	t.Helper()
	as, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		t.Fatalf("unmarshal attributes: %v", err)
	}
	var out []attr
	for _, a := range as {
		if a.Type&netlink.Nested != 0 {
			out = append(out, attr{Type: a.Type &^ netlink.Nested, Nest: decodeAttrs(t, a.Data)})
			continue
		}
		out = append(out, attr{Type: a.Type, Data: a.Data})
	}
	return out
}

func u8(typ uint16, v uint8) attr   { return attr{Type: typ, Data: []byte{v}} }
func u16(typ uint16, v uint16) attr { return attr{Type: typ, Data: nlenc.Uint16Bytes(v)} }
func u32(typ uint16, v uint32) attr { return attr{Type: typ, Data: nlenc.Uint32Bytes(v)} }
func s32(typ uint16, v int32) attr  { return attr{Type: typ, Data: nlenc.Int32Bytes(v)} }
func raw(typ uint16, b ...byte) attr {
	return attr{Type: typ, Data: b}
}
func nest(typ uint16, as ...attr) attr { return attr{Type: typ, Nest: as} }

func fam4() attr { return u16(_MPTCP_PM_ADDR_ATTR_FAMILY, unix.AF_INET) }
func fam6() attr { return u16(_MPTCP_PM_ADDR_ATTR_FAMILY, unix.AF_INET6) }
func addr4(s string) attr {
	b := netip.MustParseAddr(s).As4()
	return raw(_MPTCP_PM_ADDR_ATTR_ADDR4, b[:]...)
}
func addr6(s string) attr {
	b := netip.MustParseAddr(s).As16()
	return raw(_MPTCP_PM_ADDR_ATTR_ADDR6, b[:]...)
}
func port(p uint16) attr         { return u16(_MPTCP_PM_ADDR_ATTR_PORT, p) }
func id(v uint8) attr            { return u8(_MPTCP_PM_ADDR_ATTR_ID, v) }
func flags(f EndpointFlags) attr { return u32(_MPTCP_PM_ADDR_ATTR_FLAGS, uint32(f)) }
func ifidx(i int32) attr         { return s32(_MPTCP_PM_ADDR_ATTR_IF_IDX, i) }
func token(v uint32) attr        { return u32(_MPTCP_PM_ATTR_TOKEN, v) }

// encodeAttrs is the inverse of decodeAttrs, for canned replies.
func encodeAttrs(t *testing.T, as []attr) []byte {
	t.Helper()
	var nas []netlink.Attribute
	for _, a := range as {
		if a.Nest != nil {
			nas = append(nas, netlink.Attribute{Type: a.Type | netlink.Nested, Data: encodeAttrs(t, a.Nest)})
			continue
		}
		nas = append(nas, netlink.Attribute{Type: a.Type, Data: a.Data})
	}
	b, err := netlink.MarshalAttributes(nas)
	if err != nil {
		t.Fatalf("marshal attributes: %v", err)
	}
	return b
}

var (
	ack  = netlink.Request | netlink.Acknowledge
	do   = netlink.Request
	dump = netlink.Request | netlink.Dump
)

func TestCommands(t *testing.T) {
	t.Parallel()
	a4 := netip.MustParseAddr("192.0.2.1")
	a6 := netip.MustParseAddr("2001:db8::1")
	r6 := netip.MustParseAddrPort("[2001:db8::2]:8080")
	tests := []struct {
		name  string
		cmd   uint8
		flags netlink.HeaderFlags
		call  func(c *Client) error
		want  []attr
	}{
		{
			name: "add endpoint IPv4 all fields", cmd: _MPTCP_PM_CMD_ADD_ADDR, flags: ack,
			call: func(c *Client) error {
				return c.AddEndpoint(Endpoint{ID: 3, Addr: a4, Port: 1234, Flags: FlagSignal, IfIndex: 2})
			},
			want: []attr{nest(_MPTCP_PM_ENDPOINT_ADDR, fam4(), id(3), addr4("192.0.2.1"), port(1234), flags(FlagSignal), ifidx(2))},
		},
		{
			name: "add endpoint IPv6 minimal", cmd: _MPTCP_PM_CMD_ADD_ADDR, flags: ack,
			call: func(c *Client) error { return c.AddEndpoint(Endpoint{Addr: a6}) },
			want: []attr{nest(_MPTCP_PM_ENDPOINT_ADDR, fam6(), addr6("2001:db8::1"))},
		},
		{
			name: "add endpoint IPv4-mapped is sent as IPv4", cmd: _MPTCP_PM_CMD_ADD_ADDR, flags: ack,
			call: func(c *Client) error {
				return c.AddEndpoint(Endpoint{Addr: netip.MustParseAddr("::ffff:192.0.2.1"), Flags: FlagSubflow})
			},
			want: []attr{nest(_MPTCP_PM_ENDPOINT_ADDR, fam4(), addr4("192.0.2.1"), flags(FlagSubflow))},
		},
		{
			name: "delete endpoint", cmd: _MPTCP_PM_CMD_DEL_ADDR, flags: ack,
			call: func(c *Client) error { return c.DelEndpoint(7) },
			want: []attr{nest(_MPTCP_PM_ATTR_ADDR, id(7))},
		},
		{
			name: "delete id 0 address", cmd: _MPTCP_PM_CMD_DEL_ADDR, flags: ack,
			call: func(c *Client) error { return c.DelEndpointAddr(a6) },
			want: []attr{nest(_MPTCP_PM_ATTR_ADDR, id(0), fam6(), addr6("2001:db8::1"))},
		},
		{
			name: "flush endpoints", cmd: _MPTCP_PM_CMD_FLUSH_ADDRS, flags: ack,
			call: func(c *Client) error { return c.FlushEndpoints() },
		},
		{
			name: "set endpoint flags by address and port", cmd: _MPTCP_PM_CMD_SET_FLAGS, flags: ack,
			call: func(c *Client) error {
				return c.SetEndpointFlags(Endpoint{ID: 9, Addr: a4, Port: 99, Flags: FlagBackup | FlagFullmesh})
			},
			want: []attr{nest(_MPTCP_PM_ATTR_ADDR, fam4(), addr4("192.0.2.1"), port(99), flags(FlagBackup|FlagFullmesh))},
		},
		{
			name: "set endpoint flags by id", cmd: _MPTCP_PM_CMD_SET_FLAGS, flags: ack,
			call: func(c *Client) error { return c.SetEndpointFlags(Endpoint{ID: 9}) },
			want: []attr{nest(_MPTCP_PM_ATTR_ADDR, id(9), flags(0))},
		},
		{
			name: "set both limits", cmd: _MPTCP_PM_CMD_SET_LIMITS, flags: ack,
			call: func(c *Client) error {
				a, s := uint32(4), uint32(8)
				return c.SetLimits(LimitsUpdate{AddAddrAccepted: &a, Subflows: &s})
			},
			want: []attr{u32(_MPTCP_PM_ATTR_RCV_ADD_ADDRS, 4), u32(_MPTCP_PM_ATTR_SUBFLOWS, 8)},
		},
		{
			name: "set subflows limit only", cmd: _MPTCP_PM_CMD_SET_LIMITS, flags: ack,
			call: func(c *Client) error {
				s := uint32(0)
				return c.SetLimits(LimitsUpdate{Subflows: &s})
			},
			want: []attr{u32(_MPTCP_PM_ATTR_SUBFLOWS, 0)},
		},
		{
			name: "announce", cmd: _MPTCP_PM_CMD_ANNOUNCE, flags: ack,
			call: func(c *Client) error {
				return c.Announce(0xdeadbeef, Endpoint{ID: 5, Addr: a6, Port: 443, Flags: FlagSignal, IfIndex: 3})
			},
			want: []attr{token(0xdeadbeef), nest(_MPTCP_PM_ATTR_ADDR, fam6(), addr6("2001:db8::1"), id(5), port(443), flags(FlagSignal), ifidx(3))},
		},
		{
			name: "announce sent as given", cmd: _MPTCP_PM_CMD_ANNOUNCE, flags: ack,
			call: func(c *Client) error { return c.Announce(1, Endpoint{Addr: a4}) },
			want: []attr{token(1), nest(_MPTCP_PM_ATTR_ADDR, fam4(), addr4("192.0.2.1"), id(0), flags(0))},
		},
		{
			name: "remove", cmd: _MPTCP_PM_CMD_REMOVE, flags: ack,
			call: func(c *Client) error { return c.Remove(0x01020304, 0) },
			want: []attr{token(0x01020304), u8(_MPTCP_PM_ATTR_LOC_ID, 0)},
		},
		{
			name: "create subflow all fields", cmd: _MPTCP_PM_CMD_SUBFLOW_CREATE, flags: ack,
			call: func(c *Client) error {
				return c.CreateSubflow(42, Endpoint{ID: 2, Addr: a6, Flags: FlagBackup, IfIndex: 4}, r6)
			},
			want: []attr{
				token(42),
				nest(_MPTCP_PM_ATTR_ADDR, fam6(), addr6("2001:db8::1"), id(2), flags(FlagBackup), ifidx(4)),
				nest(_MPTCP_PM_ATTR_ADDR_REMOTE, fam6(), addr6("2001:db8::2"), port(8080)),
			},
		},
		{
			name: "create subflow minimal IPv4, mapped remote", cmd: _MPTCP_PM_CMD_SUBFLOW_CREATE, flags: ack,
			call: func(c *Client) error {
				return c.CreateSubflow(42, Endpoint{Addr: a4}, netip.MustParseAddrPort("[::ffff:198.51.100.2]:80"))
			},
			want: []attr{
				token(42),
				nest(_MPTCP_PM_ATTR_ADDR, fam4(), addr4("192.0.2.1")),
				nest(_MPTCP_PM_ATTR_ADDR_REMOTE, fam4(), addr4("198.51.100.2"), port(80)),
			},
		},
		{
			name: "destroy subflow", cmd: _MPTCP_PM_CMD_SUBFLOW_DESTROY, flags: ack,
			call: func(c *Client) error {
				return c.DestroySubflow(42, netip.AddrPortFrom(a6, 40001), r6)
			},
			want: []attr{
				token(42),
				nest(_MPTCP_PM_ATTR_ADDR, fam6(), addr6("2001:db8::1"), port(40001)),
				nest(_MPTCP_PM_ATTR_ADDR_REMOTE, fam6(), addr6("2001:db8::2"), port(8080)),
			},
		},
		{
			name: "set subflow backup", cmd: _MPTCP_PM_CMD_SET_FLAGS, flags: ack,
			call: func(c *Client) error {
				return c.SetSubflowBackup(42, netip.AddrPortFrom(a6, 40001), r6, true)
			},
			want: []attr{
				token(42),
				nest(_MPTCP_PM_ATTR_ADDR, fam6(), addr6("2001:db8::1"), port(40001), flags(FlagBackup)),
				nest(_MPTCP_PM_ATTR_ADDR_REMOTE, fam6(), addr6("2001:db8::2"), port(8080)),
			},
		},
		{
			name: "clear subflow backup", cmd: _MPTCP_PM_CMD_SET_FLAGS, flags: ack,
			call: func(c *Client) error {
				return c.SetSubflowBackup(42, netip.MustParseAddrPort("192.0.2.1:5"), netip.MustParseAddrPort("198.51.100.2:80"), false)
			},
			want: []attr{
				token(42),
				nest(_MPTCP_PM_ATTR_ADDR, fam4(), addr4("192.0.2.1"), port(5), flags(0)),
				nest(_MPTCP_PM_ATTR_ADDR_REMOTE, fam4(), addr4("198.51.100.2"), port(80)),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var called bool
			c := testClient(t, genltest.CheckRequest(testFamilyID, tt.cmd, tt.flags,
				func(g genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
					called = true
					if g.Header.Version != _MPTCP_PM_VER {
						t.Errorf("genl version = %d, want %d", g.Header.Version, _MPTCP_PM_VER)
					}
					if diff := cmp.Diff(tt.want, decodeAttrs(t, g.Data)); diff != "" {
						t.Errorf("unexpected attributes (-want +got):\n%s", diff)
					}
					return []genetlink.Message{{}}, nil
				}))
			if err := tt.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			if !called {
				t.Fatal("no request reached the kernel")
			}
		})
	}
}

func TestGetters(t *testing.T) {
	t.Parallel()
	epReply := func(t *testing.T, as ...attr) genetlink.Message {
		return genetlink.Message{
			Header: genetlink.Header{Command: _MPTCP_PM_CMD_GET_ADDR, Version: 1},
			Data:   encodeAttrs(t, []attr{nest(_MPTCP_PM_ATTR_ADDR, as...)}),
		}
	}

	t.Run("endpoint", func(t *testing.T) {
		t.Parallel()
		c := testClient(t, genltest.CheckRequest(testFamilyID, _MPTCP_PM_CMD_GET_ADDR, do,
			func(g genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
				if diff := cmp.Diff([]attr{nest(_MPTCP_PM_ATTR_ADDR, id(3))}, decodeAttrs(t, g.Data)); diff != "" {
					t.Errorf("unexpected attributes (-want +got):\n%s", diff)
				}
				// The kernel's order: family, port, id, flags, if_idx, addr.
				return []genetlink.Message{epReply(t, fam4(), port(0), id(3), flags(FlagSubflow|FlagBackup), ifidx(2), addr4("192.0.2.1"))}, nil
			}))
		got, err := c.Endpoint(3)
		if err != nil {
			t.Fatalf("Endpoint: %v", err)
		}
		want := Endpoint{ID: 3, Addr: netip.MustParseAddr("192.0.2.1"), Flags: FlagSubflow | FlagBackup, IfIndex: 2}
		if diff := cmp.Diff(want, got, cmpAddrs); diff != "" {
			t.Errorf("unexpected endpoint (-want +got):\n%s", diff)
		}
	})

	dumpReply := func(t *testing.T) []genetlink.Message {
		return []genetlink.Message{
			epReply(t, fam4(), port(0), id(1), flags(FlagSignal), addr4("192.0.2.1")),
			epReply(t, fam6(), port(9000), id(2), flags(FlagSignal), addr6("2001:db8::1")),
			epReply(t, fam6(), id(3), addr6("::ffff:198.51.100.1")),
		}
	}
	wantDump := []Endpoint{
		{ID: 1, Addr: netip.MustParseAddr("192.0.2.1"), Flags: FlagSignal},
		{ID: 2, Addr: netip.MustParseAddr("2001:db8::1"), Port: 9000, Flags: FlagSignal},
		{ID: 3, Addr: netip.MustParseAddr("198.51.100.1")},
	}
	tests := []struct {
		name string
		want []attr
		call func(c *Client) ([]Endpoint, error)
	}{
		{
			name: "endpoints",
			call: func(c *Client) ([]Endpoint, error) { return c.Endpoints() },
		},
		{
			name: "connection addresses",
			want: []attr{token(0xabcdef01)},
			call: func(c *Client) ([]Endpoint, error) { return c.ConnectionAddrs(0xabcdef01) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testClient(t, genltest.CheckRequest(testFamilyID, _MPTCP_PM_CMD_GET_ADDR, dump,
				func(g genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
					if diff := cmp.Diff(tt.want, decodeAttrs(t, g.Data)); diff != "" {
						t.Errorf("unexpected attributes (-want +got):\n%s", diff)
					}
					return dumpReply(t), nil
				}))
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if diff := cmp.Diff(wantDump, got, cmpAddrs); diff != "" {
				t.Errorf("unexpected endpoints (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("limits", func(t *testing.T) {
		t.Parallel()
		c := testClient(t, genltest.CheckRequest(testFamilyID, _MPTCP_PM_CMD_GET_LIMITS, do,
			func(g genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
				if len(g.Data) != 0 {
					t.Errorf("get limits sent attributes % x", g.Data)
				}
				return []genetlink.Message{{Data: encodeAttrs(t, []attr{
					u32(_MPTCP_PM_ATTR_RCV_ADD_ADDRS, 3), u32(_MPTCP_PM_ATTR_SUBFLOWS, 5),
				})}}, nil
			}))
		got, err := c.Limits()
		if err != nil {
			t.Fatalf("Limits: %v", err)
		}
		if diff := cmp.Diff(Limits{AddAddrAccepted: 3, Subflows: 5}, got); diff != "" {
			t.Errorf("unexpected limits (-want +got):\n%s", diff)
		}
	})

	t.Run("malformed endpoint reply", func(t *testing.T) {
		t.Parallel()
		c := testClient(t, func(genetlink.Message, netlink.Message) ([]genetlink.Message, error) {
			return []genetlink.Message{epReply(t, raw(_MPTCP_PM_ADDR_ATTR_ADDR4, 192, 0, 2))}, nil
		})
		if _, err := c.Endpoint(1); err == nil {
			t.Fatal("Endpoint accepted a 3-byte IPv4 address")
		}
	})
}

// TestInvalidInput checks that bad input is refused, with the field named,
// before anything is sent.
func TestInvalidInput(t *testing.T) {
	t.Parallel()
	a4 := netip.MustParseAddr("192.0.2.1")
	r6 := netip.MustParseAddrPort("[2001:db8::2]:80")
	tests := []struct {
		name string
		call func(c *Client) error
		want string
	}{
		{"add endpoint without address", func(c *Client) error { return c.AddEndpoint(Endpoint{ID: 1}) },
			"genl: add endpoint: endpoint: invalid Addr: no address"},
		{"add endpoint with zone", func(c *Client) error {
			return c.AddEndpoint(Endpoint{Addr: netip.MustParseAddr("fe80::1%eth0")})
		}, "genl: add endpoint: endpoint: invalid Addr fe80::1%eth0: zones are not supported (set the interface index instead)"},
		{"add endpoint negative ifindex", func(c *Client) error {
			return c.AddEndpoint(Endpoint{Addr: a4, IfIndex: -1})
		}, "genl: add endpoint: endpoint: invalid IfIndex -1: must not be negative"},
		{"delete id 0", func(c *Client) error { return c.DelEndpoint(0) },
			"genl: delete endpoint: invalid id 0: endpoint ids are 1..255 (DelEndpointAddr removes the id 0 address)"},
		{"delete id 0 address invalid", func(c *Client) error { return c.DelEndpointAddr(netip.Addr{}) },
			"genl: delete id 0 address: invalid addr: no address"},
		{"set flags without address or id", func(c *Client) error { return c.SetEndpointFlags(Endpoint{Flags: FlagBackup}) },
			"genl: set endpoint flags: endpoint: neither Addr nor ID is set"},
		{"announce without address", func(c *Client) error { return c.Announce(1, Endpoint{ID: 1, Flags: FlagSignal}) },
			"genl: announce: endpoint: invalid Addr: no address"},
		{"create subflow families differ", func(c *Client) error { return c.CreateSubflow(1, Endpoint{Addr: a4}, r6) },
			"genl: create subflow: local address 192.0.2.1 and remote address 2001:db8::2 are of different families"},
		{"create subflow no remote", func(c *Client) error { return c.CreateSubflow(1, Endpoint{Addr: a4}, netip.AddrPort{}) },
			"genl: create subflow: invalid remote address: no address"},
		{"create subflow no local", func(c *Client) error { return c.CreateSubflow(1, Endpoint{}, r6) },
			"genl: create subflow: local endpoint: invalid Addr: no address"},
		{"destroy subflow families differ", func(c *Client) error {
			return c.DestroySubflow(1, netip.AddrPortFrom(a4, 1), r6)
		}, "genl: destroy subflow: local address 192.0.2.1 and remote address 2001:db8::2 are of different families"},
		{"destroy subflow no local", func(c *Client) error { return c.DestroySubflow(1, netip.AddrPort{}, r6) },
			"genl: destroy subflow: invalid local address: no address"},
		{"set subflow backup families differ", func(c *Client) error {
			return c.SetSubflowBackup(1, netip.AddrPortFrom(a4, 1), r6, true)
		}, "genl: set subflow backup: local address 192.0.2.1 and remote address 2001:db8::2 are of different families"},
		{"set path manager", func(c *Client) error { return c.SetPathManager("bpf") },
			`genl: set path manager: invalid path manager "bpf" (want "kernel" or "userspace")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testClient(t, func(g genetlink.Message, _ netlink.Message) ([]genetlink.Message, error) {
				t.Errorf("command %d reached the kernel", g.Header.Command)
				return []genetlink.Message{{}}, nil
			})
			err := tt.call(c)
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("unexpected error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGoldenAddEndpoint checks the exact bytes of one ADD_ADDR request,
// written by hand from the kernel's netlink format (little-endian host).
func TestGoldenAddEndpoint(t *testing.T) {
	t.Parallel()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the golden bytes are little-endian")
	}
	want := []byte{
		// struct genlmsghdr: cmd 1 (ADD_ADDR), version 1, reserved 0.
		0x01, 0x01, 0x00, 0x00,
		// struct nlattr: len 44 (4 + 40 of nest), type 1 (ENDPOINT_ADDR)
		// | NLA_F_NESTED (0x8000).
		0x2c, 0x00, 0x01, 0x80,
		// FAMILY: len 6, type 1, u16 AF_INET (2), 2 bytes padding to 4.
		0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
		// ID: len 5, type 2, u8 3, 3 bytes padding.
		0x05, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00,
		// ADDR4: len 8, type 3, 192.0.2.1 in network byte order.
		0x08, 0x00, 0x03, 0x00, 0xc0, 0x00, 0x02, 0x01,
		// FLAGS: len 8, type 6, u32 subflow (2) | backup (4) = 6.
		0x08, 0x00, 0x06, 0x00, 0x06, 0x00, 0x00, 0x00,
		// IF_IDX: len 8, type 7, s32 2.
		0x08, 0x00, 0x07, 0x00, 0x02, 0x00, 0x00, 0x00,
	}
	c := testClient(t, func(_ genetlink.Message, n netlink.Message) ([]genetlink.Message, error) {
		// struct nlmsghdr: the whole message is 16 + 48 bytes, of the
		// family's type, with NLM_F_REQUEST|NLM_F_ACK (0x5).
		if n.Header.Length != 64 || n.Header.Type != testFamilyID || n.Header.Flags != 0x5 {
			t.Errorf("unexpected header: %+v", n.Header)
		}
		if diff := cmp.Diff(want, n.Data); diff != "" {
			t.Errorf("unexpected request bytes (-want +got):\n%s", diff)
		}
		return []genetlink.Message{{}}, nil
	})
	err := c.AddEndpoint(Endpoint{
		ID:      3,
		Addr:    netip.MustParseAddr("192.0.2.1"),
		Flags:   FlagSubflow | FlagBackup,
		IfIndex: 2,
	})
	if err != nil {
		t.Fatalf("AddEndpoint: %v", err)
	}
}

// extackConn is a fake kernel that answers every mptcp_pm request with an
// NLMSG_ERROR carrying errno and, when msg is not empty, an extended ack.
func extackConn(t *testing.T, errno unix.Errno, msg string) *genetlink.Conn {
	t.Helper()
	return genetlink.NewConn(nltest.Dial(func(reqs []netlink.Message) ([]netlink.Message, error) {
		req := reqs[0]
		if req.Header.Type == unix.GENL_ID_CTRL {
			gmsgs, err := familyReply(testFamily)
			if err != nil {
				return nil, err
			}
			b, err := gmsgs[0].MarshalBinary()
			if err != nil {
				return nil, err
			}
			return []netlink.Message{{Header: netlink.Header{Sequence: req.Header.Sequence, PID: req.Header.PID}, Data: b}}, nil
		}
		// struct nlmsgerr: -errno, then the request's header (capped: the
		// payload is left out), then the NLMSGERR_ATTR_* TLVs.
		hdr := req.Header
		hdr.Length = 16
		hb, err := (netlink.Message{Header: hdr}).MarshalBinary()
		if err != nil {
			return nil, err
		}
		data := append(nlenc.Int32Bytes(-int32(errno)), hb...)
		h := netlink.Header{Type: netlink.Error, Sequence: req.Header.Sequence, PID: req.Header.PID}
		if msg != "" {
			h.Flags = netlink.Capped | netlink.AcknowledgeTLVs
			data = append(data, nltest.MustMarshalAttributes([]netlink.Attribute{
				{Type: unix.NLMSGERR_ATTR_MSG, Data: nlenc.Bytes(msg)},
			})...)
		}
		return []netlink.Message{{Header: h, Data: data}}, nil
	}))
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		errno        unix.Errno
		msg          string
		text         string
		notExist     bool
		exist        bool
		perm         bool
		notUserspace bool
		idMismatch   bool
	}{
		{
			name: "duplicate address", errno: unix.EEXIST, msg: "too many addresses or duplicate one: -17",
			text:  "genl: add endpoint: too many addresses or duplicate one: -17: file exists",
			exist: true,
		},
		{
			name: "id in use", errno: unix.EBUSY, msg: "too many addresses or duplicate one: -16",
			text:  "genl: add endpoint: too many addresses or duplicate one: -16: device or resource busy",
			exist: true,
		},
		{
			name: "too many endpoints", errno: unix.ERANGE, msg: "too many addresses or duplicate one: -34",
			text: "genl: add endpoint: too many addresses or duplicate one: -34: numerical result out of range",
		},
		{
			name: "address not found", errno: unix.EINVAL, msg: "address not found",
			text:     "genl: add endpoint: address not found: invalid argument",
			notExist: true,
		},
		{
			name: "address with id not found", errno: unix.EINVAL, msg: "address with id 9 not found",
			text:     "genl: add endpoint: address with id 9 not found: invalid argument",
			notExist: true,
		},
		{
			name: "subflow not found", errno: unix.ESRCH, msg: "subflow not found",
			text:     "genl: add endpoint: subflow not found: no such process",
			notExist: true,
		},
		{
			name: "invalid token", errno: unix.EINVAL, msg: "invalid token",
			text:     "genl: add endpoint: invalid token: invalid argument",
			notExist: true,
		},
		{
			name: "userspace PM not selected", errno: unix.EINVAL, msg: "userspace PM not selected",
			text:         "genl: add endpoint: userspace PM not selected: invalid argument",
			notUserspace: true,
		},
		{
			name: "userspace PM not selected, older text", errno: unix.EINVAL, msg: "invalid request; userspace PM not selected",
			text:         "genl: add endpoint: invalid request; userspace PM not selected: invalid argument",
			notUserspace: true,
		},
		{
			name: "address and id mismatch", errno: unix.EINVAL, msg: "did not match address and id",
			text:       "genl: add endpoint: did not match address and id: invalid argument",
			idMismatch: true,
		},
		{
			name: "ENOENT without extack", errno: unix.ENOENT,
			text:     "genl: add endpoint: no such file or directory",
			notExist: true,
		},
		{
			name: "EPERM without extack", errno: unix.EPERM,
			text: "genl: add endpoint: operation not permitted",
			perm: true,
		},
		{
			name: "EACCES", errno: unix.EACCES,
			text: "genl: add endpoint: permission denied",
			perm: true,
		},
		{
			name: "missing address ID", errno: unix.EOPNOTSUPP, msg: "missing address ID",
			text: "genl: add endpoint: missing address ID: operation not supported",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cl, err := newClient(extackConn(t, tt.errno, tt.msg), nil)
			if err != nil {
				t.Fatalf("newClient: %v", err)
			}
			t.Cleanup(func() { _ = cl.close() })
			c := &Client{c: cl}

			err = c.AddEndpoint(Endpoint{Addr: netip.MustParseAddr("192.0.2.1")})
			var gerr *Error
			if !errors.As(err, &gerr) {
				t.Fatalf("error %v (%T) is not a *genl.Error", err, err)
			}
			want := Error{Op: "add endpoint", Err: tt.errno, Message: tt.msg}
			if diff := cmp.Diff(want, *gerr); diff != "" {
				t.Errorf("unexpected error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.text, err.Error()); diff != "" {
				t.Errorf("unexpected text (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("errors.Is(err, %v) = false", tt.errno)
			}
			got := [5]bool{errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrExist), errors.Is(err, os.ErrPermission),
				errors.Is(err, ErrNotUserspacePM), errors.Is(err, ErrAddrIDMismatch)}
			wantIs := [5]bool{tt.notExist, tt.exist, tt.perm, tt.notUserspace, tt.idMismatch}
			if diff := cmp.Diff(wantIs, got); diff != "" {
				t.Errorf("unexpected [NotExist Exist Permission NotUserspacePM AddrIDMismatch] (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewUnavailable(t *testing.T) {
	t.Parallel()
	conn := genltest.Dial(func(g genetlink.Message, n netlink.Message) ([]genetlink.Message, error) {
		if n.Header.Type != unix.GENL_ID_CTRL || g.Header.Command != unix.CTRL_CMD_GETFAMILY {
			return nil, fmt.Errorf("unexpected request %+v", n.Header)
		}
		return nil, genltest.Error(int(unix.ENOENT))
	})
	defer conn.Close()
	_, err := newClient(conn, nil)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v does not match ErrUnavailable", err)
	}
	want := "genl: MPTCP is not available: the kernel has no mptcp_pm family (CONFIG_MPTCP disabled or kernel older than 5.6?)"
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("unexpected error (-want +got):\n%s", diff)
	}
}

func TestFeatures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fam  family
		want Features
		// supports and lacks are checked with Supports.
		supports, lacks []Command
	}{
		{
			name:     "6.18",
			fam:      testFamily,
			want:     Features{ID: testFamilyID, Version: 1, Commands: testFamily.commands, Events: true},
			supports: []Command{CmdAddAddr, CmdSubflowDestroy},
			lacks:    []Command{0, 12},
		},
		{
			name: "5.10: no userspace PM, no events",
			fam: family{id: testFamilyID, version: 1, commands: []Command{1, 2, 3, 4, 5, 6, 7, 3},
				groups: []genetlink.MulticastGroup{{ID: 6, Name: "mptcp_pm_cmds"}}},
			want:     Features{ID: testFamilyID, Version: 1, Commands: []Command{1, 2, 3, 4, 5, 6, 7}},
			supports: []Command{CmdSetFlags},
			lacks:    []Command{CmdAnnounce, CmdSubflowCreate},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cl, err := newClient(genltest.Dial(serveFamily(tt.fam, nil)), nil)
			if err != nil {
				t.Fatalf("newClient: %v", err)
			}
			t.Cleanup(func() { _ = cl.close() })
			c := &Client{c: cl}
			got := c.Features()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("unexpected features (-want +got):\n%s", diff)
			}
			got.Commands[0] = 99
			if c.Features().Commands[0] == 99 {
				t.Error("Features shares its Commands slice with the client")
			}
			for _, cmd := range tt.supports {
				if !c.Supports(cmd) {
					t.Errorf("Supports(%s) = false", cmd)
				}
			}
			for _, cmd := range tt.lacks {
				if c.Supports(cmd) {
					t.Errorf("Supports(%s) = true", cmd)
				}
			}
		})
	}
}

func TestCommandString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   Command
		want string
	}{
		{CmdAddAddr, "add-addr"},
		{CmdGetLimits, "get-limits"},
		{CmdSubflowDestroy, "subflow-destroy"},
		{0, "unknown(0)"},
		{200, "unknown(200)"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.in.String()); diff != "" {
			t.Errorf("Command(%d).String() (-want +got):\n%s", uint8(tt.in), diff)
		}
	}
}
