package backupcell

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Name is the name backup-cellular registers under.
const Name = "backup-cellular"

func init() {
	policy.Register(Name, func(raw json.RawMessage) (policy.Policy, error) {
		d := DefaultConfig()
		w := wireConfig{CellularNames: d.CellularNames, HoldTime: d.HoldTime.String(), CloseDead: d.CloseDead,
			BackupAtOnce: d.BackupAtOnce}
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

// Config is backup-cellular's configuration.
type Config struct {
	// CellularNames are path.Match globs of interface names that are
	// cellular, besides the links whose kind is cellular.
	CellularNames []string
	// HoldTime is how long a primary path must have worked before the
	// cellular paths are demoted to backup again.
	HoldTime time.Duration
	// CloseDead leaves out of a client-side connection's plan the primary
	// paths whose subflow is stalled, while another subflow works
	// (userspace mode).
	CloseDead bool
	// BackupAtOnce opens the cellular paths kept as backup at once,
	// whatever deferral the base policy gave them (join_delay,
	// join_bytes), so that a failover in a connection's first moments
	// finds its backup subflow up (userspace mode). Promoted cellular
	// paths are never deferred.
	BackupAtOnce bool
}

// DefaultConfig returns the configuration of an empty config: no extra
// cellular names, hold_time 2s, close_dead true, backup_at_once false.
func DefaultConfig() Config {
	return Config{CellularNames: []string{}, HoldTime: 2 * time.Second, CloseDead: true}
}

// wireConfig is the configuration as JSON has it: durations are strings
// ("2s"), as everywhere in mptcpgod's configuration.
type wireConfig struct {
	CellularNames []string `json:"cellular_names"`
	HoldTime      string   `json:"hold_time"`
	CloseDead     bool     `json:"close_dead"`
	BackupAtOnce  bool     `json:"backup_at_once"`
}

func (w wireConfig) config() (Config, error) {
	hold, err := time.ParseDuration(w.HoldTime)
	if err != nil {
		return Config{}, fmt.Errorf("option \"hold_time\": %q is not a duration (like \"500ms\" or \"2s\")", w.HoldTime)
	}
	names := w.CellularNames
	if names == nil {
		names = []string{}
	}
	return Config{CellularNames: names, HoldTime: hold, CloseDead: w.CloseDead, BackupAtOnce: w.BackupAtOnce}, nil
}

func (c Config) validate() error {
	for _, g := range c.CellularNames {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return fmt.Errorf("option \"cellular_names\": %q is not a glob of interface names", g)
		}
	}
	if c.HoldTime < 0 {
		return fmt.Errorf("option \"hold_time\": %v is negative", c.HoldTime)
	}
	return nil
}

// BackupCell is the backup-cellular policy.
type BackupCell struct {
	cfg Config
}

var (
	_ policy.Policy       = (*BackupCell)(nil)
	_ policy.Describer    = (*BackupCell)(nil)
	_ policy.HealthReader = (*BackupCell)(nil)
)

// New returns the backup-cellular policy for cfg, or an error naming the
// first bad option.
func New(cfg Config) (*BackupCell, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &BackupCell{cfg: cfg.clone()}, nil
}

func (c Config) clone() Config {
	c.CellularNames = append([]string{}, c.CellularNames...)
	return c
}

// Name implements policy.Policy.
func (b *BackupCell) Name() string { return Name }

// ReadsHealth implements policy.HealthReader: it promotes backup paths when a primary subflow stalls.
func (b *BackupCell) ReadsHealth() bool { return true }

// Config returns the policy's configuration.
func (b *BackupCell) Config() Config { return b.cfg.clone() }

// Describe implements policy.Describer.
func (b *BackupCell) Describe() policy.Doc {
	d := DefaultConfig()
	return policy.Doc{
		Summary: "use cellular links only as backup: promote them at once when no other path works, demote them when one has worked for hold_time",
		Options: []policy.Option{
			{Name: "cellular_names", Type: "array", Default: d.CellularNames,
				Help: `interface-name globs ("wwan*") of links that are cellular besides those of kind cellular`},
			{Name: "hold_time", Type: "string", Default: d.HoldTime.String(),
				Help: "how long a primary path must have worked, without a stall, before the cellular paths are demoted to backup again"},
			{Name: "close_dead", Type: "boolean", Default: d.CloseDead, Mode: policy.ModeUserspace,
				Help: "userspace mode: close a primary subflow that is stalled while another subflow works, so its data is sent again at once"},
			{Name: "backup_at_once", Type: "boolean", Default: d.BackupAtOnce, Mode: policy.ModeUserspace,
				Help: "userspace mode: open the cellular backup paths at once, not deferred by the base policy's join_delay, so that a young connection's backup subflow is up before it is needed (promoted cellular paths are never deferred)"},
		},
	}
}

// cellular reports whether l, a link of the view, is cellular.
func (b *BackupCell) cellular(l policy.Link) bool {
	return l.Kind == policy.LinkCellular || b.named(l.Name)
}

// named reports whether an interface name matches cellular_names.
func (b *BackupCell) named(name string) bool {
	return name != "" && slices.ContainsFunc(b.cfg.CellularNames, func(g string) bool {
		ok, _ := path.Match(g, name)
		return ok
	})
}
