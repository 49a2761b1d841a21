package backupcell_test

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// FuzzConfig feeds configurations as the daemon passes them from its
// config file: New must not panic, its errors name the policy, and every
// configuration it accepts gives plans the kernel accepts, with the
// cellular endpoints and paths the only ones it changes.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"cellular_names":["wwan*","usb0"],"hold_time":"5s","close_dead":false}`,
		`{"hold":"1s"}`, `{"hold_time":"-1s"}`, `{"cellular_names":["["]}`,
	} {
		f.Add([]byte(s))
	}
	links := []policy.Link{eth0, wwan, usb0}
	addrs := []policy.LocalAddr{loc(a4, eth0), loc(c4, wwan), loc(d6, usb0), loc(addr("2001:db8:1::1"), eth0)}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := policy.NewChain([]policy.Spec{{Name: "fullmesh"}, {Name: "backup-cellular", Config: json.RawMessage(raw)}})
		if err != nil {
			if !strings.Contains(err.Error(), "policy/backup-cellular: ") {
				t.Fatalf("error %q does not name the policy", err)
			}
			return
		}
		for _, now := range []time.Duration{0, time.Second, time.Hour} {
			v := policy.View{Mode: policy.ModeKernel, Now: t0.Add(now), Links: links, Addrs: addrs}
			kp := c.Kernel(v, policy.KernelPlan{})
			if err := kp.Validate(); err != nil {
				t.Fatalf("kernel plan: %v", err)
			}
			for _, e := range kp.Endpoints {
				if e.Backup && e.Addr == a4 {
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
				if p.Backup && p.Local == netip.AddrFrom4([4]byte{192, 0, 2, 1}) {
					t.Fatalf("the wired path is backup: %+v", cp.Paths)
				}
			}
		}
	})
}
