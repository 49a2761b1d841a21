package genl_test

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// TestEndpoints drives every in-kernel PM endpoint command against a real
// namespace and checks each state with the client's own dumps and with
// `ip mptcp endpoint show`.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 2)
			h := tb.Client
			c := newClient(t, h)
			ev := subscribe(t, c, "endpoints")
			eth0 := ifIndex(t, h, tb.Links[0].ClientIf)
			link0, link1 := fam.client(tb.Links[0]), fam.client(tb.Links[1])

			checkEndpoints(t, h, c, nil)

			// Explicit ids, every flag, a port (signal only, on a local
			// address: the kernel opens a listener on it) and a device.
			add := []genl.Endpoint{
				{ID: 1, Addr: link0, Flags: genl.FlagSubflow, IfIndex: eth0},
				{ID: 2, Addr: link1, Port: 20002, Flags: genl.FlagSignal},
				{ID: 3, Addr: fam.docAddr(3), Flags: genl.FlagSubflow | genl.FlagBackup},
				{ID: 4, Addr: fam.docAddr(4), Flags: genl.FlagSubflow | genl.FlagFullmesh},
				{ID: 5, Addr: fam.docAddr(5), Flags: genl.FlagSignal | genl.FlagBackup},
			}
			for _, ep := range add {
				if err := c.AddEndpoint(ep); err != nil {
					t.Fatalf("AddEndpoint(%+v): %v", ep, err)
				}
			}
			want := append([]genl.Endpoint(nil), add...)
			checkEndpoints(t, h, c, want)
			// The port endpoint has a listening socket of the kernel's.
			portListener := netip.AddrPortFrom(link1, 20002)
			ev.waitListener(t, genl.EventListenerCreated, portListener)
			if !slices.ContainsFunc(ss(t, h, "-Htln"), func(s ssSock) bool { return s.Local == portListener }) {
				t.Errorf("ss -tln: no listener on %v", portListener)
			}

			// Automatic ids continue after the highest id in use. Before
			// 6.18 the client refuses laminar endpoints, which the kernel
			// would store without meaning or drop: they are added without.
			laminar := genl.FlagLaminar
			if !netnstest.KernelHas(genl.CapLaminar) {
				laminar = 0
				netnstest.Degraded(t, "no laminar endpoints (Linux %s): AddEndpoint refuses them", genl.CapLaminar.Since)
				ep := genl.Endpoint{Addr: fam.docAddr(6), Flags: genl.FlagSubflow | genl.FlagLaminar}
				if err := c.AddEndpoint(ep); !errors.Is(err, genl.ErrUnsupported) {
					t.Errorf("AddEndpoint(%+v) = %v, want ErrUnsupported", ep, err)
				}
				checkEndpoints(t, h, c, want)
			}
			auto := []genl.Endpoint{
				{Addr: fam.docAddr(6), Flags: genl.FlagSubflow | laminar},
				{Addr: fam.docAddr(7), Flags: genl.FlagSignal | laminar},
			}
			for i, ep := range auto {
				if err := c.AddEndpoint(ep); err != nil {
					t.Fatalf("AddEndpoint(%+v): %v", ep, err)
				}
				ep.ID = uint8(6 + i)
				want = append(want, ep)
			}
			checkEndpoints(t, h, c, want)

			// Flag changes, by id and by address (+port).
			changes := []struct {
				name string
				req  genl.Endpoint
				idx  int // into want
				want genl.EndpointFlags
			}{
				{"nobackup by id", genl.Endpoint{ID: 3}, 2, genl.FlagSubflow},
				{"backup by id", genl.Endpoint{ID: 3, Flags: genl.FlagBackup}, 2, genl.FlagSubflow | genl.FlagBackup},
				{"fullmesh by id", genl.Endpoint{ID: 1, Flags: genl.FlagFullmesh}, 0, genl.FlagSubflow | genl.FlagFullmesh},
				{"backup fullmesh by id", genl.Endpoint{ID: 1, Flags: genl.FlagFullmesh | genl.FlagBackup}, 0, genl.FlagSubflow | genl.FlagFullmesh | genl.FlagBackup},
				{"nofullmesh by id", genl.Endpoint{ID: 4}, 3, genl.FlagSubflow},
				{"nobackup by address", genl.Endpoint{Addr: fam.docAddr(5)}, 4, genl.FlagSignal},
				{"fullmesh by address", genl.Endpoint{Addr: fam.docAddr(4), Flags: genl.FlagFullmesh}, 3, genl.FlagSubflow | genl.FlagFullmesh},
				{"backup by address and port", genl.Endpoint{Addr: link1, Port: 20002, Flags: genl.FlagBackup}, 1, genl.FlagSignal | genl.FlagBackup},
				{"nobackup by address and port", genl.Endpoint{Addr: link1, Port: 20002}, 1, genl.FlagSignal},
				{"laminar cannot be set", genl.Endpoint{ID: 3, Flags: genl.FlagBackup | genl.FlagLaminar}, 2, genl.FlagSubflow | genl.FlagBackup},
				{"backup keeps laminar", genl.Endpoint{ID: 6, Flags: genl.FlagBackup}, 5, genl.FlagSubflow | laminar | genl.FlagBackup},
			}
			for _, ch := range changes {
				if err := c.SetEndpointFlags(ch.req); err != nil {
					t.Fatalf("%s: SetEndpointFlags(%+v): %v", ch.name, ch.req, err)
				}
				want[ch.idx].Flags = ch.want
				checkEndpoints(t, h, c, want)
				if t.Failed() {
					t.Fatalf("after %s", ch.name)
				}
			}

			// Delete by id.
			if err := c.DelEndpoint(4); err != nil {
				t.Fatalf("DelEndpoint(4): %v", err)
			}
			want = append(want[:3], want[4:]...)
			checkEndpoints(t, h, c, want)
			if _, err := c.Endpoint(4); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Endpoint(4) after delete: got %v, want os.ErrNotExist", err)
			}

			// Id 0 plus an address concerns connections' initial address,
			// not endpoints: with no connection it succeeds and changes
			// nothing (TestDelEndpointAddrIDZero covers its effect).
			if err := c.DelEndpointAddr(link0); err != nil {
				t.Fatalf("DelEndpointAddr(%v): %v", link0, err)
			}
			checkEndpoints(t, h, c, want)

			// Flush removes everything and restarts id allocation.
			if err := c.FlushEndpoints(); err != nil {
				t.Fatalf("FlushEndpoints: %v", err)
			}
			checkEndpoints(t, h, c, nil)
			ev.waitListener(t, genl.EventListenerClosed, portListener)
			again := genl.Endpoint{Addr: fam.docAddr(9), Flags: genl.FlagSignal}
			if err := c.AddEndpoint(again); err != nil {
				t.Fatalf("AddEndpoint(%+v) after flush: %v", again, err)
			}
			again.ID = 1
			checkEndpoints(t, h, c, []genl.Endpoint{again})
		})
	}
}

// TestLimits reads and changes the limits, partially and fully, and checks
// them against `ip mptcp limits show`.
func TestLimits(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "limits")
	c := newClient(t, h)
	u32 := func(v uint32) *uint32 { return &v }
	steps := []struct {
		name string
		set  *genl.LimitsUpdate
		want genl.Limits
	}{
		{"defaults", nil, genl.Limits{AddAddrAccepted: 0, Subflows: 2}},
		{"subflows only", &genl.LimitsUpdate{Subflows: u32(5)}, genl.Limits{AddAddrAccepted: 0, Subflows: 5}},
		{"add_addr_accepted only", &genl.LimitsUpdate{AddAddrAccepted: u32(3)}, genl.Limits{AddAddrAccepted: 3, Subflows: 5}},
		{"nothing", &genl.LimitsUpdate{}, genl.Limits{AddAddrAccepted: 3, Subflows: 5}},
		{"both at the maximum", &genl.LimitsUpdate{AddAddrAccepted: u32(genl.MaxLimit), Subflows: u32(genl.MaxLimit)}, genl.Limits{AddAddrAccepted: 8, Subflows: 8}},
		{"both zero", &genl.LimitsUpdate{AddAddrAccepted: u32(0), Subflows: u32(0)}, genl.Limits{}},
		{"subflows back", &genl.LimitsUpdate{Subflows: u32(1)}, genl.Limits{AddAddrAccepted: 0, Subflows: 1}},
	}
	for _, st := range steps {
		if st.set != nil {
			if err := c.SetLimits(*st.set); err != nil {
				t.Fatalf("%s: SetLimits: %v", st.name, err)
			}
		}
		got, err := c.Limits()
		if err != nil {
			t.Fatalf("%s: Limits: %v", st.name, err)
		}
		if got != st.want {
			t.Errorf("%s: Limits = %+v, want %+v", st.name, got, st.want)
		}
		if ip := ipLimits(t, h); ip != got {
			t.Errorf("%s: Limits = %+v, `ip mptcp limits show` says %+v", st.name, got, ip)
		}
	}

	// Limits are per namespace and survive an endpoint flush.
	if err := c.AddEndpoint(genl.Endpoint{Addr: families[0].docAddr(1), Flags: genl.FlagSignal}); err != nil {
		t.Fatalf("AddEndpoint: %v", err)
	}
	if err := c.FlushEndpoints(); err != nil {
		t.Fatalf("FlushEndpoints: %v", err)
	}
	if got, err := c.Limits(); err != nil || got != (genl.Limits{Subflows: 1}) {
		t.Errorf("Limits after flush = %+v, %v; want {AddAddrAccepted:0 Subflows:1}", got, err)
	}
	other := newClient(t, netnstest.NewHost(t, "limits_other"))
	if got, err := other.Limits(); err != nil || got != (genl.Limits{Subflows: 2}) {
		t.Errorf("Limits of another namespace = %+v, %v; want the defaults", got, err)
	}
}
