//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/ownertest"
)

// TestRulesByOwner: rules by systemd unit and by user pick the chain of
// each connection from its socket's owner. Four programs, children of
// the test in cgroups of its own, open a connection each: as root in
// backup.service (the rule by unit), as root in browser.service (no
// rule), as nobody in browser.service (the rule by uid, written as a user
// name) and as uid 4242 in browser.service (no rule). The rules' chain
// makes the second link (eth1, named cellular) a backup path; the default
// chain uses it as a full path. Three more programs open a plain TCP
// socket under `mptcpctl run`, started as root and dropping to their uid,
// so that the supervisor (root) makes the MPTCP socket: its owner is
// still the program's, and the same rules apply. The kernel's subflows
// show which chain each connection got, and the daemon's status its
// owner and chain.
func TestRulesByOwner(t *testing.T) {
	t.Parallel()
	tb := netnstest.NewTestbed(t, 2)
	chain := `[[policy.rules.chain]]
name = "fullmesh"
config = { families = "ipv4" }
[[policy.rules.chain]]
name = "backup-cellular"
`
	r := daemontest.Run(t, tb.Client, `mode = "userspace"
set_path_manager = true

[control]
socket = ""

[links]
include_kinds = ["virtual", "cellular"]
cellular_names = ["eth1"]

[[policy.rules]]
unit = "backup.service"
`+chain+`
[[policy.rules]]
uid = "nobody"
`+chain+`
[[policy.chain]]
name = "fullmesh"
config = { families = "ipv4" }
`)
	acceptJoins(tb.Server)
	ln := tb.Server.Listen("tcp", ":0")
	go serve(ln)
	raddr := netip.AddrPortFrom(tb.Links[0].Server4, addrPort(ln).Port())

	cg := ownertest.NewCgroups(t)
	backup, browser := cg.New("backup.service"), cg.New("browser.service")
	top := "/" + filepath.Base(cg.Top())
	type want struct {
		Chain, Cgroup string
		UID           uint32
		Backup        bool // the subflow over eth1
	}
	children := []struct {
		owner ownertest.Owner
		want  want
	}{
		{ownertest.Owner{UID: 0, GID: 0, Cgroup: backup}, want{"rules[0]", top + "/backup.service", 0, true}},
		{ownertest.Owner{UID: 0, GID: 0, Cgroup: browser}, want{"default", top + "/browser.service", 0, false}},
		{ownertest.Owner{UID: 65534, GID: 65534, Cgroup: browser}, want{"rules[1]", top + "/browser.service", 65534, true}},
		{ownertest.Owner{UID: 4242, GID: 4242, Cgroup: browser}, want{"default", top + "/browser.service", 4242, false}},
		// Under mptcpctl run the supervisor, root, makes the socket of a
		// program that dropped to nobody: the socket is still nobody's.
		{ownertest.Owner{UID: 65534, GID: 65534, Cgroup: backup, Run: daemontest.Binary(t, "mptcpctl")}, want{"rules[0]", top + "/backup.service", 65534, true}},
		{ownertest.Owner{UID: 65534, GID: 65534, Cgroup: browser, Run: daemontest.Binary(t, "mptcpctl")}, want{"rules[1]", top + "/browser.service", 65534, true}},
		{ownertest.Owner{UID: 4242, GID: 4242, Cgroup: browser, Run: daemontest.Binary(t, "mptcpctl")}, want{"default", top + "/browser.service", 4242, false}},
	}
	wants := map[netip.AddrPort]want{}
	for _, c := range children {
		wants[ownertest.Dial(t, tb.Client, c.owner, raddr).Addr] = c.want
	}

	diag, err := sockdiag.Dial(&sockdiag.Config{NetNS: tb.Client.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer diag.Close()
	eth1 := tb.Links[1].Client4
	enginetest.Poll(t, "every connection on its chain, with its subflow over eth1", func() string {
		st, err := r.Conns(context.Background(), pmstate.ConnQuery{Limit: pmstate.MaxConnLimit})
		if err != nil {
			return err.Error()
		}
		backups := map[uint32][]bool{}
		if err := diag.Subflows(func(sf *sockdiag.Subflow) error {
			if sf.Local.Addr() == eth1 && sf.State == sockdiag.StateEstablished {
				backups[sf.Token] = append(backups[sf.Token], sf.Flags&sockdiag.SubflowBackupLocal != 0)
			}
			return nil
		}); err != nil {
			return err.Error()
		}
		got := map[netip.AddrPort]want{}
		for _, c := range st.Conns {
			if _, ok := wants[c.Local]; !ok {
				continue
			}
			w := want{Chain: c.Chain}
			if c.Owner != nil {
				w.Cgroup, w.UID = c.Owner.Cgroup, c.Owner.UID
			}
			if b := backups[c.Token]; len(b) == 1 {
				w.Backup = b[0]
			} else {
				w.Chain += fmt.Sprintf(" (%d subflows over eth1)", len(b))
			}
			got[c.Local] = w
		}
		if diff := cmp.Diff(wants, got); diff != "" {
			return "(-want +got)\n" + diff + describeConns(st.Conns)
		}
		return ""
	})
}

// describeConns lists connections with their paths, for a failure.
func describeConns(cs []pmstate.Conn) string {
	var s string
	for _, c := range cs {
		s += fmt.Sprintf("\n%s -> %s chain %q owner %+v:", c.Local, c.Remote, c.Chain, c.Owner)
		for _, p := range c.Paths {
			s += fmt.Sprintf(" [%s -> %s %s want backup %v]", p.Local, p.Remote, p.State, p.WantBackup)
		}
	}
	return s
}
