package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/genl"
)

// timeFormat is RFC 3339 with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func (a *app) monitorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "monitor",
		Short: "Print path-manager events until interrupted",
		Long: `Print the kernel's MPTCP path-manager events as they happen, one line per
event, until interrupted (SIGINT or SIGTERM), like ip mptcp monitor. Each line
is an RFC 3339 timestamp with milliseconds, the event type and its attributes
as key=value:

    created, established   token local remote local_id remote_id server_side [flags]
    closed                 token
    announced              token remote_id remote (the address the peer announced)
    removed                token remote_id
    sub_established, sub_closed, sub_priority
                           token local remote local_id remote_id backup
                           [dev ifindex] [error] [reset_reason reset_flags]
    listener_created, listener_closed
                           local

With --json each event is one JSON object per line. Events the kernel dropped
because the reader fell behind are reported on standard error. Subscribing
needs CAP_NET_ADMIN.`,
		Example: "  sudo mptcpctl monitor\n  sudo mptcpctl -n ns1 monitor --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.monitor(cmd.Context())
		},
	}
}

// eventOut is one event of monitor --json. Attributes that do not apply to
// the event's type are left out.
type eventOut struct {
	Time        string   `json:"time"` // RFC 3339 with milliseconds
	Type        string   `json:"type"`
	Token       string   `json:"token,omitempty"`
	Local       string   `json:"local,omitempty"`
	Remote      string   `json:"remote,omitempty"`
	LocalID     *uint8   `json:"local_id,omitempty"`
	RemoteID    *uint8   `json:"remote_id,omitempty"`
	Backup      *bool    `json:"backup,omitempty"`
	ServerSide  *bool    `json:"server_side,omitempty"`
	Flags       []string `json:"flags,omitempty"` // deny_join_id0, server_side
	Dev         string   `json:"dev,omitempty"`
	IfIndex     int32    `json:"ifindex,omitempty"`
	Error       uint8    `json:"error,omitempty"` // the subflow's socket error (errno)
	ResetReason *uint32  `json:"reset_reason,omitempty"`
	ResetFlags  *uint32  `json:"reset_flags,omitempty"`
	Timeout     uint32   `json:"timeout,omitempty"`
}

// monitor implements the monitor command.
func (a *app) monitor(ctx context.Context) error {
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	sub, err := gc.Subscribe()
	if err != nil {
		if errors.Is(err, genl.ErrEventsUnsupported) {
			return &refusedError{msg: "subscribe: this kernel sends no MPTCP path-manager events (no mptcp_pm_events group)", err: err}
		}
		return kernelError("subscribe", err)
	}
	defer sub.Close()
	if a.subscribed != nil {
		a.subscribed()
	}
	var names *ifaces
	name := func(i int32) string {
		if i == 0 {
			return ""
		}
		if names == nil || names.name(i) == "" {
			if f, err := s.ifaces(); err == nil {
				names = f
			}
		}
		if names == nil {
			return ""
		}
		return names.name(i)
	}
	for {
		evs, err := sub.Receive(ctx)
		if ctx.Err() != nil {
			return nil
		}
		now := a.now().Format(timeFormat)
		for _, ev := range evs {
			out := toEventOut(now, ev, name)
			if a.json {
				err = writeJSONLine(a.stdout, out)
			} else {
				_, err = fmt.Fprintln(a.stdout, eventLine(out))
			}
			if err != nil {
				return err
			}
		}
		switch {
		case errors.Is(err, genl.ErrEventsLost):
			fmt.Fprintf(a.stderr, "mptcpctl: monitor: %s: events lost: the kernel's queue overflowed\n", now)
		case err != nil:
			return kernelError("receive events", err)
		}
	}
}

// toEventOut converts an event, keeping the attributes of its type.
func toEventOut(at string, ev genl.Event, name func(int32) string) eventOut {
	out := eventOut{Time: at, Type: ev.Type.String()}
	token := func() { out.Token = formatToken(ev.Token) }
	addrs := func() {
		if ev.Local.IsValid() {
			out.Local = ev.Local.String()
		}
		if ev.Remote.IsValid() {
			out.Remote = ev.Remote.String()
		}
	}
	ids := func() { out.LocalID, out.RemoteID = ptr(ev.LocalID), ptr(ev.RemoteID) }
	switch ev.Type {
	case genl.EventCreated, genl.EventEstablished:
		token()
		addrs()
		ids()
		out.ServerSide = ptr(ev.ServerSide)
		if ev.Flags&genl.EventFlagDenyJoinID0 != 0 {
			out.Flags = append(out.Flags, "deny_join_id0")
		}
		if ev.Flags&genl.EventFlagServerSide != 0 {
			out.Flags = append(out.Flags, "server_side")
		}
	case genl.EventClosed:
		token()
	case genl.EventAnnounced:
		token()
		out.RemoteID = ptr(ev.RemoteID)
		if ev.Remote.IsValid() {
			out.Remote = ev.Remote.String()
		}
	case genl.EventRemoved:
		token()
		out.RemoteID = ptr(ev.RemoteID)
	case genl.EventSubEstablished, genl.EventSubClosed, genl.EventSubPriority:
		token()
		addrs()
		ids()
		out.Backup = ptr(ev.Backup)
		out.IfIndex = ev.IfIndex
		out.Dev = name(ev.IfIndex)
		out.Error = ev.Error
		if ev.ResetReason != 0 || ev.ResetFlags != 0 {
			out.ResetReason, out.ResetFlags = ptr(ev.ResetReason), ptr(ev.ResetFlags)
		}
	case genl.EventListenerCreated, genl.EventListenerClosed:
		if ev.Local.IsValid() {
			out.Local = ev.Local.String()
		}
	default:
		if ev.Token != 0 {
			token()
		}
		addrs()
		ids()
		out.IfIndex = ev.IfIndex
		out.Error = ev.Error
	}
	out.Timeout = ev.Timeout
	return out
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// resetReasons names the MPTCP_RST_* codes of MP_TCPRST (RFC 8684 §3.6).
var resetReasons = []string{"unspecified", "mptcp-error", "no-resources", "prohibited", "too-much-data", "bad-performance", "middlebox"}

// eventLine formats an event as monitor prints it without --json.
func eventLine(e eventOut) string {
	var b strings.Builder
	b.WriteString(e.Time)
	b.WriteString(" ")
	b.WriteString(e.Type)
	kv := func(k string, v any) { fmt.Fprintf(&b, " %s=%v", k, v) }
	if e.Token != "" {
		kv("token", e.Token)
	}
	if e.Local != "" {
		kv("local", e.Local)
	}
	if e.Remote != "" {
		kv("remote", e.Remote)
	}
	if e.LocalID != nil {
		kv("local_id", *e.LocalID)
	}
	if e.RemoteID != nil {
		kv("remote_id", *e.RemoteID)
	}
	if e.Backup != nil {
		kv("backup", *e.Backup)
	}
	if e.ServerSide != nil {
		kv("server_side", *e.ServerSide)
	}
	if len(e.Flags) > 0 {
		kv("flags", strings.Join(e.Flags, ","))
	}
	if e.Dev != "" {
		kv("dev", e.Dev)
	}
	if e.IfIndex != 0 {
		kv("ifindex", e.IfIndex)
	}
	if e.Error != 0 {
		v := fmt.Sprint(e.Error)
		if n := unix.ErrnoName(unix.Errno(e.Error)); n != "" {
			v += "(" + n + ")"
		}
		kv("error", v)
	}
	if e.ResetReason != nil {
		r := fmt.Sprint(*e.ResetReason)
		if int(*e.ResetReason) < len(resetReasons) {
			r += "(" + resetReasons[*e.ResetReason] + ")"
		}
		kv("reset_reason", r)
		kv("reset_flags", fmt.Sprintf("0x%x", *e.ResetFlags))
	}
	if e.Timeout != 0 {
		kv("timeout", e.Timeout)
	}
	return b.String()
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
