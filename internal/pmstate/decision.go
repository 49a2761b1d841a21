package pmstate

import (
	"net/netip"
	"time"
)

// Decision is something the engine did or decided: the outcome of a
// command, a path put in backoff, a resynchronisation, a policy swap.
// Durations are in nanoseconds.
type Decision struct {
	Time time.Time    `json:"time"`
	Kind DecisionKind `json:"kind"`
	// Op is the command of an action.
	Op    Op     `json:"op,omitempty"`
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
	// the command's completion; for a deferred path or announce, from
	// when it became due (its deadline, or the byte read that saw its
	// threshold crossed); 0 for commands no input caused, such as
	// retries after a backoff.
	Latency time.Duration `json:"latency_ns,omitempty"`
	// Detail says more: why events were resynchronised, which policy
	// replaced which.
	Detail string `json:"detail,omitempty"`
}
