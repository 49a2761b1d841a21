package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// Factory builds a policy from its JSON configuration. raw is empty (or
// JSON null) when the configuration gives no options; the factory then
// returns the policy with its defaults. A factory decodes its options with
// DecodeConfig, rejects bad values naming the option, and has no side
// effects: anything that needs checking against the world, or resources,
// belongs in Validate or in the first call.
type Factory func(raw json.RawMessage) (Policy, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a policy available under name. Plugins call it from init.
// It panics when name is empty, when f is nil, or when name is already
// registered.
func Register(name string, f Factory) {
	if name == "" {
		panic("policy: Register with an empty name")
	}
	if f == nil {
		panic("policy: Register " + name + " with a nil factory")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("policy: duplicate registration: " + name)
	}
	registry[name] = f
}

// Names returns the registered policy names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookup(name string) (Factory, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("policy: unknown policy %q (known: %s)", name, oneOf(Names()))
	}
	return f, nil
}

// New builds the policy registered as name from its JSON configuration and
// validates it (Validator). Errors name the policy:
// `policy/fullmesh: unknown option "max_subflow"`.
func New(name string, raw json.RawMessage) (Policy, error) {
	f, err := lookup(name)
	if err != nil {
		return nil, err
	}
	p, err := f(raw)
	if err != nil {
		return nil, fmt.Errorf("policy/%s: %w", name, err)
	}
	if p == nil {
		return nil, fmt.Errorf("policy/%s: factory returned no policy", name)
	}
	if v, ok := p.(Validator); ok {
		if err := v.Validate(); err != nil {
			closePolicy(p)
			return nil, fmt.Errorf("policy/%s: %w", name, err)
		}
	}
	return p, nil
}

// Describe returns the documentation of the policy registered as name,
// from a policy built with an empty configuration. A policy that is not a
// Describer gets a Doc with only its name.
func Describe(name string) (Doc, error) {
	f, err := lookup(name)
	if err != nil {
		return Doc{}, err
	}
	p, err := f(nil)
	if err != nil {
		return Doc{}, fmt.Errorf("policy/%s: empty configuration: %w", name, err)
	}
	if p == nil {
		return Doc{}, fmt.Errorf("policy/%s: factory returned no policy", name)
	}
	defer closePolicy(p)
	var d Doc
	if ds, ok := p.(Describer); ok {
		d = ds.Describe()
	}
	d.Name = name
	return d, nil
}

// closePolicy closes p when it is a Closer, for error paths where the
// close error cannot be reported better than the error that caused it.
func closePolicy(p Policy) {
	if c, ok := p.(Closer); ok {
		_ = c.Close()
	}
}
