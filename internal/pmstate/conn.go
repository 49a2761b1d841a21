package pmstate

import (
	"net/netip"
	"time"
)

// Conn is a connection (userspace mode): its desired paths beside its
// actual subflows and, for a missing path, why.
type Conn struct {
	// Token is the connection's local token.
	Token  uint32         `json:"token"`
	Side   Side           `json:"side"`
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// Since is when the engine learnt of the connection.
	Since       time.Time   `json:"since"`
	Established bool        `json:"established"`
	PathManager PathManager `json:"path_manager"`
	// DenyJoinID0 reports that the peer forbids subflows to its initial
	// address.
	DenyJoinID0 bool `json:"deny_join_id0,omitempty"`
	// Owner is who owns the connection's socket, when a rule by unit or
	// uid made the engine look it up.
	Owner *Owner `json:"owner,omitempty"`
	// Chain is the chain the policy runs for the connection: "default",
	// or "rules[N]" for the rule that selects it; empty when the policy
	// has no rules.
	Chain string `json:"chain,omitempty"`
	// BytesSent and BytesReceived are the connection's data as last read
	// for a deferral that waits on bytes; zero when it waits on none.
	BytesSent     uint64     `json:"bytes_sent,omitempty"`
	BytesReceived uint64     `json:"bytes_received,omitempty"`
	PeerAddrs     []PeerAddr `json:"peer_addrs"`
	// Paths are by local address, then remote address and port.
	Paths     []Path     `json:"paths"`
	Announces []Announce `json:"announces,omitempty"`
}

// Owner is the owner of a connection's socket, as the kernel reports it
// (policy.Owner).
type Owner struct {
	// UID is the socket's owner.
	UID uint32 `json:"uid"`
	// Cgroup is the socket's cgroup v2 path from the hierarchy's root;
	// empty when unknown.
	Cgroup string `json:"cgroup,omitempty"`
}

// PeerAddr is an address of the peer: the initial one, or one it
// announced, with what the peer-address policy made of it.
type PeerAddr struct {
	// ID is the peer's address id; 0 for the initial address.
	ID uint8 `json:"id"`
	// Addr is the address and port: the connection's port when an
	// announce named none.
	Addr   netip.AddrPort `json:"addr"`
	Source AddrSource     `json:"source"`
	State  PeerState      `json:"state"`
	// Reason says why the address is refused, or why its last try
	// failed.
	Reason string `json:"reason,omitempty"`
	// Tries counts the failed tries of an address not joined.
	Tries int `json:"tries,omitempty"`
}

// Path is a desired path, a live subflow's path, or both.
type Path struct {
	Local   netip.Addr     `json:"local"`
	Remote  netip.AddrPort `json:"remote"`
	Dev     string         `json:"dev,omitempty"`
	IfIndex int32          `json:"ifindex,omitempty"`
	// Desired: the policy wants the path; WantBackup is its backup bit.
	Desired    bool      `json:"desired"`
	WantBackup bool      `json:"want_backup,omitempty"`
	State      PathState `json:"state"`
	// Reason says why the engine refuses the path (PathRefused).
	Reason   string    `json:"reason,omitempty"`
	Subflows []Subflow `json:"subflows,omitempty"`
	// DeferredUntil is when a deferred path is due at the latest;
	// DeferredBytes, when not 0, brings it forward once the connection
	// has sent or received more (never before the engine's minimum join
	// age).
	DeferredUntil time.Time `json:"deferred_until,omitzero"`
	DeferredBytes uint64    `json:"deferred_bytes,omitempty"`
	// Failures, BackoffUntil and LastError say why a desired path is
	// missing: the failures in a row, the next try, the last error.
	Failures     int       `json:"failures,omitempty"`
	BackoffUntil time.Time `json:"backoff_until,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
}

// Subflow is a live subflow.
type Subflow struct {
	Local    netip.AddrPort `json:"local"`
	Remote   netip.AddrPort `json:"remote"`
	LocalID  uint8          `json:"local_id"`
	RemoteID uint8          `json:"remote_id"`
	// Backup is this host's backup bit; PeerBackup the peer's.
	Backup     bool `json:"backup,omitempty"`
	PeerBackup bool `json:"peer_backup,omitempty"`
	// Joined: this host opened it; Initial: the connection's first.
	Joined      bool      `json:"joined,omitempty"`
	Initial     bool      `json:"initial,omitempty"`
	Established bool      `json:"established"`
	IfIndex     int32     `json:"ifindex,omitempty"`
	Since       time.Time `json:"since,omitzero"`
	// Health is the subflow's last sampled health.
	Health Health `json:"health,omitzero"`
}

// Health is a subflow's health, sampled from tcp_info.
type Health struct {
	// RTT is the smoothed round-trip time, RTTVar its variance, RTO the
	// retransmission timeout.
	RTT    time.Duration `json:"rtt_ns,omitempty"`
	RTTVar time.Duration `json:"rttvar_ns,omitempty"`
	RTO    time.Duration `json:"rto_ns,omitempty"`
	// Loss is the fraction of sent bytes that were retransmitted, 0..1.
	Loss float64 `json:"loss,omitempty"`
	// Retransmits counts consecutive unanswered retransmission timeouts.
	Retransmits uint32 `json:"retransmits,omitempty"`
	// Unacked is the number of segments in flight.
	Unacked uint32 `json:"unacked,omitempty"`
	// LastAckRecv and LastDataRecv are the times since the last ACK and
	// the last data were received.
	LastAckRecv  time.Duration `json:"last_ack_recv_ns,omitempty"`
	LastDataRecv time.Duration `json:"last_data_recv_ns,omitempty"`
	// Stalled reports that data is outstanding and nothing was
	// acknowledged for longer than the RTO; StalledChanged is when that
	// last changed.
	Stalled        bool      `json:"stalled,omitempty"`
	StalledChanged time.Time `json:"stalled_changed,omitzero"`
	// Sampled is when the numbers were read.
	Sampled time.Time `json:"sampled,omitzero"`
}

// Announce is an address announced to a connection's peer, or desired
// to be.
type Announce struct {
	Addr netip.Addr `json:"addr"`
	Port uint16     `json:"port,omitempty"`
	// ID is the address id; 0 until announced.
	ID        uint8         `json:"id,omitempty"`
	Desired   bool          `json:"desired"`
	Announced bool          `json:"announced"`
	State     AnnounceState `json:"state"`
	Reason    string        `json:"reason,omitempty"`
	// DeferredUntil and DeferredBytes are a deferred announce's, as a
	// Path's.
	DeferredUntil time.Time `json:"deferred_until,omitzero"`
	DeferredBytes uint64    `json:"deferred_bytes,omitempty"`
	Failures      int       `json:"failures,omitempty"`
	BackoffUntil  time.Time `json:"backoff_until,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
}

// ConnQuery selects a page of connections, in token order.
type ConnQuery struct {
	// From is the first token of the page: the page starts with the
	// connection of the lowest token at or above it.
	From uint32
	// Limit is the most connections on the page; 0 means
	// DefaultConnLimit, and more than MaxConnLimit is MaxConnLimit.
	Limit int
	// Peer, when valid, selects the connections whose peer's initial
	// address is in the prefix (a single address is a /32 or /128).
	Peer netip.Prefix
}

// Page sizes of a ConnQuery.
const (
	DefaultConnLimit = 100
	MaxConnLimit     = 1000
)

// ConnPage is a page of connections.
type ConnPage struct {
	Conns []Conn `json:"conns"`
	// Next is the From of the next page; 0 when this page is the last.
	// A page shorter than its limit may have a next one: the engine
	// bounds the connections it looks at for one page.
	Next uint32 `json:"next,omitempty"`
}
