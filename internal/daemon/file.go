package daemon

import (
	"github.com/mptcpgod/mptcpgod/internal/peeraddr"
	"github.com/mptcpgod/mptcpgod/internal/usage"
)

// DefaultPath is where mptcpgod reads its configuration unless told
// otherwise.
const DefaultPath = "/etc/mptcpgod/mptcpgod.toml"

// File is the configuration file's schema, one field per key. Parse
// decodes a file into the defaults (DefaultFile), strictly, and turns it
// into a Config. docs/config.md documents every key, and
// dist/mptcpgod.toml is DefaultFile written out with comments; a test
// keeps the three in step.
type File struct {
	// Mode is the path manager mptcpgod drives: "auto" follows the
	// net.mptcp.path_manager sysctl, "kernel" or "userspace" insist.
	Mode string `toml:"mode"`
	// SetPathManager makes mptcpgod set net.mptcp.path_manager to Mode
	// (which must not be "auto") when it starts.
	SetPathManager bool `toml:"set_path_manager"`
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string `toml:"log_level"`

	Links  LinksFile  `toml:"links"`
	Kernel KernelFile `toml:"kernel"`
	Engine EngineFile `toml:"engine"`
	Peers  PeersFile  `toml:"peers"`
	Policy PolicyFile `toml:"policy"`

	Control ControlFile `toml:"control"`
	Metrics MetricsFile `toml:"metrics"`

	// Mitigation is the [mitigation] table: what mptcpgod does against
	// the kernel's corruption on subflow joins (docs/troubleshooting.md).
	Mitigation MitigationFile `toml:"mitigation"`

	// Usage is the [usage] table: the traffic accounting of metered
	// links, which the cost-aware policy reads (usage.File).
	Usage usage.File `toml:"usage"`

	// Force is the [force] table: the services and users whose TCP
	// sockets are made MPTCP with the BPF mechanism (docs/transparent-services.md).
	Force ForceFile `toml:"force"`
}

// ForceFile is the [force] table.
type ForceFile struct {
	// Units are systemd services ("nginx.service") whose processes, and
	// their children, get MPTCP sockets for their TCP sockets.
	Units []string `toml:"units"`
	// UIDs are users whose processes get MPTCP sockets, by real uid.
	UIDs []uint32 `toml:"uids"`
}

// ControlFile is the [control] table: the control socket mptcpctl and
// other clients use (docs/control-socket.md).
type ControlFile struct {
	// Socket is the socket's path; "" turns the control socket off.
	Socket string `toml:"socket"`
	// Group is the group whose members may read the daemon's state over
	// the socket; "" means root and the daemon's own user only.
	Group string `toml:"group"`
}

// MitigationFile is the [mitigation] table.
type MitigationFile struct {
	// Checksums is what mptcpgod does with net.mptcp.checksum_enabled
	// when it starts: "keep" leaves it, "on" sets 1, "off" sets 0.
	Checksums string `toml:"checksums"`
	// MinJoinAge holds back every subflow and announce of a connection
	// younger than this (userspace mode); "0s" turns the floor off.
	MinJoinAge string `toml:"min_join_age"`
}

// MetricsFile is the [metrics] table.
type MetricsFile struct {
	// Listen is a TCP address ("127.0.0.1:9464") to serve /metrics on
	// besides the control socket; "" means only the socket.
	Listen string `toml:"listen"`
	// AllowRemote says the operator means a listener beyond loopback
	// (a fleet's scraper on the node's address): no warning for it.
	AllowRemote bool `toml:"allow_remote"`
}

// LinksFile is the [links] table: which interfaces' addresses mptcpgod
// uses, and how it watches them (linkmon.Config).
type LinksFile struct {
	IncludeNames     []string `toml:"include_names"`
	ExcludeNames     []string `toml:"exclude_names"`
	IncludeKinds     []string `toml:"include_kinds"`
	ExcludeKinds     []string `toml:"exclude_kinds"`
	CellularNames    []string `toml:"cellular_names"`
	IncludeULA       bool     `toml:"include_ula"`
	IncludeTemporary bool     `toml:"include_temporary"`
	ConnectedRoutes  bool     `toml:"connected_routes"`
	Settle           string   `toml:"settle"`
	MaxSettle        string   `toml:"max_settle"`
}

// KernelFile is the [kernel] table: the in-kernel path manager's
// endpoints.
type KernelFile struct {
	// OwnedIDs is the endpoint id range mptcpgod owns, "MIN-MAX".
	OwnedIDs string `toml:"owned_ids"`
	// WithdrawOnExit deletes the owned endpoints when mptcpgod stops,
	// and puts back the limits it changed.
	WithdrawOnExit bool `toml:"withdraw_on_exit"`
	// AcceptAnnounces lets the add_addr_accepted limit above 0: the
	// in-kernel path manager then opens subflows to the addresses and
	// ports peers announce. Off, mptcpgod keeps it at 0.
	AcceptAnnounces bool `toml:"accept_announces"`
}

// EngineFile is the [engine] table.
type EngineFile struct {
	Workers        int    `toml:"workers"`
	BackoffInitial string `toml:"backoff_initial"`
	BackoffMax     string `toml:"backoff_max"`
	// EventBuffer is the event socket's receive buffer in bytes; 0 means
	// DefaultEventBuffer.
	EventBuffer int `toml:"event_buffer"`
}

// PeersFile is the [peers] table: the peer-address policy, which decides
// the addresses a peer's announces may lead this host to (userspace mode;
// docs/security.md).
type PeersFile struct {
	// Allow, when not empty, are the only prefixes announced addresses
	// may be in; they may be more private than the peer's initial address.
	Allow []string `toml:"allow"`
	// Deny are prefixes announced addresses may not be in.
	Deny []string `toml:"deny"`
	// Ports are the ports an announce may name besides the connection's;
	// AnyPort allows every port.
	Ports   []int `toml:"ports"`
	AnyPort bool  `toml:"any_port"`
	// Tries is how many times an announced address is tried before it is
	// given up, until a subflow to it came up once.
	Tries int `toml:"tries"`
}

// PolicyFile is the [policy] table: the default chain and the
// per-connection rules (policy.Config).
type PolicyFile struct {
	Chain []SpecFile `toml:"chain"`
	Rules []RuleFile `toml:"rules"`
}

// SpecFile is one policy of a chain: its registered name and its options,
// which the policy decodes itself (strictly).
type SpecFile struct {
	Name   string         `toml:"name"`
	Config map[string]any `toml:"config"`
}

// RuleFile is one [[policy.rules]] entry: a match and the chain for the
// connections it selects (userspace mode).
type RuleFile struct {
	PeerPrefix string `toml:"peer_prefix"`
	PeerPort   uint16 `toml:"peer_port"`
	LocalPort  uint16 `toml:"local_port"`
	Side       string `toml:"side"`
	// Unit is a systemd service, scope or slice whose cgroup (and the
	// cgroups below it) the connection's socket was created in.
	Unit string `toml:"unit"`
	// UID is the socket owner's uid, as an integer or a user name
	// resolved when the file is read; "" or absent selects any.
	UID   any        `toml:"uid"`
	Chain []SpecFile `toml:"chain"`
}

// DefaultFile returns the configuration of an empty file.
func DefaultFile() File {
	return File{
		Mode:     string(ModeAuto),
		LogLevel: "info",
		Links: LinksFile{
			IncludeNames:  []string{},
			ExcludeNames:  []string{},
			IncludeKinds:  []string{},
			ExcludeKinds:  []string{"virtual", "loopback"},
			CellularNames: []string{},
			Settle:        "1ms",
			MaxSettle:     "20ms",
		},
		Kernel: KernelFile{
			OwnedIDs:       "100-199",
			WithdrawOnExit: true,
		},
		Engine: EngineFile{
			Workers:        4,
			BackoffInitial: "50ms",
			BackoffMax:     "30s",
		},
		Peers: PeersFile{
			Allow: []string{},
			Deny:  []string{},
			Ports: []int{},
			Tries: peeraddr.DefaultTries,
		},
		Policy: PolicyFile{
			Chain: []SpecFile{{Name: "fullmesh"}},
			Rules: []RuleFile{},
		},
		Control: ControlFile{
			Socket: DefaultSocket,
			Group:  "mptcpgod",
		},
		Mitigation: MitigationFile{
			Checksums:  string(ChecksumsKeep),
			MinJoinAge: DefaultMinJoinAge.String(),
		},
		Usage: usage.DefaultFile(),
		Force: ForceFile{Units: []string{}, UIDs: []uint32{}},
	}
}
