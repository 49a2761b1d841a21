// Package policy defines how mptcpgod decides which paths MPTCP connections
// use: the Policy interface, the View it decides from, the plans it returns,
// the registry of policies, and the Chain and Router that compose them.
//
// A policy is pure. The engine builds an immutable View (links, addresses,
// and in userspace mode one Conn at a time) and asks its policy for the
// desired state; the engine, not the policy, diffs that state against the
// kernel and acts. Policies never issue commands, do no I/O and take the
// time from View.Now.
//
// # Modes
//
// In kernel mode (View.Mode == ModeKernel) the engine calls Kernel and
// keeps the in-kernel path manager's endpoints and limits equal to the
// returned KernelPlan: at most MaxEndpoints endpoints, identified by
// address and port, each bound to its device. In userspace mode it calls
// Conn for every connection and keeps the connection equal to the returned
// ConnPlan: the complete set of its paths (the initial subflow included),
// identified by local address and remote address and port, and the
// addresses announced to the peer.
//
// # Deferred joins
//
// A Path or Announce may carry a Deferral: the engine creates the subflow
// (sends the ADD_ADDR) only once View.Now reaches Deferral.NotBefore or
// the connection has sent or received more than Deferral.AfterBytes,
// whichever comes first, so that a short connection ends before it pays
// for extra handshakes. Conn.Created and Conn.BytesSent/BytesReceived are
// what a policy computes it from (DeferJoins). fullmesh sets it from its
// join_delay and join_bytes options, and the modifiers after it keep or
// clear it (backup-cellular clears it on the backup paths it wants ready
// for failover). The in-kernel path manager cannot defer: Kernel plans
// have no Deferral.
//
// # Chains
//
// Policies compose like middleware. A Chain passes each policy what the
// ones before it proposed and hands its result to the next: a base policy
// (fullmesh) proposes, modifiers filter and annotate (backup-cellular sets
// Backup on cellular paths, cost-aware drops metered paths over quota).
// After every step the chain sorts the plan and drops duplicates, so the
// same view always gives the same plan, in the same order. A Router picks
// a chain per connection by the first Rule whose Match selects it (peer
// prefix, peer port, local port, side, and the socket's owner: the
// systemd unit whose cgroup it was created in, and its uid), the default
// chain otherwise.
//
// # Owners
//
// A rule by unit or uid reads Conn.Owner, which the engine learns from
// the kernel (sock_diag) only for a policy that implements OwnerReader
// and reads it, as a Router with such a rule does. A connection whose
// owner could not be learnt has a nil Owner and matches no such rule.
//
// # Registry and configuration
//
// Plugins register a Factory from init with Register; New builds one by
// name from its JSON configuration, Build a whole Router from a Config.
// Factories decode with DecodeConfig, which rejects unknown keys, so a typo
// in a config file is an error that names the policy and the option:
//
//	policy/fullmesh: unknown option "max_subflow"
//
// A policy may implement Validator (checked by New), Closer (released by
// Chain.Close and Router.Close), Describer (its options and defaults,
// returned by Describe for `mptcpctl policies`), HealthReader and
// OwnerReader.
//
// # JSON
//
// Every view and plan type marshals to JSON with snake_case keys, for the
// exec plugin's line protocol and for the control socket. Addresses are
// strings ("192.0.2.1", "[2001:db8::1]:443", "192.0.2.0/24"), times are
// RFC 3339, durations are integer nanoseconds in keys ending in "_ns",
// enumerations are lower-case words (kind: "unknown", "wired", "wifi",
// "cellular", "virtual"; side: "client", "server"; source: "initial",
// "announced"; mode: "kernel", "userspace"), and empty optional fields are
// left out. A userspace-mode view, connection and plan:
//
//	{"mode":"userspace","now":"2025-01-02T03:04:05Z",
//	 "links":[{"name":"eth0","index":2,"kind":"wired","up":true,"usable":true,"metered":false},
//	          {"name":"wwan0","index":3,"kind":"cellular","up":true,"usable":true,"metered":true,
//	           "cost_per_gb":2.5,"quota_bytes":10000000000,"used_bytes":123456789,
//	           "usage_since":"2025-01-01T00:00:00Z","health":{"rtt_ns":48000000}}],
//	 "addrs":[{"addr":"192.0.2.1","link":"eth0","ifindex":2,"usable":true},
//	          {"addr":"198.51.100.1","link":"wwan0","ifindex":3,"usable":false,"reason":"tentative"}]}
//
//	{"token":3735928559,"side":"client","local":"192.0.2.1:40000","remote":"203.0.113.1:443",
//	 "peer_addrs":[{"id":0,"addr":"203.0.113.1:443","source":"initial"},
//	               {"id":1,"addr":"203.0.113.2:443","source":"announced"}],
//	 "subflows":[{"local":"192.0.2.1:40000","remote":"203.0.113.1:443","local_id":0,
//	              "remote_id":0,"established":true}],
//	 "owner":{"uid":1000,"cgroup":"/user.slice/user-1000.slice/user@1000.service/app.slice/backup.service"},
//	 "created":"2025-01-02T03:04:04.98Z","bytes_sent":517,"bytes_received":20480}
//
//	{"paths":[{"local":"192.0.2.1","dev":"eth0","ifindex":2,"remote":"203.0.113.1:443"},
//	          {"local":"192.0.2.1","dev":"eth0","ifindex":2,"remote":"203.0.113.2:443",
//	           "not_before":"2025-01-02T03:04:05.03Z","after_bytes":262144}],
//	 "announces":null}
//
// A kernel-mode plan:
//
//	{"endpoints":[{"addr":"192.0.2.1","dev":"eth0","ifindex":2,"subflow":true,"fullmesh":true}],
//	 "limits":{"subflows":8,"add_addr_accepted":8}}
//
// The package imports nothing else of mptcpgod and nothing that does I/O;
// the engine maps its types to the kernel's.
package policy
