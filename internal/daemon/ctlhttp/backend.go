package ctlhttp

import (
	"context"
	"errors"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/policy"
)

// Backend is what a Handler serves; the daemon implements it. Every method
// may be called from many goroutines at once and must honour ctx.
type Backend interface {
	// Status returns the engine at a glance (pm.Engine.Status).
	Status(ctx context.Context) (pmstate.Status, error)
	// Conn returns the state of the connection token; errors.Is(err,
	// pm.ErrNoConn) when the engine does not track it (pm.Engine.Conn).
	Conn(ctx context.Context, token uint32) (pmstate.Conn, error)
	// Conns returns a page of the connections (pm.Engine.Conns).
	Conns(ctx context.Context, q pmstate.ConnQuery) (pmstate.ConnPage, error)
	// Info returns what the daemon knows beside the engine.
	Info(ctx context.Context) (Info, error)
	// Reload reads the configuration file again and applies it; an error
	// says why the running configuration stays.
	Reload(ctx context.Context) error
	// Events returns the engine's decisions from now on, until ctx is
	// done, when the channel is closed (Feed.Subscribe does that).
	Events(ctx context.Context) (<-chan ctlapi.Event, error)
	// Usage returns the traffic accounting of the metered links;
	// errors.Is(err, ErrUsageOff) when the daemon accounts no link.
	Usage(ctx context.Context) (usage.Report, error)
}

// ErrUsageOff is the Backend's answer about usage when no [usage] links
// are configured; the Handler answers it with 404.
var ErrUsageOff = errors.New("usage accounting is off: no [usage] links configured")

// Info is the daemon's part of the answers.
type Info struct {
	// Version is the daemon's program version.
	Version string
	// Mode is the path manager the daemon drives.
	Mode pmstate.Mode
	// ConfigFile is the configuration file Reload reads.
	ConfigFile string
	// Policy is the policy configuration in force.
	Policy policy.Config
	// Kernel is the running kernel and what it lacks.
	Kernel ctlapi.Kernel
	// Links are the interfaces with their addresses, Addr.Usable and
	// Addr.Reason set; the Handler fills in the rest of each Addr from
	// the engine's status.
	Links []pmstate.Link
	// Mitigation is the daemon's mitigation of the kernel's corruption
	// on joins, and the mapping errors it has seen.
	Mitigation ctlapi.Mitigation
}
