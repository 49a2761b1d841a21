package policytest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/policy"
)

// knob is the policy the tests register: one option, "n", default 1.
type knob struct{ n int }

const knobName = "policytest-knob"

func init() {
	policy.Register(knobName, func(raw json.RawMessage) (policy.Policy, error) {
		cfg := struct {
			N int `json:"n"`
		}{N: 1}
		if err := policy.DecodeConfig(raw, &cfg); err != nil {
			return nil, err
		}
		return knob{cfg.N}, nil
	})
}

func (knob) Name() string { return knobName }

func (knob) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan { return next }

func (knob) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan { return next }

func (k knob) Config() int { return k.n }

func (knob) Describe() policy.Doc {
	return policy.Doc{Summary: "a knob", Options: []policy.Option{{Name: "n", Type: "integer", Default: 1, Help: "the knob"}}}
}

func TestRunConfigs(t *testing.T) {
	t.Parallel()
	policytest.RunConfigs(t, []policytest.ConfigCase[int]{
		{Config: ``, Want: 1},
		{Config: `{"n": 3}`, Want: 3},
		{Config: `{"m": 3}`, Err: `policy/policytest-knob: unknown option "m"`},
	}, policytest.Configured[knob](knobName))
}

// notKnob has the method Configured reads, but is not the type
// registered as knobName.
type notKnob struct{ knob }

func TestConfiguredWrongType(t *testing.T) {
	t.Parallel()
	_, err := policytest.Configured[notKnob](knobName)(nil)
	want := `policytest: policy "policytest-knob" is a policytest_test.knob, not a policytest_test.notKnob`
	if diff := cmp.Diff(want, policytest.ErrString(err)); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	d, got := policytest.Defaults(t, knobName)
	if diff := cmp.Diff(map[string]any{"n": 1}, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if d.Name != knobName || d.Summary != "a knob" {
		t.Errorf("Doc = %+v", d)
	}
}

// TestHost: Link and Addr change copies, and views have slices of their
// own, so cases can share a base host.
func TestHost(t *testing.T) {
	t.Parallel()
	eth0 := policy.Link{Name: "eth0", Index: 2, Up: true, Usable: true}
	a := policytest.Addr("192.0.2.1")
	base := policytest.Host{Links: []policy.Link{eth0}, Addrs: []policy.LocalAddr{policytest.Local(a, eth0)}}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	down := base.Link("eth0", func(l *policy.Link) { l.Up, l.Usable = false, false }).
		Addr(a, func(la *policy.LocalAddr) { la.Usable = false })
	want := policy.View{Mode: policy.ModeKernel, Now: now,
		Links: []policy.Link{{Name: "eth0", Index: 2}},
		Addrs: []policy.LocalAddr{{Addr: a, Link: "eth0", IfIndex: 2}}}
	if diff := cmp.Diff(want, down.View(policy.ModeKernel, now), policytest.NetOpts); diff != "" {
		t.Errorf("changed view (-want +got):\n%s", diff)
	}

	v := base.View(policy.ModeUserspace, now)
	v.Links[0].Up, v.Addrs[0].Usable = false, false
	want = policy.View{Mode: policy.ModeUserspace, Now: now, Links: []policy.Link{eth0},
		Addrs: []policy.LocalAddr{{Addr: a, Link: "eth0", IfIndex: 2, Usable: true}}}
	if diff := cmp.Diff(want, base.View(policy.ModeUserspace, now), policytest.NetOpts); diff != "" {
		t.Errorf("base view after the changes (-want +got):\n%s", diff)
	}
}

func TestWith(t *testing.T) {
	t.Parallel()
	type config struct{ a, b int }
	with := policytest.With(func() config { return config{a: 1, b: 2} })
	first := with(func(c *config) { c.a = 3 })
	if second := with(func(c *config) { c.b = 4 }); first != (config{3, 2}) || second != (config{1, 4}) {
		t.Errorf("with gave %+v, then %+v; want {3 2}, then {1 4}", first, second)
	}
}
