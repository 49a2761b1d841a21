package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

func (a *app) pathsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "paths [TOKEN]",
		Short: "Show each connection's desired against actual paths, and why",
		Long: `Show, for every connection the mptcpgod daemon manages (userspace mode), or the
one with token TOKEN, the paths its policy wants beside the subflows the
connection has. Each connection is a heading line (token, side, local → remote,
path manager) followed by its paths:

    LOCAL → REMOTE  the path
    DEV             the interface the policy binds it to
    WANTED          yes if the policy wants it (backup: wanted as a backup)
    STATE           established, connecting, queued, backoff (the last try
                    failed; retried later), blocked (the peer forbids it, or
                    it is incomplete), closing, or kept (not wanted, but one
                    the peer opened, never closed, or the initial subflow,
                    made backup instead of closed)
    SUBFLOWS        its live subflows
    WHY             for a missing path: the failures so far, when the next try
                    is, and the kernel's last error

Addresses announced to the peer follow, with their state. In kernel mode the
kernel makes the paths from the endpoints: see mptcpctl status and mptcpctl
subflows. Reading needs root or membership of the daemon's group. With --json
the answer of GET /v0/paths (or /v0/paths/TOKEN) is printed as is.`,
		Example:           "  mptcpctl paths\n  mptcpctl paths 3f97be70 --json",
		Args:              maxArgs(1, "a connection token"),
		ValidArgsFunction: a.completeToken,
		RunE: func(cmd *cobra.Command, args []string) error {
			var token uint32
			if len(args) == 1 {
				t, err := parseToken(args[0])
				if err != nil {
					return err
				}
				token = t
			}
			ps, err := ask(cmd.Context(), a, func(c *ctlapi.Client, ctx context.Context) (*ctlapi.Paths, error) {
				if len(args) == 1 {
					return c.Conn(ctx, token)
				}
				return c.Paths(ctx)
			})
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, ps)
			}
			return writePaths(a.stdout, localPaths(ps))
		},
	}
}

// localPaths returns ps with its times in the local zone.
func localPaths(ps *ctlapi.Paths) *ctlapi.Paths {
	out := &ctlapi.Paths{Mode: ps.Mode, Conns: make([]pm.ConnStatus, len(ps.Conns))}
	for i, c := range ps.Conns {
		c.Paths = append([]pm.PathStatus(nil), c.Paths...)
		for j := range c.Paths {
			c.Paths[j].BackoffUntil = localTime(c.Paths[j].BackoffUntil)
		}
		c.Announces = append([]pm.AnnounceStatus(nil), c.Announces...)
		for j := range c.Announces {
			c.Announces[j].BackoffUntil = localTime(c.Announces[j].BackoffUntil)
		}
		out.Conns[i] = c
	}
	return out
}

// writePaths prints each connection as a heading line followed by a table
// of its paths and its announces; connections are separated by a blank
// line.
func writePaths(w io.Writer, ps *ctlapi.Paths) error {
	if ps.Mode == policy.ModeKernel {
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
		head := fmt.Sprintf("token %s  %s  %s → %s  pm %s", formatToken(c.Token), c.Side, c.Local, c.Remote, c.PathManager)
		if !c.Established {
			head += "  not established"
		}
		if c.DenyJoinID0 {
			head += "  peer denies joins to its initial address"
		}
		if _, err := fmt.Fprintln(w, head); err != nil {
			return err
		}
		if len(c.Paths) == 0 && len(c.Announces) == 0 {
			if _, err := fmt.Fprintln(w, "  no paths"); err != nil {
				return err
			}
			continue
		}
		t := newTable(w)
		fmt.Fprintln(t, "  LOCAL → REMOTE\tDEV\tWANTED\tSTATE\tSUBFLOWS\tWHY")
		for _, p := range c.Paths {
			wanted := yesNo(p.Desired)
			if p.Desired && p.WantBackup {
				wanted = "backup"
			}
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
			fmt.Fprintf(t, "  %s → %s\t%s\t%s\t%s\t%s\t%s\n", p.Local, p.Remote, dash(p.Dev), wanted, p.State,
				dash(strings.Join(subs, "; ")), dash(pathWhy(p.Failures, p.BackoffUntil.IsZero(), formatTime(p.BackoffUntil), p.LastError)))
		}
		for _, an := range c.Announces {
			addr := an.Addr.String()
			if an.Port != 0 {
				addr += fmt.Sprintf(" port %d", an.Port)
			}
			id := ""
			if an.ID != 0 {
				id = fmt.Sprintf(" id %d", an.ID)
			}
			fmt.Fprintf(t, "  announce %s%s\t-\t%s\t%s\t-\t%s\n", addr, id, yesNo(an.Desired), an.State,
				dash(pathWhy(an.Failures, an.BackoffUntil.IsZero(), formatTime(an.BackoffUntil), an.LastError)))
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	return nil
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
