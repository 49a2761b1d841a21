package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Mode is the path manager a view is computed for: it tells a policy which
// of its methods the engine calls.
type Mode string

// Modes, named as the kernel's net.mptcp.path_manager sysctl names them.
const (
	// ModeKernel: the in-kernel path manager; the engine calls Kernel.
	ModeKernel Mode = "kernel"
	// ModeUserspace: the userspace path manager; the engine calls Conn
	// for every connection.
	ModeUserspace Mode = "userspace"
)

// View is an immutable snapshot of the host that policies decide from. The
// engine builds a new View for every decision; policies must not modify it
// or keep references to its slices.
type View struct {
	// Mode is the path manager the decision is for.
	Mode Mode `json:"mode"`
	// Now is the time of the snapshot. Policies use it instead of
	// time.Now, so a decision depends on the view alone.
	Now time.Time `json:"now"`
	// Links are the host's network interfaces, ordered by index.
	Links []Link `json:"links"`
	// Addrs are the local addresses that could carry subflows, usable or
	// not (see LocalAddr.Usable).
	Addrs []LocalAddr `json:"addrs"`
}

// Link returns the link with the interface index, and false when the view
// has none.
func (v View) Link(index int32) (Link, bool) {
	for _, l := range v.Links {
		if l.Index == index {
			return l, true
		}
	}
	return Link{}, false
}

// UsableAddrs returns the addresses that are usable and sit on a usable
// link (or on a link the view does not list), in the order of v.Addrs.
func (v View) UsableAddrs() []LocalAddr {
	var out []LocalAddr
	for _, a := range v.Addrs {
		if v.Usable(a) {
			out = append(out, a)
		}
	}
	return out
}

// Usable reports whether UsableAddrs lists a: it is usable, valid, and
// on a usable link or one the view does not list. Policies that look at
// one address at a time use it instead of UsableAddrs, which allocates.
func (v View) Usable(a LocalAddr) bool {
	if !a.Usable || !a.Addr.IsValid() {
		return false
	}
	l, ok := v.Link(a.IfIndex)
	return !ok || l.Usable
}

// LocalAddr is an address of the host.
type LocalAddr struct {
	// Addr is the address, never IPv4-mapped.
	Addr netip.Addr `json:"addr"`
	// PrefixLen is the length of the address's subnet prefix, as `ip
	// address` shows it (24 for 192.0.2.1/24); 0 when unknown.
	PrefixLen int `json:"prefix_len,omitempty"`
	// Link is the name of the interface the address is on.
	Link string `json:"link"`
	// IfIndex is the index of that interface.
	IfIndex int32 `json:"ifindex"`
	// Usable reports whether subflows may use the address now: it is
	// neither tentative nor deprecated, it is routable, its link is up,
	// and the configuration does not exclude it.
	Usable bool `json:"usable"`
	// Reason says why the address is not usable ("tentative", "link down",
	// "no route", "excluded"); empty when it is.
	Reason string `json:"reason,omitempty"`
	// Changed is when Usable last changed; zero when unknown.
	Changed time.Time `json:"changed,omitzero"`
}

// Link is a network interface of the host.
type Link struct {
	// Name is the interface name ("eth0").
	Name string `json:"name"`
	// Index is the interface index.
	Index int32 `json:"index"`
	// Kind is what the link is (wired, wifi, cellular, virtual).
	Kind LinkKind `json:"kind"`
	// Up reports whether the link is up with a carrier.
	Up bool `json:"up"`
	// Usable reports whether subflows may use the link: it is up and the
	// configuration does not exclude it.
	Usable bool `json:"usable"`
	// Changed is when Up or Usable last changed; zero when unknown.
	Changed time.Time `json:"changed,omitzero"`
	// Metered reports whether traffic over the link costs money or quota.
	Metered bool `json:"metered"`
	// CostPerGB is the price of a gigabyte (10^9 bytes) over the link, in
	// the configuration's currency; 0 when free or unknown.
	CostPerGB float64 `json:"cost_per_gb,omitempty"`
	// QuotaBytes is the traffic allowed per accounting period; 0 means
	// no quota.
	QuotaBytes uint64 `json:"quota_bytes,omitempty"`
	// UsedBytes is the traffic counted since UsageSince.
	UsedBytes uint64 `json:"used_bytes,omitempty"`
	// UsageSince is the start of the current accounting period; zero when
	// the link has no accounting.
	UsageSince time.Time `json:"usage_since,omitzero"`
	// Health summarises the subflows over the link: the smallest RTT and
	// the largest loss seen, and Stalled when one of them is stalled and
	// none got an ACK within its threshold. The verdict stays while the
	// link carries no subflow, until one shows it works again.
	Health Health `json:"health,omitzero"`
}

// Health describes how well a path carries data, as TCP sees it
// (struct tcp_info of its subflows). The zero Health means nothing is
// known.
type Health struct {
	// RTT is the smoothed round-trip time (tcpi_rtt).
	RTT time.Duration `json:"rtt_ns,omitempty"`
	// RTTVar is the round-trip time variance (tcpi_rttvar).
	RTTVar time.Duration `json:"rttvar_ns,omitempty"`
	// RTO is the retransmission timeout (tcpi_rto).
	RTO time.Duration `json:"rto_ns,omitempty"`
	// Loss is the fraction of sent bytes that were retransmitted, 0..1.
	Loss float64 `json:"loss,omitempty"`
	// Retransmits counts consecutive unanswered retransmission timeouts
	// (tcpi_retransmits); it returns to 0 when an ACK arrives.
	Retransmits uint32 `json:"retransmits,omitempty"`
	// Unacked is the number of segments in flight (tcpi_unacked).
	Unacked uint32 `json:"unacked,omitempty"`
	// LastAckRecv is the time since the last ACK was received
	// (tcpi_last_ack_recv).
	LastAckRecv time.Duration `json:"last_ack_recv_ns,omitempty"`
	// LastDataRecv is the time since data was last received
	// (tcpi_last_data_recv).
	LastDataRecv time.Duration `json:"last_data_recv_ns,omitempty"`
	// Stalled reports that data is outstanding and nothing was
	// acknowledged for longer than the RTO.
	Stalled bool `json:"stalled,omitempty"`
	// StalledChanged is when Stalled last changed; zero when never.
	StalledChanged time.Time `json:"stalled_changed,omitzero"`
	// Sampled is when the numbers were read; zero when never.
	Sampled time.Time `json:"sampled,omitzero"`
}

// Conn is one MPTCP connection managed by the userspace path manager.
// Like the View, it is the engine's: policies must not modify it or keep
// references to its slices, which the engine reuses for the next
// connection.
type Conn struct {
	// Token is the connection's local token, as in the kernel's events.
	Token uint32 `json:"token"`
	// Side is SideClient when this host opened the connection and
	// SideServer when it accepted it.
	Side Side `json:"side"`
	// Local is the local address and port of the initial subflow.
	Local netip.AddrPort `json:"local"`
	// Remote is the peer's address and port of the initial subflow.
	Remote netip.AddrPort `json:"remote"`
	// DenyJoinID0 reports that the peer forbids subflows to its initial
	// address and port (the "C" flag, RFC 8684 §3.1).
	DenyJoinID0 bool `json:"deny_join_id0,omitempty"`
	// PeerAddrs are the peer's addresses: the initial one (ID 0,
	// SourceInitial) first, then those it announced (ADD_ADDR) and has
	// not removed. An announced port of 0 means the initial port.
	PeerAddrs []PeerAddr `json:"peer_addrs"`
	// Subflows are the connection's current subflows, the initial one
	// included while it lives.
	Subflows []Subflow `json:"subflows"`
	// Owner is who opened the connection's socket. The engine learns it
	// only for a policy that reads it (OwnerReader: a Router with a rule
	// by unit or uid), before its first plan for the connection; nil
	// otherwise, or when it could not be learnt (the connection closed
	// at once).
	Owner *Owner `json:"owner,omitempty"`
	// Created is when the engine learnt of the connection from its
	// CREATED event: on the client side when connect() sent the SYN.
	// Zero when unknown (a connection that existed when the daemon
	// started). DeferJoins counts a connection's age from it.
	Created time.Time `json:"created,omitzero"`
	// BytesSent and BytesReceived are the data the connection has sent
	// and received (MPTCP level, struct mptcp_info), as the engine last
	// read them. The engine reads them only while a Deferral with
	// AfterBytes holds a path or announce of the connection back, so
	// they lag, and are zero otherwise.
	BytesSent     uint64 `json:"bytes_sent,omitempty"`
	BytesReceived uint64 `json:"bytes_received,omitempty"`
}

// Owner is the owner of a connection's MPTCP socket, as the kernel
// reports it (sock_diag): both are set when the socket is created. A
// connection this host accepted starts with its listener's; accept()
// gives it the uid of the task that accepts, usually the listener's.
type Owner struct {
	// UID is the socket's owner: the fsuid of the task that created it
	// (or accepted it).
	UID uint32 `json:"uid"`
	// Cgroup is the path of the socket's cgroup v2 from the hierarchy's
	// root, the cgroup its creator ran in then: "/system.slice/backup.service".
	// Empty when unknown (no cgroup v2, or the cgroup is gone).
	Cgroup string `json:"cgroup,omitempty"`
}

// InUnit reports whether the owner's cgroup is the cgroup of the systemd
// unit named unit or below it: whether one of the path's components is
// unit. systemd names a unit's cgroup after the unit, in whichever slice
// it runs ("/system.slice/backup.service/…", or
// "/user.slice/user-1000.slice/user@1000.service/app.slice/…" for a
// user's units), and a slice's cgroup holds its units' cgroups.
func (o Owner) InUnit(unit string) bool {
	if unit == "" {
		return false
	}
	for c := range strings.SplitSeq(o.Cgroup, "/") {
		if c == unit {
			return true
		}
	}
	return false
}

// PeerAddr is an address of the peer of a connection.
type PeerAddr struct {
	// ID is the peer's address id; 0 for the initial address.
	ID uint8 `json:"id"`
	// Addr is the address and port.
	Addr netip.AddrPort `json:"addr"`
	// Source says how the address became known.
	Source AddrSource `json:"source"`
}

// Subflow is a subflow of a connection.
type Subflow struct {
	// Local and Remote are the subflow's addresses and ports.
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// LocalID and RemoteID are the address ids on both ends.
	LocalID  uint8 `json:"local_id"`
	RemoteID uint8 `json:"remote_id"`
	// Backup is the subflow's local backup bit.
	Backup bool `json:"backup,omitempty"`
	// Established reports that the subflow is fully established.
	Established bool `json:"established"`
	// EstablishedAt is when the subflow became established; zero when
	// unknown.
	EstablishedAt time.Time `json:"established_at,omitzero"`
	// IfIndex is the interface the subflow is bound to; 0 when unbound.
	IfIndex int32 `json:"ifindex,omitempty"`
	// Health is the subflow's own health.
	Health Health `json:"health,omitzero"`
}

// LinkKind is what kind of network a link attaches to.
type LinkKind uint8

// Link kinds.
const (
	LinkUnknown  LinkKind = iota // not determined
	LinkWired                    // Ethernet and the like
	LinkWiFi                     // IEEE 802.11
	LinkCellular                 // WWAN: LTE, 5G (wwan, rmnet, usb modems)
	LinkVirtual                  // tunnels, bridges, veth, VPNs
)

var linkKindNames = []string{"unknown", "wired", "wifi", "cellular", "virtual"}

// String returns the kind's name: "unknown", "wired", "wifi", "cellular"
// or "virtual".
func (k LinkKind) String() string { return enumString(linkKindNames, uint8(k), "link kind") }

// MarshalText implements encoding.TextMarshaler.
func (k LinkKind) MarshalText() ([]byte, error) {
	return enumMarshal(linkKindNames, uint8(k), "link kind")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *LinkKind) UnmarshalText(b []byte) error {
	return enumUnmarshal(linkKindNames, (*uint8)(k), b, "link kind", "")
}

// Side is the role of this host in a connection.
type Side uint8

// Sides.
const (
	// SideAny matches either side in a Match; a Conn never has it.
	SideAny Side = iota
	// SideClient: this host opened the connection.
	SideClient
	// SideServer: this host accepted the connection.
	SideServer
)

var sideNames = []string{"any", "client", "server"}

// String returns "any", "client" or "server".
func (s Side) String() string { return enumString(sideNames, uint8(s), "side") }

// MarshalText implements encoding.TextMarshaler.
func (s Side) MarshalText() ([]byte, error) { return enumMarshal(sideNames, uint8(s), "side") }

// UnmarshalText implements encoding.TextUnmarshaler. The empty string is
// SideAny.
func (s *Side) UnmarshalText(b []byte) error {
	return enumUnmarshal(sideNames, (*uint8)(s), b, "side", "any")
}

// AddrSource says how a peer address became known.
type AddrSource uint8

// Address sources.
const (
	// SourceInitial: the address of the connection's initial subflow.
	SourceInitial AddrSource = iota
	// SourceAnnounced: the peer announced the address (ADD_ADDR).
	SourceAnnounced
)

var sourceNames = []string{"initial", "announced"}

// String returns "initial" or "announced".
func (s AddrSource) String() string { return enumString(sourceNames, uint8(s), "address source") }

// MarshalText implements encoding.TextMarshaler.
func (s AddrSource) MarshalText() ([]byte, error) {
	return enumMarshal(sourceNames, uint8(s), "address source")
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *AddrSource) UnmarshalText(b []byte) error {
	return enumUnmarshal(sourceNames, (*uint8)(s), b, "address source", "")
}

func enumString(names []string, v uint8, what string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", what, v)
}

func enumMarshal(names []string, v uint8, what string) ([]byte, error) {
	if int(v) < len(names) {
		return []byte(names[v]), nil
	}
	return nil, fmt.Errorf("policy: invalid %s %d", what, v)
}

// enumUnmarshal sets *v to the index of b in names. An empty b is read as
// the name in empty; when empty is "" too, it is an error.
func enumUnmarshal(names []string, v *uint8, b []byte, what, empty string) error {
	s := string(b)
	if s == "" && empty != "" {
		s = empty
	}
	for i, n := range names {
		if n == s {
			*v = uint8(i)
			return nil
		}
	}
	return fmt.Errorf("policy: unknown %s %q (want %s)", what, b, oneOf(names))
}

// oneOf returns "a, b or c".
func oneOf(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	s := names[0]
	for _, n := range names[1 : len(names)-1] {
		s += ", " + n
	}
	return s + " or " + names[len(names)-1]
}
