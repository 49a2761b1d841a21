package backupcell_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/plugins/backupcell"
	"github.com/mptcpgod/mptcpgod/policy"
)

// FuzzConfig feeds configurations as the daemon passes them from its
// config file: New must not panic, its errors name the policy, and every
// configuration it accepts gives plans the kernel accepts, behind
// fullmesh, with the cellular endpoints and paths the only ones it
// changes: eth0's are never backup unless cellular_names names eth0.
func FuzzConfig(f *testing.F) {
	fm, err := policy.New("fullmesh", nil)
	if err != nil {
		f.Fatal(err)
	}
	links := []policy.Link{eth0, wwan, usb0}
	addrs := []policy.LocalAddr{policytest.Local(a4, eth0), policytest.Local(c4, wwan), policytest.Local(d6, usb0), policytest.Local(policytest.Addr("2001:db8:1::1"), eth0)}
	policytest.FuzzConfig(f, backupcell.Name, []string{
		``, `{}`, `{"cellular_names":["wwan*","usb0"],"hold_time":"5s","close_dead":false}`,
		`{"hold":"1s"}`, `{"hold_time":"-1s"}`, `{"cellular_names":["["]}`,
	}, func(t *testing.T, p policy.Policy) {
		c := policy.Compose(fm, p)
		// filepath.Match is path.Match, as the policy matches, on Linux.
		wired := !slices.ContainsFunc(p.(*backupcell.BackupCell).Config().CellularNames, func(g string) bool {
			ok, _ := filepath.Match(g, eth0.Name)
			return ok
		})
		for _, now := range []time.Duration{0, time.Second, time.Hour} {
			v := policy.View{Mode: policy.ModeKernel, Now: t0.Add(now), Links: links, Addrs: addrs}
			kp := c.Kernel(v, policy.KernelPlan{})
			if err := kp.Validate(); err != nil {
				t.Fatalf("kernel plan: %v", err)
			}
			for _, e := range kp.Endpoints {
				if wired && e.Backup && e.Addr == a4 {
					t.Fatalf("the wired endpoint is backup: %+v", kp.Endpoints)
				}
			}
			v.Mode = policy.ModeUserspace
			conn := policy.Conn{Side: policy.SideClient, Local: initial.Local, Remote: r0,
				Subflows: []policy.Subflow{with(initial, func(s *policy.Subflow) { s.Health = stalledSince(now) }), cellSub}}
			cp := c.Conn(v, conn, policy.ConnPlan{})
			if err := cp.Validate(); err != nil {
				t.Fatalf("connection plan: %v", err)
			}
			for _, p := range cp.Paths {
				if wired && p.Backup && p.Local == a4 {
					t.Fatalf("the wired path is backup: %+v", cp.Paths)
				}
			}
		}
	})
}
