package fullmesh_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// FuzzConfig feeds configurations as the daemon passes them from its
// config file: New must not panic, its errors name the policy, and every
// configuration it accepts gives plans the kernel accepts.
func FuzzConfig(f *testing.F) {
	var addrs []policy.LocalAddr
	for i := range 10 {
		addrs = append(addrs,
			policytest.Local(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), eth0),
			policytest.Local(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), eth1))
	}
	policytest.FuzzConfig(f, fullmesh.Name, []string{
		``, `{}`, `{"role":"server","families":"ipv4","max_subflows":2,"announce":false,"limits":{"subflows":3,"add_addr_accepted":null}}`,
		`{"max_subflow":4}`, `{"limits":{"subflows":9}}`, `{"join_delay":"50ms","join_bytes":1000}`, `{"join_delay":"0s","join_bytes":1}`,
	}, func(t *testing.T, p policy.Policy) {
		if err := p.Kernel(policy.View{Mode: policy.ModeKernel, Addrs: addrs}, policy.KernelPlan{}).Validate(); err != nil {
			t.Fatalf("kernel plan: %v", err)
		}
		v := policy.View{Mode: policy.ModeUserspace, Addrs: addrs}
		for _, side := range []policy.Side{policy.SideClient, policy.SideServer} {
			conn := policy.Conn{
				Side: side, Local: policytest.AddrPort("192.0.2.1:40000"), Remote: r0, Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
				PeerAddrs: []policy.PeerAddr{{Addr: r0}, {ID: 1, Addr: r1}, {ID: 2, Addr: r6}},
			}
			if err := p.Conn(v, conn, policy.ConnPlan{}).Validate(); err != nil {
				t.Fatalf("%s plan: %v", side, err)
			}
		}
	})
}
