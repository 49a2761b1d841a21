package costaware

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strconv"

	"github.com/dustin/go-humanize"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Name is the name cost-aware registers under.
const Name = "cost-aware"

func init() {
	policy.Register(Name, func(raw json.RawMessage) (policy.Policy, error) {
		cfg := DefaultConfig()
		if err := policy.DecodeConfig(raw, &cfg); err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// Action is what cost-aware does with the paths of a link it keeps out of
// use.
type Action string

// Actions.
const (
	// Withdraw removes the link's endpoints (kernel mode) or paths and
	// announces (userspace mode).
	Withdraw Action = "withdraw"
	// Backup keeps them, as backup: the kernel sends over them only when
	// no other subflow can.
	Backup Action = "backup"
)

// Config is cost-aware's configuration; its JSON keys are the option
// names.
type Config struct {
	// Standby is what a metered link below its quota does while a
	// link that is not metered can carry the traffic.
	Standby Action `json:"standby"`
	// AtQuota is what a link that used its quota does.
	AtQuota Action `json:"at_quota"`
	// AggregateBudget lets metered links carry traffic beside the
	// unmetered ones until they used this much in the period: a size
	// such as "500MB" or "1GiB"; "" or "0" never.
	AggregateBudget string `json:"aggregate_budget"`
	// AggregateCost is the same budget as a cost (CostPerGB times the
	// period's traffic) for links with a price; 0 means none. With both,
	// the first one spent ends the aggregation.
	AggregateCost float64 `json:"aggregate_cost"`
	// Links override the options for the links whose names match, the
	// first match winning.
	Links []LinkConfig `json:"links"`
}

// LinkConfig overrides the options for links by name. Empty fields take
// the top-level values.
type LinkConfig struct {
	// Name is a path.Match glob of interface names ("wwan*").
	Name    string `json:"name"`
	Standby Action `json:"standby,omitempty"`
	AtQuota Action `json:"at_quota,omitempty"`
	// AggregateBudget: "" takes the top-level value, "0" allows none.
	AggregateBudget string `json:"aggregate_budget,omitempty"`
	// AggregateCost: absent (null) takes the top-level value, 0 allows
	// none.
	AggregateCost *float64 `json:"aggregate_cost,omitempty"`
}

// DefaultConfig returns the configuration of an empty config: metered
// links withdrawn while an unmetered link can carry the traffic and at
// their quota, no aggregation, no per-link overrides.
func DefaultConfig() Config {
	return Config{Standby: Withdraw, AtQuota: Withdraw, Links: []LinkConfig{}}
}

// rule is the resolved configuration of one link.
type rule struct {
	standby, atQuota Action
	budget           uint64
	cost             float64
}

func (c Config) compile() (rule, []namedRule, error) {
	def := rule{standby: c.Standby, atQuota: c.AtQuota, cost: c.AggregateCost}
	if err := checkAction("standby", def.standby); err != nil {
		return rule{}, nil, err
	}
	if err := checkAction("at_quota", def.atQuota); err != nil {
		return rule{}, nil, err
	}
	var err error
	if def.budget, err = parseBudget("aggregate_budget", c.AggregateBudget); err != nil {
		return rule{}, nil, err
	}
	if err := checkCost("aggregate_cost", def.cost); err != nil {
		return rule{}, nil, err
	}
	rules := make([]namedRule, 0, len(c.Links))
	for i, l := range c.Links {
		key := func(k string) string { return "links[" + strconv.Itoa(i) + "]." + k }
		r := def
		if l.Name == "" {
			return rule{}, nil, fmt.Errorf("option %q: missing", key("name"))
		}
		if _, err := path.Match(l.Name, ""); err != nil {
			return rule{}, nil, fmt.Errorf("option %q: %q is not a valid glob: %w", key("name"), l.Name, err)
		}
		if l.Standby != "" {
			if err := checkAction(key("standby"), l.Standby); err != nil {
				return rule{}, nil, err
			}
			r.standby = l.Standby
		}
		if l.AtQuota != "" {
			if err := checkAction(key("at_quota"), l.AtQuota); err != nil {
				return rule{}, nil, err
			}
			r.atQuota = l.AtQuota
		}
		if l.AggregateBudget != "" {
			if r.budget, err = parseBudget(key("aggregate_budget"), l.AggregateBudget); err != nil {
				return rule{}, nil, err
			}
		}
		if l.AggregateCost != nil {
			if err := checkCost(key("aggregate_cost"), *l.AggregateCost); err != nil {
				return rule{}, nil, err
			}
			r.cost = *l.AggregateCost
		}
		rules = append(rules, namedRule{glob: l.Name, rule: r})
	}
	return def, rules, nil
}

func checkAction(key string, a Action) error {
	switch a {
	case Withdraw, Backup:
		return nil
	}
	return fmt.Errorf("option %q: %q is not withdraw or backup", key, a)
}

func parseBudget(key, s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("option %q: %q is not a size such as \"500MB\" or \"1GiB\"", key, s)
	}
	return n, nil
}

func checkCost(key string, c float64) error {
	if c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
		return fmt.Errorf("option %q: %v is not a cost of 0 or more", key, c)
	}
	return nil
}

type namedRule struct {
	glob string
	rule rule
}

// CostAware is the cost-aware policy: it keeps metered links out of use
// while unmetered ones can carry the traffic, and takes links that used
// their quota out of use.
type CostAware struct {
	cfg   Config
	def   rule
	rules []namedRule
}

var (
	_ policy.Policy       = (*CostAware)(nil)
	_ policy.Describer    = (*CostAware)(nil)
	_ policy.HealthReader = (*CostAware)(nil)
)

// New returns the cost-aware policy for cfg, or an error naming the first
// bad option.
func New(cfg Config) (*CostAware, error) {
	def, rules, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	return &CostAware{cfg: cfg.clone(), def: def, rules: rules}, nil
}

func (c Config) clone() Config {
	links := make([]LinkConfig, len(c.Links))
	for i, l := range c.Links {
		if l.AggregateCost != nil {
			l.AggregateCost = new(*l.AggregateCost)
		}
		links[i] = l
	}
	c.Links = links
	return c
}

// Name implements policy.Policy.
func (p *CostAware) Name() string { return Name }

// ReadsHealth implements policy.HealthReader: a stalled free link counts as unusable.
func (p *CostAware) ReadsHealth() bool { return true }

// Config returns the policy's configuration.
func (p *CostAware) Config() Config { return p.cfg.clone() }

// ruleFor returns the rule of the link named name.
func (p *CostAware) ruleFor(name string) rule {
	for _, r := range p.rules {
		if ok, _ := path.Match(r.glob, name); ok {
			return r.rule
		}
	}
	return p.def
}

// Describe implements policy.Describer.
func (p *CostAware) Describe() policy.Doc {
	d := DefaultConfig()
	actions := []string{string(Withdraw), string(Backup)}
	return policy.Doc{
		Summary: "use metered links only when no unmetered link can carry the traffic, and stop at their quota",
		Options: []policy.Option{
			{Name: "standby", Type: "string", Default: string(d.Standby), Values: actions,
				Help: "what a metered link below its quota does while an unmetered link can carry the traffic"},
			{Name: "at_quota", Type: "string", Default: string(d.AtQuota), Values: actions,
				Help: "what a link that used its quota for the period does"},
			{Name: "aggregate_budget", Type: "string", Default: d.AggregateBudget,
				Help: `metered links also carry traffic beside unmetered ones until they used this much in the period ("500MB", "1GiB"; "" none)`},
			{Name: "aggregate_cost", Type: "number", Default: d.AggregateCost,
				Help: "the same budget as a cost: cost_per_gb times the period's traffic, for links with a price (0 none)"},
			{Name: "links", Type: "array", Default: []any{},
				Help: "per-link overrides, the first whose name glob matches: {name, standby, at_quota, aggregate_budget, aggregate_cost}"},
		},
	}
}
