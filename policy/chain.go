package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Spec names a registered policy and its configuration; a list of specs
// describes a chain.
type Spec struct {
	// Name is the registered name ("fullmesh").
	Name string `json:"name"`
	// Config is the policy's JSON configuration; empty for the defaults.
	Config json.RawMessage `json:"config,omitempty"`
}

// Chain runs policies in order, each one on what the previous ones
// returned, and is itself a Policy. After every policy the chain sorts the
// plan (endpoints by address and port, paths by local address then remote
// address and port, announces by address and port) and drops duplicates,
// keeping the first proposed, so equal inputs give byte-equal outputs and
// every policy sees a canonical plan.
type Chain struct {
	policies []Policy
	name     string
}

var _ Policy = (*Chain)(nil)

// Compose returns the chain of the given policies, run in order.
func Compose(ps ...Policy) *Chain {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name()
	}
	return &Chain{policies: ps, name: strings.Join(names, " | ")}
}

// NewChain builds each spec with New and composes them. It fails on an
// empty list and on any spec New rejects; it closes what it built when it
// fails.
func NewChain(specs []Spec) (*Chain, error) {
	if len(specs) == 0 {
		return nil, errors.New("policy: chain: empty, want at least one policy")
	}
	ps := make([]Policy, 0, len(specs))
	for i, s := range specs {
		p, err := New(s.Name, s.Config)
		if err != nil {
			for _, b := range ps {
				closePolicy(b)
			}
			return nil, fmt.Errorf("policy: chain[%d]: %w", i, err)
		}
		ps = append(ps, p)
	}
	return Compose(ps...), nil
}

// Name implements Policy: the policies' names joined by " | ".
func (c *Chain) Name() string { return c.name }

// Policies returns the chain's policies in order.
func (c *Chain) Policies() []Policy { return append([]Policy(nil), c.policies...) }

// Kernel implements Policy.
func (c *Chain) Kernel(v View, next KernelPlan) KernelPlan {
	next.normalize()
	for _, p := range c.policies {
		next = p.Kernel(v, next)
		next.normalize()
	}
	return next
}

// Conn implements Policy.
func (c *Chain) Conn(v View, conn Conn, next ConnPlan) ConnPlan {
	next.normalize()
	for _, p := range c.policies {
		next = p.Conn(v, conn, next)
		next.normalize()
	}
	return next
}

// Close closes every policy that is a Closer and returns their errors
// joined.
func (c *Chain) Close() error {
	var errs []error
	for _, p := range c.policies {
		if cl, ok := p.(Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("policy/%s: close: %w", p.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}
