package ctlapi

import (
	"net/netip"
	"time"

	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// DefaultSocket is where the daemon listens unless configured otherwise.
const DefaultSocket = "/run/mptcpgod/mptcpgod.sock"

// Version is the protocol version: the first element of every route.
const Version = "v0"

// Status is GET /v0/status: the daemon at a glance.
type Status struct {
	// Version is the daemon's program version.
	Version string `json:"version"`
	// Mode is the path manager the daemon drives.
	Mode policy.Mode `json:"mode"`
	// Ready reports that the engine has adopted what exists and
	// reconciled it once.
	Ready bool `json:"ready"`
	// Started is when the engine started; UptimeSeconds is the time since.
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// ConfigFile is the configuration file the daemon reads on reload.
	ConfigFile string `json:"config_file"`
	// Policy is the policy in force and its configuration.
	Policy Policy `json:"policy"`
	// Links are the host's interfaces as the daemon sees them.
	Links []Link `json:"links"`
	// Endpoints are the kernel's endpoints and the desired ones (kernel
	// mode), mptcpgod's marked owned.
	Endpoints []pm.EndpointStatus `json:"endpoints"`
	// Limits are the in-kernel path manager's limits (kernel mode).
	Limits *pm.LimitsStatus `json:"limits,omitempty"`
	// Connections is the number of connections the engine tracks
	// (userspace mode).
	Connections int `json:"connections"`
	// InFlight is the number of commands with the workers; Queued the
	// number waiting.
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// Resyncing reports that a resynchronisation is reading the kernel.
	Resyncing bool `json:"resyncing"`
	// Counters count the engine's work since it started.
	Counters pm.Counters `json:"counters"`
	// RecentErrors are the last failed commands, oldest first.
	RecentErrors []pm.ErrorRecord `json:"recent_errors"`
}

// Policy is the policy in force: the engine's name for it, and the
// configured default chain and rules.
type Policy struct {
	// Name is what the engine runs, e.g. "fullmesh | backup-cellular
	// (+1 rules)".
	Name string `json:"name"`
	// Chain is the default chain; Rules select other chains for some
	// connections (userspace mode).
	Chain []policy.Spec     `json:"chain"`
	Rules []policy.RuleSpec `json:"rules"`
}

// Link is a network interface and its addresses, as the daemon sees them.
type Link struct {
	Name  string `json:"name"`
	Index int32  `json:"index"`
	// Kind is what the link monitor found: wired, wifi, cellular,
	// virtual, loopback or unknown.
	Kind string `json:"kind"`
	// Up reports that the link is up with a carrier; Usable that its
	// addresses may carry subflows (up and included by the
	// configuration). Reason says why not.
	Up     bool   `json:"up"`
	Usable bool   `json:"usable"`
	Reason string `json:"reason,omitempty"`
	// Metered reports that traffic over the link costs money or quota.
	Metered bool `json:"metered"`
	// Changed is when Up or Usable last changed; zero when unknown.
	Changed time.Time `json:"changed,omitzero"`
	Addrs   []Addr    `json:"addrs"`
}

// Addr is a local address and what mptcpgod does with it.
type Addr struct {
	Addr netip.Addr `json:"addr"`
	// Usable reports that subflows may use the address; Reason says why
	// not ("tentative", "no route", "excluded by kind virtual", ...).
	Usable bool   `json:"usable"`
	Reason string `json:"reason,omitempty"`
	// Used reports that mptcpgod uses the address now: an endpoint of
	// its own is in the kernel (kernel mode), or a subflow runs over it
	// (userspace mode). Use says how, or why not.
	Used bool   `json:"used"`
	Use  string `json:"use"`
	// Subflows counts the subflows over the address the engine tracks
	// (userspace mode).
	Subflows int `json:"subflows,omitempty"`
	// Endpoint is the address's endpoint, in the kernel or desired
	// (kernel mode).
	Endpoint *pm.EndpointStatus `json:"endpoint,omitempty"`
}

// Links is GET /v0/links.
type Links struct {
	Mode  policy.Mode `json:"mode"`
	Links []Link      `json:"links"`
}

// Paths is GET /v0/paths and /v0/paths/{token}: every connection (or the
// one) with its desired paths beside its actual subflows and, for a
// missing path, why (pm.PathStatus: state, failures, backoff until, the
// kernel's last error).
type Paths struct {
	Mode  policy.Mode     `json:"mode"`
	Conns []pm.ConnStatus `json:"conns"`
}

// Policies is GET /v0/policies: the policies compiled into the daemon.
type Policies struct {
	Policies []policy.Doc `json:"policies"`
}

// Reload is the answer of POST /v0/reload: the policy in force after the
// reload.
type Reload struct {
	Policy string `json:"policy"`
}

// EventDropped is the Kind of the Event that tells a subscriber how many
// decisions it missed because it did not keep up.
const EventDropped pm.DecisionKind = "dropped"

// Event is one line of GET /v0/events: a decision of the engine, or a
// notice of Kind EventDropped with the number of decisions missed.
type Event struct {
	pm.Decision
	Dropped uint64 `json:"dropped,omitempty"`
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error string `json:"error"`
}
