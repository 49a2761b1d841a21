package pm

import (
	"net/netip"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// op is the kind of a command.
type op uint8

// Commands, in the order Counters lists them.
const (
	opAddEndpoint op = iota
	opDelEndpoint
	opSetEndpointFlags
	opSetLimits
	opDumpKernel
	opAnnounce
	opRemove
	opCreateSubflow
	opDestroySubflow
	opSetSubflowBackup
	opConnAddrs
	opOwner
	numOps
)

var opNames = [numOps]pmstate.Op{
	opAddEndpoint:      pmstate.OpAddEndpoint,
	opDelEndpoint:      pmstate.OpDelEndpoint,
	opSetEndpointFlags: pmstate.OpSetEndpointFlags,
	opSetLimits:        pmstate.OpSetLimits,
	opDumpKernel:       pmstate.OpDumpEndpoints,
	opAnnounce:         pmstate.OpAnnounce,
	opRemove:           pmstate.OpRemove,
	opCreateSubflow:    pmstate.OpCreateSubflow,
	opDestroySubflow:   pmstate.OpDestroySubflow,
	opSetSubflowBackup: pmstate.OpSetSubflowBackup,
	opConnAddrs:        pmstate.OpConnectionAddrs,
	opOwner:            pmstate.OpOwnerLookup,
}

// name is the command's name in the state types.
func (o op) name() pmstate.Op { return opNames[o] }

func (o op) String() string { return string(opNames[o]) }

// command is one kernel call, with what the loop needs to apply its
// result. Workers read only the call's arguments; conn is the loop's.
type command struct {
	op     op
	token  uint32
	conn   *conn // the connection (userspace commands); nil for kernel mode
	ep     genl.Endpoint
	id     uint8
	limits genl.LimitsUpdate
	local  netip.AddrPort
	remote netip.AddrPort
	backup bool
	// repair marks the delete and add that replace an endpoint for the
	// subflow repair (kernel mode).
	repair bool
	// implicit is the id of the kernel's implicit endpoint an add
	// replaces in place, or a delete removes to make room (kernel mode).
	implicit uint8
	path     pathKey
	// sent is when a worker took the command; trigger is when the input
	// that caused it arrived (zero for retries and the like).
	sent, trigger time.Time
}

// lane is a serial queue of commands: at most one of its commands is with
// a worker at a time, so they reach the kernel in order. Every connection
// has a lane, and kernel mode has one for endpoints and limits.
type lane struct {
	// queue holds the commands not yet handed to a worker; a
	// reconciliation rebuilds it.
	queue []command
	// busy: a command of the lane is with a worker.
	busy bool
	// scheduled: the lane is in the engine's runnable queue.
	scheduled bool
	// closed: the lane's connection is gone.
	closed bool
	// dirty: a reconciliation was asked for while busy; it runs when the
	// command returns.
	dirty bool
}

// take removes and returns the first command of l and marks l busy.
func (l *lane) take() command {
	c := l.queue[0]
	n := copy(l.queue, l.queue[1:])
	l.queue[n] = command{}
	l.queue = l.queue[:n]
	if n == 0 {
		l.queue = nil // a lane holds no array while idle
	}
	l.busy = true
	return c
}

// idle reports whether l has nothing queued and nothing with a worker.
func (l *lane) idle() bool { return !l.busy && len(l.queue) == 0 }

// stamp gives the commands of q the time of the input that caused them.
func stamp(q []command, trigger time.Time) {
	for i := range q {
		q[i].trigger = trigger
	}
}

// runQueue is a FIFO of lanes that may have a command to hand out.
type runQueue struct {
	lanes []*lane
	head  int
}

// push appends l unless it is already listed.
func (r *runQueue) push(l *lane) {
	if l.scheduled || l.closed {
		return
	}
	l.scheduled = true
	r.lanes = append(r.lanes, l)
}

// peek returns the first lane with a command to hand out, dropping the
// lanes before it that have none.
func (r *runQueue) peek() *lane {
	for r.head < len(r.lanes) {
		l := r.lanes[r.head]
		if !l.closed && !l.busy && len(l.queue) > 0 {
			return l
		}
		r.pop()
	}
	return nil
}

// pop removes the first lane.
func (r *runQueue) pop() {
	r.lanes[r.head].scheduled = false
	r.lanes[r.head] = nil
	r.head++
	if r.head == len(r.lanes) {
		r.lanes, r.head = r.lanes[:0], 0
	} else if r.head >= 1024 && r.head*2 >= len(r.lanes) {
		n := copy(r.lanes, r.lanes[r.head:])
		clear(r.lanes[n:])
		r.lanes, r.head = r.lanes[:n], 0
	}
}

// len returns the number of lanes listed.
func (r *runQueue) len() int { return len(r.lanes) - r.head }

// sent records that a worker took cmd.
func (e *Engine) sent(cmd *command) {
	e.counters.actions[cmd.op]++
	if cmd.conn != nil {
		e.touch(cmd.conn)
		e.sentConn(cmd.conn, cmd)
	}
}

// worker runs commands from work on k (owner lookups on owners) until
// work is closed, stamping each with the time it took it.
func worker(k Kernel, owners OwnerLookup, now func() time.Time, work <-chan command, results chan<- result) {
	for c := range work {
		c.sent = now()
		results <- execute(k, owners, c)
	}
}

// execute runs c on k, or on owners for an owner lookup.
func execute(k Kernel, owners OwnerLookup, c command) result {
	r := result{cmd: c}
	switch c.op {
	case opAddEndpoint:
		r.err = k.AddEndpoint(c.ep)
	case opDelEndpoint:
		r.err = k.DelEndpoint(c.id)
	case opSetEndpointFlags:
		r.err = k.SetEndpointFlags(c.ep)
	case opSetLimits:
		r.err = k.SetLimits(c.limits)
	case opDumpKernel:
		r.eps, r.limits, r.err = dumpKernel(k)
	case opAnnounce:
		r.err = k.Announce(c.token, c.ep)
	case opRemove:
		r.err = k.Remove(c.token, c.id)
	case opCreateSubflow:
		r.err = k.CreateSubflow(c.token, c.ep, c.remote)
	case opDestroySubflow:
		r.err = k.DestroySubflow(c.token, c.local, c.remote)
	case opSetSubflowBackup:
		r.err = k.SetSubflowBackup(c.token, c.local, c.remote, c.backup)
	case opConnAddrs:
		r.eps, r.err = k.ConnectionAddrs(c.token)
	case opOwner:
		r.owner, r.err = owners.Owner(c.token)
	}
	return r
}

// dumpKernel reads the in-kernel path manager's endpoints and limits.
func dumpKernel(k Kernel) ([]genl.Endpoint, genl.Limits, error) {
	eps, err := k.Endpoints()
	if err != nil {
		return nil, genl.Limits{}, err
	}
	lim, err := k.Limits()
	if err != nil {
		return nil, genl.Limits{}, err
	}
	return eps, lim, nil
}

// result is a command's outcome, sent back to the loop.
type result struct {
	cmd    command
	err    error
	eps    []genl.Endpoint
	limits genl.Limits
	owner  policy.Owner
}

func (e *Engine) applyResult(r *result) {
	now := e.now()
	if r.err != nil {
		e.counters.failures[r.cmd.op]++
		e.recent.add(e.errorRecord(r))
		e.recentChanged = true
	}
	e.retryAt = time.Time{}
	c := r.cmd.conn
	unmanaged := c != nil && c.unmanaged
	if c != nil {
		e.touch(c)
		e.connResult(r)
		if c.lane.idle() && !c.queued {
			c.trigger = time.Time{}
		}
	} else {
		e.kernelResult(r)
		if e.kernelMode.lane.idle() && !e.kernelDirty {
			e.kernelMode.trigger = time.Time{}
		}
	}
	d := e.actionDecision(r, now)
	if r.err != nil {
		d.RetryAt = e.retryAt
	}
	e.observe(d)
	if c != nil && c.unmanaged && !unmanaged {
		e.observe(pmstate.Decision{Time: now, Kind: pmstate.DecisionUnmanaged, Token: c.token, Local: c.local, Remote: c.remote})
	}
}
