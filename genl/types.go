package genl

import (
	"fmt"
	"net/netip"
	"strings"
)

// EndpointFlags are the MPTCP_PM_ADDR_FLAG_* bits of an endpoint or of a
// connection's local address.
type EndpointFlags uint32

// Endpoint flag bits, as in the kernel's uapi/linux/mptcp.h.
const (
	FlagSignal   EndpointFlags = 1 << 0 // announce the address to peers (ADD_ADDR)
	FlagSubflow  EndpointFlags = 1 << 1 // open subflows from the address
	FlagBackup   EndpointFlags = 1 << 2 // subflows over the address are backup
	FlagFullmesh EndpointFlags = 1 << 3 // one subflow to every peer address (5.18)
	FlagImplicit EndpointFlags = 1 << 4 // created by the kernel; cannot be added
	FlagLaminar  EndpointFlags = 1 << 5 // laminar endpoint (6.18)
)

var flagNames = []struct {
	f    EndpointFlags
	name string
}{
	{FlagSignal, "signal"},
	{FlagSubflow, "subflow"},
	{FlagBackup, "backup"},
	{FlagFullmesh, "fullmesh"},
	{FlagImplicit, "implicit"},
	{FlagLaminar, "laminar"},
}

// String returns the flags as `ip mptcp` prints them, space separated,
// with unknown bits in hex.
func (f EndpointFlags) String() string {
	var parts []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(f)))
	}
	return strings.Join(parts, " ")
}

// ParseEndpointFlag returns the flag named s ("signal", "subflow", "backup",
// "fullmesh", "implicit" or "laminar").
func ParseEndpointFlag(s string) (EndpointFlags, error) {
	for _, n := range flagNames {
		if n.name == s {
			return n.f, nil
		}
	}
	return 0, fmt.Errorf("genl: unknown endpoint flag %q (want signal, subflow, backup, fullmesh, implicit or laminar)", s)
}

// Endpoint is an in-kernel path-manager endpoint, or one entry of a
// userspace-PM connection's local address list.
type Endpoint struct {
	// ID is the endpoint id, 1..255; 0 in AddEndpoint lets the kernel pick.
	ID uint8
	// Addr is the IPv4 or IPv6 address.
	Addr netip.Addr
	// Port is the optional port (signal endpoints only); 0 means none.
	Port uint16
	// Flags are the endpoint's flags.
	Flags EndpointFlags
	// IfIndex is the interface the endpoint is bound to; 0 means none.
	IfIndex int32
}

// Limits are the in-kernel path manager's per-namespace limits.
type Limits struct {
	// AddAddrAccepted is how many ADD_ADDRs from a peer are accepted per connection.
	AddAddrAccepted uint32
	// Subflows is how many extra subflows a connection may have.
	Subflows uint32
}

// LimitsUpdate changes some of the limits; a nil field is left as it is.
type LimitsUpdate struct {
	AddAddrAccepted *uint32
	Subflows        *uint32
}

// MaxLimit is the largest value the kernel accepts for a limit, and the
// largest number of endpoints per namespace (MPTCP_PM_ADDR_MAX).
const MaxLimit = 8

// EventType is an MPTCP_EVENT_* value.
type EventType uint8

// Event types, as in the kernel's uapi/linux/mptcp_pm.h.
const (
	EventCreated         EventType = 1  // a connection (msk) was created
	EventEstablished     EventType = 2  // it is fully established; subflows may be added
	EventClosed          EventType = 3  // it was closed
	EventAnnounced       EventType = 6  // the peer announced an address (ADD_ADDR)
	EventRemoved         EventType = 7  // the peer removed an address (RM_ADDR)
	EventSubEstablished  EventType = 10 // a subflow was established
	EventSubClosed       EventType = 11 // a subflow was closed
	EventSubPriority     EventType = 13 // a subflow's backup bit changed (MP_PRIO)
	EventListenerCreated EventType = 15 // an MPTCP listening socket was created
	EventListenerClosed  EventType = 16 // an MPTCP listening socket was closed
)

var eventNames = map[EventType]string{
	EventCreated:         "created",
	EventEstablished:     "established",
	EventClosed:          "closed",
	EventAnnounced:       "announced",
	EventRemoved:         "removed",
	EventSubEstablished:  "sub_established",
	EventSubClosed:       "sub_closed",
	EventSubPriority:     "sub_priority",
	EventListenerCreated: "listener_created",
	EventListenerClosed:  "listener_closed",
}

// String returns the event's name in lower case, as `ip mptcp monitor`
// prints it, or "unknown(N)".
func (t EventType) String() string {
	if s, ok := eventNames[t]; ok {
		return s
	}
	return fmt.Sprintf("unknown(%d)", uint8(t))
}

// EventFlags are the MPTCP_PM_EV_FLAG_* bits of CREATED and ESTABLISHED.
type EventFlags uint16

// Event flag bits.
const (
	// EventFlagDenyJoinID0: the peer forbids joins to its initial address
	// and port (the "C" flag, RFC 8684 §3.1).
	EventFlagDenyJoinID0 EventFlags = 1 << 0
	// EventFlagServerSide: this side accepted the connection (6.18).
	EventFlagServerSide EventFlags = 1 << 1
)

// Event is one mptcp_pm event. Fields the kernel did not send are zero.
type Event struct {
	Type  EventType
	Token uint32
	// LocalID and RemoteID are the local and remote address ids.
	LocalID, RemoteID uint8
	// Local is saddr/sport; for listener events, the listening address.
	Local netip.AddrPort
	// Remote is daddr/dport; for ANNOUNCED, the announced address and port.
	Remote netip.AddrPort
	// Backup is the subflow's backup bit (SUB_* events).
	Backup bool
	// Error is the subflow socket's sk_err, when the kernel reported one.
	Error uint8
	// Flags are the event flags (CREATED, ESTABLISHED).
	Flags EventFlags
	// ServerSide is true when this side is the server, from the legacy
	// SERVER_SIDE attribute or from EventFlagServerSide.
	ServerSide bool
	// IfIndex is the device a subflow is bound to, 0 when unbound.
	IfIndex int32
	// ResetReason and ResetFlags come from an MP_TCPRST (SUB_CLOSED).
	ResetReason, ResetFlags uint32
	// Timeout is the MPTCP_ATTR_TIMEOUT value (never sent by current kernels).
	Timeout uint32
}

// PathManager is a namespace's path manager: "kernel" or "userspace".
type PathManager string

// Path managers.
const (
	PathManagerKernel    PathManager = "kernel"
	PathManagerUserspace PathManager = "userspace"
)
