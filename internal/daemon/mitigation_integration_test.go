//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/internal/testing/daemontest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// TestMitigation: [mitigation] checksums = "on" sets the sysctl in the
// daemon's namespace, and the status reports it with the floor (userspace
// mode) or says joins cannot be deferred (kernel mode), beside the
// kernel's mapping errors; in kernel mode a deferral option of the
// policy is warned about at start. A connection to a server that does
// not ask for checksums uses them all the same: either end's request is
// enough.
func TestMitigation(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"userspace", "kernel"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			tb := netnstest.NewTestbed(t, 2)
			acceptJoins(tb.Server)
			sock := filepath.Join(t.TempDir(), "ctl.sock")
			conf := fmt.Sprintf("mode = %q\nset_path_manager = true\n\n[control]\nsocket = %q\ngroup = \"\"\n\n"+
				"[links]\ninclude_kinds = [\"virtual\"]\n\n[mitigation]\nchecksums = \"on\"\n\n"+
				"[[policy.chain]]\nname = \"fullmesh\"\nconfig = { join_delay = \"100ms\" }\n", mode, sock)
			d := daemontest.Start(t, tb.Client, conf)
			d.WaitLog(t, `msg="mptcpgod ready"`, 1)
			if got := strings.TrimSpace(tb.Client.MustExec("sysctl", "-n", "net.mptcp.checksum_enabled")); got != "1" {
				t.Errorf("net.mptcp.checksum_enabled = %s, want 1", got)
			}
			st, err := (&ctlapi.Client{Socket: sock}).Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			m := st.Mitigation
			want := ctlapi.Mitigation{Checksums: true, ChecksumsConfig: "on", CanDefer: mode == "userspace"}
			if mode == "userspace" {
				want.MinJoinAge = daemon.DefaultMinJoinAge
			}
			if m.Checksums != want.Checksums || m.ChecksumsConfig != want.ChecksumsConfig || m.CanDefer != want.CanDefer ||
				m.MinJoinAge != want.MinJoinAge || m.Checked.IsZero() || m.Error != "" {
				t.Errorf("mitigation %+v, want %+v, read", m, want)
			}
			if _, ok := m.MappingErrors["DSSNotMatching"]; !ok {
				t.Errorf("mapping errors %v lack DSSNotMatching", m.MappingErrors)
			}
			warned := strings.Contains(d.Log(), `msg="policy option has no effect in kernel mode`) &&
				strings.Contains(d.Log(), "option=join_delay")
			if warned != (mode == "kernel") {
				t.Errorf("join_delay warned about: %v, want %v in mode %s", warned, mode == "kernel", mode)
			}

			ln := tb.Server.Listen("tcp", ":0")
			go serve(ln)
			local := dial(t, tb.Client, netip.AddrPortFrom(tb.Links[0].Server4, addrPort(ln).Port()))
			for _, h := range []*netnstest.Host{tb.Client, tb.Server} {
				if !csumEnabled(t, h, local) {
					t.Errorf("the connection of %s does not use checksums on %s", local, h.Name())
				}
			}
		})
	}
}

// csumEnabled reports whether h's end of the connection whose client end
// is client uses DSS checksums (mptcp_info's csum_enabled).
func csumEnabled(t *testing.T, h *netnstest.Host, client netip.AddrPort) bool {
	t.Helper()
	c, err := sockdiag.Dial(&sockdiag.Config{NetNS: h.NetNS()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var on bool
	enginetest.Poll(t, fmt.Sprintf("the connection of %s on %s", client, h.Name()), func() string {
		found := false
		err := c.Connections(func(cn *sockdiag.Connection) error {
			if cn.Local == client || cn.Remote == client {
				on, found = cn.Info.CsumEnabled, true
			}
			return nil
		})
		switch {
		case err != nil:
			return err.Error()
		case !found:
			return "not listed"
		}
		return ""
	})
	return on
}
