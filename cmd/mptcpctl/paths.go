package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

func (a *app) pathsCmd() *cobra.Command {
	var peer string
	cmd := &cobra.Command{
		Use:   "paths [TOKEN]",
		Short: "Show each connection's desired against actual paths, and why",
		Long: `Show, for every connection the mptcpgod daemon manages (userspace mode), or the
one with token TOKEN, the paths its policy wants beside the subflows the
connection has. Each connection is a heading line (token, side, local → remote,
path manager; with rules by unit or uid, its socket's owner, uid and cgroup;
with rules, the chain that decides: default or rules[N]) followed by its paths:

    LOCAL → REMOTE  the path
    DEV             the interface the policy binds it to
    WANTED          yes if the policy wants it (backup: wanted as a backup)
    STATE           established, connecting, queued, deferred (held back
                    while the connection is young), backoff (the last try
                    failed; retried later), waiting (to an address the peer
                    announced that another path to is being tried first),
                    refused (the daemon refuses what the policy asked: the
                    local address is not a usable one of this host, or the
                    remote is not the peer's), blocked (the peer forbids it,
                    or it is incomplete), closing, or kept (not wanted, but
                    one the peer opened, never closed, or the initial
                    subflow, made backup instead of closed)
    SUBFLOWS        its live subflows
    WHY             for a deferred path: when it is due, and the bytes that
                    bring it forward (the connection's bytes so far); for a
                    missing path: the failures so far, when the next try
                    is, and the kernel's last error; for a refused one, why

Addresses announced to the peer follow, with their state (deferred: held back
while the connection is young; refused: not a usable address of this host),
then the addresses the peer announced: joined (a subflow to it came up),
pending (being tried, one path at a time), refused (the daemon's peer-address
policy refuses it: why) or given_up (every try failed). Deferral comes from
the policy (fullmesh's join_delay and join_bytes) and from [mitigation]
min_join_age. --peer shows only the connections to a peer address or prefix. In
kernel mode the kernel makes the paths from the endpoints, joining as soon as a
connection is established (it cannot defer): see mptcpctl status and mptcpctl
subflows.

The daemon answers the connections a page at a time (GET /v1/paths); paths
asks for every page and prints the connections as they come. Reading needs
root or membership of the daemon's group. With --json the pages are printed as
one answer of GET /v1/paths, every connection in it and no "next" (or the
answer of /v1/paths/TOKEN as is).`,
		Example:           "  mptcpctl paths\n  mptcpctl paths --peer 203.0.113.0/24\n  mptcpctl paths 3f97be70 --json",
		Args:              maxArgs(1, "a connection token"),
		ValidArgsFunction: a.completeToken,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if peer != "" {
					return usagef("a token and --peer: give one or the other")
				}
				token, err := parseToken(args[0])
				if err != nil {
					return err
				}
				ps, err := ask(cmd.Context(), a, func(c *ctlapi.Client, ctx context.Context) (*ctlapi.Paths, error) {
					return c.Conn(ctx, token)
				})
				if err != nil {
					return err
				}
				if a.json {
					return writeJSON(a.stdout, ps)
				}
				return writePaths(a.stdout, localPaths(ps))
			}
			q := ctlapi.PathsQuery{Limit: pmstate.MaxConnLimit}
			if peer != "" {
				p, err := parsePeerFlag(peer)
				if err != nil {
					return err
				}
				q.Peer = p
			}
			printed := false
			all := &ctlapi.Paths{Conns: []pmstate.Conn{}}
			for {
				ps, err := ask(cmd.Context(), a, func(c *ctlapi.Client, ctx context.Context) (*ctlapi.Paths, error) {
					return c.Paths(ctx, q)
				})
				if err != nil {
					return err
				}
				switch {
				case a.json:
					all.Mode, all.Conns = ps.Mode, append(all.Conns, ps.Conns...)
					if ps.Next == 0 {
						return writeJSON(a.stdout, all)
					}
				case ps.Mode == pmstate.ModeKernel || (ps.Next == 0 && !printed):
					return writePaths(a.stdout, localPaths(ps))
				default:
					for _, c := range localPaths(ps).Conns {
						if printed {
							if _, err := fmt.Fprintln(a.stdout); err != nil {
								return err
							}
						}
						if err := writeConn(a.stdout, c); err != nil {
							return err
						}
						printed = true
					}
				}
				if ps.Next == 0 {
					return nil
				}
				q.From = ps.Next
			}
		},
	}
	cmd.Flags().StringVar(&peer, "peer", "", "only the connections to this peer `address or prefix`")
	return cmd
}

// parsePeerFlag parses --peer: an address or a prefix.
func parsePeerFlag(s string) (netip.Prefix, error) {
	p, err := ctlapi.ParsePeer(s)
	if err != nil {
		return netip.Prefix{}, usagef("--peer %q: not an address or a prefix such as 203.0.113.0/24", s)
	}
	return p, nil
}

// localPaths returns ps with its times in the local zone.
func localPaths(ps *ctlapi.Paths) *ctlapi.Paths {
	out := &ctlapi.Paths{Mode: ps.Mode, Conns: make([]pmstate.Conn, len(ps.Conns)), Next: ps.Next}
	for i, c := range ps.Conns {
		c.Paths = append([]pmstate.Path(nil), c.Paths...)
		for j := range c.Paths {
			c.Paths[j].BackoffUntil = localTime(c.Paths[j].BackoffUntil)
			c.Paths[j].DeferredUntil = localTime(c.Paths[j].DeferredUntil)
		}
		c.Announces = append([]pmstate.Announce(nil), c.Announces...)
		for j := range c.Announces {
			c.Announces[j].BackoffUntil = localTime(c.Announces[j].BackoffUntil)
			c.Announces[j].DeferredUntil = localTime(c.Announces[j].DeferredUntil)
		}
		out.Conns[i] = c
	}
	return out
}

// writePaths prints each connection as a heading line followed by a table
// of its paths and its announces; connections are separated by a blank
// line.
func writePaths(w io.Writer, ps *ctlapi.Paths) error {
	if ps.Mode == pmstate.ModeKernel {
		_, err := fmt.Fprintln(w, "mode kernel: the in-kernel path manager makes the paths from the endpoints; see mptcpctl status and mptcpctl subflows")
		return err
	}
	if len(ps.Conns) == 0 {
		_, err := fmt.Fprintln(w, "no connections")
		return err
	}
	for i, c := range ps.Conns {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if err := writeConn(w, c); err != nil {
			return err
		}
	}
	return nil
}

// writeConn prints a connection as a heading line followed by a table of
// its paths and its announces.
func writeConn(w io.Writer, c pmstate.Conn) error {
	head := fmt.Sprintf("token %s  %s  %s → %s  pm %s", formatToken(c.Token), c.Side, c.Local, c.Remote, c.PathManager)
	if !c.Established {
		head += "  not established"
	}
	if c.DenyJoinID0 {
		head += "  peer denies joins to its initial address"
	}
	if c.Owner != nil {
		head += fmt.Sprintf("  uid %d", c.Owner.UID)
		if c.Owner.Cgroup != "" {
			head += "  cgroup " + c.Owner.Cgroup
		}
	}
	if c.Chain != "" {
		head += "  chain " + c.Chain
	}
	if _, err := fmt.Fprintln(w, head); err != nil {
		return err
	}
	peers := announcedPeers(c)
	if len(c.Paths) == 0 && len(c.Announces) == 0 && len(peers) == 0 {
		_, err := fmt.Fprintln(w, "  no paths")
		return err
	}
	t := newTable(w)
	fmt.Fprintln(t, "  LOCAL → REMOTE\tDEV\tWANTED\tSTATE\tSUBFLOWS\tWHY")
	for _, p := range c.Paths {
		var subs []string
		for _, s := range p.Subflows {
			d := fmt.Sprintf("%d/%d", s.LocalID, s.RemoteID)
			var tags []string
			if s.Initial {
				tags = append(tags, "initial")
			}
			if !s.Joined && !s.Initial {
				tags = append(tags, "by peer")
			}
			if s.Backup || s.PeerBackup {
				tags = append(tags, "backup")
			}
			if !s.Established {
				tags = append(tags, "not established")
			}
			if len(tags) > 0 {
				d += " " + strings.Join(tags, ",")
			}
			subs = append(subs, d)
		}
		fmt.Fprintf(t, "  %s → %s\t%s\t%s\t%s\t%s\t%s\n", p.Local, p.Remote, dash(p.Dev), pathWanted(p), p.State,
			dash(strings.Join(subs, "; ")), pathReason(p, c, formatTime))
	}
	for _, an := range c.Announces {
		fmt.Fprintf(t, "  %s\t-\t%s\t%s\t-\t%s\n", announceLabel(an), yesNo(an.Desired), an.State, announceReason(an, c, formatTime))
	}
	for _, p := range peers {
		fmt.Fprintf(t, "  %s\t-\t-\t%s\t-\t%s\n", peerLabel(p), p.State, peerReason(p))
	}
	return t.Flush()
}

// pathWanted is the WANTED cell of a daemon's path.
func pathWanted(p pmstate.Path) string {
	switch {
	case p.Desired && p.WantBackup:
		return "backup"
	case p.Desired:
		return "yes"
	}
	return "no"
}

// pathReason says why a path of c is not established (a refused one: why
// the daemon refuses it; a deferred one: until when, or how many bytes;
// the times formatted by clock), or "-".
func pathReason(p pmstate.Path, c pmstate.Conn, clock func(time.Time) string) string {
	switch {
	case p.State == pmstate.PathDeferred:
		return deferredWhy(clock(p.DeferredUntil), p.DeferredBytes, c)
	case p.Reason != "":
		return p.Reason
	}
	return dash(pathWhy(p.Failures, p.BackoffUntil.IsZero(), clock(p.BackoffUntil), p.LastError))
}

// announceLabel names an address announced to c's peer in a table of
// paths: "announce ADDR[ port P][ id N]".
func announceLabel(an pmstate.Announce) string {
	s := "announce " + an.Addr.String()
	if an.Port != 0 {
		s += fmt.Sprintf(" port %d", an.Port)
	}
	if an.ID != 0 {
		s += fmt.Sprintf(" id %d", an.ID)
	}
	return s
}

// announceReason says why an announce of c is not made, as pathReason
// does for a path.
func announceReason(an pmstate.Announce, c pmstate.Conn, clock func(time.Time) string) string {
	switch {
	case an.State == pmstate.AnnounceDeferred:
		return deferredWhy(clock(an.DeferredUntil), an.DeferredBytes, c)
	case an.Reason != "":
		return an.Reason
	}
	return dash(pathWhy(an.Failures, an.BackoffUntil.IsZero(), clock(an.BackoffUntil), an.LastError))
}

// announcedPeers are the addresses c's peer announced.
func announcedPeers(c pmstate.Conn) []pmstate.PeerAddr {
	var peers []pmstate.PeerAddr
	for _, p := range c.PeerAddrs {
		if p.Source != pmstate.SourceInitial {
			peers = append(peers, p)
		}
	}
	return peers
}

// peerLabel names an address the peer announced in a table of paths:
// "peer ADDR id N".
func peerLabel(p pmstate.PeerAddr) string { return fmt.Sprintf("peer %s id %d", p.Addr, p.ID) }

// peerReason says why an announced address is refused, or how its tries
// failed, or "-".
func peerReason(p pmstate.PeerAddr) string {
	if p.Tries > 0 {
		return pathWhy(p.Tries, true, "", p.Reason)
	}
	return dash(p.Reason)
}

// pathWhy says why a path or announce is missing: "2 failures; retry at
// T: ERROR".
func pathWhy(failures int, noRetry bool, retry, lastErr string) string {
	var parts []string
	switch failures {
	case 0:
	case 1:
		parts = append(parts, "1 failure")
	default:
		parts = append(parts, fmt.Sprintf("%d failures", failures))
	}
	if !noRetry {
		parts = append(parts, "retry at "+retry)
	}
	s := strings.Join(parts, "; ")
	if lastErr != "" {
		if s != "" {
			s += ": "
		}
		s += lastErr
	}
	return s
}

// deferredWhy says when a deferred path or announce is due: "until T", or
// "until T or 262144 bytes (moved 1500)".
func deferredWhy(until string, bytes uint64, c pmstate.Conn) string {
	s := "until " + until
	if bytes > 0 {
		s += fmt.Sprintf(" or %d bytes (moved %d)", bytes, max(c.BytesSent, c.BytesReceived))
	}
	return s
}
