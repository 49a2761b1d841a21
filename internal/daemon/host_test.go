package daemon

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

func TestHostView(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Second)
	eth0 := linkmon.Link{Index: 2, Name: "eth0", Kind: linkmon.KindWired, Up: true, Included: true}
	wwan := linkmon.Link{Index: 3, Name: "wwan0", Kind: linkmon.KindCellular, Up: true, Included: true}
	lo := linkmon.Link{Index: 1, Name: "lo", Kind: linkmon.KindLoopback, Up: true, Reason: "excluded by kind loopback"}
	a4 := linkmon.Addr{Prefix: netip.MustParsePrefix("192.0.2.1/24"), LinkIndex: 2, Usable: true}
	a6 := linkmon.Addr{Prefix: netip.MustParsePrefix("2001:db8::1/64"), LinkIndex: 3, Usable: true}

	hv := newHostView()
	links, addrs := hv.convert(linkmon.State{
		Links: map[int]linkmon.Link{1: lo, 2: eth0, 3: wwan},
		Addrs: []linkmon.Addr{a4, a6},
	}, t0)
	wantLinks := []policy.Link{
		{Name: "lo", Index: 1, Kind: policy.LinkVirtual, Up: true},
		{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true},
		{Name: "wwan0", Index: 3, Kind: policy.LinkCellular, Up: true, Usable: true},
	}
	wantAddrs := []policy.LocalAddr{
		{Addr: a4.Prefix.Addr(), PrefixLen: 24, Link: "eth0", IfIndex: 2, Usable: true},
		{Addr: a6.Prefix.Addr(), PrefixLen: 64, Link: "wwan0", IfIndex: 3, Usable: true},
	}
	if diff := cmp.Diff(wantLinks, links); diff != "" {
		t.Errorf("first links (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAddrs, addrs, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("first addrs (-want +got):\n%s", diff)
	}

	// wwan0 goes down: its address is no longer usable. What did not
	// change keeps its (unknown) time.
	wwan.Up = false
	a6.Usable, a6.Reason = false, "link down"
	links, addrs = hv.convert(linkmon.State{
		Links: map[int]linkmon.Link{1: lo, 2: eth0, 3: wwan},
		Addrs: []linkmon.Addr{a4, a6},
	}, t1)
	wantLinks[2].Up, wantLinks[2].Usable, wantLinks[2].Changed = false, false, t1
	wantAddrs[1].Usable, wantAddrs[1].Reason, wantAddrs[1].Changed = false, "link down", t1
	if diff := cmp.Diff(wantLinks, links); diff != "" {
		t.Errorf("links after wwan0 down (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAddrs, addrs, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("addrs after wwan0 down (-want +got):\n%s", diff)
	}

	// Later, with nothing changed, times stay.
	links, _ = hv.convert(linkmon.State{
		Links: map[int]linkmon.Link{1: lo, 2: eth0, 3: wwan},
		Addrs: []linkmon.Addr{a4, a6},
	}, t1.Add(time.Hour))
	if diff := cmp.Diff(wantLinks, links); diff != "" {
		t.Errorf("links an hour later (-want +got):\n%s", diff)
	}
}

func TestPolicyKind(t *testing.T) {
	tests := []struct {
		in   linkmon.Kind
		want policy.LinkKind
	}{
		{linkmon.KindUnknown, policy.LinkUnknown},
		{linkmon.KindWired, policy.LinkWired},
		{linkmon.KindWifi, policy.LinkWiFi},
		{linkmon.KindCellular, policy.LinkCellular},
		{linkmon.KindVirtual, policy.LinkVirtual},
		{linkmon.KindLoopback, policy.LinkVirtual},
	}
	for _, tt := range tests {
		if got := policyKind(tt.in); got != tt.want {
			t.Errorf("policyKind(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestListening(t *testing.T) {
	listeners := []netip.AddrPort{
		netip.MustParseAddrPort("0.0.0.0:80"),
		netip.MustParseAddrPort("192.0.2.2:443"),
		netip.MustParseAddrPort("[::]:8080"),
	}
	tests := []struct {
		local string
		want  bool
	}{
		{"192.0.2.2:80", true},
		{"192.0.2.2:443", true},
		{"198.51.100.2:443", false},
		{"[2001:db8::2]:8080", true},
		{"192.0.2.2:40000", false},
	}
	for _, tt := range tests {
		if got := listening(listeners, netip.MustParseAddrPort(tt.local)); got != tt.want {
			t.Errorf("listening(%s) = %v, want %v", tt.local, got, tt.want)
		}
	}
}

func TestProcesses(t *testing.T) {
	dir := t.TempDir()
	for pid, comm := range map[string]string{"1": "systemd", "42": "NetworkManager", "77": "mptcpd", "78": "mptcpd", "self": "x"} {
		if err := os.MkdirAll(filepath.Join(dir, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, pid, "comm"), []byte(comm+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := processes(dir, networkManager, mptcpd)
	if diff := cmp.Diff([]string{"NetworkManager", "mptcpd"}, got); diff != "" {
		t.Errorf("processes (-want +got):\n%s", diff)
	}
	if got := processes(dir, "chronyd"); got != nil {
		t.Errorf("processes(chronyd) = %v, want none", got)
	}
}

func TestWarnCoexistence(t *testing.T) {
	foreign := foreignEndpoints([]genl.Endpoint{
		{ID: 1, Addr: netip.MustParseAddr("192.0.2.1"), Flags: genl.FlagSubflow},
		{ID: 100, Addr: netip.MustParseAddr("198.51.100.1"), Flags: genl.FlagSubflow},
		{ID: 2, Addr: netip.MustParseAddr("203.0.113.1"), Flags: genl.FlagImplicit},
	}, pm.IDRange{Min: 100, Max: 199})
	if len(foreign) != 1 || foreign[0].ID != 1 {
		t.Fatalf("foreignEndpoints = %v, want only id 1 (not mptcpgod's, nor implicit)", foreign)
	}
	tests := []struct {
		name    string
		mode    policy.Mode
		found   managers
		foreign []genl.Endpoint
		want    []string
	}{
		{"alone", policy.ModeKernel, managers{}, nil, nil},
		{"kernel", policy.ModeKernel, managers{procs: []string{networkManager, mptcpd}, networkManager: true,
			listeners: []string{"port 812 (mptcpd)"}}, foreign, []string{
			"mptcpd is running",
			"NetworkManager is running and may add MPTCP endpoints of its own",
			"endpoints mptcpgod does not own take part in every connection",
		}},
		{"userspace", policy.ModeUserspace, managers{procs: []string{networkManager, mptcpd}, networkManager: true}, nil,
			[]string{"mptcpd is running"}},
		{"sandboxed: the bus and the kernel's state", policy.ModeKernel, managers{networkManager: true,
			listeners: []string{"port 812"}}, nil, []string{
			"another program follows the MPTCP path manager's events in this namespace: mptcpd, or a monitor such as ip mptcp monitor",
			"NetworkManager is running and may add MPTCP endpoints of its own",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := warnCoexistence(discard, tt.mode, tt.found, tt.foreign)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

var discard = slog.New(slog.DiscardHandler)
