package costaware_test

import (
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/plugins/costaware"
	"github.com/mptcpgod/mptcpgod/policy"
)

// FuzzConfig feeds configurations as the daemon passes them from its
// config file: New must not panic, its errors name the policy, and every
// configuration it accepts gives plans the kernel accepts, with no
// endpoint or path that fullmesh did not propose.
func FuzzConfig(f *testing.F) {
	policytest.FuzzConfig(f, costaware.Name, []string{
		``, `{}`, `{"standby":"backup","at_quota":"backup","aggregate_budget":"500MB","aggregate_cost":2.5}`,
		`{"links":[{"name":"wwan*","standby":"backup","aggregate_budget":"0","aggregate_cost":0}]}`,
		`{"standby":"drop"}`, `{"aggregate_budget":"lots"}`,
	}, func(t *testing.T, p policy.Policy) {
		fm, err := policy.New("fullmesh", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []policytest.Host{newHost(), freeLinkDown(), newHost().Link("wwan0", usedBytes(5_000_000))} {
			kv := h.View(policy.ModeKernel, now)
			base := fm.Kernel(kv, policy.KernelPlan{})
			got := policy.Compose(fm, p).Kernel(kv, policy.KernelPlan{})
			if err := got.Validate(); err != nil {
				t.Fatalf("kernel plan: %v", err)
			}
			for _, e := range got.Endpoints {
				if _, ok := find(base.Endpoints, e.Addr); !ok {
					t.Fatalf("endpoint %s not proposed by fullmesh", e.Addr)
				}
			}
			uv := h.View(policy.ModeUserspace, now)
			conn := policy.Conn{Side: policy.SideClient, Local: policytest.AddrPort("198.51.100.1:40000"), Remote: peer,
				PeerAddrs: []policy.PeerAddr{{ID: 1, Addr: peer6}}}
			if err := policy.Compose(fm, p).Conn(uv, conn, policy.ConnPlan{}).Validate(); err != nil {
				t.Fatalf("conn plan: %v", err)
			}
		}
	})
}
