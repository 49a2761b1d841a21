package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

// groupDaemon is the help group of the commands that talk to the daemon
// over its control socket.
const groupDaemon = "daemon"

// startHint is how to start the daemon, for the "not running" message.
const startHint = "sudo systemctl start mptcpgod"

// daemon returns the control-socket client, or a usage error when -n was
// given: a daemon is reached through its socket, not a namespace.
func (a *app) daemon() (*ctlapi.Client, error) {
	if a.netns != "" {
		return nil, usagef("--netns %q: the daemon commands reach a daemon through its socket; use --socket PATH", a.netns)
	}
	return &ctlapi.Client{Socket: a.socket}, nil
}

// daemonError turns a control-socket failure into the one line the user
// sees.
func (a *app) daemonError(err error) error {
	var de *ctlapi.DialError
	var ad *ctlapi.AccessDeniedError
	var nf *ctlapi.NotFoundError
	var se *ctlapi.StatusError
	switch {
	case errors.Is(err, ctlapi.ErrNotRunning):
		return &refusedError{msg: fmt.Sprintf("mptcpgod is not running (nothing listens on %s); start it with: %s",
			a.socketPath(), startHint), err: err}
	case errors.As(err, &de) && errors.Is(err, fs.ErrPermission):
		return &refusedError{msg: fmt.Sprintf("cannot open %s: permission denied: the daemon's state is for root and "+
			"the members of its group (try sudo)", a.socketPath()), err: err}
	case errors.As(err, &de):
		return &refusedError{msg: fmt.Sprintf("cannot reach mptcpgod at %s: %v", a.socketPath(), de.Err), err: err}
	case errors.As(err, &ad):
		return &refusedError{msg: ad.Message + " (try sudo)", err: err}
	case errors.As(err, &nf):
		return &refusedError{msg: nf.Message, err: err}
	case errors.As(err, &se):
		return &refusedError{msg: se.Message, err: err}
	}
	return &refusedError{msg: err.Error(), err: err}
}

// socketPath is the socket the daemon commands use.
func (a *app) socketPath() string {
	if a.socket == "" {
		return ctlapi.DefaultSocket
	}
	return a.socket
}

// daemonTimeout bounds a daemon command's request.
const daemonTimeout = 10 * time.Second

// ask runs one request with the daemon command timeout.
func ask[T any](ctx context.Context, a *app, fn func(*ctlapi.Client, context.Context) (T, error)) (T, error) {
	var zero T
	c, err := a.daemon()
	if err != nil {
		return zero, err
	}
	ctx, cancel := context.WithTimeout(ctx, daemonTimeout)
	defer cancel()
	v, err := fn(c, ctx)
	if err != nil {
		return zero, a.daemonError(err)
	}
	return v, nil
}

// formatTime formats a time for tables, "-" when zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(timeFormat)
}

// formatAddr formats an address, "-" when invalid.
func formatAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

// localTimes returns t in the local zone, the zero time as is.
func localTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Local()
}
