package pm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/policy"
)

// Status is a snapshot of the engine, for the control socket and logs.
type Status struct {
	// Mode is the path manager the engine drives.
	Mode policy.Mode `json:"mode"`
	// Policy is the policy's name.
	Policy string `json:"policy"`
	// Started is when Run started.
	Started time.Time `json:"started"`
	// Ready reports that the first adoption and reconciliation are done.
	Ready bool `json:"ready"`
	// UsableAddrs are the local addresses policies may use.
	UsableAddrs []netip.Addr `json:"usable_addrs"`
	// Limits are the in-kernel path manager's limits (kernel mode).
	Limits *LimitsStatus `json:"limits,omitempty"`
	// Endpoints are the kernel's endpoints and the desired ones (kernel
	// mode), by address.
	Endpoints []EndpointStatus `json:"endpoints,omitempty"`
	// Conns are the connections the engine tracks (userspace mode), by
	// token.
	Conns []ConnStatus `json:"conns,omitempty"`
	// InFlight is the number of commands with the workers; Queued the
	// number waiting for their connection's previous command.
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// Resyncing reports that a resynchronisation is reading the kernel.
	Resyncing bool `json:"resyncing,omitempty"`
	// RepairListing reports that the subflow repair is listing the
	// connections (kernel mode).
	RepairListing bool `json:"repair_listing,omitempty"`
	// Counters count what happened since Run started.
	Counters Counters `json:"counters"`
	// RecentErrors are the last failed commands, oldest first.
	RecentErrors []ErrorRecord `json:"recent_errors"`
}

// LimitsStatus are the in-kernel limits: what the kernel has and what the
// policy wants (nil: left alone).
type LimitsStatus struct {
	Subflows            uint32  `json:"subflows"`
	AddAddrAccepted     uint32  `json:"add_addr_accepted"`
	WantSubflows        *uint32 `json:"want_subflows,omitempty"`
	WantAddAddrAccepted *uint32 `json:"want_add_addr_accepted,omitempty"`
	LastError           string  `json:"last_error,omitempty"`
}

// EndpointStatus is an endpoint of the kernel, a desired one, or both.
type EndpointStatus struct {
	// ID is the kernel's id; 0 when the endpoint is not in the kernel.
	ID      uint8      `json:"id,omitempty"`
	Addr    netip.Addr `json:"addr"`
	Port    uint16     `json:"port,omitempty"`
	Dev     string     `json:"dev,omitempty"`
	IfIndex int32      `json:"ifindex,omitempty"`
	// Flags are the kernel's flags; WantFlags the desired ones.
	Flags     string `json:"flags,omitempty"`
	WantFlags string `json:"want_flags,omitempty"`
	// Owned: the id is in mptcpgod's range. Desired: the policy wants
	// the endpoint. Present: the kernel has it.
	Owned   bool `json:"owned"`
	Desired bool `json:"desired"`
	Present bool `json:"present"`
	// State is "ok", "pending" (a change is queued or with a worker),
	// "backoff" (the last change failed; retried at BackoffUntil),
	// "removing", "foreign" (not mptcpgod's, left alone), "blocked" (a
	// foreign endpoint holds the address), "left_out" (the kernel's
	// limit of 8 endpoints), or "unusable" (the address is not usable).
	State        string    `json:"state"`
	Reason       string    `json:"reason,omitempty"`
	Failures     int       `json:"failures,omitempty"`
	BackoffUntil time.Time `json:"backoff_until,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
}

// ConnStatus is a connection: desired paths against actual subflows.
type ConnStatus struct {
	Token  uint32         `json:"token"`
	Side   policy.Side    `json:"side"`
	Local  netip.AddrPort `json:"local"`
	Remote netip.AddrPort `json:"remote"`
	// Since is when the engine learnt of the connection.
	Since       time.Time `json:"since"`
	Established bool      `json:"established"`
	// PathManager is "userspace", or "kernel" for a connection the
	// in-kernel path manager runs (the engine leaves it alone).
	PathManager string            `json:"path_manager"`
	DenyJoinID0 bool              `json:"deny_join_id0,omitempty"`
	PeerAddrs   []policy.PeerAddr `json:"peer_addrs"`
	Paths       []PathStatus      `json:"paths"`
	Announces   []AnnounceStatus  `json:"announces,omitempty"`
}

// PathStatus is a desired path, a live subflow's path, or both.
type PathStatus struct {
	Local   netip.Addr     `json:"local"`
	Remote  netip.AddrPort `json:"remote"`
	Dev     string         `json:"dev,omitempty"`
	IfIndex int32          `json:"ifindex,omitempty"`
	// Desired: the policy wants the path; WantBackup is its backup bit.
	Desired    bool `json:"desired"`
	WantBackup bool `json:"want_backup,omitempty"`
	// State is "established", "connecting" (the subflow was asked for;
	// waiting for the kernel), "queued", "backoff" (the last try failed;
	// retried at BackoffUntil), "blocked" (the peer denies joins to its
	// initial address, or the path is incomplete), "closing", or "kept"
	// (not desired, but a subflow the engine does not close: one the peer
	// opened, the initial subflow of a server-side connection, the
	// connection's last established subflow, or the initial subflow of a
	// client-side connection, from a usable address and not stalled,
	// which the engine demotes to backup instead: its Subflows show
	// Backup).
	State        string          `json:"state"`
	Subflows     []SubflowStatus `json:"subflows,omitempty"`
	Failures     int             `json:"failures,omitempty"`
	BackoffUntil time.Time       `json:"backoff_until,omitzero"`
	LastError    string          `json:"last_error,omitempty"`
}

// SubflowStatus is a live subflow.
type SubflowStatus struct {
	Local    netip.AddrPort `json:"local"`
	Remote   netip.AddrPort `json:"remote"`
	LocalID  uint8          `json:"local_id"`
	RemoteID uint8          `json:"remote_id"`
	// Backup is this host's backup bit; PeerBackup the peer's.
	Backup     bool `json:"backup,omitempty"`
	PeerBackup bool `json:"peer_backup,omitempty"`
	// Joined: this host opened it; Initial: the connection's first.
	Joined      bool      `json:"joined,omitempty"`
	Initial     bool      `json:"initial,omitempty"`
	Established bool      `json:"established"`
	IfIndex     int32     `json:"ifindex,omitempty"`
	Since       time.Time `json:"since,omitzero"`
	// Health is the subflow's last reported health (SetHealth).
	Health policy.Health `json:"health,omitzero"`
}

// AnnounceStatus is an address announced to a connection's peer, or
// desired to be.
type AnnounceStatus struct {
	Addr netip.Addr `json:"addr"`
	Port uint16     `json:"port,omitempty"`
	// ID is the address id; 0 until announced.
	ID        uint8 `json:"id,omitempty"`
	Desired   bool  `json:"desired"`
	Announced bool  `json:"announced"`
	// State is "announced", "queued", "backoff" or "withdrawing".
	State        string    `json:"state"`
	Failures     int       `json:"failures,omitempty"`
	BackoffUntil time.Time `json:"backoff_until,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
}

// Counters count the engine's work since Run started. Map keys are
// command names (add_endpoint, del_endpoint, set_endpoint_flags,
// set_limits, dump_endpoints, announce, remove, create_subflow,
// destroy_subflow, set_subflow_backup, connection_addrs) and event names
// (created, established, ...).
type Counters struct {
	Actions  map[string]uint64 `json:"actions"`
	Failures map[string]uint64 `json:"failures"`
	Events   map[string]uint64 `json:"events"`
	// EventBatches counts the batches of events received.
	EventBatches uint64 `json:"event_batches"`
	// Resyncs counts the resynchronisations after lost events.
	Resyncs uint64 `json:"resyncs"`
	// Backoffs counts the failures that put a path, announce, endpoint or
	// the limits in backoff.
	Backoffs uint64 `json:"backoffs"`
	// UnknownToken counts events for connections the engine did not know.
	UnknownToken uint64 `json:"unknown_token_events"`
	HostUpdates  uint64 `json:"host_updates"`
	PolicySwaps  uint64 `json:"policy_swaps"`
	// HealthUpdates counts the health reports received (SetHealth).
	HealthUpdates uint64 `json:"health_updates"`
	// EndpointRepairs counts the subflow endpoints replaced because
	// connections had no subflow from them (kernel mode, see the package
	// doc); RepairsGivenUp counts the connections given up, still without
	// the subflow after 3 replacements.
	EndpointRepairs uint64 `json:"endpoint_repairs"`
	RepairsGivenUp  uint64 `json:"repairs_given_up"`
}

// ErrorRecord is a failed command.
type ErrorRecord struct {
	Time   time.Time      `json:"time"`
	Op     string         `json:"op"`
	Token  uint32         `json:"token,omitempty"`
	Addr   netip.Addr     `json:"addr,omitzero"`
	Local  netip.AddrPort `json:"local,omitzero"`
	Remote netip.AddrPort `json:"remote,omitzero"`
	Error  string         `json:"error"`
}

// counters are the loop's Counters.
type counters struct {
	actions, failures        [numOps]uint64
	events                   [256]uint64
	batches, resyncs         uint64
	backoffs                 uint64
	unknownToken             uint64
	hostUpdates, policySwaps uint64
	healthUpdates            uint64
	endpointRepairs          uint64
	repairGivenUp            uint64
}

func (c *counters) export() Counters {
	out := Counters{
		Actions:         make(map[string]uint64),
		Failures:        make(map[string]uint64),
		Events:          make(map[string]uint64),
		EventBatches:    c.batches,
		Resyncs:         c.resyncs,
		Backoffs:        c.backoffs,
		UnknownToken:    c.unknownToken,
		HostUpdates:     c.hostUpdates,
		PolicySwaps:     c.policySwaps,
		HealthUpdates:   c.healthUpdates,
		EndpointRepairs: c.endpointRepairs,
		RepairsGivenUp:  c.repairGivenUp,
	}
	for o := range numOps {
		if n := c.actions[o]; n > 0 {
			out.Actions[o.String()] = n
		}
		if n := c.failures[o]; n > 0 {
			out.Failures[o.String()] = n
		}
	}
	for t, n := range c.events {
		if n > 0 {
			out.Events[genl.EventType(t).String()] = n
		}
	}
	return out
}

// recentErrors is the size of the error ring.
const recentErrors = 32

// errRing keeps the last recentErrors records.
type errRing struct {
	buf  [recentErrors]ErrorRecord
	next int
	full bool
}

func (r *errRing) add(rec ErrorRecord) {
	r.buf[r.next] = rec
	r.next = (r.next + 1) % recentErrors
	if r.next == 0 {
		r.full = true
	}
}

func (r *errRing) list() []ErrorRecord {
	if !r.full {
		return slices.Clone(r.buf[:r.next])
	}
	return append(slices.Clone(r.buf[r.next:]), r.buf[:r.next]...)
}

func (e *Engine) errorRecord(r *result) ErrorRecord {
	c := &r.cmd
	rec := ErrorRecord{Time: e.now(), Op: c.op.String(), Token: c.token, Error: r.err.Error()}
	switch c.op {
	case opCreateSubflow:
		rec.Local, rec.Remote = netip.AddrPortFrom(c.path.local, 0), c.remote
	case opDestroySubflow, opSetSubflowBackup:
		rec.Local, rec.Remote = c.local, c.remote
	case opAddEndpoint, opDelEndpoint, opSetEndpointFlags, opAnnounce, opRemove:
		rec.Addr = c.ep.Addr
	}
	return rec
}

// ErrNotRunning is returned by Status and Conn when Run has returned.
var ErrNotRunning = errors.New("pm: engine not running")

// ErrNoConn is returned by Conn for a token the engine does not track.
var ErrNoConn = errors.New("pm: no such connection")

// Status returns a copy of the engine's state, answered by Run's loop.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	q := query{reply: make(chan Status, 1)}
	if err := e.ask(ctx, q); err != nil {
		return Status{}, err
	}
	select {
	case st := <-q.reply:
		return st, nil
	case <-ctx.Done():
		return Status{}, ctx.Err()
	}
}

// Conn returns the state of the connection token; errors.Is(err,
// ErrNoConn) when the engine does not track it.
func (e *Engine) Conn(ctx context.Context, token uint32) (ConnStatus, error) {
	q := query{token: token, one: true, replyC: make(chan connReply, 1)}
	if err := e.ask(ctx, q); err != nil {
		return ConnStatus{}, err
	}
	select {
	case r := <-q.replyC:
		if !r.ok {
			return ConnStatus{}, fmt.Errorf("%w: token %08x", ErrNoConn, token)
		}
		return r.cs, nil
	case <-ctx.Done():
		return ConnStatus{}, ctx.Err()
	}
}

type query struct {
	token  uint32
	one    bool // ConnStatus of token only
	reply  chan Status
	replyC chan connReply
}

type connReply struct {
	cs ConnStatus
	ok bool
}

func (e *Engine) ask(ctx context.Context, q query) error {
	select {
	case e.queryC <- q:
		return nil
	case <-e.doneC:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answer replies to a query with a snapshot.
func (e *Engine) answer(q query) {
	if q.one {
		c := e.conns[q.token]
		if c == nil {
			q.replyC <- connReply{}
			return
		}
		q.replyC <- connReply{cs: e.connStatus(c), ok: true}
		return
	}
	st := Status{
		Mode:          e.cfg.Mode,
		Policy:        e.policy.Name(),
		Started:       e.started,
		Ready:         e.isReady,
		Resyncing:     e.resyncing,
		RepairListing: e.kernelMode.repair.listing,
		Counters:      e.counters.export(),
		RecentErrors:  e.recent.list(),
	}
	for _, a := range e.view.UsableAddrs() {
		st.UsableAddrs = append(st.UsableAddrs, a.Addr)
	}
	if e.kernelMode.lane.busy {
		st.InFlight++
	}
	st.Queued += len(e.kernelMode.lane.queue)
	if e.cfg.Mode == policy.ModeKernel {
		st.Limits = e.limitsStatus()
		st.Endpoints = e.endpointStatus()
	}
	st.Conns = make([]ConnStatus, 0, len(e.conns))
	for _, c := range e.conns {
		if c.lane.busy {
			st.InFlight++
		}
		st.Queued += len(c.lane.queue)
		st.Conns = append(st.Conns, e.connStatus(c))
	}
	slices.SortFunc(st.Conns, func(a, b ConnStatus) int { return cmp.Compare(a.Token, b.Token) })
	q.reply <- st
}

func (e *Engine) limitsStatus() *LimitsStatus {
	k := &e.kernelMode
	ls := &LimitsStatus{Subflows: k.limits.Subflows, AddAddrAccepted: k.limits.AddAddrAccepted, LastError: k.limRetry.lastErr}
	if s := k.plan.Limits.Subflows; s != nil {
		ls.WantSubflows = new(*s)
	}
	if a := k.plan.Limits.AddAddrAccepted; a != nil {
		ls.WantAddAddrAccepted = new(*a)
	}
	return ls
}

func (e *Engine) endpointStatus() []EndpointStatus {
	k := &e.kernelMode
	now := e.now()
	var out []EndpointStatus
	index := make(map[netip.AddrPort]int)
	for _, a := range k.actual {
		es := EndpointStatus{ID: a.ID, Addr: a.Addr, Port: a.Port, IfIndex: a.IfIndex, Flags: a.Flags.String(),
			Owned: e.owned(a), Present: true, State: "foreign"}
		if es.Owned {
			es.State = "removing"
			index[epKey(a)] = len(out)
		}
		out = append(out, es)
	}
	for _, p := range k.plan.Endpoints {
		addr := p.Addr.Unmap()
		key := netip.AddrPortFrom(addr, p.Port)
		want := endpointFlags(p).String()
		i, ok := index[key]
		if !ok {
			out = append(out, EndpointStatus{Addr: addr, Port: p.Port, State: "pending"})
			i = len(out) - 1
			index[key] = i
		}
		es := &out[i]
		es.Desired, es.WantFlags, es.Dev = true, want, p.Dev
		if es.IfIndex == 0 {
			es.IfIndex = e.devIndex(p.Dev, p.IfIndex)
		}
		switch note := k.notes[key]; {
		case note == "address not usable":
			es.State, es.Reason = "unusable", note
		case strings.HasPrefix(note, "address taken"):
			es.State, es.Reason = "blocked", note
		case strings.HasPrefix(note, "left out"):
			es.State, es.Reason = "left_out", note
		case note != "":
			es.State, es.Reason = "pending", note
		case es.Present && es.Flags == want:
			es.State = "ok"
		default:
			es.State = "pending"
		}
	}
	for i := range out {
		es := &out[i]
		if r := k.retries[netip.AddrPortFrom(es.Addr, es.Port)]; r != nil && (es.Owned || !es.Present) {
			es.Failures, es.LastError = r.fails, r.lastErr
			if r.waiting(now) && es.State != "ok" {
				es.State, es.BackoffUntil = "backoff", r.until
			}
		}
	}
	slices.SortStableFunc(out, func(a, b EndpointStatus) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (e *Engine) connStatus(c *conn) ConnStatus {
	now := e.now()
	cs := ConnStatus{
		Token: c.token, Side: c.side, Local: c.local, Remote: c.remote, Since: c.created,
		Established: c.established, PathManager: "userspace", DenyJoinID0: c.denyJoinID0,
		PeerAddrs: append([]policy.PeerAddr{{Addr: c.remote, Source: policy.SourceInitial}}, c.peers...),
	}
	if c.unmanaged {
		cs.PathManager = "kernel"
	}
	pathAt := func(k pathKey) *PathStatus {
		for i := range cs.Paths {
			if cs.Paths[i].Local == k.local && cs.Paths[i].Remote == k.remote {
				return &cs.Paths[i]
			}
		}
		cs.Paths = append(cs.Paths, PathStatus{Local: k.local, Remote: k.remote})
		return &cs.Paths[len(cs.Paths)-1]
	}
	for _, p := range c.want {
		ps := pathAt(p.key)
		ps.Desired, ps.WantBackup, ps.Dev, ps.IfIndex = true, p.backup, p.dev, p.ifindex
	}
	for _, s := range c.subs {
		ps := pathAt(s.path())
		ps.Subflows = append(ps.Subflows, SubflowStatus{Local: s.local, Remote: s.remote, LocalID: s.localID,
			RemoteID: s.remoteID, Backup: s.backup, PeerBackup: s.peerBackup, Joined: s.joined, Initial: s.initial,
			Established: s.established, IfIndex: s.ifindex, Since: s.since, Health: e.healthOf(c.token, s.local, s.remote)})
	}
	for _, a := range c.attempts {
		pathAt(a.path)
	}
	established := c.liveSubflows()
	for i := range cs.Paths {
		ps := &cs.Paths[i]
		k := pathKey{ps.Local, ps.Remote}
		r := c.retry(retryKey{path: k})
		live := c.livePath(k)
		if r != nil && (live == nil || !live.stable(now)) {
			ps.Failures, ps.LastError = r.fails, r.lastErr
		}
		closing := queuedFor(c, opDestroySubflow, k) ||
			slices.ContainsFunc(c.subs, func(s subflow) bool { return s.path() == k && s.destroying })
		kept := !closing && slices.ContainsFunc(c.subs, func(s subflow) bool {
			return s.path() == k && !s.destroying &&
				(!c.closable(&s) || (s.established && established <= 1) || e.demotes(c, &s))
		})
		switch {
		case !ps.Desired && kept:
			ps.State = "kept"
		case !ps.Desired && (live != nil || closing):
			ps.State = "closing"
		case live != nil:
			ps.State = "established"
		case c.attempt(k) >= 0:
			ps.State = "connecting"
		case queuedFor(c, opCreateSubflow, k):
			ps.State = "queued"
		case r.waiting(now):
			ps.State, ps.BackoffUntil = "backoff", r.until
		default:
			ps.State = "blocked"
		}
	}
	for _, a := range c.wantAnnounces {
		addr := a.Addr()
		as := AnnounceStatus{Addr: addr, Port: a.Port(), Desired: true, State: "queued"}
		if id, ok := c.localID(addr); ok {
			as.ID = id
		}
		if c.announced(addr, a.Port()) {
			as.Announced, as.State = true, "announced"
		}
		if r := c.retry(announceKey(addr, a.Port())); r != nil {
			as.Failures, as.LastError = r.fails, r.lastErr
			if r.waiting(now) && !as.Announced {
				as.State, as.BackoffUntil = "backoff", r.until
			}
		}
		cs.Announces = append(cs.Announces, as)
	}
	for _, l := range c.locals {
		if l.signal && !slices.Contains(c.wantAnnounces, netip.AddrPortFrom(l.addr, l.port)) {
			cs.Announces = append(cs.Announces, AnnounceStatus{Addr: l.addr, Port: l.port, ID: l.id,
				Announced: true, State: "withdrawing"})
		}
	}
	slices.SortFunc(cs.Paths, func(a, b PathStatus) int {
		return cmp.Or(a.Local.Compare(b.Local), a.Remote.Compare(b.Remote))
	})
	return cs
}

// queuedFor reports whether c's lane holds a command op for path k.
func queuedFor(c *conn, o op, k pathKey) bool {
	return slices.ContainsFunc(c.lane.queue, func(cmd command) bool { return cmd.op == o && cmd.path == k })
}
