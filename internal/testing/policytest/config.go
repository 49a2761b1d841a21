package policytest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/policy"
)

// ConfigCase is a case of a configuration table: a JSON configuration and
// either the configuration it decodes to (Want, with Err empty) or the
// text of the error that refuses it (Err; Want is then not looked at).
type ConfigCase[T any] struct {
	Config string
	Want   T
	Err    string
}

// With returns a builder of a table's wanted configurations: with(f) is a
// fresh def() changed by f, as in with(func(c *fullmesh.Config) {
// c.MaxSubflows = 1 }).
func With[T any](def func() T) func(f func(*T)) T {
	return func(f func(*T)) T {
		c := def()
		f(&c)
		return c
	}
}

// RunConfigs runs each case as a parallel subtest of t named by its
// configuration: parse decodes the configuration, its error text must be
// the case's Err, and when it succeeds, what it returns must be Want.
func RunConfigs[T any](t *testing.T, cases []ConfigCase[T], parse func(json.RawMessage) (T, error)) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Config, func(t *testing.T) {
			t.Parallel()
			got, err := parse(json.RawMessage(tt.Config))
			if diff := cmp.Diff(tt.Err, ErrString(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.Want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// Configurable is a policy that returns the configuration it was built
// from.
type Configurable[T any] interface {
	policy.Policy
	Config() T
}

// Configured returns a parse for RunConfigs that builds the policy
// registered as name with policy.New, as the daemon does, so errors carry
// the policy's prefix, and returns the Config of the policy, of type P,
// that it built: Configured[*fullmesh.FullMesh](fullmesh.Name).
func Configured[P Configurable[T], T any](name string) func(json.RawMessage) (T, error) {
	return func(raw json.RawMessage) (T, error) {
		var zero T
		p, err := policy.New(name, raw)
		if err != nil {
			return zero, err
		}
		c, ok := p.(P)
		if !ok {
			return zero, fmt.Errorf("policytest: policy %q is a %T, not a %T", name, p, c)
		}
		return c.Config(), nil
	}
}

// Defaults describes the policy registered as name (policy.Describe) and
// returns its documentation and each option's default by option name. It
// fails the test when the policy cannot be described and marks it failed
// for every option without help or type.
func Defaults(t testing.TB, name string) (policy.Doc, map[string]any) {
	t.Helper()
	d, err := policy.Describe(name)
	if err != nil {
		t.Fatal(err)
	}
	defaults := make(map[string]any)
	for _, o := range d.Options {
		defaults[o.Name] = o.Default
		if o.Help == "" || o.Type == "" {
			t.Errorf("option %s lacks help or type", o.Name)
		}
	}
	return d, defaults
}

// FuzzConfig fuzzes the configuration of the policy registered as name,
// as the daemon passes it from its configuration file, from the seeds:
// policy.New must not panic and its errors must start with
// "policy/NAME: "; check gets every policy it builds.
func FuzzConfig(f *testing.F, name string, seeds []string, check func(t *testing.T, p policy.Policy)) {
	f.Helper()
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := policy.New(name, json.RawMessage(raw))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "policy/"+name+": ") {
				t.Fatalf("error %q does not name the policy", err)
			}
			return
		}
		check(t, p)
	})
}
