package policy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestKernelPlanValidate(t *testing.T) {
	t.Parallel()
	nine := make([]Endpoint, 9)
	for i := range nine {
		nine[i] = Endpoint{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Subflow: true}
	}
	tests := []struct {
		name string
		p    KernelPlan
		err  string
	}{
		{"empty", KernelPlan{}, ""},
		{"eight", KernelPlan{Endpoints: nine[:8], Limits: Limits{Subflows: new(uint32(8)), AddAddrAccepted: new(uint32(0))}}, ""},
		{"signal with port", KernelPlan{Endpoints: []Endpoint{{Addr: eth4, Port: 443, Signal: true}, {Addr: eth4, Subflow: true}}}, ""},
		{"nine", KernelPlan{Endpoints: nine}, "policy: endpoints: 9 endpoints, the kernel keeps at most 8"},
		{"no address", KernelPlan{Endpoints: []Endpoint{{Addr: eth4}, {Subflow: true}}}, "policy: endpoints[1].addr: missing"},
		{"mapped", KernelPlan{Endpoints: []Endpoint{{Addr: netip.MustParseAddr("::ffff:192.0.2.1")}}},
			"policy: endpoints[0].addr: ::ffff:192.0.2.1 is IPv4-mapped"},
		{"zone", KernelPlan{Endpoints: []Endpoint{{Addr: netip.MustParseAddr("fe80::1%eth0")}}},
			"policy: endpoints[0].addr: fe80::1%eth0 has a zone"},
		{"port without signal", KernelPlan{Endpoints: []Endpoint{{Addr: eth4, Port: 443}}},
			"policy: endpoints[0].port: 443 needs signal and not subflow"},
		{"port with subflow", KernelPlan{Endpoints: []Endpoint{{Addr: eth4, Port: 443, Signal: true, Subflow: true}}},
			"policy: endpoints[0].port: 443 needs signal and not subflow"},
		{"signal fullmesh", KernelPlan{Endpoints: []Endpoint{{Addr: eth4, Signal: true, Fullmesh: true}}},
			"policy: endpoints[0].fullmesh: not allowed with signal"},
		{"negative ifindex", KernelPlan{Endpoints: []Endpoint{{Addr: eth4, IfIndex: -1}}},
			"policy: endpoints[0].ifindex: -1 is negative"},
		{"duplicate", KernelPlan{Endpoints: []Endpoint{{Addr: eth4}, {Addr: eth6}, {Addr: eth4, Backup: true}}},
			"policy: endpoints[2]: 192.0.2.1:0 duplicates endpoints[0]"},
		{"subflows limit", KernelPlan{Limits: Limits{Subflows: new(uint32(9))}},
			"policy: limits.subflows: 9 is above the kernel's maximum 8"},
		{"add_addr_accepted limit", KernelPlan{Limits: Limits{AddAddrAccepted: new(uint32(100))}},
			"policy: limits.add_addr_accepted: 100 is above the kernel's maximum 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.err, errString(tt.p.Validate())); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConnPlanValidate(t *testing.T) {
	t.Parallel()
	peer6 := netip.MustParseAddrPort("[2001:db8:9::1]:443")
	tests := []struct {
		name string
		p    ConnPlan
		err  string
	}{
		{"empty", ConnPlan{}, ""},
		{"paths", ConnPlan{
			Paths:     []Path{{Local: eth4, Remote: peer4}, {Local: eth6, Remote: peer6, Backup: true}, {Local: wwan4, Remote: peer4, IfIndex: 3}},
			Announces: []Announce{{Addr: eth4}, {Addr: eth4, Port: 8443}, {Addr: eth6, IfIndex: 2}},
		}, ""},
		{"mapped local to v4 peer", ConnPlan{Paths: []Path{{Local: netip.MustParseAddr("::ffff:192.0.2.1"), Remote: peer4}}}, ""},
		{"no local", ConnPlan{Paths: []Path{{Remote: peer4}}}, "policy: paths[0].local: missing"},
		{"no remote", ConnPlan{Paths: []Path{{Local: eth4}}}, "policy: paths[0].remote: missing"},
		{"no remote port", ConnPlan{Paths: []Path{{Local: eth4, Remote: netip.AddrPortFrom(peer4.Addr(), 0)}}},
			"policy: paths[0].remote: 203.0.113.7:0 has no port"},
		{"families", ConnPlan{Paths: []Path{{Local: eth6, Remote: peer4}}},
			"policy: paths[0]: 2001:db8:1::1 and 203.0.113.7 are of different families"},
		{"negative ifindex", ConnPlan{Paths: []Path{{Local: eth4, Remote: peer4, IfIndex: -2}}},
			"policy: paths[0].ifindex: -2 is negative"},
		{"duplicate path", ConnPlan{Paths: []Path{{Local: eth4, Remote: peer4}, {Local: eth4, Remote: peer4, Backup: true}}},
			"policy: paths[1]: 192.0.2.1 -> 203.0.113.7:443 duplicates paths[0]"},
		{"no announce address", ConnPlan{Announces: []Announce{{Port: 1}}}, "policy: announces[0].addr: missing"},
		{"negative announce ifindex", ConnPlan{Announces: []Announce{{Addr: eth4, IfIndex: -1}}},
			"policy: announces[0].ifindex: -1 is negative"},
		{"duplicate announce", ConnPlan{Announces: []Announce{{Addr: eth4, IfIndex: 2}, {Addr: eth4, IfIndex: 3}}},
			"policy: announces[1]: 192.0.2.1:0 duplicates announces[0]"},
		{"deferred", ConnPlan{
			Paths:     []Path{{Local: eth4, Remote: peer4, Deferral: Deferral{NotBefore: time.Unix(1, 0), AfterBytes: 1}}},
			Announces: []Announce{{Addr: eth4, Deferral: Deferral{NotBefore: time.Unix(1, 0)}}},
		}, ""},
		{"path bytes without time", ConnPlan{Paths: []Path{{Local: eth4, Remote: peer4, Deferral: Deferral{AfterBytes: 1}}}},
			"policy: paths[0].after_bytes: needs not_before (the latest time)"},
		{"announce bytes without time", ConnPlan{Announces: []Announce{{Addr: eth4, Deferral: Deferral{AfterBytes: 1}}}},
			"policy: announces[0].after_bytes: needs not_before (the latest time)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.err, errString(tt.p.Validate())); diff != "" {
				t.Errorf("Validate (-want +got):\n%s", diff)
			}
		})
	}
}
