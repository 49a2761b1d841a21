package pm

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")    // eth0, index 2
	addrB = netip.MustParseAddr("198.51.100.1") // eth1, index 3
	addrC = netip.MustParseAddr("203.0.113.1")  // eth2, index 4
	addrD = netip.MustParseAddr("2001:db8:1::1")
	addrE = netip.MustParseAddr("2001:db8:2::1")
)

// hostAddrs lists the test host's addresses: A on eth0, B on eth1, C on
// eth2, D (IPv6) on eth0, E (IPv6) on eth1.
var hostAddrs = []policy.LocalAddr{
	{Addr: addrA, Link: "eth0", IfIndex: 2},
	{Addr: addrB, Link: "eth1", IfIndex: 3},
	{Addr: addrC, Link: "eth2", IfIndex: 4},
	{Addr: addrD, Link: "eth0", IfIndex: 2},
	{Addr: addrE, Link: "eth1", IfIndex: 3},
}

// setHost gives the engine the test host with only usable addresses
// usable.
func (h *harness) setHost(usable ...netip.Addr) {
	links := []policy.Link{
		{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true},
		{Name: "eth1", Index: 3, Kind: policy.LinkWired, Up: true, Usable: true},
		{Name: "eth2", Index: 4, Kind: policy.LinkCellular, Up: true, Usable: true},
	}
	var addrs []policy.LocalAddr
	for _, a := range hostAddrs {
		a.Usable = false
		a.Reason = "tentative"
		for _, u := range usable {
			if u == a.Addr {
				a.Usable, a.Reason = true, ""
			}
		}
		addrs = append(addrs, a)
	}
	h.e.SetHost(links, addrs)
}

const subflowFullmesh = genl.FlagSubflow | genl.FlagFullmesh

func TestKernelReconcile(t *testing.T) {
	t.Parallel()
	full := genl.Limits{Subflows: 8, AddAddrAccepted: 8}
	tests := []struct {
		name      string
		endpoints []genl.Endpoint
		limits    genl.Limits
		usable    []netip.Addr
		want      []string
		wantEps   []genl.Endpoint
	}{
		{
			name:   "add endpoints and limits",
			limits: genl.Limits{Subflows: 2},
			usable: []netip.Addr{addrA, addrB},
			want: []string{
				"set_limits subflows=8 add_addr_accepted=8",
				"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
				"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
			},
			wantEps: []genl.Endpoint{
				{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2},
				{ID: 101, Addr: addrB, Flags: subflowFullmesh, IfIndex: 3},
			},
		},
		{
			name:   "only the differing limit",
			limits: genl.Limits{Subflows: 8, AddAddrAccepted: 3},
			usable: []netip.Addr{},
			want:   []string{"set_limits subflows=- add_addr_accepted=8"},
		},
		{
			name: "remove an owned endpoint that is not desired",
			endpoints: []genl.Endpoint{
				{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2},
				{ID: 101, Addr: addrB, Flags: subflowFullmesh, IfIndex: 3},
			},
			limits:  full,
			usable:  []netip.Addr{addrA},
			want:    []string{"del_endpoint id=101"},
			wantEps: []genl.Endpoint{{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2}},
		},
		{
			name:      "set changeable flags in place",
			endpoints: []genl.Endpoint{{ID: 100, Addr: addrA, Flags: genl.FlagSubflow | genl.FlagBackup, IfIndex: 2}},
			limits:    full,
			usable:    []netip.Addr{addrA},
			want:      []string{"set_endpoint_flags id=100 192.0.2.1 flags=subflow,fullmesh if=2"},
			wantEps:   []genl.Endpoint{{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2}},
		},
		{
			name:      "replace on other flags",
			endpoints: []genl.Endpoint{{ID: 100, Addr: addrA, Flags: genl.FlagSignal, IfIndex: 2}},
			limits:    full,
			usable:    []netip.Addr{addrA},
			want: []string{
				"del_endpoint id=100",
				"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
			},
			wantEps: []genl.Endpoint{{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2}},
		},
		{
			name:      "replace on another device",
			endpoints: []genl.Endpoint{{ID: 100, Addr: addrA, Flags: subflowFullmesh}},
			limits:    full,
			usable:    []netip.Addr{addrA},
			want: []string{
				"del_endpoint id=100",
				"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
			},
			wantEps: []genl.Endpoint{{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2}},
		},
		{
			name: "foreign endpoints are left alone",
			endpoints: []genl.Endpoint{
				{ID: 1, Addr: addrA, Flags: genl.FlagSubflow, IfIndex: 2},
				{ID: 2, Addr: addrC, Flags: genl.FlagSignal},
			},
			limits: full,
			usable: []netip.Addr{addrA, addrB},
			want:   []string{"add_endpoint id=100 198.51.100.1 flags=subflow,fullmesh if=3"},
			wantEps: []genl.Endpoint{
				{ID: 1, Addr: addrA, Flags: genl.FlagSubflow, IfIndex: 2},
				{ID: 2, Addr: addrC, Flags: genl.FlagSignal},
				{ID: 100, Addr: addrB, Flags: subflowFullmesh, IfIndex: 3},
			},
		},
		{
			name: "ids after adoption skip owned and implicit ones",
			endpoints: []genl.Endpoint{
				{ID: 100, Addr: addrB, Flags: subflowFullmesh, IfIndex: 3},
				{ID: 101, Addr: netip.MustParseAddr("192.0.2.99"), Flags: genl.FlagImplicit},
			},
			limits: full,
			usable: []netip.Addr{addrA, addrB, addrC},
			want: []string{
				"add_endpoint id=102 192.0.2.1 flags=subflow,fullmesh if=2",
				"add_endpoint id=103 203.0.113.1 flags=subflow,fullmesh if=4",
			},
			wantEps: []genl.Endpoint{
				{ID: 100, Addr: addrB, Flags: subflowFullmesh, IfIndex: 3},
				{ID: 101, Addr: netip.MustParseAddr("192.0.2.99"), Flags: genl.FlagImplicit},
				{ID: 102, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2},
				{ID: 103, Addr: addrC, Flags: subflowFullmesh, IfIndex: 4},
			},
		},
		{
			name: "an implicit endpoint in the owned range replaced in place",
			endpoints: []genl.Endpoint{
				{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2},
				{ID: 101, Addr: addrB, Flags: genl.FlagImplicit},
			},
			limits: full,
			usable: []netip.Addr{addrA, addrB},
			want:   []string{"add_endpoint id=0 198.51.100.1 flags=subflow,fullmesh if=3"},
			wantEps: []genl.Endpoint{
				{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2},
				{ID: 101, Addr: addrB, Flags: subflowFullmesh, IfIndex: 3},
			},
		},
		{
			name: "an implicit endpoint of another id deleted and replaced",
			endpoints: []genl.Endpoint{
				{ID: 1, Addr: addrB, Flags: genl.FlagImplicit},
				{ID: 2, Addr: addrC, Flags: genl.FlagImplicit},
			},
			limits: full,
			usable: []netip.Addr{addrA, addrB},
			want: []string{
				"del_endpoint id=1",
				"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
				"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
			},
			wantEps: []genl.Endpoint{
				{ID: 2, Addr: addrC, Flags: genl.FlagImplicit},
				{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2},
				{ID: 101, Addr: addrB, Flags: subflowFullmesh, IfIndex: 3},
			},
		},
		{
			name:   "nothing to do",
			limits: full,
			endpoints: []genl.Endpoint{
				{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2},
			},
			usable:  []netip.Addr{addrA},
			wantEps: []genl.Endpoint{{ID: 100, Addr: addrA, Flags: subflowFullmesh, IfIndex: 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, policy.ModeKernel)
				h.ns.endpoints, h.ns.limits = tt.endpoints, tt.limits
				h.setHost(tt.usable...)
				h.start()
				h.ready()
				h.expect(tt.want...)
				if diff := cmp.Diff(tt.wantEps, h.ns.endpoints, cmpEmptyEndpoints, cmpAddr); diff != "" {
					t.Errorf("kernel endpoints (-want +got):\n%s", diff)
				}
				// A second pass over the same state changes nothing.
				h.setHost(tt.usable...)
				h.expect()
			})
		})
	}
}

var (
	cmpAddr           = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	cmpEmptyEndpoints = cmp.FilterValues(func(a, b []genl.Endpoint) bool { return len(a) == 0 && len(b) == 0 },
		cmp.Comparer(func(a, b []genl.Endpoint) bool { return true }))
)

// TestKernelAddressUsability: an endpoint goes when its address stops
// being usable and comes back when it is usable again (DESIGN §6).
func TestKernelAddressUsability(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel)
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		h.setHost(addrA, addrB)
		h.start()
		h.ready()
		h.expect(
			"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
			"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
		)
		h.setHost(addrA)
		h.expect("del_endpoint id=101")
		h.setHost(addrA, addrB)
		h.expect("add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3")
		st := h.settle()
		var states []string
		for _, ep := range st.Endpoints {
			states = append(states, ep.Addr.String()+" "+string(ep.State))
		}
		if diff := cmp.Diff([]string{"192.0.2.1 ok", "198.51.100.1 ok"}, states); diff != "" {
			t.Errorf("endpoint states (-want +got):\n%s", diff)
		}
	})
}

// TestKernelForeignWarning: a foreign endpoint on a wanted address is left
// alone and reported once, with the fix.
func TestKernelForeignWarning(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel)
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		h.ns.endpoints = []genl.Endpoint{{ID: 1, Addr: addrA, Flags: genl.FlagSubflow, IfIndex: 2}}
		h.setHost(addrA)
		h.start()
		h.ready()
		h.expect()
		h.setHost(addrA)
		h.expect()
		logs := h.logs.String()
		if n := strings.Count(logs, "likely added by NetworkManager"); n != 1 {
			t.Errorf("NetworkManager warning logged %d times, want 1:\n%s", n, logs)
		}
		if !strings.Contains(logs, "nmcli connection modify <conn> connection.mptcp-flags disabled") {
			t.Errorf("warning lacks the fix:\n%s", logs)
		}
		st := h.settle()
		want := []pmstate.Endpoint{
			{Addr: addrA, Dev: "eth0", IfIndex: 2, WantFlags: "subflow fullmesh", Desired: true, State: "blocked",
				Reason: "address taken by endpoint id 1, not mptcpgod's"},
			{ID: 1, Addr: addrA, IfIndex: 2, Flags: "subflow", Present: true, State: "foreign"},
		}
		if diff := cmp.Diff(want, st.Endpoints, cmpAddr); diff != "" {
			t.Errorf("endpoints (-want +got):\n%s", diff)
		}
	})
}

// TestKernelEndpointCap: foreign endpoints count toward the kernel's 8.
func TestKernelEndpointCap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel)
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		for i := range 6 {
			h.ns.endpoints = append(h.ns.endpoints, genl.Endpoint{ID: uint8(i + 1),
				Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}), Flags: genl.FlagSignal})
		}
		h.setHost(addrA, addrB, addrC, addrD)
		h.start()
		h.ready()
		h.expect(
			"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
			"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
		)
		if !strings.Contains(h.logs.String(), "endpoints left out") {
			t.Errorf("no log of the endpoints left out:\n%s", h.logs.String())
		}
		st := h.settle()
		var leftOut []string
		for _, ep := range st.Endpoints {
			if ep.State == "left_out" {
				leftOut = append(leftOut, ep.Addr.String())
			}
		}
		if diff := cmp.Diff([]string{"203.0.113.1", "2001:db8:1::1"}, leftOut); diff != "" {
			t.Errorf("left out (-want +got):\n%s", diff)
		}
	})
}

// TestKernelWithdrawOnExit: owned endpoints go when Run returns; foreign
// ones stay.
func TestKernelWithdrawOnExit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel, withWithdraw())
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		h.ns.endpoints = []genl.Endpoint{{ID: 1, Addr: addrC, Flags: genl.FlagSignal}}
		h.setHost(addrA, addrB)
		h.start()
		h.ready()
		h.expect(
			"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
			"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
		)
		if err := h.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		got := h.ns.Calls()[h.seen:]
		if diff := cmp.Diff([]string{"del_endpoint id=100", "del_endpoint id=101"}, got); diff != "" {
			t.Errorf("calls on exit (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]genl.Endpoint{{ID: 1, Addr: addrC, Flags: genl.FlagSignal}}, h.ns.endpoints, cmpAddr); diff != "" {
			t.Errorf("endpoints after exit (-want +got):\n%s", diff)
		}
		if h.ns.opened != 2 || h.ns.closed != 2 {
			t.Errorf("kernels opened %d, closed %d; want 2 and 2", h.ns.opened, h.ns.closed)
		}
	})
}

// TestKernelWithdrawKeepsLiveSubflows: on exit the engine keeps the owned
// endpoints whose address carries a live subflow, since deleting one makes
// the kernel close those subflows, and withdraws the others.
func TestKernelWithdrawKeepsLiveSubflows(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel, withWithdraw())
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		h.setHost(addrA, addrB)
		h.start()
		h.ready()
		h.expect(
			"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
			"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
		)
		h.lister.set(ExistingConn{
			Token: tok1, Side: policy.SideClient,
			Local:  netip.MustParseAddrPort("192.0.2.1:40000"),
			Remote: netip.MustParseAddrPort(srv1),
			Subflows: []ExistingSubflow{{
				Local:  netip.MustParseAddrPort("192.0.2.1:40000"),
				Remote: netip.MustParseAddrPort(srv1),
			}},
		})
		if err := h.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if diff := cmp.Diff([]string{"del_endpoint id=101"}, h.ns.Calls()[h.seen:]); diff != "" {
			t.Errorf("calls on exit (-want +got):\n%s", diff)
		}
	})
}

// TestKernelAddAddrAcceptedMax: with AddAddrAcceptedMax, the policy's
// add_addr_accepted (fullmesh asks for 8) is lowered to the maximum, and
// so is a higher value found in the kernel.
func TestKernelAddAddrAcceptedMax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		max    uint32
		limits genl.Limits
		want   string
	}{
		{"kept at 0", 0, genl.Limits{Subflows: 2}, "set_limits subflows=8 add_addr_accepted=-"},
		{"lowered to 0", 0, genl.Limits{Subflows: 8, AddAddrAccepted: 8}, "set_limits subflows=- add_addr_accepted=0"},
		{"lowered to the maximum", 2, genl.Limits{Subflows: 2}, "set_limits subflows=8 add_addr_accepted=2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, policy.ModeKernel, func(c *Config) { c.AddAddrAcceptedMax = new(tt.max) })
				h.ns.limits = tt.limits
				h.setHost()
				h.start()
				h.ready()
				h.expect(tt.want)
				h.ns.mu.Lock()
				got := h.ns.limits.AddAddrAccepted
				h.ns.mu.Unlock()
				if got > tt.max {
					t.Errorf("add_addr_accepted %d, above the maximum %d", got, tt.max)
				}
				st, err := h.e.Status(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				if w := st.Limits.WantAddAddrAccepted; w == nil || *w != tt.max {
					t.Errorf("status wants add_addr_accepted %v, want %d", w, tt.max)
				}
			})
		})
	}
}

// TestKernelLimitsPutBack: on exit the engine puts back each limit it
// changed to what it was at start, unless someone changed it since.
func TestKernelLimitsPutBack(t *testing.T) {
	t.Parallel()
	t.Run("both", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, policy.ModeKernel, withWithdraw())
			h.ns.limits = genl.Limits{Subflows: 2, AddAddrAccepted: 1}
			h.setHost()
			h.start()
			h.ready()
			h.expect("set_limits subflows=8 add_addr_accepted=8")
			if err := h.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if diff := cmp.Diff([]string{"set_limits subflows=2 add_addr_accepted=1"}, h.ns.Calls()[h.seen:]); diff != "" {
				t.Errorf("calls on exit (-want +got):\n%s", diff)
			}
			if want := (genl.Limits{Subflows: 2, AddAddrAccepted: 1}); h.ns.limits != want {
				t.Errorf("limits after exit %+v, want %+v as found", h.ns.limits, want)
			}
		})
	})
	t.Run("changed by someone else since", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, policy.ModeKernel, withWithdraw())
			h.ns.limits = genl.Limits{Subflows: 2, AddAddrAccepted: 1}
			h.setHost()
			h.start()
			h.ready()
			h.expect("set_limits subflows=8 add_addr_accepted=8")
			h.ns.mu.Lock()
			h.ns.limits.Subflows = 5
			h.ns.mu.Unlock()
			if err := h.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if diff := cmp.Diff([]string{"set_limits subflows=- add_addr_accepted=1"}, h.ns.Calls()[h.seen:]); diff != "" {
				t.Errorf("calls on exit (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("not without withdraw_on_exit", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			h := newHarness(t, policy.ModeKernel)
			h.ns.limits = genl.Limits{Subflows: 2}
			h.setHost()
			h.start()
			h.ready()
			h.expect("set_limits subflows=8 add_addr_accepted=8")
			if err := h.stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := h.ns.Calls()[h.seen:]; len(got) > 0 {
				t.Errorf("calls on exit: %q, want none", got)
			}
		})
	})
}

// TestKernelRetry: a failed add backs off, then succeeds; an EEXIST
// makes the engine re-read the kernel.
func TestKernelRetry(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel)
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		fails := 2
		h.ns.fail = func(call string) error {
			if strings.HasPrefix(call, "add_endpoint id=100") && fails > 0 {
				fails--
				return kerr("add endpoint", unix.ENODEV, "")
			}
			return nil
		}
		h.setHost(addrA)
		h.start()
		h.ready()
		h.expect("add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2")
		st := h.settle()
		if len(st.Endpoints) != 1 || st.Endpoints[0].State != "backoff" || st.Endpoints[0].Failures != 1 ||
			!st.Endpoints[0].BackoffUntil.Equal(h.clock.Now().Add(50*time.Millisecond)) {
			t.Fatalf("endpoint status after a failure: %+v", st.Endpoints)
		}
		h.clock.Advance(49 * time.Millisecond)
		h.setHost(addrA) // a reconciliation inside the backoff does nothing
		h.expect()
		h.clock.Advance(time.Millisecond)
		h.expect("add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2")
		h.clock.Advance(99 * time.Millisecond)
		h.expect()
		h.clock.Advance(time.Millisecond)
		h.expect("add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2")

		// Someone else takes the address between our dump and our add: the
		// engine re-reads the kernel and then leaves the address alone.
		h.ns.mu.Lock()
		h.ns.endpoints = append(h.ns.endpoints, genl.Endpoint{ID: 7, Addr: addrB, Flags: genl.FlagSubflow})
		h.ns.mu.Unlock()
		dumps := h.ns.dumps
		h.setHost(addrA, addrB)
		h.expect("add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3")
		h.clock.Advance(time.Minute)
		h.setHost(addrA, addrB)
		h.expect()
		if h.ns.dumps != dumps+1 {
			t.Errorf("dumps after EEXIST: %d, want %d", h.ns.dumps, dumps+1)
		}
		st = h.settle()
		if st.Counters.Failures["add_endpoint"] != 3 || len(st.RecentErrors) != 3 {
			t.Errorf("failures %v, recent errors %v; want 3 each", st.Counters.Failures, st.RecentErrors)
		}
	})
}

// TestKernelPolicySwap: a new policy applies at once.
func TestKernelPolicySwap(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel)
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		h.setHost(addrA)
		h.start()
		h.ready()
		h.expect("add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2")
		cfg := fullmesh.DefaultConfig()
		cfg.Role = fullmesh.RoleServer
		cfg.Limits.AddAddrAccepted = nil
		fm, err := fullmesh.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.e.SetPolicy(policy.Compose(fm))
		h.expect("del_endpoint id=100", "add_endpoint id=100 192.0.2.1 flags=signal if=2")
		st := h.settle()
		if st.Policy != "fullmesh" || st.Counters.PolicySwaps != 1 {
			t.Errorf("policy %q swaps %d", st.Policy, st.Counters.PolicySwaps)
		}
		if st.Limits == nil || st.Limits.WantAddAddrAccepted != nil || *st.Limits.WantSubflows != 8 {
			t.Errorf("limits status %+v", st.Limits)
		}
	})
}

// TestKernelResync: lost events make the engine re-read the endpoints.
func TestKernelResync(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeKernel)
		h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
		h.setHost(addrA)
		h.start()
		h.ready()
		h.expect("add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2")
		// Someone flushes the endpoints behind our back.
		h.ns.mu.Lock()
		h.ns.endpoints = nil
		h.ns.mu.Unlock()
		h.lost()
		h.expect("add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2")
		if st := h.settle(); st.Counters.Resyncs != 1 {
			t.Errorf("resyncs %d, want 1", st.Counters.Resyncs)
		}
	})
}

func TestKernelAdoptFails(t *testing.T) {
	t.Parallel()
	ns := newFakeNS()
	e, err := New(Config{Mode: policy.ModeKernel, Policy: defaultPolicy(t), NewKernel: func() (Kernel, error) {
		return failingDump{ns.mustKernel()}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "pm: read endpoints") || !errors.Is(err, errDump) {
		t.Errorf("Run: %v, want a read endpoints error", err)
	}
	if ns.opened != DefaultWorkers+1 || ns.closed != ns.opened {
		t.Errorf("kernels opened %d, closed %d", ns.opened, ns.closed)
	}
}

var errDump = errors.New("dump failed")

type failingDump struct{ Kernel }

func (failingDump) Endpoints() ([]genl.Endpoint, error) { return nil, errDump }

func (ns *fakeNS) mustKernel() Kernel {
	k, _ := ns.kernel()
	return k
}
