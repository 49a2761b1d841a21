package policy_test

import (
	"encoding/json"
	"fmt"
	"net/netip"

	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// noCellular is a modifier: it drops paths over cellular links.
type noCellular struct{}

func (noCellular) Name() string { return "example-no-cellular" }

func (noCellular) Kernel(v policy.View, next policy.KernelPlan) policy.KernelPlan {
	eps := next.Endpoints[:0]
	for _, e := range next.Endpoints {
		if l, ok := v.Link(e.IfIndex); !ok || l.Kind != policy.LinkCellular {
			eps = append(eps, e)
		}
	}
	next.Endpoints = eps
	return next
}

func (noCellular) Conn(v policy.View, c policy.Conn, next policy.ConnPlan) policy.ConnPlan {
	ps := next.Paths[:0]
	for _, p := range next.Paths {
		if l, ok := v.Link(p.IfIndex); !ok || l.Kind != policy.LinkCellular {
			ps = append(ps, p)
		}
	}
	next.Paths = ps
	return next
}

// A plugin registers itself from init.
func init() {
	policy.Register("example-no-cellular", func(raw json.RawMessage) (policy.Policy, error) {
		if err := policy.DecodeConfig(raw, &struct{}{}); err != nil {
			return nil, err
		}
		return noCellular{}, nil
	})
}

func Example() {
	// The daemon builds its policy from the configuration file.
	r, err := policy.Build(policy.Config{
		Chain: []policy.Spec{{Name: "fullmesh"}},
		Rules: []policy.RuleSpec{{
			Match: policy.Match{PeerPort: 443, Side: policy.SideClient},
			Chain: []policy.Spec{{Name: "fullmesh", Config: json.RawMessage(`{"max_subflows": 2}`)}, {Name: "example-no-cellular"}},
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	// The engine asks it for every connection.
	v := policy.View{
		Mode: policy.ModeUserspace,
		Links: []policy.Link{
			{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true},
			{Name: "wwan0", Index: 3, Kind: policy.LinkCellular, Up: true, Usable: true},
		},
		Addrs: []policy.LocalAddr{
			{Addr: netip.MustParseAddr("192.0.2.1"), Link: "eth0", IfIndex: 2, Usable: true},
			{Addr: netip.MustParseAddr("198.51.100.1"), Link: "wwan0", IfIndex: 3, Usable: true},
		},
	}
	c := policy.Conn{
		Side:   policy.SideClient,
		Local:  netip.MustParseAddrPort("192.0.2.1:40000"),
		Remote: netip.MustParseAddrPort("203.0.113.1:443"),
		PeerAddrs: []policy.PeerAddr{
			{ID: 1, Addr: netip.MustParseAddrPort("203.0.113.2:443"), Source: policy.SourceAnnounced},
		},
	}
	for _, remote := range []string{"203.0.113.1:443", "203.0.113.1:22"} {
		c.Remote = netip.MustParseAddrPort(remote)
		p, rule := r.Route(c)
		fmt.Printf("to %s: rule %d, %s\n", remote, rule, p.Name())
		for _, path := range r.Conn(v, c, policy.ConnPlan{}).Paths {
			fmt.Printf("  %s %s -> %s\n", path.Dev, path.Local, path.Remote)
		}
	}
	// Output:
	// to 203.0.113.1:443: rule 0, fullmesh | example-no-cellular
	//   eth0 192.0.2.1 -> 203.0.113.1:443
	//   eth0 192.0.2.1 -> 203.0.113.2:443
	// to 203.0.113.1:22: rule -1, fullmesh
	//   eth0 192.0.2.1 -> 203.0.113.1:22
	//   eth0 192.0.2.1 -> 203.0.113.2:443
	//   wwan0 198.51.100.1 -> 203.0.113.1:22
	//   wwan0 198.51.100.1 -> 203.0.113.2:443
}
