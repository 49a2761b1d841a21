package pm

import (
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/policy"
)

// setHostPresent gives the engine the test host with only the addresses
// present, all usable: the others are gone from the host.
func (h *harness) setHostPresent(present ...policy.LocalAddr) {
	links := []policy.Link{
		{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true},
		{Name: "eth1", Index: 3, Kind: policy.LinkWired, Up: true, Usable: true},
		{Name: "eth2", Index: 4, Kind: policy.LinkCellular, Up: true, Usable: true},
	}
	var addrs []policy.LocalAddr
	for _, a := range present {
		a.Usable = true
		addrs = append(addrs, a)
	}
	h.e.SetHost(links, addrs)
}

// TestUserspaceAddressGone: when a local address goes away, the engine
// withdraws its id with REMOVE before it destroys the subflows from it:
// the subflows' FIN cannot leave from a gone address, and after
// SUBFLOW_DESTROY the kernel no longer knows the id, so only REMOVE first
// makes the peer (which sends nothing back to the gone address) close
// its ends. "Not found" counts as done; another error backs off and
// retries. A policy that drops a path from a usable address still only
// destroys it, and the initial address's id 0 is never removed.
func TestUserspaceAddressGone(t *testing.T) {
	t.Parallel()
	const (
		joined  = "198.51.100.1:40001 -> 203.0.113.80:443"
		initial = "192.0.2.1:40000 -> 203.0.113.80:443"
	)
	fm := defaultPolicy(t)
	tests := []struct {
		name string
		// change applies the change under test.
		change func(h *harness)
		// fail is the kernel's error for the first REMOVE.
		fail error
		want []string
		// closed are the local ends of the subflows that close then.
		closed []string
		// retry is what the engine sends after the backoff's first step.
		retry []string
	}{
		{
			name:   "address gone",
			change: func(h *harness) { h.setHostPresent(hostAddrs[0]) },
			want:   []string{"remove 11111111 id=255", "destroy 11111111 " + joined},
			closed: []string{"198.51.100.1:40001"},
		},
		{
			name:   "address gone, id not found",
			change: func(h *harness) { h.setHostPresent(hostAddrs[0]) },
			fail:   kerr("remove", unix.EINVAL, "address with id 255 not found"),
			want:   []string{"remove 11111111 id=255", "destroy 11111111 " + joined},
			closed: []string{"198.51.100.1:40001"},
		},
		{
			name:   "address gone, remove fails",
			change: func(h *harness) { h.setHostPresent(hostAddrs[0]) },
			fail:   kerr("remove", unix.ENOMEM, ""),
			want:   []string{"remove 11111111 id=255", "destroy 11111111 " + joined},
			closed: []string{"198.51.100.1:40001"},
			retry:  []string{"remove 11111111 id=255"},
		},
		{
			name:   "address unusable",
			change: func(h *harness) { h.setHost(addrA) },
			want:   []string{"remove 11111111 id=255", "destroy 11111111 " + joined},
			closed: []string{"198.51.100.1:40001"},
		},
		{
			name:   "policy drops a usable address",
			change: func(h *harness) { h.e.SetPolicy(policy.Compose(fm, onlyFrom{addrA})) },
			want:   []string{"destroy 11111111 " + joined},
			closed: []string{"198.51.100.1:40001"},
		},
		{
			// fullmesh keeps a live initial path whose address the view
			// does not list; a policy that drops it gets it destroyed.
			name: "initial address gone",
			change: func(h *harness) {
				h.setHostPresent(hostAddrs[1])
				// The host change first: the loop takes inputs that
				// wait together in any order, and a policy swap
				// applied while the address is still usable demotes
				// the subflow instead.
				h.settle()
				h.e.SetPolicy(policy.Compose(fm, onlyFrom{addrB}))
			},
			want:   []string{"destroy 11111111 " + initial},
			closed: []string{"192.0.2.1:40000"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				h := newUserspace(t)
				h.open(tok1, "192.0.2.1:40000", srv1)
				h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
				h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(255, 0)))
				h.expect()
				if tt.fail != nil {
					h.ns.mu.Lock()
					failed := false
					h.ns.fail = func(call string) error {
						if !failed && call == "remove 11111111 id=255" {
							failed = true
							return tt.fail
						}
						return nil
					}
					h.ns.mu.Unlock()
				}
				tt.change(h)
				h.expect(tt.want...)
				for _, local := range tt.closed {
					h.events(event(genl.EventSubClosed, tok1, local, srv1))
				}
				h.expect()
				// Less than the sweep's period: a sweep would forget the
				// connection, which the fake lister does not list, maybe
				// before the retry reaches a worker.
				h.clock.Advance(time.Second)
				h.expect(tt.retry...)
				h.clock.Advance(time.Hour)
				h.expect()
			})
		})
	}
}
