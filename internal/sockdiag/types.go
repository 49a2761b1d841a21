package sockdiag

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Config configures a Client.
type Config struct {
	// NetNS is a file descriptor of the network namespace to inspect; 0 means
	// the namespace of the calling thread.
	NetNS int

	// States is the set of TCP states to dump, as a bit mask with bit
	// (1 << state) for each wanted state (the kernel's TCPF_* flags; see
	// StateMask). 0 selects every state but LISTEN for Connections, and every
	// state but LISTEN, TIME-WAIT and NEW-SYN-RECV for Subflows (those
	// sockets carry no MPTCP subflow data). With LISTEN selected, MPTCP
	// listeners are reported as a Connection and a Subflow with Token 0.
	States uint32
}

// TCP states, as in the kernel's include/net/tcp_states.h. Connection.State
// and Subflow.State hold one of these.
const (
	StateEstablished uint8 = 1
	StateSynSent     uint8 = 2
	StateSynRecv     uint8 = 3
	StateFinWait1    uint8 = 4
	StateFinWait2    uint8 = 5
	StateTimeWait    uint8 = 6
	StateClose       uint8 = 7
	StateCloseWait   uint8 = 8
	StateLastAck     uint8 = 9
	StateListen      uint8 = 10
	StateClosing     uint8 = 11
	StateNewSynRecv  uint8 = 12
)

// stateNames are the names `ss` prints for each state.
var stateNames = [...]string{
	StateEstablished: "ESTAB",
	StateSynSent:     "SYN-SENT",
	StateSynRecv:     "SYN-RECV",
	StateFinWait1:    "FIN-WAIT-1",
	StateFinWait2:    "FIN-WAIT-2",
	StateTimeWait:    "TIME-WAIT",
	StateClose:       "UNCONN",
	StateCloseWait:   "CLOSE-WAIT",
	StateLastAck:     "LAST-ACK",
	StateListen:      "LISTEN",
	StateClosing:     "CLOSING",
	StateNewSynRecv:  "NEW-SYN-RECV",
}

// StateName returns the name `ss` prints for a TCP state ("ESTAB",
// "LISTEN", ...), or "UNKNOWN(n)".
func StateName(state uint8) string {
	if int(state) < len(stateNames) && stateNames[state] != "" {
		return stateNames[state]
	}
	return fmt.Sprintf("UNKNOWN(%d)", state)
}

// StateMask returns the Config.States mask selecting the given states.
func StateMask(states ...uint8) uint32 {
	var m uint32
	for _, s := range states {
		if s < 32 {
			m |= 1 << s
		}
	}
	return m
}

// Connection is one MPTCP connection (the MPTCP-level socket, "msk").
type Connection struct {
	Local, Remote netip.AddrPort
	State         uint8  // TCP state of the MPTCP socket (StateEstablished, ...)
	UID           uint32 // owner of the socket (see Owners in the package doc)
	Inode         uint32 // socket inode, as in /proc/PID/fd
	IfIndex       uint32 // interface the socket is bound to, 0 if none
	Cookie        uint64 // kernel socket cookie
	Token         uint32 // local MPTCP token; 0 for listeners
	// CgroupID is the id of the socket's cgroup v2 (the inode number of
	// its directory in cgroupfs); 0 when the kernel does not report it.
	CgroupID uint64
	Info     MPTCPInfo
}

// MPTCPInfo is the kernel's struct mptcp_info. It is decoded by length:
// fields the running kernel does not send are zero and Size says how many
// bytes it sent (the struct grew from 48 bytes to 80, 88 and 96 bytes over
// kernel releases).
type MPTCPInfo struct {
	Size int // bytes of struct mptcp_info the kernel sent

	ExtraSubflows        uint8 // subflows besides the initial one (mptcpi_subflows)
	AddAddrSignal        uint8 // ADD_ADDR sent
	AddAddrAccepted      uint8 // ADD_ADDR accepted from the peer
	LimitExtraSubflows   uint8 // subflows limit (mptcpi_subflows_max)
	EndpSignalMax        uint8 // signal endpoints (mptcpi_add_addr_signal_max)
	LimitAddAddrAccepted uint8 // add_addr_accepted limit (mptcpi_add_addr_accepted_max)
	Flags                MPTCPInfoFlags
	Token                uint32
	WriteSeq             uint64
	SndUna               uint64
	RcvNxt               uint64
	LocalAddrUsed        uint8
	EndpSubflowMax       uint8 // subflow endpoints (mptcpi_local_addr_max)
	CsumEnabled          bool
	Retransmits          uint32
	BytesRetrans         uint64
	BytesSent            uint64
	BytesReceived        uint64
	BytesAcked           uint64
	SubflowsTotal        uint8 // all subflows, initial included
	EndpLaminarMax       uint8 // laminar endpoints (6.18)
	EndpFullmeshMax      uint8 // fullmesh endpoints (after 6.18)
	LastDataSent         time.Duration
	LastDataRecv         time.Duration
	LastAckRecv          time.Duration
}

// Subflows returns the number of subflows: SubflowsTotal when the kernel
// sends it, otherwise ExtraSubflows plus the initial subflow.
func (i MPTCPInfo) Subflows() int {
	if i.Size > offMPTCPSubflowsTotal {
		return int(i.SubflowsTotal)
	}
	return int(i.ExtraSubflows) + 1
}

// MPTCPInfoFlags are the MPTCP_INFO_FLAG_* bits of MPTCPInfo.Flags.
type MPTCPInfoFlags uint32

// MPTCPInfo flag bits.
const (
	InfoFallback          MPTCPInfoFlags = 1 << 0 // the connection fell back to plain TCP
	InfoRemoteKeyReceived MPTCPInfoFlags = 1 << 1 // the peer's key was received
)

// String returns the flags as names separated by "|", unknown bits in hex.
func (f MPTCPInfoFlags) String() string {
	var parts []string
	if f&InfoFallback != 0 {
		parts = append(parts, "fallback")
	}
	if f&InfoRemoteKeyReceived != 0 {
		parts = append(parts, "remote_key")
	}
	if rest := f &^ (InfoFallback | InfoRemoteKeyReceived); rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint32(rest)))
	}
	return strings.Join(parts, "|")
}

// Subflow is one TCP subflow of an MPTCP connection.
type Subflow struct {
	Local, Remote netip.AddrPort
	State         uint8  // TCP state (StateEstablished, ...)
	IfIndex       uint32 // interface the subflow is bound to, 0 if none
	Cookie        uint64 // kernel socket cookie
	Token         uint32 // local token: equals the owning Connection.Token
	RemoteToken   uint32 // peer's token; 0 on MP_CAPABLE and passive MP_JOIN subflows
	LocalID       uint8  // local address ID
	RemoteID      uint8  // remote address ID
	Flags         SubflowFlags
	TCP           TCPInfo
}

// TCPSocket is a TCP socket that is not an MPTCP subflow: a program's
// plain TCP socket, as TCPSockets lists it.
type TCPSocket struct {
	Local, Remote netip.AddrPort
	State         uint8  // TCP state (StateListen, StateEstablished, ...)
	UID           uint32 // the socket's owner
	Inode         uint32
	// CgroupID is the id of the cgroup v2 the socket was created in
	// (INET_DIAG_CGROUP_ID); 0 when the kernel does not send it.
	CgroupID uint64
}

// SubflowFlags are the MPTCP_SUBFLOW_FLAG_* bits of a subflow.
type SubflowFlags uint32

// Subflow flag bits, as in the kernel's uapi/linux/mptcp.h.
const (
	SubflowMCapRemote       SubflowFlags = 1 << 0 // peer sent MP_CAPABLE
	SubflowMCapLocal        SubflowFlags = 1 << 1 // we sent MP_CAPABLE
	SubflowJoinRemote       SubflowFlags = 1 << 2 // peer sent MP_JOIN
	SubflowJoinLocal        SubflowFlags = 1 << 3 // we sent MP_JOIN
	SubflowBackupRemote     SubflowFlags = 1 << 4 // peer asked for backup priority
	SubflowBackupLocal      SubflowFlags = 1 << 5 // we asked for backup priority
	SubflowFullyEstablished SubflowFlags = 1 << 6
	SubflowConnected        SubflowFlags = 1 << 7
	SubflowMapValid         SubflowFlags = 1 << 8
)

var subflowFlagNames = [...]struct {
	f      SubflowFlags
	letter byte
	name   string
}{
	{SubflowMCapRemote, 'M', "mcap_rem"},
	{SubflowMCapLocal, 'm', "mcap_loc"},
	{SubflowJoinRemote, 'J', "join_rem"},
	{SubflowJoinLocal, 'j', "join_loc"},
	{SubflowBackupRemote, 'B', "bkup_rem"},
	{SubflowBackupLocal, 'b', "bkup_loc"},
	{SubflowFullyEstablished, 'e', "fully_established"},
	{SubflowConnected, 'c', "connected"},
	{SubflowMapValid, 'v', "mapvalid"},
}

const knownSubflowFlags = SubflowFlags(1<<9 - 1)

// String returns the flags as `ss -ti` prints them after "flags:", one
// letter per bit (M m J j B b e c v, e.g. "Jjec"), unknown bits appended as
// "+0xN"; no flag gives "-".
func (f SubflowFlags) String() string {
	if f == 0 {
		return "-"
	}
	var b []byte
	for _, n := range subflowFlagNames {
		if f&n.f != 0 {
			b = append(b, n.letter)
		}
	}
	if rest := f &^ knownSubflowFlags; rest != 0 {
		b = fmt.Appendf(b, "+0x%x", uint32(rest))
	}
	return string(b)
}

// Names returns a readable name per set bit ("mcap_rem", "join_loc",
// "fully_established", ...), unknown bits in hex.
func (f SubflowFlags) Names() []string {
	var names []string
	for _, n := range subflowFlagNames {
		if f&n.f != 0 {
			names = append(names, n.name)
		}
	}
	if rest := f &^ knownSubflowFlags; rest != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint32(rest)))
	}
	return names
}

// Backup reports whether either side asked for backup priority.
func (f SubflowFlags) Backup() bool {
	return f&(SubflowBackupRemote|SubflowBackupLocal) != 0
}

// TCPInfo holds the fields of the kernel's struct tcp_info that matter for
// path management. It is decoded by length like MPTCPInfo; Size says how
// many bytes the kernel sent.
type TCPInfo struct {
	Size int // bytes of struct tcp_info the kernel sent

	State         uint8
	CAState       uint8
	Retransmits   uint8 // consecutive RTO retransmissions of the head segment
	Backoff       uint8
	RTO           time.Duration
	SndMSS        uint32
	RcvMSS        uint32
	Unacked       uint32
	Lost          uint32
	Retrans       uint32 // segments currently retransmitted and unacknowledged
	LastDataSent  time.Duration
	LastDataRecv  time.Duration
	LastAckRecv   time.Duration
	PMTU          uint32
	RTT           time.Duration // smoothed round-trip time
	RTTVar        time.Duration
	SndSsthresh   uint32
	SndCwnd       uint32
	TotalRetrans  uint32
	PacingRate    uint64 // bytes per second
	BytesAcked    uint64
	BytesReceived uint64
	SegsOut       uint32
	SegsIn        uint32
	MinRTT        time.Duration
	DeliveryRate  uint64 // bytes per second
	BytesSent     uint64
	BytesRetrans  uint64
	SndWnd        uint32 // peer's advertised receive window
}
