package fullmesh

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Name is the name fullmesh registers under.
const Name = "fullmesh"

func init() {
	policy.Register(Name, func(raw json.RawMessage) (policy.Policy, error) {
		w := newWireConfig(DefaultConfig())
		if err := policy.DecodeConfig(raw, &w); err != nil {
			return nil, err
		}
		cfg, err := w.config()
		if err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// wireConfig is the configuration as JSON has it: join_delay is a string
// ("50ms"), as durations are everywhere in mptcpgod's configuration.
type wireConfig struct {
	Role        Role          `json:"role"`
	Families    Families      `json:"families"`
	MaxSubflows int           `json:"max_subflows"`
	Announce    bool          `json:"announce"`
	Limits      policy.Limits `json:"limits"`
	JoinDelay   string        `json:"join_delay"`
	JoinBytes   uint64        `json:"join_bytes"`
}

func newWireConfig(c Config) wireConfig {
	return wireConfig{Role: c.Role, Families: c.Families, MaxSubflows: c.MaxSubflows, Announce: c.Announce,
		Limits: c.Limits, JoinDelay: c.JoinDelay.String(), JoinBytes: c.JoinBytes}
}

func (w wireConfig) config() (Config, error) {
	d, err := time.ParseDuration(w.JoinDelay)
	if err != nil {
		return Config{}, fmt.Errorf("option \"join_delay\": %q is not a duration (like \"50ms\" or \"1s\")", w.JoinDelay)
	}
	return Config{Role: w.Role, Families: w.Families, MaxSubflows: w.MaxSubflows, Announce: w.Announce,
		Limits: w.Limits, JoinDelay: d, JoinBytes: w.JoinBytes}, nil
}

// Role is what the host's endpoints do in kernel mode.
type Role string

// Roles.
const (
	// RoleClient: endpoints "subflow fullmesh": every local address opens
	// a subflow to every peer address.
	RoleClient Role = "client"
	// RoleServer: endpoints "signal": every local address is announced.
	RoleServer Role = "server"
	// RoleBoth: endpoints "signal subflow": announced, and one subflow
	// from each (the kernel refuses signal with fullmesh).
	RoleBoth Role = "both"
)

// Families selects the address families fullmesh uses.
type Families string

// Families values.
const (
	FamiliesBoth Families = "both"
	FamiliesIPv4 Families = "ipv4"
	FamiliesIPv6 Families = "ipv6"
)

// Config is fullmesh's configuration; the JSON keys of its options are
// the fields' names in snake case.
type Config struct {
	// Role is the endpoints' job in kernel mode. In userspace mode each
	// connection's side decides instead.
	Role Role
	// Families are the address families to use.
	Families Families
	// MaxSubflows caps the subflows a client-side connection gets besides
	// the initial one, in userspace mode (1..8).
	MaxSubflows int
	// Announce makes server-side connections announce the host's usable
	// addresses, in userspace mode.
	Announce bool
	// Limits are the in-kernel path manager's limits (each 0..8); a null
	// value leaves the kernel's limit alone.
	Limits policy.Limits
	// JoinDelay defers a client-side connection's extra paths, and a
	// server-side connection's announces, until the connection is this
	// old, in userspace mode (policy.DeferJoins); 0 opens them at once.
	// In JSON it is a string ("50ms"), at most MaxJoinDelay.
	JoinDelay time.Duration
	// JoinBytes brings the deferred paths and announces forward once the
	// connection has sent or received more than this many bytes; 0 means
	// only JoinDelay counts.
	JoinBytes uint64
}

// MaxJoinDelay bounds join_delay: a connection that waits longer than
// this for its extra paths has lost what they were for.
const MaxJoinDelay = time.Hour

// Defaults of the deferral, chosen from the benchmark in
// docs/performance.md ("Deferred joins").
const (
	DefaultJoinDelay = 50 * time.Millisecond
	DefaultJoinBytes = 0
)

// DefaultConfig returns the configuration of an empty config: role client,
// families both, max_subflows 8, announce true, limits 8 and 8,
// join_delay DefaultJoinDelay, join_bytes DefaultJoinBytes.
func DefaultConfig() Config {
	return Config{
		Role:        RoleClient,
		Families:    FamiliesBoth,
		MaxSubflows: policy.MaxLimit,
		Announce:    true,
		JoinDelay:   DefaultJoinDelay,
		JoinBytes:   DefaultJoinBytes,
		Limits: policy.Limits{
			Subflows:        new(uint32(policy.MaxLimit)),
			AddAddrAccepted: new(uint32(policy.MaxLimit)),
		},
	}
}

// clone returns c with limits of its own.
func (c Config) clone() Config {
	if l := c.Limits.Subflows; l != nil {
		c.Limits.Subflows = new(*l)
	}
	if l := c.Limits.AddAddrAccepted; l != nil {
		c.Limits.AddAddrAccepted = new(*l)
	}
	return c
}

func (c Config) validate() error {
	switch c.Role {
	case RoleClient, RoleServer, RoleBoth:
	default:
		return fmt.Errorf("option \"role\": %q is not client, server or both", c.Role)
	}
	switch c.Families {
	case FamiliesBoth, FamiliesIPv4, FamiliesIPv6:
	default:
		return fmt.Errorf("option \"families\": %q is not both, ipv4 or ipv6", c.Families)
	}
	if c.MaxSubflows < 1 || c.MaxSubflows > policy.MaxLimit {
		return fmt.Errorf("option \"max_subflows\": %d is not in 1..%d", c.MaxSubflows, policy.MaxLimit)
	}
	if l := c.Limits.Subflows; l != nil && *l > policy.MaxLimit {
		return fmt.Errorf("option \"limits.subflows\": %d is above the kernel's maximum %d", *l, policy.MaxLimit)
	}
	if l := c.Limits.AddAddrAccepted; l != nil && *l > policy.MaxLimit {
		return fmt.Errorf("option \"limits.add_addr_accepted\": %d is above the kernel's maximum %d", *l, policy.MaxLimit)
	}
	switch {
	case c.JoinDelay < 0:
		return fmt.Errorf("option \"join_delay\": %v is negative", c.JoinDelay)
	case c.JoinDelay > MaxJoinDelay:
		return fmt.Errorf("option \"join_delay\": %v is longer than %v", c.JoinDelay, MaxJoinDelay)
	case c.JoinBytes != 0 && c.JoinDelay == 0:
		return fmt.Errorf("option \"join_bytes\": %d needs a join_delay (0s opens every path at once)", c.JoinBytes)
	}
	return nil
}

// FullMesh is the fullmesh policy: every usable local address to every
// peer address.
type FullMesh struct {
	cfg Config
}

var (
	_ policy.Policy    = (*FullMesh)(nil)
	_ policy.Describer = (*FullMesh)(nil)
)

// New returns the fullmesh policy for cfg, or an error naming the first
// bad option.
func New(cfg Config) (*FullMesh, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &FullMesh{cfg: cfg.clone()}, nil
}

// Name implements policy.Policy.
func (f *FullMesh) Name() string { return Name }

// Config returns the policy's configuration.
func (f *FullMesh) Config() Config { return f.cfg.clone() }

// Describe implements policy.Describer.
func (f *FullMesh) Describe() policy.Doc {
	d := DefaultConfig()
	return policy.Doc{
		Summary: "use every usable local address with every peer address",
		Options: []policy.Option{
			{Name: "role", Type: "string", Default: string(d.Role),
				Values: []string{string(RoleClient), string(RoleServer), string(RoleBoth)},
				Mode:   policy.ModeKernel,
				Help:   `kernel mode: endpoints are "subflow fullmesh" (client), "signal" (server) or "signal subflow" (both)`},
			{Name: "families", Type: "string", Default: string(d.Families),
				Values: []string{string(FamiliesBoth), string(FamiliesIPv4), string(FamiliesIPv6)},
				Help:   "address families to use"},
			{Name: "max_subflows", Type: "integer", Default: d.MaxSubflows,
				Mode: policy.ModeUserspace,
				Help: "userspace mode: subflows per client-side connection besides the initial one (1..8)"},
			{Name: "announce", Type: "boolean", Default: d.Announce,
				Mode: policy.ModeUserspace,
				Help: "userspace mode: announce the usable addresses on server-side connections"},
			{Name: "limits.subflows", Type: "integer", Default: *d.Limits.Subflows,
				Mode: policy.ModeKernel,
				Help: "kernel mode: the subflows limit (0..8; null leaves it alone)"},
			{Name: "limits.add_addr_accepted", Type: "integer", Default: *d.Limits.AddAddrAccepted,
				Mode: policy.ModeKernel,
				Help: "kernel mode: the add_addr_accepted limit (0..8; null leaves it alone); held at 0 unless kernel.accept_announces"},
			{Name: "join_delay", Type: "string", Default: d.JoinDelay.String(), Mode: policy.ModeUserspace,
				Help: `userspace mode: open a client-side connection's extra paths, and announce a server-side one's addresses, once it is this old ("0s": at once); the in-kernel path manager cannot defer`},
			{Name: "join_bytes", Type: "integer", Default: d.JoinBytes, Mode: policy.ModeUserspace,
				Help: "userspace mode: or once it has sent or received more than this many bytes, if sooner (0: only join_delay)"},
		},
	}
}
