package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

func (a *app) connectionsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "connections",
		Aliases: []string{"conns"},
		Short:   "List the MPTCP connections, one row per connection",
		Long: `List the namespace's MPTCP connections (from sock_diag, like ss -M), one row
per connection:

    TOKEN     the connection's local token (8 hex digits, as ss and ip mptcp
              monitor print it)
    LOCAL     local address:port
    REMOTE    remote address:port
    STATE     TCP state of the MPTCP socket
    SUBFLOWS  how many subflows it has, the initial one included
    FALLBACK  yes if it fell back to plain TCP
    SENT      bytes sent, RECEIVED bytes received (MPTCP level)
    PM        the path manager in charge of it: kernel or userspace (unknown
              before Linux 6.9)

No privilege is needed.`,
		Example: "  mptcpctl connections\n  mptcpctl -n ns1 connections --json",
		Args:    subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.connections()
		},
	}
	c.AddCommand(a.connectionsAnnounceCmd(), a.connectionsRemoveCmd())
	return c
}

func (a *app) subflowsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "subflows [TOKEN]",
		Short: "List the subflows, grouped under their connection",
		Long: `List the subflows of every MPTCP connection, or of the one with token TOKEN,
grouped under their connection. Each connection is a heading line (token,
local → remote, path manager, subflow count) followed by its subflows:

    LOCAL → REMOTE  the subflow's addresses and ports
    DEV             the interface it is bound to, else the one holding its
                    local address
    IDS             local/remote address id (0: the initial subflow's addresses)
    BACKUP          yes if either side asked for backup priority
    STATE           TCP state
    RTT             smoothed round-trip time
    SENT, ACKED, RECEIVED  bytes (TCP level)
    FLAGS           as ss -ti prints them: M/m MP_CAPABLE sent by the remote/
                    local side, J/j MP_JOIN remote/local, B/b backup asked by
                    the remote/local side, e fully established, c connected,
                    v valid mapping

No privilege is needed.`,
		Example: "  mptcpctl subflows\n  mptcpctl subflows 3f97be70 --json",
		Args:    maxArgs(1, "a connection token"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.subflows(args)
		},
		ValidArgsFunction: a.completeToken,
	}
	c.AddCommand(a.subflowsCreateCmd(), a.subflowsDestroyCmd(), a.subflowsBackupCmd())
	return c
}

// connections implements the connections command.
func (a *app) connections() error {
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	conns, err := a.dumpConnections(s)
	if err != nil {
		return err
	}
	gc := s.genlOrNil()
	out := make([]connectionOut, 0, len(conns))
	for _, c := range conns {
		out = append(out, connectionOut{
			Token:         formatToken(c.Token),
			Local:         c.Local.String(),
			Remote:        c.Remote.String(),
			State:         stateName(c.State),
			Subflows:      c.Info.Subflows(),
			Fallback:      c.Info.Flags&sockdiag.InfoFallback != 0,
			BytesSent:     c.Info.BytesSent,
			BytesReceived: c.Info.BytesReceived,
			PathManager:   connectionPM(gc, c.Token),
		})
	}
	if a.json {
		return writeJSON(a.stdout, out)
	}
	return writeConnections(a.stdout, out)
}

// dumpConnections returns the namespace's MPTCP connections, sorted by
// local then remote address.
func (a *app) dumpConnections(s *session) ([]*sockdiag.Connection, error) {
	sd, err := s.diag()
	if err != nil {
		return nil, err
	}
	var conns []*sockdiag.Connection
	if err := sd.Connections(func(c *sockdiag.Connection) error {
		conns = append(conns, c)
		return nil
	}); err != nil {
		return nil, kernelError("", err)
	}
	slices.SortFunc(conns, func(x, y *sockdiag.Connection) int {
		return cmp.Or(x.Local.Compare(y.Local), x.Remote.Compare(y.Remote), cmp.Compare(x.Token, y.Token))
	})
	return conns, nil
}

// genlOrNil returns the path-manager client for probing connections, or
// nil when the probe cannot work: the kernel has no mptcp_pm family, or is
// older than 6.9 and ignores the token of a per-connection address dump
// (it would answer with the endpoint list, as if every connection were a
// userspace-PM one). Listing connections does not need the client.
func (s *session) genlOrNil() *genl.Client {
	if !kernelAtLeast(unameRelease(), 6, 9) {
		return nil
	}
	gc, err := s.genl()
	if err != nil {
		return nil
	}
	return gc
}

// unameRelease returns the running kernel's release, such as "6.18.4".
func unameRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast reports whether the kernel release is major.minor or newer.
func kernelAtLeast(release string, major, minor int) bool {
	var maj, mnr int
	if _, err := fmt.Sscanf(release, "%d.%d", &maj, &mnr); err != nil {
		return false
	}
	return maj > major || maj == major && mnr >= minor
}

// connectionPM probes which path manager runs the connection token: the
// kernel answers a per-connection address dump (Linux 6.9+) only for
// userspace-PM connections, and "userspace PM not selected" otherwise.
func connectionPM(gc *genl.Client, token uint32) string {
	if gc == nil {
		return "unknown"
	}
	_, err := gc.ConnectionAddrs(token)
	if err == nil {
		return string(genl.PathManagerUserspace)
	}
	if errors.Is(err, genl.ErrNotUserspacePM) {
		return string(genl.PathManagerKernel)
	}
	return "unknown"
}

// subflows implements subflows [TOKEN].
func (a *app) subflows(args []string) error {
	var token uint32
	filter := len(args) == 1
	if filter {
		t, err := parseToken(args[0])
		if err != nil {
			return err
		}
		token = t
	}
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	var conns []*sockdiag.Connection
	if filter {
		sd, err := s.diag()
		if err != nil {
			return err
		}
		c, err := sd.Connection(token)
		if errors.Is(err, os.ErrNotExist) {
			return &refusedError{msg: fmt.Sprintf("no MPTCP connection with token %s", formatToken(token)), err: err}
		}
		if err != nil {
			return kernelError("connection "+formatToken(token), err)
		}
		conns = []*sockdiag.Connection{c}
	} else if conns, err = a.dumpConnections(s); err != nil {
		return err
	}
	byToken := map[uint32][]*sockdiag.Subflow{}
	sd, err := s.diag()
	if err != nil {
		return err
	}
	if err := sd.Subflows(func(sf *sockdiag.Subflow) error {
		if !filter || sf.Token == token {
			byToken[sf.Token] = append(byToken[sf.Token], sf)
		}
		return nil
	}); err != nil {
		return kernelError("", err)
	}
	var names *ifaces
	if len(byToken) > 0 {
		if names, err = s.ifaces(); err != nil {
			return err
		}
	}
	gc := s.genlOrNil()
	groups := make([]subflowGroupOut, 0, len(conns))
	for _, c := range conns {
		g := subflowGroupOut{
			Token:       formatToken(c.Token),
			Local:       c.Local.String(),
			Remote:      c.Remote.String(),
			PathManager: connectionPM(gc, c.Token),
			Subflows:    toSubflowsOut(byToken[c.Token], names),
		}
		delete(byToken, c.Token)
		groups = append(groups, g)
	}
	// Subflows of connections that closed between the two dumps, or whose
	// connection the dump did not show, still get a group.
	orphans := make([]uint32, 0, len(byToken))
	for t := range byToken {
		orphans = append(orphans, t)
	}
	slices.Sort(orphans)
	for _, t := range orphans {
		groups = append(groups, subflowGroupOut{
			Token:       formatToken(t),
			PathManager: connectionPM(gc, t),
			Subflows:    toSubflowsOut(byToken[t], names),
		})
	}
	if a.json {
		return writeJSON(a.stdout, groups)
	}
	return writeSubflows(a.stdout, groups)
}

// toSubflowsOut converts a connection's subflows, the initial subflow first,
// then by local id and addresses.
func toSubflowsOut(sfs []*sockdiag.Subflow, names *ifaces) []subflowOut {
	slices.SortFunc(sfs, func(x, y *sockdiag.Subflow) int {
		xj, yj := x.Flags&joinFlags != 0, y.Flags&joinFlags != 0
		if xj != yj {
			if xj {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(x.LocalID, y.LocalID), x.Local.Compare(y.Local), x.Remote.Compare(y.Remote))
	})
	out := make([]subflowOut, 0, len(sfs))
	for _, sf := range sfs {
		idx := int32(sf.IfIndex)
		if idx == 0 && names != nil {
			idx = names.byAddr[sf.Local.Addr().Unmap()]
		}
		var dev string
		if names != nil {
			dev = names.name(idx)
		}
		var remoteToken string
		if sf.RemoteToken != 0 {
			remoteToken = formatToken(sf.RemoteToken)
		}
		out = append(out, subflowOut{
			Local:         sf.Local.String(),
			Remote:        sf.Remote.String(),
			Dev:           dev,
			IfIndex:       idx,
			LocalID:       sf.LocalID,
			RemoteID:      sf.RemoteID,
			Backup:        sf.Flags.Backup(),
			State:         stateName(sf.State),
			RTTMicros:     uint32(sf.TCP.RTT.Microseconds()),
			BytesSent:     sf.TCP.BytesSent,
			BytesAcked:    sf.TCP.BytesAcked,
			BytesReceived: sf.TCP.BytesReceived,
			Flags:         subflowFlagNames(sf.Flags),
			RemoteToken:   remoteToken,
		})
	}
	return out
}

// joinFlags marks a subflow that joined with MP_JOIN.
const joinFlags = sockdiag.SubflowJoinLocal | sockdiag.SubflowJoinRemote

// completeToken completes connection tokens.
func (a *app) completeToken(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	s, err := a.open()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	defer s.Close()
	conns, err := a.dumpConnections(s)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for _, c := range conns {
		out = append(out, cobra.CompletionWithDesc(formatToken(c.Token), c.Local.String()+" → "+c.Remote.String()))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
