package pm

import (
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/policy"
)

var (
	server4 = netip.MustParseAddrPort("203.0.113.80:80")
	server6 = netip.MustParseAddrPort("[2001:db8:9::80]:80")
)

// kconn is a client-side connection opened from initial with subflows
// from the other addresses, all to the server of initial's family.
func kconn(token uint32, initial netip.Addr, subflows ...netip.Addr) ExistingConn {
	remote := server4
	if initial.Is6() {
		remote = server6
	}
	c := ExistingConn{Token: token, Side: policy.SideClient, Local: netip.AddrPortFrom(initial, 40000), Remote: remote}
	c.Subflows = append(c.Subflows, ExistingSubflow{Local: c.Local, Remote: remote})
	for i, a := range subflows {
		c.Subflows = append(c.Subflows, ExistingSubflow{Local: netip.AddrPortFrom(a, uint16(41000+i)), Remote: remote, Joined: true})
	}
	return c
}

func withRepair(after, every time.Duration, bo Backoff) harnessOpt {
	return func(c *Config) { c.RepairAfter, c.RepairEvery, c.Backoff = after, every, bo }
}

// startKernel runs a kernel-mode engine whose lister has conns, with
// endpoints 100 (A) and 101 (B) added, and returns it with the calls
// looked at.
func startKernel(t *testing.T, conns []ExistingConn, opts ...harnessOpt) *harness {
	t.Helper()
	h := newHarness(t, policy.ModeKernel, opts...)
	h.ns.limits = genl.Limits{Subflows: 8, AddAddrAccepted: 8}
	h.lister.set(conns...)
	h.start()
	h.setHost(addrA, addrB)
	h.ready()
	h.expect(
		"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
		"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
	)
	return h
}

// advance moves the clock on and waits for the engine to settle.
func (h *harness) advance(d time.Duration) engineStatus {
	h.t.Helper()
	h.clock.Advance(d)
	return h.settle()
}

var repairB = []string{
	"del_endpoint id=101",
	"add_endpoint id=101 198.51.100.1 flags=subflow,fullmesh if=3",
}

func TestRepairDecision(t *testing.T) {
	t.Parallel()
	server := kconn(7, addrA)
	server.Side = policy.SideServer
	fallback := kconn(8, addrA)
	fallback.Fallback = true
	fromB := kconn(9, addrB, addrA)
	fromB.Subflows = fromB.Subflows[1:] // the initial subflow closed
	var eight []netip.Addr
	for range 8 {
		eight = append(eight, addrA)
	}
	tests := []struct {
		name string
		// at are the connections when the endpoints are added, later
		// those at the first check.
		at, later []ExistingConn
		want      []string
	}{
		{
			name: "an older connection without the subflow",
			at:   []ExistingConn{kconn(1, addrA), kconn(2, addrA, addrB)},
			want: repairB,
		},
		{
			name: "a subflow from the address in any state counts",
			at:   []ExistingConn{kconn(1, addrA, addrB)},
		},
		{
			name:  "a connection newer than the add",
			later: []ExistingConn{kconn(1, addrA)},
		},
		{
			name: "another family",
			at:   []ExistingConn{kconn(1, addrD), kconn(2, addrD, addrA)},
		},
		{
			name: "opened from the endpoint's address",
			at:   []ExistingConn{fromB},
		},
		{
			name: "at the subflow limit",
			at:   []ExistingConn{kconn(1, addrA, eight...)},
		},
		{
			name: "server side and fallback",
			at:   []ExistingConn{server, fallback},
		},
		{
			name:  "a connection that left",
			at:    []ExistingConn{kconn(1, addrA)},
			later: []ExistingConn{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				h := startKernel(t, tt.at)
				if tt.later != nil {
					h.lister.set(tt.later...)
				}
				st := h.advance(DefaultRepairAfter)
				h.expect(tt.want...)
				if got, want := st.Counters.EndpointRepairs, uint64(len(tt.want)/2); got != want {
					t.Errorf("endpoint repairs = %d, want %d", got, want)
				}
				st = h.advance(DefaultRepairEvery)
				if len(tt.want) == 0 {
					h.expect()
				}
				if st.Counters.RepairsGivenUp != 0 {
					t.Errorf("given up = %d, want 0", st.Counters.RepairsGivenUp)
				}
			})
		})
	}
}

func TestRepairLogsEndpointAndConnections(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, []ExistingConn{kconn(1, addrA), kconn(2, addrA), kconn(3, addrA, addrB)})
		h.advance(time.Second)
		h.expect(repairB...)
		logs := h.logs.String()
		if !strings.Contains(logs, `msg="endpoint repaired`) || !strings.Contains(logs, "id=101 addr=198.51.100.1 connections=2") {
			t.Errorf("no repair log with the endpoint and 2 connections:\n%s", logs)
		}
	})
}

func TestRepairGivesUpAfterThree(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, []ExistingConn{kconn(1, addrA), kconn(2, addrA, addrB)})
		for i := range repairTries {
			st := h.advance(time.Second)
			h.expect(repairB...)
			if got := st.Counters.EndpointRepairs; got != uint64(i+1) {
				t.Fatalf("after check %d: repairs = %d, want %d", i+1, got, i+1)
			}
		}
		st := h.advance(time.Second)
		h.expect()
		if st.Counters.RepairsGivenUp != 1 {
			t.Errorf("given up = %d, want 1", st.Counters.RepairsGivenUp)
		}
		st = h.advance(DefaultRepairEvery)
		h.expect()
		if st.Counters.EndpointRepairs != repairTries || st.Counters.RepairsGivenUp != 1 {
			t.Errorf("later: repairs %d, given up %d; want %d and 1", st.Counters.EndpointRepairs,
				st.Counters.RepairsGivenUp, repairTries)
		}
		// A connection that lost its subflow gets repairs of its own; the
		// given-up one is not counted, after the replacements either.
		h.lister.set(kconn(1, addrA), kconn(2, addrA))
		for range 2 {
			h.advance(DefaultRepairEvery)
			h.expect(repairB...)
			if logs := h.logs.String(); strings.Contains(logs[strings.LastIndex(logs, "endpoint repaired"):], "connections=2") {
				t.Errorf("the given-up connection was counted again:\n%s", logs)
			}
		}
	})
}

func TestRepairBacksOff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, []ExistingConn{kconn(1, addrA)}, withRepair(time.Second, -1, Backoff{Initial: 10 * time.Second, Max: time.Minute}))
		h.advance(time.Second) // t=1s: first repair, the next waits until 11s
		h.expect(repairB...)
		h.advance(time.Second) // t=2s: due, in backoff
		h.expect()
		h.advance(8 * time.Second) // t=10s
		h.expect()
		h.advance(time.Second) // t=11s: second repair, the next waits 20s
		h.expect(repairB...)
		h.advance(10 * time.Second)
		h.expect()
		h.advance(10 * time.Second)
		h.expect(repairB...)
	})
}

func TestRepairBackoffResetsWhenServed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, []ExistingConn{kconn(1, addrA)}, withRepair(time.Second, 5*time.Second, Backoff{Initial: 10 * time.Second, Max: time.Minute}))
		h.advance(time.Second)
		h.expect(repairB...)
		h.lister.set(kconn(1, addrA, addrB))
		h.advance(time.Second) // served: the backoff is over
		h.expect()
		h.lister.set(kconn(1, addrA))
		h.advance(5 * time.Second) // lost again: repaired at once
		h.expect(repairB...)
	})
}

func TestRepairAfterSubflowClosedWithError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, []ExistingConn{kconn(1, addrA, addrB)}, withRepair(time.Second, -1, Backoff{}))
		h.advance(time.Second)
		h.expect()
		h.lister.set(kconn(1, addrA))
		h.advance(time.Hour) // no periodic check
		h.expect()
		sub := genl.Event{Type: genl.EventSubClosed, Token: 1, Local: netip.AddrPortFrom(addrB, 41000), Remote: server4}
		h.events(sub) // closed without an error: no check
		h.advance(time.Second)
		h.expect()
		sub.Error = uint8(110) // ETIMEDOUT
		h.events(sub)
		h.settle()
		h.advance(time.Second)
		h.expect(repairB...)
	})
}

func TestRepairOnlyUsableOwnedEndpoints(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, []ExistingConn{kconn(1, addrC)})
		// B becomes unusable: the engine deletes it and forgets its record.
		h.setHost(addrA)
		h.expect("del_endpoint id=101")
		st := h.advance(time.Second)
		h.expect(
			"del_endpoint id=100",
			"add_endpoint id=100 192.0.2.1 flags=subflow,fullmesh if=2",
		)
		if st.Counters.EndpointRepairs != 1 {
			t.Errorf("repairs = %d, want 1", st.Counters.EndpointRepairs)
		}
	})
}

func TestRepairOff(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, []ExistingConn{kconn(1, addrA)}, withRepair(-1, 0, Backoff{}))
		h.advance(time.Second)
		h.advance(DefaultRepairEvery)
		h.expect()
		if n := h.lister.count(); n != 0 {
			t.Errorf("listings = %d with the repair off, want 0", n)
		}
	})
}

func TestRepairKeepsTheID(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, []ExistingConn{kconn(1, addrC)})
		h.setHost(addrB) // id 100 goes free
		h.expect("del_endpoint id=100")
		failed := false
		h.ns.mu.Lock()
		h.ns.fail = func(call string) error {
			if strings.HasPrefix(call, "add_endpoint id=101") && !failed {
				failed = true
				return kerr("add endpoint", unix.ENOMEM, "")
			}
			return nil
		}
		h.ns.mu.Unlock()
		h.advance(time.Second)
		h.expect(repairB...) // the add failed
		h.advance(DefaultBackoff.Initial)
		h.expect(repairB[1])
	})
}

// BenchmarkRepairCheck measures one check of an endpoint against 100,000
// connections, all older than its add and served but one.
func BenchmarkRepairCheck(b *testing.B) {
	ns := newFakeNS()
	e, err := New(Config{Mode: policy.ModeKernel, Policy: defaultPolicy(b), NewKernel: ns.kernel, Conns: &fakeLister{}})
	if err != nil {
		b.Fatal(err)
	}
	ep := genl.Endpoint{ID: 101, Addr: addrB, Flags: subflowFullmesh, IfIndex: 3}
	e.kernelMode.actual = []genl.Endpoint{ep}
	e.kernelMode.limits = genl.Limits{Subflows: 8}
	e.usable = map[netip.Addr]bool{addrB: true}
	conns := make([]ExistingConn, 100_000)
	for i := range conns {
		conns[i] = kconn(uint32(i+1), addrA, addrB)
	}
	conns[0] = kconn(1, addrA)
	r := &repairEP{id: ep.ID}
	e.kernelMode.repair.endpoints[epKey(ep)] = r
	b.ReportAllocs()
	for b.Loop() {
		r.base, r.haveBase, r.pending, r.backoff = make([]uint32, 0, len(conns)), true, false, retry{}
		for i := range conns {
			r.base = append(r.base, conns[i].Token)
		}
		e.repairCheck(epKey(ep), r, conns, e.now())
		if !r.pending || len(r.missing) != 1 {
			b.Fatalf("pending %v, missing %v", r.pending, r.missing)
		}
	}
}

func TestRepairNewerConnectionThatHadItsSubflow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := startKernel(t, nil, withRepair(time.Second, 5*time.Second, Backoff{}))
		// Connection 1 came after the add and got its subflow from B;
		// connection 2 came after and never had one (its peer refused).
		h.lister.set(kconn(1, addrA, addrB), kconn(2, addrA))
		h.advance(time.Second)
		h.expect()
		h.lister.set(kconn(1, addrA), kconn(2, addrA))
		h.advance(5 * time.Second)
		h.expect(repairB...)
		if logs := h.logs.String(); !strings.Contains(logs, "connections=1 ") {
			t.Errorf("repair not for the one connection that had its subflow:\n%s", logs)
		}
	})
}
