package policy

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegisterPanics(t *testing.T) {
	t.Parallel()
	ok := func(json.RawMessage) (Policy, error) { return &fake{}, nil }
	tests := []struct {
		name    string
		reg     string
		factory Factory
		want    string
	}{
		{"empty name", "", ok, "policy: Register with an empty name"},
		{"nil factory", "test-nil-factory", nil, "policy: Register test-nil-factory with a nil factory"},
		{"duplicate", "test-opts", ok, "policy: duplicate registration: test-opts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustPanic(t, func() { Register(tt.reg, tt.factory) })
			if got != tt.want {
				t.Errorf("panic = %q, want %q", got, tt.want)
			}
		})
	}
	if slices.Contains(Names(), "test-nil-factory") {
		t.Error("a failed registration was kept")
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	names := Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names() = %q, not sorted", names)
	}
	for _, n := range []string{"test-backup", "test-base", "test-nil", "test-opts", "test-plain"} {
		if !slices.Contains(names, n) {
			t.Errorf("Names() = %q, missing %q", names, n)
		}
	}
}

// TestNew checks strict decoding with one-line configurations, as coredns
// tests its setup functions.
func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy string
		config string
		want   opts // when ok
		err    string
	}{
		{name: "no config", policy: "test-opts", want: opts{Count: 1}},
		{name: "null", policy: "test-opts", config: `null`, want: opts{Count: 1}},
		{name: "empty object", policy: "test-opts", config: ` { } `, want: opts{Count: 1}},
		{name: "options", policy: "test-opts", config: `{"count": 3, "prefix": "192.0.2.0/24"}`,
			want: opts{Count: 3, Prefix: mustPrefix("192.0.2.0/24")}},
		{name: "nested", policy: "test-opts", config: `{"nested": {"limit": 4}}`,
			want: func() opts { o := opts{Count: 1}; o.Nested.Limit = new(uint32(4)); return o }()},
		{name: "unknown option", policy: "test-opts", config: `{"cuont": 3}`,
			err: `policy/test-opts: unknown option "cuont"`},
		{name: "unknown nested option", policy: "test-opts", config: `{"nested": {"limt": 3}}`,
			err: `policy/test-opts: unknown option "nested.limt"`},
		{name: "a key's case", policy: "test-opts", config: `{"Count": 3}`,
			err: `policy/test-opts: unknown option "Count" (did you mean "count"? options are lower case)`},
		{name: "a nested key's case", policy: "test-opts", config: `{"nested": {"LIMIT": 3}}`,
			err: `policy/test-opts: unknown option "nested.LIMIT" (did you mean "limit"? options are lower case)`},
		{name: "a key twice", policy: "test-opts", config: `{"count": 2, "count": 3}`,
			err: `policy/test-opts: option "count" given twice`},
		{name: "a nested key twice", policy: "test-opts", config: `{"nested": {"limit": 1, "limit": 2}}`,
			err: `policy/test-opts: option "nested.limit" given twice`},
		{name: "unknown option in an array", policy: "test-opts", config: `{"items": [{"name": "a"}, {"nmae": "b"}]}`,
			err: `policy/test-opts: unknown option "items[1].nmae"`},
		{name: "a map's keys are its own", policy: "test-opts", config: `{"labels": {"Any": 1}, "items": [{"name": "a"}]}`,
			want: opts{Count: 1, Labels: map[string]int{"Any": 1}, Items: []item{{Name: "a"}}}},
		{name: "wrong type", policy: "test-opts", config: `{"count": "3"}`,
			err: `policy/test-opts: option "count": cannot use string as int`},
		{name: "negative unsigned", policy: "test-opts", config: `{"nested": {"limit": -1}}`,
			err: `policy/test-opts: option "nested.limit": cannot use number -1 as uint32`},
		{name: "bad prefix", policy: "test-opts", config: `{"prefix": "192.0.2.0/33"}`,
			err: `policy/test-opts: config: netip.ParsePrefix("192.0.2.0/33"): prefix length out of range`},
		{name: "not an object", policy: "test-opts", config: `[1]`,
			err: `policy/test-opts: config must be a JSON object`},
		{name: "trailing data", policy: "test-opts", config: `{"count": 2} {"count": 3}`,
			err: `policy/test-opts: config: unexpected data after the object`},
		{name: "truncated", policy: "test-opts", config: `{"count": 2`,
			err: `policy/test-opts: config: truncated JSON`},
		{name: "syntax", policy: "test-opts", config: `{"count": 2,}`,
			err: `policy/test-opts: config: invalid JSON at offset 13: invalid character '}' looking for beginning of object key string`},
		{name: "factory rejects", policy: "test-opts", config: `{"count": -1}`,
			err: `policy/test-opts: option "count": must not be negative`},
		{name: "validator rejects", policy: "test-opts", config: `{"fail": "no upstream"}`,
			err: `policy/test-opts: no upstream`},
		{name: "nil policy", policy: "test-nil", err: `policy/test-nil: factory returned no policy`},
		{name: "unknown policy", policy: "test-nope",
			err: `policy: unknown policy "test-nope" (known: ` + oneOf(Names()) + `)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(tt.policy, json.RawMessage(tt.config))
			if diff := cmp.Diff(tt.err, errString(err)); diff != "" {
				t.Fatalf("New(%q, %s) error (-want +got):\n%s", tt.policy, tt.config, diff)
			}
			if err != nil {
				return
			}
			got := p.(*optsPolicy).cfg
			if diff := cmp.Diff(tt.want, got, netOpts); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewClosesOnValidateError(t *testing.T) {
	t.Parallel()
	p := tracked
	before := p.closed
	_, err := New("test-close-on-validate", nil)
	if diff := cmp.Diff("policy/test-close-on-validate: test error", errString(err)); diff != "" {
		t.Fatalf("error (-want +got):\n%s", diff)
	}
	if n := p.closed - before; n != 1 {
		t.Errorf("closed %d times, want 1", n)
	}
}

// closeTracker fails validation and counts its Close calls.
type closeTracker struct{ fake }

func (c *closeTracker) Validate() error { return errTest }

// tracked is what "test-close-on-validate" builds; only
// TestNewClosesOnValidateError builds it.
var tracked = &closeTracker{}

func init() {
	Register("test-close-on-validate", func(json.RawMessage) (Policy, error) { return tracked, nil })
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want Doc
		err  string
	}{
		{"test-opts", Doc{Name: "test-opts", Summary: "test", Options: []Option{{Name: "count", Type: "integer", Default: 1, Help: "how many"}}}, ""},
		{"test-plain", Doc{Name: "test-plain"}, ""},
		{"test-nil", Doc{}, "policy/test-nil: factory returned no policy"},
		{"test-nope", Doc{}, `policy: unknown policy "test-nope" (known: ` + oneOf(Names()) + `)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Describe(tt.name)
			if diff := cmp.Diff(tt.err, errString(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Describe(%q) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}
