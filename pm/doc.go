// Package pm is mptcpgod's path-manager engine: it keeps the kernel's MPTCP
// path-manager state equal to what the policy wants.
//
// The engine is level-triggered. Policies compute the desired state from
// an immutable view of the host (and, in userspace mode, of one
// connection); the engine diffs it against what the kernel has and acts.
// The same code path serves startup, lost events, link changes and policy
// reloads. Failed actions are retried with per-path exponential backoff.
//
// # One owner
//
// Engine.Run is the only goroutine that touches the engine's state. Host
// updates (SetHost, latest wins), health reports (SetHealth, latest wins),
// policy swaps, kernel events, worker results, status queries and backoff
// timers arrive on channels. The loop
// never waits on the kernel: it hands commands to a pool of workers, each
// with a Kernel of its own, keeping at most one command in flight per
// connection (and one for kernel-mode endpoints and limits), so the
// commands of one connection reach the kernel in order while connections
// proceed in parallel. Results come back to the loop as inputs.
//
// # Files
//
// The files follow the order in which things happen:
//
//   - engine.go: the Engine, New, Run and its loop; the inputs SetHost and
//     SetPolicy; flush, which reconciles what an iteration made dirty;
//     fire, which wakes the owners whose backoff ran out.
//   - events.go: the kernel's events, from the reader goroutine
//     (readEvents) to their effect on a connection (applyEvent, connEvent,
//     subEstablished, subClosed) and the backoff of a failed path.
//   - conn.go: a connection's record (conn, subflow, attempt, localAddr)
//     and its small helpers, address-id allocation included.
//   - reconcile_userspace.go: userspace mode: a connection's plan against
//     its state (reconcileConn) and the results of its commands
//     (connResult).
//   - peers.go: what the engine lets a plan hold: the addresses a peer
//     announces, checked by the peer-address policy (announcedPeer,
//     checkPeer), tried one path at a time (peerWaits, tryPeer) and given
//     up (peerFailed); the local and remote addresses of a plan's paths,
//     announces and endpoints (localRefusal, pathRefusal), in both modes.
//   - reconcile_kernel.go and repair.go: kernel mode: endpoints and limits
//     against the plan (reconcileKernel, kernelResult), withdrawal at exit,
//     and the subflow repair.
//   - workers.go: commands, the lanes that keep one command per owner in
//     flight, the runnable queue, the workers that execute commands on
//     their Kernel, and applyResult, which routes a result to its owner.
//   - adopt.go: what the engine learns from listings: adoption at start,
//     resynchronisation after lost events, the sweep.
//   - deferral.go: what holds a connection's paths and announces back
//     while it is young (policy.Deferral, Config.MinJoinAge), and the
//     byte reads that end a deferral early.
//   - timer.go: the wake heap and the backoff; health.go: SetHealth;
//     observe.go: Decisions; status.go: Status, Sync, Conn and Conns;
//     tally.go: the counts Status reports, kept as connections change;
//     board.go: their copy, posted at the end of every iteration, that
//     Status reads; cpu_linux.go: the loop's CPU time answering queries.
//
// # The walk of one connection
//
// A client connection in userspace mode, from its first event to its
// second subflow:
//
//  1. events.go, readEvents: the reader goroutine receives a batch of
//     events (CREATED, then ESTABLISHED) from Config.Events and sends it
//     to the loop.
//  2. engine.go, loop; events.go, applyBatch and applyEvent: the loop
//     applies each event of the batch.
//  3. events.go, connEvent: CREATED starts the record (conn.go, newConn)
//     and, when the policy reads owners, queues the owner lookup (conn.go,
//     askOwner; see Owners); ESTABLISHED marks the connection established
//     and dirty (conn.go, markDirty).
//  4. engine.go, flush: at the end of the loop iteration, every dirty
//     connection is reconciled.
//  5. reconcile_userspace.go, reconcileConn: the policy's ConnPlan
//     (policyConn builds its view, with the peer's addresses that
//     peers.go's checkPeers accepts) against the connection's subflows; a
//     wanted path without subflow that the engine does not refuse (peers.go,
//     pathRefusal) gets an address id (conn.go, subflowID) and a
//     SUBFLOW_CREATE command (opCreateSubflow) in the connection's lane,
//     which joins the runnable queue (workers.go, runQueue.push).
//  6. engine.go, loop: the first runnable lane's command goes to a worker
//     (workers.go, lane.take and sent; reconcile_userspace.go, sentConn
//     records the attempt).
//  7. workers.go, worker and execute: the worker calls
//     Kernel.CreateSubflow and sends the result back to the loop.
//  8. workers.go, applyResult; reconcile_userspace.go, connResult: success
//     marks the attempt accepted (the SYN is out); a failure backs the path
//     off (events.go, pathFailed) until a wake fires (engine.go, fire).
//     observe.go, actionDecision reports the command's outcome.
//  9. events.go, subEstablished: SUB_ESTABLISHED turns the attempt into a
//     subflow this host joined; the next reconcileConn finds the path
//     live. A SUB_CLOSED instead (events.go, subClosed) backs the path
//     off.
//
// In kernel mode, a link change takes this walk: SetHost (engine.go)
// reaches the loop, applyHost and reconcileAll mark kernel mode dirty,
// flush calls reconcileKernel (reconcile_kernel.go), which resolves the
// policy's KernelPlan (wants) and queues an ADD_ADDR command
// (opAddEndpoint) in kernel mode's lane; a worker runs it (workers.go,
// execute: Kernel.AddEndpoint) and kernelResult records the endpoint and,
// with Config.Conns, schedules its repair check (repair.go, repairAdded).
//
// # Kernel mode
//
// The in-kernel path manager's endpoints and limits follow the policy's
// KernelPlan. Endpoints whose id is in Config.OwnedIDs (and that the
// kernel did not create implicitly) are mptcpgod's: the engine adds its
// endpoints with the lowest free id of that range, always bound to their
// device, deletes the owned ones the plan no longer lists, changes
// backup and fullmesh in place, and replaces (deletes, then adds) an
// endpoint whose other flags or device differ. It never touches another
// endpoint, but for the kernel's implicit ones: the kernel creates one
// for the local address of a subflow it opens or accepts without an
// endpoint (following a peer's ADD_ADDR, from the address the route
// picks), which would otherwise hold an address the plan wants for good.
// Such an endpoint is replaced by the wanted one: in place when its id is
// in the owned range (an add without an id, which the kernel takes as
// the replacement, keeping the id and closing nothing), else by deleting
// it and adding the wanted one with an owned id. The kernel sends no event
// for an implicit endpoint: the engine finds it when its own add fails
// (the id or the address is taken) and it reads the endpoints again, or
// at start. Another endpoint holding an address the plan wants is
// reported once, with the likely owner (NetworkManager, mptcpd) and the
// fix. The kernel keeps
// at most 8 endpoints, foreign ones included; what does not fit is left
// out and logged. An endpoint's address must be a usable address of this
// host (localRefusal): the engine refuses any other, counts it
// (Counters.PlansRefused) and logs it once; it removes the endpoint of
// an address that stops being usable and re-adds it when it is
// usable again, which is also how the in-kernel path manager is made to
// re-create subflows it closed.
//
// # Subflow repair (kernel mode)
//
// When an endpoint is added, the in-kernel path manager tries it once on
// every established connection and marks its id used there whatever the
// outcome: a join that failed (bind or connect error, join refused, SYN
// lost) leaves that connection without a subflow from the endpoint until
// the endpoint is deleted and added again. So, with Config.Conns, the
// engine checks each subflow endpoint it added: Config.RepairAfter after
// the add, then every Config.RepairEvery, and, when it has Config.Events,
// RepairAfter after a subflow closed with an error. It counts the connections that existed when the
// endpoint was last added (the first listing after the add names them) or
// that a check saw with a subflow from the endpoint's address (the peer
// accepts their joins), so that a new connection whose join the peer
// refused is never counted; among those, the connections that are
// established, on the client side, not fallen back to TCP, of the
// endpoint's family, not opened from its address, below the subflow limit,
// and have no subflow, in any state, from its address. If any and the
// address is usable, it replaces the endpoint (delete, then add with the
// same id and flags), which briefly closes the endpoint's subflows on
// every connection and re-creates them at once. Replacements of one
// endpoint back off (Config.Backoff) until a check finds every connection
// served; a connection still without its subflow after 3 replacements is
// given up (the peer refuses joins or the path is dead).
// Counters.EndpointRepairs and RepairsGivenUp count both. The engine keeps
// per subflow endpoint the sorted tokens of the connections it counts (4
// bytes each), and those of the connections being repaired or given up;
// the listings themselves are dropped after each check. Endpoints adopted
// at start, whose add the engine did not see, are repaired only after the
// engine itself added them again.
//
// # Userspace mode
//
// Every connection follows the policy's ConnPlan. The engine learns
// connections from events (CREATED, ESTABLISHED, ANNOUNCED, REMOVED,
// SUB_ESTABLISHED, SUB_CLOSED, SUB_PRIORITY, CLOSED) and, at start and
// after lost events, from the ConnLister: one sock_diag walk, read outside
// the loop, merged into the state a chunk of connections per loop
// iteration so that the decisions for new connections never wait for
// the whole of it. Only the connections the engine did not know have
// their local address list read (GET_ADDR), by a worker, after the
// subflows they miss are asked for; a known connection is reconciled only
// when the listing changed it. An attempt the kernel accepted before the
// listing began and whose subflow the listing lacks has failed (sock_diag
// lists joins from SYN-SENT on: its SUB_CLOSED was among the events
// lost) and backs off. Once a connection is established it creates the
// desired paths that have no subflow, once their deferral is over (see
// Deferred joins; a path is pending until SUB_ESTABLISHED or SUB_CLOSED; a
// failure backs off), sets backup bits, announces addresses,
// destroys the subflows it opened that are no longer desired and
// withdraws announces. Subflows and announces of an address other than
// the initial one carry the address's id: the one the kernel already has
// for it, else a free one allocated from the top (a subflow created
// without an id would take id 0, the initial address's, and the kernel
// would refuse the next one). The engine destroys the subflows it opened
// with MP_JOIN, but never those the peer opened and never a connection's
// last established subflow, unless the plan withdraws its address
// (ConnPlan.Withdraw, a metered link over its quota): a policy that drops
// a dead path gets its data sent again at once over the others.
//
// # Peer addresses and plans (userspace mode)
//
// A peer announces addresses of its choosing. Policies see only those
// that the peer-address policy (Config.Peers, internal/peeraddr) accepts:
// no loopback, unspecified, link-local, multicast, broadcast (limited, or
// directed to one of the host's subnets) or reserved address, none of the
// host's own addresses (usable or not), nothing more private than the
// connection's initial peer address, only the connection's port but for
// the configured ones, and the configured prefixes. The verdict is taken
// again at each reconciliation, as the host's addresses change. An
// accepted address is pending until a subflow to it is established
// (MP_JOIN is authenticated with the connection's keys, so only the peer
// can establish one): the engine tries one path to it at a time, with the
// backoff between two tries, and gives the address up after
// Config.Peers' tries failed, for the connection's life (announcing it
// again changes nothing). A connection tries at most maxTriedPeers
// announced addresses; later ones are refused. A joined address's paths
// are retried like the initial address's. Refusals and give-ups are
// counted (Counters.PeerAddrsRefused, PeerAddrsGivenUp) and shown with
// their reason (Conn.PeerAddrs), and logged as a warning once per
// connection.
//
// A plan is checked before any of it reaches the kernel: a path's local
// address and an announce's must be usable addresses of this host, and a
// path's remote address and port the peer's initial ones or an announced
// address the policy accepts. What does not pass is left out, shown
// refused with its reason, counted once per connection
// (Counters.PlansRefused) and logged once; exec policies are held to it
// like the built-in ones.
//
// When an address the engine opened subflows from is gone from the host
// or not usable, it first withdraws the address's id (REMOVE, which
// sends RM_ADDR over another subflow) and then destroys the subflows. On
// Linux 6.18 the FIN or RST of a subflow destroyed after its address was
// deleted never leaves, so the peer keeps its end until the connection
// ends and counts it against its subflow limit (8 add/remove cycles left
// a server with 56 dead subflows, refusing every new join); and
// SUBFLOW_DESTROY deletes the kernel's entry of the id, after which
// REMOVE answers "address with id N not found" and sends nothing. REMOVE
// alone closes only the peer's ends, not the local subflow. "Not found"
// counts as done; other errors back off. Id 0, the initial subflow's,
// is never removed, and an address the policy drops while it is usable
// only has its subflows destroyed (their FIN reaches the peer).
//
// A client's initial subflow that the plan drops is demoted instead
// (SetSubflowBackup true) while its address is usable, and promoted again
// per the plan's Backup bit when the plan wants its path back: on Linux
// 6.18, destroying a connection's initial subflow through the userspace
// path manager while it carries data loses the connection (after the
// client's shutdown the server's data is retransmitted hundreds of times
// and never acknowledged; internal/testing/soak's TestCorrupt, case
// destroy-initial). A backup subflow is sent new data only when no other
// subflow is left. The initial subflow is destroyed when its address is
// gone or not usable, or when it is stalled (policy.Health): it is dead,
// and only closing it makes the kernel send the data queued on it again
// at once over the others. It is destroyed too when the plan withdraws
// its address: Withdraw is an explicit request to stop all traffic on a
// metered path and is honoured, at the risk of that kernel bug.
//
// # Deferred joins
//
// A path or announce of the plan may carry a policy.Deferral (fullmesh's
// join_delay and join_bytes): reconcileConn leaves it out until the
// view's time reaches its NotBefore or the connection has sent or
// received more than its AfterBytes, and Config.MinJoinAge holds every
// create and announce of a connection younger than that whatever the
// policy says (Linux 6.18 corrupts some transfers when a subflow joins
// in a connection's first 10 ms or so). Status shows such a path as
// "deferred", with its deadline. A connection's age counts from its
// CREATED event; connections found by a listing are taken as old.
//
// The cost is kept to what deferral needs. A held connection has one
// entry in the wake heap, the one its backoffs use, at the earliest
// deadline of what it holds; a connection that closes first leaves it
// and costs nothing more. Bytes are not watched per connection: while
// some held connection waits on bytes, one entry of the heap schedules,
// every Config.BytesEvery, one read of the byte counters of all of them
// (Config.Bytes; the daemon reads them with sock_diag, by token for a
// few connections, with one dump for many), outside the loop; a
// connection that crossed its threshold is reconciled when the answer
// comes back. No read runs while nothing waits on bytes.
//
// Every Config.SweepEvery it
// lists the connections again and forgets those the kernel no longer has.
// Connections run by the in-kernel path manager are recognised by the
// kernel's answer and left alone.
//
// # Owners
//
// A policy that selects connections by their socket's owner
// (policy.OwnerReader: a Router with a rule by unit or uid) gets
// policy.Conn.Owner, which Config.Owners reads from the kernel
// (sock_diag: the socket's uid and cgroup id, and the cgroup's path). The
// engine looks it up only while the policy reads it: on CREATED, as the
// first command of the connection's lane, so that a worker does it while
// the handshake completes, and for the connections it knew before a
// policy swap that starts reading owners. A connection is not planned
// until its answer is back: its first plan is then its right one, and no
// subflow is opened by a chain that the owner would not have picked and
// then closed. A client's ESTABLISHED comes one round trip after
// CREATED, which covers a sock_diag lookup (tens of microseconds) on any
// real path; the server side's come together, and its first plan waits
// for the lookup, the cost of one command. A lookup that fails (the
// connection closed already) leaves Owner nil, and rules by owner do not
// select the connection. Connections of one owner share one record.
//
// # Memory
//
// The engine tracks every connection of the host, so it keeps little per
// connection: a record with the connection's subflows, the local address
// ids it learnt and the wanted paths and announces that Status reports.
// The policy's view of a connection is built in buffers shared by all
// connections whenever the policy is asked, commands are dropped once a
// worker took them, backoff state and the timer entry exist only while a
// backoff runs, subflow health stays in the engine's latest report, and
// connections that want the same paths (a client's connections to one
// service) share one copy of them. BenchmarkConnMemory and TestConnMemory
// measure the live heap per connection.
//
// # Health
//
// SetHealth gives the engine the subflows' and links' health, sampled
// from tcp_info (internal/health); the views carry it in
// policy.Subflow.Health and policy.Link.Health. A report that changes a
// connection's subflows' health reconciles that connection; a change of a
// link's health reconciles the endpoints (kernel mode), or every
// connection when a link's stalled verdict changed (userspace mode).
//
// # Status
//
// The engine's answers are the state types of internal/pmstate, which
// marshal to JSON with snake_case keys for the control socket. Status is
// the engine at a glance, and costs the loop nothing: the loop keeps what
// it reports (connections, paths by state, commands in flight and queued,
// what the connections do with each local address) as totals of a tally
// per connection, counted again at the end of every iteration that touched
// the connection (tally.go), and at the end of every iteration copies them
// to a board (board.go, about 70 ns whatever the number of connections).
// Status reads the board without asking the loop, and builds its report
// on the caller's goroutine; it asks the loop only for a SetHost, SetHealth
// or SetPolicy the loop has not taken yet, and when the loop has been in
// one iteration for longer than stuckAfter (a stuck loop must not look like
// a quiet one). Sync is the round trip through
// the loop, for the watchdog and for a caller that must know the loop took
// what it set. Conn and Conns describe connections, with the desired state
// beside the actual one and, for anything missing, why: pending, in backoff
// until when, and the kernel's last error text. Conns answers a page in
// token order, asking the loop connsPerQuery connections at a time, so
// that a listing of thousands never holds the loop up for long.
// Status.Queries is the loop's CPU time answering these questions (Conn,
// the pages, Sync).
//
// # Decisions
//
// Config.Observe receives a Decision for every command's outcome (with
// the time it took and, when an input caused it, the latency from that
// input's arrival), every path put in backoff by a failed subflow, every
// resynchronisation and policy swap, in the order the loop makes them. It
// is called from the loop and must never block: the daemon feeds a
// latency histogram and a drop-on-full fan-out to `mptcpctl events` from
// it.
package pm
