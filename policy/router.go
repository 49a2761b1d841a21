package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Match selects connections for a Rule. A zero field matches everything,
// so the zero Match matches every connection.
type Match struct {
	// PeerPrefix matches the peer's initial address (IPv4-mapped addresses
	// match IPv4 prefixes).
	PeerPrefix netip.Prefix `json:"peer_prefix,omitzero"`
	// PeerPort matches the peer's initial port: the service port when this
	// host is the client.
	PeerPort uint16 `json:"peer_port,omitempty"`
	// LocalPort matches the local initial port: the listener's port when
	// this host is the server.
	LocalPort uint16 `json:"local_port,omitempty"`
	// Side matches the connection's side; SideAny matches both.
	Side Side `json:"side,omitempty"`
	// Unit matches connections whose socket was created in the cgroup of
	// the systemd unit Unit ("backup.service", "app.slice") or below it
	// (Owner.InUnit).
	Unit string `json:"unit,omitempty"`
	// UID matches connections whose socket the user UID owns
	// (Owner.UID); nil matches any.
	UID *uint32 `json:"uid,omitempty"`
}

// Matches reports whether c is selected by m.
func (m Match) Matches(c Conn) bool {
	if m.PeerPrefix.IsValid() {
		a := c.Remote.Addr()
		if !m.PeerPrefix.Contains(a) && !m.PeerPrefix.Contains(a.Unmap()) {
			return false
		}
	}
	switch {
	case m.PeerPort != 0 && m.PeerPort != c.Remote.Port():
		return false
	case m.LocalPort != 0 && m.LocalPort != c.Local.Port():
		return false
	case m.Side != SideAny && m.Side != c.Side:
		return false
	case m.Unit != "" && (c.Owner == nil || !c.Owner.InUnit(m.Unit)):
		return false
	case m.UID != nil && (c.Owner == nil || c.Owner.UID != *m.UID):
		return false
	}
	return true
}

// readsOwner reports whether m selects by the connection's owner.
func (m Match) readsOwner() bool { return m.Unit != "" || m.UID != nil }

func (m Match) validate() error {
	if m.Side > SideServer {
		return fmt.Errorf("side: invalid side %d", m.Side)
	}
	if m.PeerPrefix.IsValid() && m.PeerPrefix.Addr().Is4In6() {
		return fmt.Errorf("peer_prefix: %s is IPv4-mapped; write the IPv4 prefix", m.PeerPrefix)
	}
	if strings.ContainsRune(m.Unit, '/') || m.Unit == "." || m.Unit == ".." {
		return fmt.Errorf("unit: %q is not a unit name such as \"backup.service\"", m.Unit)
	}
	if m.UID != nil && *m.UID == 1<<32-1 {
		return fmt.Errorf("uid: %d is not a valid uid", *m.UID)
	}
	return nil
}

// Rule sends the connections its Match selects to its Policy.
type Rule struct {
	Match  Match
	Policy Policy
}

// RuleSpec is the configuration of a Rule: the match (its fields inline in
// JSON) and the chain to build.
type RuleSpec struct {
	Match
	Chain []Spec `json:"chain"`
}

// Config is the policy configuration of a daemon: the default chain, and
// per-connection rules tried in order (userspace mode only).
type Config struct {
	Chain []Spec     `json:"chain"`
	Rules []RuleSpec `json:"rules,omitempty"`
}

// Router is a Policy that picks, for each connection, the Policy of the
// first Rule that matches it, or the default. In kernel mode there are no
// connections to match, and the default decides.
type Router struct {
	def   Policy
	rules []Rule
}

var (
	_ Policy      = (*Router)(nil)
	_ OwnerReader = (*Router)(nil)
)

// NewRouter returns a Router over def and rules. Prefixes are masked.
func NewRouter(def Policy, rules ...Rule) (*Router, error) {
	if def == nil {
		return nil, errors.New("policy: router: no default policy")
	}
	r := &Router{def: def, rules: make([]Rule, len(rules))}
	for i, ru := range rules {
		if ru.Policy == nil {
			return nil, fmt.Errorf("policy: rules[%d]: no policy", i)
		}
		if err := ru.Match.validate(); err != nil {
			return nil, fmt.Errorf("policy: rules[%d].%w", i, err)
		}
		ru.Match.PeerPrefix = ru.Match.PeerPrefix.Masked()
		if ru.Match.UID != nil {
			ru.Match.UID = new(*ru.Match.UID)
		}
		r.rules[i] = ru
	}
	return r, nil
}

// Build builds the default chain and every rule's chain of cfg and returns
// their Router. It closes what it built when it fails.
func Build(cfg Config) (*Router, error) {
	def, err := NewChain(cfg.Chain)
	if err != nil {
		return nil, err
	}
	built := []*Chain{def}
	fail := func(err error) (*Router, error) {
		for _, c := range built {
			_ = c.Close()
		}
		return nil, err
	}
	rules := make([]Rule, 0, len(cfg.Rules))
	for i, rs := range cfg.Rules {
		if err := rs.Match.validate(); err != nil {
			return fail(fmt.Errorf("policy: rules[%d].%w", i, err))
		}
		c, err := NewChain(rs.Chain)
		if err != nil {
			return fail(fmt.Errorf("policy: rules[%d]: %w", i, err))
		}
		built = append(built, c)
		rules = append(rules, Rule{Match: rs.Match, Policy: c})
	}
	r, err := NewRouter(def, rules...)
	if err != nil {
		return fail(err)
	}
	return r, nil
}

// Route returns the policy for c and the index of the rule that chose it,
// or -1 for the default.
func (r *Router) Route(c Conn) (Policy, int) {
	for i, ru := range r.rules {
		if ru.Match.Matches(c) {
			return ru.Policy, i
		}
	}
	return r.def, -1
}

// Rules returns the number of rules.
func (r *Router) Rules() int { return len(r.rules) }

// ReadsOwner implements OwnerReader: whether a rule selects by unit or
// uid.
func (r *Router) ReadsOwner() bool {
	for _, ru := range r.rules {
		if ru.Match.readsOwner() {
			return true
		}
	}
	return false
}

// Name implements Policy: the default policy's name, with the number of
// rules when there are any.
func (r *Router) Name() string {
	if len(r.rules) == 0 {
		return r.def.Name()
	}
	return fmt.Sprintf("%s (+%d rules)", r.def.Name(), len(r.rules))
}

// Kernel implements Policy with the default policy; the plan is sorted as
// a Chain sorts it.
func (r *Router) Kernel(v View, next KernelPlan) KernelPlan {
	next = r.def.Kernel(v, next)
	next.normalize()
	return next
}

// Conn implements Policy with the policy Route picks for c; the plan is
// sorted as a Chain sorts it.
func (r *Router) Conn(v View, c Conn, next ConnPlan) ConnPlan {
	p, _ := r.Route(c)
	next = p.Conn(v, c, next)
	next.normalize()
	return next
}

// Close closes the default policy and every rule's policy that is a
// Closer and returns their errors joined.
func (r *Router) Close() error {
	var errs []error
	for _, p := range r.policies() {
		if c, ok := p.(Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

func (r *Router) policies() []Policy {
	ps := []Policy{r.def}
	for _, ru := range r.rules {
		ps = append(ps, ru.Policy)
	}
	return ps
}
