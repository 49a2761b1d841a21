package pm

import (
	"net/netip"
	"time"
)

// DecisionKind says what a Decision is.
type DecisionKind string

// Decision kinds.
const (
	// DecisionAction: a command to the kernel completed, or failed (Error,
	// and RetryAt when the engine will try again).
	DecisionAction DecisionKind = "action"
	// DecisionPathFailed: a subflow the engine asked for closed or never
	// came up; the path waits until RetryAt.
	DecisionPathFailed DecisionKind = "path_failed"
	// DecisionResync: events were lost; the engine re-reads the kernel.
	DecisionResync DecisionKind = "resync"
	// DecisionPolicy: the policy was replaced (Detail: "old -> new").
	DecisionPolicy DecisionKind = "policy"
	// DecisionUnmanaged: the in-kernel path manager runs the connection,
	// which the engine leaves alone from now on.
	DecisionUnmanaged DecisionKind = "unmanaged"
)

// Decision is something the engine did or decided, for Config.Observe: the
// outcome of a command, a path put in backoff, a resynchronisation, a
// policy swap. It marshals to JSON with snake_case keys; durations are in
// nanoseconds.
type Decision struct {
	Time time.Time    `json:"time"`
	Kind DecisionKind `json:"kind"`
	// Op is the command (action): add_endpoint, create_subflow, ... as
	// in Counters.
	Op    string `json:"op,omitempty"`
	Token uint32 `json:"token,omitempty"`
	// ID, Addr and Flags are the endpoint's or the announced address's.
	ID    uint8      `json:"id,omitempty"`
	Addr  netip.Addr `json:"addr,omitzero"`
	Flags string     `json:"flags,omitempty"`
	// Local and Remote are the subflow's; Local has port 0 for a subflow
	// being created.
	Local  netip.AddrPort `json:"local,omitzero"`
	Remote netip.AddrPort `json:"remote,omitzero"`
	Backup bool           `json:"backup,omitempty"`
	// Error is the failure, in the kernel's words; empty on success.
	Error string `json:"error,omitempty"`
	// RetryAt is when the engine tries again after a failure; zero when
	// it does not retry (the thing is gone) or succeeded.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Took is the command's time with the worker, kernel round trip
	// included.
	Took time.Duration `json:"took_ns,omitempty"`
	// Latency is the time from the input that led to the command (a
	// batch of kernel events received, a host change, a policy swap) to
	// the command's completion; 0 for commands no input caused, such as
	// retries after a backoff.
	Latency time.Duration `json:"latency_ns,omitempty"`
	// Detail says more: why events were resynchronised, which policy
	// replaced which.
	Detail string `json:"detail,omitempty"`
}

// observe hands d to Config.Observe.
func (e *Engine) observe(d Decision) {
	if e.cfg.Observe != nil {
		e.cfg.Observe(d)
	}
}

// actionDecision describes the outcome of r's command at now.
func (e *Engine) actionDecision(r *result, now time.Time) Decision {
	c := &r.cmd
	d := Decision{Time: now, Kind: DecisionAction, Op: c.op.String(), Token: c.token}
	if !c.sent.IsZero() {
		d.Took = now.Sub(c.sent)
	}
	if !c.trigger.IsZero() {
		d.Latency = now.Sub(c.trigger)
	}
	if r.err != nil {
		d.Error = r.err.Error()
	}
	switch c.op {
	case opCreateSubflow:
		d.Local, d.Remote, d.Backup = netip.AddrPortFrom(c.path.local, 0), c.remote, c.backup
	case opDestroySubflow:
		d.Local, d.Remote = c.local, c.remote
	case opSetSubflowBackup:
		d.Local, d.Remote, d.Backup = c.local, c.remote, c.backup
	case opAddEndpoint, opSetEndpointFlags, opAnnounce:
		d.ID, d.Addr, d.Flags = c.ep.ID, c.ep.Addr, c.ep.Flags.String()
	case opDelEndpoint, opRemove:
		d.ID, d.Addr = c.id, c.ep.Addr
	}
	return d
}
