package main

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
)

// This file holds the commands that drive the userspace path manager by
// hand, one connection at a time, as the kernel's test tool pm_nl_ctl
// does: announce and withdraw addresses, create, destroy and prioritise
// subflows. They need CAP_NET_ADMIN and a connection whose path manager is
// the userspace one (net.mptcp.path_manager = userspace when it was
// created).

// userspaceNote ends the help of every command here.
const userspaceNote = `
The connection must be run by the userspace path manager (PM userspace in
mptcpctl connections); the kernel answers "userspace PM not selected"
otherwise. A daemon that manages the connection (mptcpgod in userspace mode)
may undo the change at its next decision. Needs CAP_NET_ADMIN.`

func (a *app) connectionsAnnounceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "announce TOKEN ADDR id N [port P] [dev IFNAME]",
		Short: "Announce a local address to a connection's peer (ADD_ADDR)",
		Long: `Announce the local address ADDR to the peer of the connection TOKEN (ADD_ADDR),
under the address id N (1..255), which the peer uses to withdraw it later.

    id N        the address's id on this connection, 1..255 (required)
    port P      the port to announce, 1..65535; nothing listens on it unless
                a program does (the kernel creates no listener here)
    dev IFNAME  the interface of the address

The peer may then open subflows to ADDR. With --json, the connection's local
addresses after the change are printed, as the kernel lists them.` + userspaceNote,
		Example: "  mptcpctl connections announce 3f97be70 198.51.100.1 id 5\n" +
			"  mptcpctl -n ns1 connections announce 3f97be70 2001:db8::1 id 6 port 8443",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.connectionsAnnounce(args)
		},
		ValidArgsFunction: a.completeToken,
	}
}

func (a *app) connectionsRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove TOKEN id N",
		Short: "Withdraw an announced address from a connection's peer (RM_ADDR)",
		Long: `Withdraw the local address with id N from the connection TOKEN: the peer is
told (RM_ADDR) and the subflows over it close. Id 0 is the address of the
initial subflow (Linux 6.7). With --json, the connection's local addresses
after the change are printed.` + userspaceNote,
		Example:           "  mptcpctl connections remove 3f97be70 id 5",
		RunE:              func(cmd *cobra.Command, args []string) error { return a.connectionsRemove(args) },
		ValidArgsFunction: a.completeToken,
	}
}

func (a *app) subflowsCreateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "create TOKEN LOCAL REMOTE:PORT [id N] [dev IFNAME] [backup]",
		Short: "Open a subflow of a connection (MP_JOIN)",
		Long: `Open a subflow of the connection TOKEN from the local address LOCAL to the
peer's address and port REMOTE:PORT ([ADDR]:PORT for IPv6). The kernel picks
the local port. Success means the join was sent: mptcpctl subflows TOKEN
shows the subflow once the peer accepted it, mptcpctl monitor the outcome.
A peer whose path manager is the userspace one accepts joins only while a
program there follows its path-manager events (its daemon, or mptcpctl
monitor); it refuses them otherwise.

    id N        the local address's id on this connection, 0..255 (0: the
                initial subflow's address); by default the id the connection
                knows the address by (announced, or used by a subflow), else
                one the kernel picks; before Linux 6.9 the kernel cannot list
                those ids: give the id of an announced address
    dev IFNAME  bind the subflow to the interface (Linux 6.9)
    backup      the subflow is a backup (MP_PRIO; Linux 6.9: on older
                kernels, use subflows backup once it is established)

With --json, the connection's subflows after the command are printed.` + userspaceNote,
		Example: "  mptcpctl subflows create 3f97be70 198.51.100.1 203.0.113.1:443\n" +
			"  mptcpctl subflows create 3f97be70 2001:db8:2::1 [2001:db8::1]:443 dev eth1 backup",
		RunE:              func(cmd *cobra.Command, args []string) error { return a.subflowsChange("create", args) },
		ValidArgsFunction: a.completeToken,
	}
}

func (a *app) subflowsDestroyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "destroy TOKEN LOCAL:PORT REMOTE:PORT",
		Short: "Close a subflow of a connection",
		Long: `Close the subflow LOCAL:PORT → REMOTE:PORT of the connection TOKEN. Both ports are
needed, as mptcpctl subflows TOKEN shows them: the kernel finds the subflow by
them. With --json, the connection's subflows after the command are printed.` + userspaceNote,
		Example:           "  mptcpctl subflows destroy 3f97be70 198.51.100.1:41234 203.0.113.1:443",
		RunE:              func(cmd *cobra.Command, args []string) error { return a.subflowsChange("destroy", args) },
		ValidArgsFunction: a.completeToken,
	}
}

func (a *app) subflowsBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup TOKEN LOCAL[:PORT] REMOTE[:PORT] on|off",
		Short: "Make a subflow of a connection backup, or not (MP_PRIO)",
		Long: `Set (on) or clear (off) the backup priority of the subflow LOCAL → REMOTE of the
connection TOKEN; the peer is told (MP_PRIO). Without ports, the subflow between
the two addresses is meant. With --json, the connection's subflows after the
command are printed.` + userspaceNote,
		Example:           "  mptcpctl subflows backup 3f97be70 198.51.100.1 203.0.113.1:443 on",
		RunE:              func(cmd *cobra.Command, args []string) error { return a.subflowsChange("backup", args) },
		ValidArgsFunction: a.completeToken,
	}
}

// knownID returns the id of addr in the connection's local address list,
// or 0 (the kernel then gives it one) when it is not there or the list
// cannot be read (before Linux 6.9).
func knownID(gc *genl.Client, token uint32, addr netip.Addr) uint8 {
	eps, err := gc.ConnectionAddrs(token)
	if err != nil {
		return 0
	}
	for _, e := range eps {
		if e.Addr.Unmap() == addr.Unmap() {
			return e.ID
		}
	}
	return 0
}

// connectionsAnnounce implements connections announce.
func (a *app) connectionsAnnounce(args []string) error {
	req, err := parseAnnounce(args)
	if err != nil {
		return err
	}
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := a.canListAddrs(gc); err != nil {
		return err
	}
	if req.Endpoint.IfIndex, err = resolveDev(s, req.Dev); err != nil {
		return err
	}
	if err := gc.Announce(req.Token, req.Endpoint); err != nil {
		return kernelError(fmt.Sprintf("connection %s: announce %s", formatToken(req.Token), req.Endpoint.Addr), err)
	}
	return a.afterConnChange(s, gc, req.Token)
}

// connectionsRemove implements connections remove.
func (a *app) connectionsRemove(args []string) error {
	token, id, err := parseRemove(args)
	if err != nil {
		return err
	}
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := a.canListAddrs(gc); err != nil {
		return err
	}
	if err := gc.Remove(token, id); err != nil {
		return kernelError(fmt.Sprintf("connection %s: remove id %d", formatToken(token), id), err)
	}
	return a.afterConnChange(s, gc, token)
}

// canListAddrs refuses, before anything is changed, an announce or a
// remove with --json on a kernel that cannot list a connection's local
// addresses (before Linux 6.9): the change would be made and its output
// not printed.
func (a *app) canListAddrs(gc *genl.Client) error {
	if k := gc.Kernel(); a.json && !k.Has(genl.CapConnAddrDump) {
		return &refusedError{msg: fmt.Sprintf("--json prints the connection's local addresses, which the kernel lists since Linux %s (this is %s): nothing was changed; run it without --json",
			genl.CapConnAddrDump.Since, k.Release)}
	}
	return nil
}

// afterConnChange prints, with --json, the connection's local address
// list after a change.
func (a *app) afterConnChange(s *session, gc *genl.Client, token uint32) error {
	if !a.json {
		return nil
	}
	eps, err := gc.ConnectionAddrs(token)
	if err != nil {
		return kernelError(fmt.Sprintf("connection %s: local addresses", formatToken(token)), err)
	}
	names, err := a.ifaceNames(s, eps)
	if err != nil {
		return err
	}
	out := make([]endpointOut, 0, len(eps))
	for _, e := range eps {
		out = append(out, toEndpointOut(e, names))
	}
	return writeJSON(a.stdout, out)
}

// subflowsChange implements subflows create, destroy and backup.
func (a *app) subflowsChange(op string, args []string) error {
	req, err := parseSubflow(op, args)
	if err != nil {
		return err
	}
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	local := req.Local.Addr.String()
	switch op {
	case "create":
		if k := gc.Kernel(); (req.Dev != "" || req.Local.Flags&genl.FlagBackup != 0) && !k.Has(genl.CapSubflowFlags) {
			// The kernel would ignore both and create an unbound,
			// regular subflow.
			return &refusedError{msg: fmt.Sprintf("dev and backup of a created subflow need Linux %s (this is %s), which would ignore them: nothing was changed; create it without them, then use subflows backup once it is established",
				genl.CapSubflowFlags.Since, k.Release)}
		}
		if req.Local.IfIndex, err = resolveDev(s, req.Dev); err != nil {
			return err
		}
		if !req.IDSet {
			// The kernel wants the id the connection knows the address
			// by ("did not match address and id").
			req.Local.ID = knownID(gc, req.Token, req.Local.Addr)
		}
		err = gc.CreateSubflow(req.Token, req.Local, req.Remote)
	case "destroy":
		local = req.localPort().String()
		err = gc.DestroySubflow(req.Token, req.localPort(), req.Remote)
	case "backup":
		err = gc.SetSubflowBackup(req.Token, req.localPort(), req.Remote, req.Backup)
	}
	if err != nil {
		what := fmt.Sprintf("connection %s: %s subflow %s → %s", formatToken(req.Token), op, local, req.Remote)
		k := gc.Kernel()
		if reason := unexplained(op, err, k.Release); reason != "" {
			return &refusedError{msg: what + ": " + reason, err: err}
		}
		if op == "create" && !req.IDSet && errors.Is(err, genl.ErrAddrIDMismatch) && !k.Has(genl.CapConnAddrDump) {
			return &refusedError{msg: fmt.Sprintf("%s: did not match address and id: the connection knows %s by an id that Linux %s cannot list (it can since %s): give it with id N",
				what, local, k.Release, genl.CapConnAddrDump.Since), err: err}
		}
		return kernelError(what, err)
	}
	if !a.json {
		return nil
	}
	return a.subflows([]string{formatToken(req.Token)})
}

// unexplained says what a refusal of subflows destroy or backup means
// when the kernel gave no text, as kernels before Linux 6.15 do: an
// unknown subflow is ESRCH (destroy) or EINVAL (backup), and before 6.9
// EINVAL from a backup change may also mean a connection of the in-kernel
// path manager. It returns "" for every other error.
func unexplained(op string, err error, release string) string {
	var ge *genl.Error
	if !errors.As(err, &ge) || ge.Message != "" {
		return ""
	}
	switch {
	case op == "destroy" && errors.Is(err, unix.ESRCH):
		return "subflow not found"
	case op == "backup" && errors.Is(err, unix.EINVAL) && kernelAtLeast(release, 6, 9):
		return "subflow not found"
	case op == "backup" && errors.Is(err, unix.EINVAL):
		return fmt.Sprintf("subflow not found, or the connection is not run by the userspace path manager (Linux %s does not say which)", release)
	}
	return ""
}
