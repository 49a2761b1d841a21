package pmstate

// Mode is the path manager the engine drives, named as the kernel's
// net.mptcp.path_manager sysctl names it.
type Mode string

// Modes.
const (
	// ModeKernel: the in-kernel path manager, whose endpoints and limits
	// the engine keeps.
	ModeKernel Mode = "kernel"
	// ModeUserspace: the userspace path manager; the engine runs every
	// connection.
	ModeUserspace Mode = "userspace"
)

// Side is which end of a connection this host is.
type Side string

// Sides.
const (
	// SideClient: this host opened the connection.
	SideClient Side = "client"
	// SideServer: this host accepted it.
	SideServer Side = "server"
)

// PathManager is who runs a connection.
type PathManager string

// Path managers of a connection.
const (
	// PathManagerUserspace: the engine runs the connection.
	PathManagerUserspace PathManager = "userspace"
	// PathManagerKernel: the in-kernel path manager runs it (it was
	// created before the sysctl changed); the engine leaves it alone.
	PathManagerKernel PathManager = "kernel"
)

// AddrSource says how a peer address became known.
type AddrSource string

// Address sources.
const (
	// SourceInitial: the address of the connection's initial subflow.
	SourceInitial AddrSource = "initial"
	// SourceAnnounced: the peer announced the address (ADD_ADDR).
	SourceAnnounced AddrSource = "announced"
)

// PathState is what became of a path: a desired path, a live subflow's
// path, or both.
type PathState string

// Path states.
const (
	// PathEstablished: a subflow of the path is established.
	PathEstablished PathState = "established"
	// PathConnecting: the subflow was asked for; the kernel has not said
	// yet whether it came up.
	PathConnecting PathState = "connecting"
	// PathQueued: the subflow's creation waits for the connection's
	// previous command.
	PathQueued PathState = "queued"
	// PathDeferred: the subflow's creation is held back while the
	// connection is young (Path.DeferredUntil, Path.DeferredBytes).
	PathDeferred PathState = "deferred"
	// PathBackoff: the last try failed; the next is at BackoffUntil.
	PathBackoff PathState = "backoff"
	// PathWaiting: the path is to an address the peer announced and no
	// subflow to which was established yet: another path to it is being
	// tried, or the last try's backoff runs.
	PathWaiting PathState = "waiting"
	// PathRefused: the engine refuses the policy's path (Reason says
	// why): its local address is not a usable address of this host, or
	// its remote address is not one of the peer's that the peer-address
	// policy accepts.
	PathRefused PathState = "refused"
	// PathBlocked: the path cannot be made: the peer denies joins to its
	// initial address, or the path is incomplete.
	PathBlocked PathState = "blocked"
	// PathClosing: not desired; its subflow is being closed.
	PathClosing PathState = "closing"
	// PathKept: not desired, but a subflow the engine does not close:
	// one the peer opened, the initial subflow of a server-side
	// connection, the connection's last established subflow, or a
	// client's initial subflow from a usable address, which the engine
	// demotes to backup instead.
	PathKept PathState = "kept"
)

// PathStates are the path states, in the order Status.Paths is
// documented.
var PathStates = []PathState{PathEstablished, PathConnecting, PathQueued, PathDeferred, PathBackoff, PathWaiting,
	PathRefused, PathBlocked, PathClosing, PathKept}

// AnnounceState is what became of an address announced to a
// connection's peer, or desired to be.
type AnnounceState string

// Announce states.
const (
	// AnnounceAnnounced: the kernel announced the address.
	AnnounceAnnounced AnnounceState = "announced"
	// AnnounceQueued: the announce waits for a worker, or for the
	// connection's previous command.
	AnnounceQueued AnnounceState = "queued"
	// AnnounceDeferred: the announce is held back while the connection
	// is young (Announce.DeferredUntil, Announce.DeferredBytes).
	AnnounceDeferred AnnounceState = "deferred"
	// AnnounceBackoff: the last try failed; the next is at BackoffUntil.
	AnnounceBackoff AnnounceState = "backoff"
	// AnnounceWithdrawing: announced but no longer desired; the engine
	// withdraws it.
	AnnounceWithdrawing AnnounceState = "withdrawing"
	// AnnounceRefused: the engine refuses the policy's announce: the
	// address is not a usable address of this host (Reason says why).
	AnnounceRefused AnnounceState = "refused"
)

// AnnounceStates are the announce states.
var AnnounceStates = []AnnounceState{AnnounceAnnounced, AnnounceQueued, AnnounceDeferred, AnnounceBackoff,
	AnnounceWithdrawing, AnnounceRefused}

// PeerState is what the peer-address policy made of an address of a
// connection's peer.
type PeerState string

// Peer address states.
const (
	// PeerJoined: the initial address, or an announced one a subflow was
	// established to, which only the peer can do: paths to it are
	// retried without end.
	PeerJoined PeerState = "joined"
	// PeerPending: announced and accepted, not joined yet: tried one path
	// at a time, at most the configured number of tries.
	PeerPending PeerState = "pending"
	// PeerRefused: the peer-address policy refuses the address (Reason
	// says why); no subflow is opened to it.
	PeerRefused PeerState = "refused"
	// PeerGivenUp: every try failed; never tried again on the
	// connection.
	PeerGivenUp PeerState = "given_up"
)

// PeerStates are the peer address states.
var PeerStates = []PeerState{PeerJoined, PeerPending, PeerRefused, PeerGivenUp}

// EndpointState is what became of an endpoint of the in-kernel path
// manager (kernel mode).
type EndpointState string

// Endpoint states.
const (
	// EndpointOK: the kernel has the endpoint as desired.
	EndpointOK EndpointState = "ok"
	// EndpointPending: a change is queued or with a worker.
	EndpointPending EndpointState = "pending"
	// EndpointBackoff: the last change failed; the next try is at
	// BackoffUntil.
	EndpointBackoff EndpointState = "backoff"
	// EndpointRemoving: mptcpgod's, no longer desired; being deleted.
	EndpointRemoving EndpointState = "removing"
	// EndpointForeign: not mptcpgod's (its id is outside the owned
	// range); left alone.
	EndpointForeign EndpointState = "foreign"
	// EndpointBlocked: a foreign endpoint holds the address.
	EndpointBlocked EndpointState = "blocked"
	// EndpointLeftOut: the kernel keeps at most 8 endpoints.
	EndpointLeftOut EndpointState = "left_out"
	// EndpointUnusable: the address is not usable.
	EndpointUnusable EndpointState = "unusable"
)

// EndpointStates are the endpoint states.
var EndpointStates = []EndpointState{EndpointOK, EndpointPending, EndpointBackoff, EndpointRemoving, EndpointForeign,
	EndpointBlocked, EndpointLeftOut, EndpointUnusable}

// LinkKind is what kind of network a link is.
type LinkKind string

// Link kinds.
const (
	LinkWired    LinkKind = "wired"
	LinkWifi     LinkKind = "wifi"
	LinkCellular LinkKind = "cellular"
	LinkVirtual  LinkKind = "virtual"
	LinkLoopback LinkKind = "loopback"
	LinkUnknown  LinkKind = "unknown"
)

// Op is a command the engine gives the kernel.
type Op string

// Commands, in the order the counters list them.
const (
	OpAddEndpoint      Op = "add_endpoint"
	OpDelEndpoint      Op = "del_endpoint"
	OpSetEndpointFlags Op = "set_endpoint_flags"
	OpSetLimits        Op = "set_limits"
	OpDumpEndpoints    Op = "dump_endpoints"
	OpAnnounce         Op = "announce"
	OpRemove           Op = "remove"
	OpCreateSubflow    Op = "create_subflow"
	OpDestroySubflow   Op = "destroy_subflow"
	OpSetSubflowBackup Op = "set_subflow_backup"
	OpConnectionAddrs  Op = "connection_addrs"
	OpOwnerLookup      Op = "owner_lookup"
)

// Ops are the commands.
var Ops = []Op{OpAddEndpoint, OpDelEndpoint, OpSetEndpointFlags, OpSetLimits, OpDumpEndpoints, OpAnnounce, OpRemove,
	OpCreateSubflow, OpDestroySubflow, OpSetSubflowBackup, OpConnectionAddrs, OpOwnerLookup}

// DecisionKind says what a Decision is.
type DecisionKind string

// Decision kinds.
const (
	// DecisionAction: a command to the kernel completed, or failed
	// (Error, and RetryAt when the engine will try again).
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

// DecisionKinds are the kinds of the engine's decisions.
var DecisionKinds = []DecisionKind{DecisionAction, DecisionPathFailed, DecisionResync, DecisionPolicy, DecisionUnmanaged}
