// Package pmstate holds the state types of mptcpgod's API: the engine's
// status, its connections with their paths, subflows and announces, the
// kernel-mode endpoints and limits, the links and addresses, the
// decisions and the counters, each with typed enums for its states and
// kinds.
//
// It is a leaf package, as tailscale's ipnstate is: the engine (pm) fills
// these types, the daemon's control socket sends them, and mptcpctl reads
// them, and none of those has to import another to share them. It
// imports nothing of mptcpgod's; where it needs a type of another package
// (policy.Health, policy.Side), it has a copy of its own with the same
// JSON.
//
// Every type marshals to JSON with snake_case keys: it is the JSON of the
// control socket, documented field by field in docs/control-socket.md.
//
// # Enums
//
// States and kinds are string types with named constants (PathState,
// EndpointState, AnnounceState, DecisionKind, ...): the JSON carries the
// name, code compares with the constants, and a name a newer daemon adds
// decodes as it is, so an older mptcpctl shows it rather than failing.
// Each enum lists its known values (PathStates, ...) for those that
// count by state.
package pmstate
