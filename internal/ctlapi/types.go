package ctlapi

import (
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// DefaultSocket is where the daemon listens unless configured otherwise.
const DefaultSocket = "/run/mptcpgod/mptcpgod.sock"

// Version is the protocol version: the first element of every route.
const Version = "v1"

// Status is GET /v1/status: the daemon at a glance. Its cost to the
// daemon does not grow with the number of connections.
type Status struct {
	// Version is the daemon's program version.
	Version string `json:"version"`
	// Mode is the path manager the daemon drives.
	Mode pmstate.Mode `json:"mode"`
	// Ready reports that the engine has adopted what exists and
	// reconciled it once.
	Ready bool `json:"ready"`
	// Started is when the engine started; UptimeSeconds is the time since.
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// ConfigFile is the configuration file the daemon reads on reload.
	ConfigFile string `json:"config_file"`
	// Kernel is the running kernel's release and the capabilities it
	// lacks, each with the Linux release that brings it and what the
	// daemon does without it (docs/compatibility.md).
	Kernel Kernel `json:"kernel"`
	// Policy is the policy in force and its configuration.
	Policy Policy `json:"policy"`
	// Links are the host's interfaces as the daemon sees them.
	Links []pmstate.Link `json:"links"`
	// Endpoints are the kernel's endpoints and the desired ones (kernel
	// mode), mptcpgod's marked owned.
	Endpoints []pmstate.Endpoint `json:"endpoints"`
	// Limits are the in-kernel path manager's limits (kernel mode).
	Limits *pmstate.Limits `json:"limits,omitempty"`
	// Connections is the number of connections the engine tracks
	// (userspace mode); Paths counts their paths by state.
	Connections int                       `json:"connections"`
	Paths       map[pmstate.PathState]int `json:"paths"`
	// InFlight is the number of commands with the workers; Queued the
	// number waiting.
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// Resyncing reports that a resynchronisation is reading the kernel.
	Resyncing bool `json:"resyncing"`
	// Counters count the engine's work since it started.
	Counters pmstate.Counters `json:"counters"`
	// RecentErrors are the last failed commands, oldest first.
	RecentErrors []pmstate.ErrorRecord `json:"recent_errors"`
	// Mitigation is what the daemon does against the kernel's
	// corruption on subflow joins, and the kernel's mapping errors.
	Mitigation Mitigation `json:"mitigation"`
}

// Mitigation is what the daemon does against the kernel's corruption on
// subflow joins ([mitigation]), and what it sees of the kernel's data
// mapping errors (docs/troubleshooting.md).
type Mitigation struct {
	// Checksums reports net.mptcp.checksum_enabled as the daemon found
	// or set it when it started: new connections ask for DSS checksums.
	// ChecksumsConfig is [mitigation] checksums: keep, on or off.
	Checksums       bool   `json:"checksums"`
	ChecksumsConfig string `json:"checksums_config"`
	// CanDefer is false in kernel mode: the in-kernel path manager joins
	// as soon as a connection is established, and no setting defers it.
	CanDefer bool `json:"can_defer"`
	// MinJoinAge is the engine's floor (userspace mode): no subflow
	// joins, and no address is announced to, a younger connection. 0 in
	// kernel mode.
	MinJoinAge time.Duration `json:"min_join_age_ns"`
	// MappingErrors are the kernel's MPTcpExt counters of data mapping
	// errors of the daemon's namespace since it started, by name
	// (DSSNotMatching, DataCsumErr, MPFailRx, MPFailTx, MPRstTx, ...),
	// as read at Checked; Error says why they could not be read.
	MappingErrors map[string]uint64 `json:"mapping_errors"`
	Checked       time.Time         `json:"checked,omitzero"`
	Error         string            `json:"error,omitempty"`
}

// Policy is the policy in force: the engine's name for it, and the
// configured default chain and rules.
type Policy struct {
	// Name is what the engine runs, e.g. "fullmesh | backup-cellular
	// (+1 rules)".
	Name string `json:"name"`
	// Chain is the default chain; Rules select other chains for some
	// connections (userspace mode).
	Chain []PolicySpec `json:"chain"`
	Rules []PolicyRule `json:"rules"`
}

// PolicySpec is a policy of a chain: its registered name and its
// configuration (the configuration file's [[policy.chain]]).
type PolicySpec struct {
	Name string `json:"name"`
	// Config is the policy's JSON configuration; empty for the
	// defaults.
	Config json.RawMessage `json:"config,omitempty"`
}

// PolicyRule selects a chain for the connections it matches (the
// configuration file's [[policy.rules]]). A zero field matches every
// connection.
type PolicyRule struct {
	// PeerPrefix matches the peer's initial address; PeerPort its port.
	PeerPrefix netip.Prefix `json:"peer_prefix,omitzero"`
	PeerPort   uint16       `json:"peer_port,omitempty"`
	// LocalPort matches the local initial port.
	LocalPort uint16 `json:"local_port,omitempty"`
	// Side matches the connection's side; "" matches both.
	Side pmstate.Side `json:"side,omitempty"`
	// Unit matches the connections whose socket was created in the
	// systemd unit's cgroup or below it; UID those the user owns (nil:
	// any).
	Unit  string       `json:"unit,omitempty"`
	UID   *uint32      `json:"uid,omitempty"`
	Chain []PolicySpec `json:"chain"`
}

// Links is GET /v1/links.
type Links struct {
	Mode  pmstate.Mode   `json:"mode"`
	Links []pmstate.Link `json:"links"`
}

// Paths is GET /v1/paths and /v1/paths/{token}: connections with their
// desired paths beside their actual subflows and, for a missing path,
// why. GET /v1/paths answers a page: Next is the from of the next one, 0
// on the last page.
type Paths struct {
	Mode  pmstate.Mode   `json:"mode"`
	Conns []pmstate.Conn `json:"conns"`
	Next  uint32         `json:"next,omitempty"`
}

// PathsQuery selects a page of GET /v1/paths.
type PathsQuery struct {
	// From is the first token of the page (the query's from, in
	// hexadecimal); 0 starts at the first connection.
	From uint32
	// Limit is the most connections on the page; 0 means the daemon's
	// default (pmstate.DefaultConnLimit), and it caps it at
	// pmstate.MaxConnLimit.
	Limit int
	// Peer selects the connections whose peer's initial address is in
	// the prefix; the zero Prefix selects all.
	Peer netip.Prefix
}

// ParsePeer parses a peer filter (the peer= of GET /v1/paths, mptcpctl
// paths --peer, mptcpctl top's peer:): an address, as a prefix of that
// one address, or a prefix. An IPv4-mapped address stands for its IPv4
// address; an IPv4-mapped prefix and a zoned address are refused.
func ParsePeer(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("an IPv4-mapped prefix")
	}
	return p.Masked(), nil
}

// Policies is GET /v1/policies: the policies compiled into the daemon,
// and the mode the daemon runs in (an option whose Mode differs has no
// effect there).
type Policies struct {
	Mode     pmstate.Mode `json:"mode"`
	Policies []PolicyDoc  `json:"policies"`
}

// PolicyDoc documents a policy compiled into the daemon.
type PolicyDoc struct {
	// Name is the registered name.
	Name string `json:"name"`
	// Summary is one sentence on what the policy does.
	Summary string `json:"summary"`
	// Options are the policy's configuration options.
	Options []PolicyOption `json:"options"`
}

// PolicyOption documents one configuration option of a policy.
type PolicyOption struct {
	// Name is the option's key; nested keys are dotted
	// ("limits.subflows").
	Name string `json:"name"`
	// Type is the JSON type: "string", "integer", "boolean", "number",
	// "array" or "object".
	Type string `json:"type"`
	// Default is the value of an empty configuration; null when the
	// option has none.
	Default any `json:"default"`
	// Values lists the accepted values of an enumerated option.
	Values []string `json:"values,omitempty"`
	// Mode is the path manager the option acts in when it acts in only
	// one ("kernel", "userspace"); empty when it acts in both.
	Mode pmstate.Mode `json:"mode,omitempty"`
	// Help says what the option does.
	Help string `json:"help"`
}

// Reload is the answer of POST /v1/reload: the policy in force after the
// reload.
type Reload struct {
	Policy string `json:"policy"`
}

// EventDropped is the Kind of the Event that tells a subscriber how many
// decisions it missed because it did not keep up.
const EventDropped pmstate.DecisionKind = "dropped"

// Event is one line of GET /v1/events: a decision of the engine, or a
// notice of Kind EventDropped with the number of decisions missed.
type Event struct {
	pmstate.Decision
	Dropped uint64 `json:"dropped,omitempty"`
}

// ErrorBody is the JSON of an error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// Kernel is the running kernel and the capabilities it lacks, as package
// genl detects them (genl.Kernel, copied: the wire does not import genl).
type Kernel struct {
	// Release is the kernel's release, as uname -r prints it.
	Release string `json:"release"`
	// Missing are the capabilities it lacks, oldest first.
	Missing []Capability `json:"missing"`
}

// Capability is a capability of the kernel's MPTCP that mptcpgod uses
// (genl.Capability).
type Capability struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Since is the first Linux release that has it.
	Since string `json:"since"`
	// Without says what mptcpgod does on a kernel that lacks it.
	Without string `json:"without"`
}
