package pmstate

import (
	"net/netip"
	"time"
)

// Status is the engine at a glance. It costs the engine's loop nothing:
// the loop posts its counts at the end of every iteration, and the reader
// builds the Status from them. It counts connections and their paths, and
// lists none (Conn and ConnPage do).
type Status struct {
	// Mode is the path manager the engine drives.
	Mode Mode `json:"mode"`
	// Policy is the policy's name.
	Policy string `json:"policy"`
	// Started is when the engine started.
	Started time.Time `json:"started"`
	// Ready reports that the first adoption and reconciliation are done.
	Ready bool `json:"ready"`
	// UsableAddrs are the local addresses policies may use.
	UsableAddrs []netip.Addr `json:"usable_addrs"`
	// Limits are the in-kernel path manager's limits (kernel mode).
	Limits *Limits `json:"limits,omitempty"`
	// Endpoints are the kernel's endpoints and the desired ones (kernel
	// mode), by address.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// Connections is the number of connections the engine tracks
	// (userspace mode).
	Connections int `json:"connections"`
	// Paths counts the paths of the tracked connections by state; states
	// without paths are left out.
	Paths map[PathState]int `json:"paths"`
	// Addrs are the local addresses the tracked connections' paths and
	// subflows use, with what they do there (userspace mode), by
	// address.
	Addrs []AddrUse `json:"addrs,omitempty"`
	// InFlight is the number of commands with the workers; Queued the
	// number waiting for their connection's previous command.
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// Resyncing reports that a resynchronisation is reading the kernel.
	Resyncing bool `json:"resyncing,omitempty"`
	// RepairListing reports that the subflow repair is listing the
	// connections (kernel mode).
	RepairListing bool `json:"repair_listing,omitempty"`
	// Counters count what happened since the engine started.
	Counters Counters `json:"counters"`
	// Queries is the engine loop's own time answering questions (Conn,
	// the pages of connections, Sync), as of its last iteration.
	Queries QueryStats `json:"queries"`
	// RecentErrors are the last failed commands, oldest first.
	RecentErrors []ErrorRecord `json:"recent_errors"`
}

// AddrUse is what the tracked connections do with a local address
// (userspace mode).
type AddrUse struct {
	Addr netip.Addr `json:"addr"`
	// Subflows counts the established subflows from the address.
	Subflows int `json:"subflows"`
	// Wanted counts the desired paths from the address, established or
	// not; Backoff those of them in backoff.
	Wanted  int `json:"wanted"`
	Backoff int `json:"backoff"`
	// LastFailure is the last path from the address that failed; absent
	// when none did.
	LastFailure *PathFailure `json:"last_failure,omitempty"`
}

// PathFailure is a failed path: the remote end, when, and why.
type PathFailure struct {
	Remote netip.AddrPort `json:"remote"`
	Time   time.Time      `json:"time"`
	Error  string         `json:"error"`
}

// QueryStats measure the engine loop's time answering questions (Conn, a
// page of connections, Sync; a Status asks none): the questions answered, their total time
// and the longest one. The time is the CPU time of the loop's thread (on
// Linux), so a busy machine that keeps the loop waiting for a CPU does not
// inflate it. The loop does nothing else while it answers.
type QueryStats struct {
	Count uint64        `json:"count"`
	Total time.Duration `json:"total_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Limits are the in-kernel limits: what the kernel has and what the policy
// wants (nil: left alone).
type Limits struct {
	Subflows            uint32  `json:"subflows"`
	AddAddrAccepted     uint32  `json:"add_addr_accepted"`
	WantSubflows        *uint32 `json:"want_subflows,omitempty"`
	WantAddAddrAccepted *uint32 `json:"want_add_addr_accepted,omitempty"`
	// LastError is the last failure to set them.
	LastError string `json:"last_error,omitempty"`
}

// Endpoint is an endpoint of the kernel, a desired one, or both (kernel
// mode).
type Endpoint struct {
	// ID is the kernel's id; 0 when the endpoint is not in the kernel.
	ID      uint8      `json:"id,omitempty"`
	Addr    netip.Addr `json:"addr"`
	Port    uint16     `json:"port,omitempty"`
	Dev     string     `json:"dev,omitempty"`
	IfIndex int32      `json:"ifindex,omitempty"`
	// Flags are the kernel's flags; WantFlags the desired ones, both
	// space-separated ("subflow fullmesh").
	Flags     string `json:"flags,omitempty"`
	WantFlags string `json:"want_flags,omitempty"`
	// Owned: the id is in mptcpgod's range. Desired: the policy wants
	// the endpoint. Present: the kernel has it.
	Owned   bool          `json:"owned"`
	Desired bool          `json:"desired"`
	Present bool          `json:"present"`
	State   EndpointState `json:"state"`
	// Reason says why it is blocked, left out, unusable or pending.
	Reason       string    `json:"reason,omitempty"`
	Failures     int       `json:"failures,omitempty"`
	BackoffUntil time.Time `json:"backoff_until,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
}

// Counters count the engine's work since it started. Actions and Failures
// are by command, Events by kernel event name (created, established,
// ...).
type Counters struct {
	Actions  map[Op]uint64     `json:"actions"`
	Failures map[Op]uint64     `json:"failures"`
	Events   map[string]uint64 `json:"events"`
	// EventBatches counts the batches of events received.
	EventBatches uint64 `json:"event_batches"`
	// Resyncs counts the resynchronisations after lost events.
	Resyncs uint64 `json:"resyncs"`
	// Backoffs counts the failures that put a path, announce, endpoint or
	// the limits in backoff.
	Backoffs uint64 `json:"backoffs"`
	// UnknownToken counts events for connections the engine did not know.
	UnknownToken uint64 `json:"unknown_token_events"`
	HostUpdates  uint64 `json:"host_updates"`
	PolicySwaps  uint64 `json:"policy_swaps"`
	// HealthUpdates counts the health reports received.
	HealthUpdates uint64 `json:"health_updates"`
	// EndpointRepairs counts the subflow endpoints replaced because
	// connections had no subflow from them (kernel mode); RepairsGivenUp
	// counts the connections given up, still without the subflow after 3
	// replacements.
	EndpointRepairs uint64 `json:"endpoint_repairs"`
	RepairsGivenUp  uint64 `json:"repairs_given_up"`
	// PeerAddrsRefused counts the addresses peers announced that the
	// peer-address policy refused, by reason: class (loopback,
	// unspecified, link-local, multicast, broadcast, reserved),
	// own_address, directed_broadcast, denied, not_allowed, more_private,
	// port, and budget (the connection tried as many announced addresses
	// as it may). PeerAddrsGivenUp counts the announced addresses given
	// up after every try failed.
	PeerAddrsRefused map[string]uint64 `json:"peer_addrs_refused"`
	PeerAddrsGivenUp uint64            `json:"peer_addrs_given_up"`
	// PlansRefused counts the parts of the policies' plans the engine
	// refused, by kind (path, announce, endpoint): a local address that
	// is not a usable address of this host, a remote one that is not the
	// peer's.
	PlansRefused map[string]uint64 `json:"plans_refused"`
	// Deferral counts the connections whose joins were deferred
	// (userspace mode).
	Deferral DeferralCounters `json:"deferral"`
}

// DeferralCounters count, by connection, the paths and announces held
// back by the policy's deferral (fullmesh's join_delay, join_bytes) or by
// the engine's minimum join age.
type DeferralCounters struct {
	// Held counts the connections that had a path or announce held back.
	Held uint64 `json:"held"`
	// ReleasedTime counts those whose last held item became due with
	// time (or the policy stopped deferring); ReleasedBytes those the
	// byte threshold released.
	ReleasedTime  uint64 `json:"released_time"`
	ReleasedBytes uint64 `json:"released_bytes"`
	// EndedHeld counts the connections that closed while held: the
	// joins and announces they never needed.
	EndedHeld uint64 `json:"ended_held"`
	// ByteReads counts the reads of the held connections' byte
	// counters, ByteReadErrors those that failed.
	ByteReads      uint64 `json:"byte_reads"`
	ByteReadErrors uint64 `json:"byte_read_errors"`
}

// ErrorRecord is a failed command.
type ErrorRecord struct {
	Time   time.Time      `json:"time"`
	Op     Op             `json:"op"`
	Token  uint32         `json:"token,omitempty"`
	Addr   netip.Addr     `json:"addr,omitzero"`
	Local  netip.AddrPort `json:"local,omitzero"`
	Remote netip.AddrPort `json:"remote,omitzero"`
	// Error is the failure, in the kernel's words.
	Error string `json:"error"`
}
