package pm

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// fakeOwners answers owner lookups from a table, recording each in the
// fake kernel's calls ("owner TOKEN") behind the token's gate.
type fakeOwners struct {
	ns     *fakeNS
	owners map[uint32]policy.Owner
}

func (f *fakeOwners) Owner(token uint32) (policy.Owner, error) {
	if err := f.ns.record(token, fmt.Sprintf("owner %08x", token)); err != nil {
		return policy.Owner{}, err
	}
	o, ok := f.owners[token]
	if !ok {
		return policy.Owner{}, fmt.Errorf("no connection %08x: %w", token, os.ErrNotExist)
	}
	return o, nil
}

func withOwners(f *fakeOwners) harnessOpt { return func(c *Config) { c.Owners = f } }

// ownerRouter routes the connections of uid 1000 to fullmesh with the
// paths over ifindex 3 backup, and the others to fullmesh.
func ownerRouter(t *testing.T) *policy.Router {
	t.Helper()
	fm, err := fullmesh.New(joinAtOnce())
	if err != nil {
		t.Fatal(err)
	}
	r, err := policy.NewRouter(policy.Compose(fm),
		policy.Rule{Match: policy.Match{UID: new(uint32(1000))}, Policy: policy.Compose(fm, backupOn{ifindex: 3})})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUserspaceOwnerRules: with a rule by uid, every connection's owner
// is looked up as soon as it is created, its first plan waits for the
// answer, and the answer picks the chain; a connection whose owner
// cannot be read gets the default chain. Status shows owner and chain.
func TestUserspaceOwnerRules(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		owners := &fakeOwners{owners: map[uint32]policy.Owner{
			tok1: {UID: 1000, Cgroup: "/user.slice/user-1000.slice/session-2.scope"},
			tok2: {UID: 0, Cgroup: "/system.slice/backup.service"},
		}}
		h := newHarness(t, policy.ModeUserspace, withPolicy(ownerRouter(t)), withOwners(owners))
		owners.ns = h.ns
		h.setHost(addrA, addrB)
		h.start()
		h.ready()

		release := h.gate(tok1)
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.waitCall("owner 11111111")
		synctest.Wait()
		if calls := h.ns.Calls(); len(calls) != 1 {
			t.Errorf("calls while the owner lookup runs: %q, want the lookup alone", calls)
		}
		release()
		h.expect("owner 11111111", "create 11111111 198.51.100.1 -> 203.0.113.80:443 flags=backup if=3 id=255")

		h.open(tok2, "192.0.2.1:40001", srv1)
		h.expect("owner 22222222", "create 22222222 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.open(tok3, "192.0.2.1:40002", srv1)
		h.expect("owner 33333333", "create 33333333 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		// Later events do not look the owner up again.
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40003", srv1, ids(1, 0)))
		h.expect()

		st := h.settle()
		got := map[uint32]string{}
		for _, c := range st.Conns {
			got[c.Token] = c.Chain
			if c.Owner != nil {
				got[c.Token] += fmt.Sprintf(" uid %d %s", c.Owner.UID, c.Owner.Cgroup)
			}
		}
		want := map[uint32]string{
			tok1: "rules[0] uid 1000 /user.slice/user-1000.slice/session-2.scope",
			tok2: "default uid 0 /system.slice/backup.service",
			tok3: "default",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("chain and owner by connection (-want +got):\n%s", diff)
		}
		if n := st.Counters.Actions["owner_lookup"]; n != 3 {
			t.Errorf("%d owner lookups, want 3", n)
		}
	})
}

// TestUserspaceOwnerNotRead: without a rule by unit or uid no owner is
// looked up; a policy swap to rules by uid looks up the existing
// connections and plans them again, and the swap back keeps what was
// learnt.
func TestUserspaceOwnerNotRead(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		owners := &fakeOwners{owners: map[uint32]policy.Owner{tok1: {UID: 1000}}}
		h := newHarness(t, policy.ModeUserspace, withOwners(owners))
		owners.ns = h.ns
		h.setHost(addrA, addrB)
		h.start()
		h.ready()
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		h.events(event(genl.EventSubEstablished, tok1, "198.51.100.1:40001", srv1, ids(1, 0)))
		h.expect()
		if st := h.settle(); st.Conns[0].Owner != nil || st.Conns[0].Chain != "" {
			t.Errorf("owner %v, chain %q without rules; want none", st.Conns[0].Owner, st.Conns[0].Chain)
		}

		h.e.SetPolicy(ownerRouter(t))
		h.expect("owner 11111111", "backup 11111111 198.51.100.1:40001 -> 203.0.113.80:443 true")
		h.e.SetPolicy(defaultPolicy(t))
		h.expect("backup 11111111 198.51.100.1:40001 -> 203.0.113.80:443 false")
		h.e.SetPolicy(ownerRouter(t))
		h.expect("backup 11111111 198.51.100.1:40001 -> 203.0.113.80:443 true")
		if n := h.settle().Counters.Actions["owner_lookup"]; n != 1 {
			t.Errorf("%d owner lookups, want 1", n)
		}
	})
}

// TestOwnerWithoutLookup: a policy that reads owners without
// Config.Owners sees none, and the engine says so.
func TestOwnerWithoutLookup(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, policy.ModeUserspace, withPolicy(ownerRouter(t)))
		h.setHost(addrA, addrB)
		h.start()
		h.ready()
		h.open(tok1, "192.0.2.1:40000", srv1)
		h.expect("create 11111111 198.51.100.1 -> 203.0.113.80:443 flags= if=3 id=255")
		if !strings.Contains(h.logs.String(), "cannot look owners up") {
			t.Errorf("no warning in the log:\n%s", h.logs)
		}
	})
}
