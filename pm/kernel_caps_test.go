package pm

import (
	"testing"
	"testing/synctest"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// laminarAll is a test modifier that wants every endpoint laminar.
type laminarAll struct{}

func (laminarAll) Name() string { return "laminar-all" }

func (laminarAll) Kernel(_ policy.View, next policy.KernelPlan) policy.KernelPlan {
	for i := range next.Endpoints {
		next.Endpoints[i].Laminar = true
	}
	return next
}

func (laminarAll) Conn(_ policy.View, _ policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	return next
}

// TestKernelLaminarFallback: on a kernel without laminar endpoints (before
// 6.18) the engine adds the endpoints a policy wants laminar without the
// flag, once, instead of replacing them forever because the kernel
// dropped it; on a kernel that has them the flag goes through.
func TestKernelLaminarFallback(t *testing.T) {
	t.Parallel()
	fm, err := fullmesh.New(fullmesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	laminar := withPolicy(policy.Compose(fm, laminarAll{}))
	for _, tt := range []struct {
		name   string
		kernel genl.Kernel
		want   string
	}{
		{"6.18", genl.Kernel{Release: "6.18.44"}, "add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh,laminar if=2"},
		{"6.12", genl.Kernel{Release: "6.12.118", Missing: []genl.Capability{genl.CapLaminar}}, "add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				k := tt.kernel
				h := newHarness(t, policy.ModeKernel, laminar, func(c *Config) { c.Kernel = k })
				h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
				h.setHost(addrA)
				h.start()
				h.ready()
				h.expect(tt.want)
				// The kernel has what the engine asked for: nothing more to do.
				h.setHost(addrA)
				h.expect()
			})
		})
	}
}

// TestUserspaceSubflowFlagsFallback: on a kernel that ignores the backup
// flag of SUBFLOW_CREATE (before 6.9), the engine sets the bit with
// SET_FLAGS once the subflow is established; on a kernel that honours
// it, the subflow is backup from the start.
func TestUserspaceSubflowFlagsFallback(t *testing.T) {
	t.Parallel()
	fm, err := fullmesh.New(joinAtOnce())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		kernel genl.Kernel
		after  []string
	}{
		{"6.18", genl.Kernel{Release: "6.18.44"}, nil},
		{"6.1", genl.Kernel{Release: "6.1.0-57-amd64", Missing: []genl.Capability{genl.CapSubflowFlags}},
			[]string{"backup 11111111 198.51.100.1:40001 -> 203.0.113.80:443 true"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				k := tt.kernel
				h := newUserspace(t, withPolicy(policy.Compose(fm, backupOn{ifindex: 3})), func(c *Config) { c.Kernel = k })
				h.open(tok1, "192.0.2.1:40000", srv1)
				h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags=backup if=3 id=255")
				h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
				h.expect(tt.after...)
				h.events(event(genl.EventSubPriority, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
				h.expect()
			})
		})
	}
}
