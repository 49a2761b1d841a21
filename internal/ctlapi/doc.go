// Package ctlapi is the wire side of mptcpgod's control socket: the JSON
// types of its answers and the Client that mptcpctl uses. The daemon's
// side, the handler and the server, is internal/daemon/ctlhttp.
//
// The protocol is versioned HTTP/JSON over a Unix socket. Routes:
//
//	GET  /v1/status          Status: mode, policy, links, endpoints, counts, counters, errors, uptime
//	GET  /v1/links           Links: every interface and why each address is or is not used
//	GET  /v1/paths           Paths: a page of connections with their desired and actual paths
//	                         (query: from=TOKEN, limit=N, peer=ADDRESS or PREFIX)
//	GET  /v1/paths/{token}   Paths of one connection (token: up to 8 hex digits)
//	GET  /v1/policies        Policies: the compiled-in policies and their options
//	GET  /v1/usage           Usage: traffic, quota and cost of the metered links
//	POST /v1/reload          Reload: re-read the configuration file (root only)
//	GET  /v1/events          the engine's decisions, one JSON Event per line, until closed
//	                         (for users other than root, until idle: ErrStreamIdle)
//	GET  /v1/force           Force: the units and users forced with BPF
//	POST /v1/force/units     Force, after forcing or unforcing a unit (root only)
//	GET  /metrics            Prometheus text exposition, when the daemon has metrics
//
// Errors are JSON (ErrorBody) with a status code; the Client turns 403 into
// *AccessDeniedError, 404 into *NotFoundError, others into *StatusError, and
// a socket nobody listens on into a *DialError matching ErrNotRunning.
// A connection or an event stream beyond the caller's user's places is a
// 429 (*StatusError); an event stream the daemon ended for being idle
// (the trailer StreamEndTrailer: idle) ends with ErrStreamIdle.
// docs/control-socket.md documents every field.
//
// # Wire types
//
// The engine's parts of the answers are the state types of
// internal/pmstate, which the engine fills; the daemon's parts (its
// version, the policy configuration, the usage accounting, the policies'
// documentation) are this package's, copies of the daemon's own types with
// the same JSON, so that mptcpctl builds without the daemon (tailscale's
// apitype does the same). TestWireFields pins every JSON key: removing or
// renaming one needs a new version of the routes.
package ctlapi
