package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

func (a *app) eventsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "events",
		Short: "Print the daemon's decisions as they happen, until interrupted",
		Long: `Print what the mptcpgod daemon decides and does, as it happens, one line per
decision, until interrupted (SIGINT or SIGTERM). mptcpctl monitor shows the
kernel's events; this shows the daemon's answers to them. Each line is an RFC
3339 timestamp with milliseconds, the kind of decision and its attributes as
key=value:

    action       a kernel command completed: op (add_endpoint, del_endpoint,
                 set_endpoint_flags, set_limits, announce, remove,
                 create_subflow, destroy_subflow, set_subflow_backup, ...),
                 token, id, addr, flags, local, remote, backup; took (the
                 kernel round trip) and latency (from the event or change that
                 caused it); on failure error (the kernel's words) and
                 retry_at when the daemon tries again
    path_failed  a subflow the daemon opened closed or never came up: token,
                 local, remote, error, retry_at
    resync       events were lost; the daemon re-reads the kernel
    policy       the policy was replaced (old -> new)
    unmanaged    the in-kernel path manager runs the connection: left alone
    dropped      this reader fell behind and missed that many decisions

Reading needs root or membership of the daemon's group. The daemon ends the
stream of a user other than root after a minute without a decision, and
events opens a new one at once. With --json each decision is one JSON object
per line, as GET /v1/events sends it.`,
		Example: "  mptcpctl events\n  mptcpctl events --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.events(cmd.Context())
		},
	}
}

// events implements the events command.
func (a *app) events(ctx context.Context) error {
	c, err := a.daemon()
	if err != nil {
		return err
	}
	// The stream lives as long as ctx; only its opening is timed.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(daemonTimeout, cancel)
	s, err := c.Events(sctx)
	if !timer.Stop() && err != nil && ctx.Err() == nil {
		return &refusedError{msg: fmt.Sprintf("the daemon did not answer within %v", daemonTimeout), err: err}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return a.daemonError(err)
	}
	defer func() { s.Close() }()
	if a.subscribed != nil {
		a.subscribed()
	}
	for {
		ev, err := s.Next()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ctlapi.ErrStreamIdle) {
			// The daemon ends the idle streams of users other than
			// root: open a new one.
			s.Close()
			if s, err = c.Events(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return a.daemonError(err)
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			return &refusedError{msg: "the daemon closed the stream (stopped or restarted)", err: err}
		}
		if err != nil {
			return &refusedError{msg: "reading the daemon's events: " + err.Error(), err: err}
		}
		if a.json {
			err = writeJSONLine(a.stdout, ev)
		} else {
			ev.Time, ev.RetryAt = localTime(ev.Time), localTime(ev.RetryAt)
			_, err = fmt.Fprintln(a.stdout, decisionLine(ev))
		}
		if err != nil {
			return err
		}
	}
}

// decisionLine formats a decision as events prints it without --json.
func decisionLine(ev ctlapi.Event) string {
	var b strings.Builder
	b.WriteString(formatTime(ev.Time))
	b.WriteString(" ")
	b.WriteString(string(ev.Kind))
	kv := func(k, v string) { fmt.Fprintf(&b, " %s=%s", k, v) }
	if ev.Kind == ctlapi.EventDropped {
		kv("missed", strconv.FormatUint(ev.Dropped, 10))
		return b.String()
	}
	if ev.Op != "" {
		kv("op", string(ev.Op))
	}
	if ev.Token != 0 {
		kv("token", formatToken(ev.Token))
	}
	if ev.ID != 0 {
		kv("id", strconv.Itoa(int(ev.ID)))
	}
	if ev.Addr.IsValid() {
		kv("addr", ev.Addr.String())
	}
	if ev.Flags != "" {
		kv("flags", commas(ev.Flags))
	}
	if ev.Local.IsValid() {
		local := ev.Local.String()
		if ev.Local.Port() == 0 {
			local = ev.Local.Addr().String()
		}
		kv("local", local)
	}
	if ev.Remote.IsValid() {
		kv("remote", ev.Remote.String())
	}
	if ev.Backup {
		kv("backup", "true")
	}
	if ev.Took > 0 {
		kv("took", formatDuration(ev.Took))
	}
	if ev.Latency > 0 {
		kv("latency", formatDuration(ev.Latency))
	}
	if ev.Detail != "" {
		kv("detail", strconv.Quote(ev.Detail))
	}
	if ev.Error != "" {
		kv("error", strconv.Quote(ev.Error))
	} else if ev.Kind == pmstate.DecisionAction {
		b.WriteString(" ok")
	}
	if !ev.RetryAt.IsZero() {
		kv("retry_at", formatTime(ev.RetryAt))
	}
	return b.String()
}

// formatDuration formats d in milliseconds with three decimals.
func formatDuration(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}
