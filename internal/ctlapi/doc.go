// Package ctlapi is mptcpgod's control socket: versioned HTTP/JSON over a
// Unix socket, the wire types, the server (a Handler over a Backend the
// daemon implements, a Server that listens), and the Client mptcpctl uses.
//
// # Routes
//
//	GET  /v0/status          Status: mode, policy, links, endpoints, counters, errors, uptime
//	GET  /v0/links           Links: every interface and why each address is or is not used
//	GET  /v0/paths           Paths: desired against actual paths of every connection
//	GET  /v0/paths/{token}   Paths of one connection (token: up to 8 hex digits)
//	GET  /v0/policies        Policies: the compiled-in policies and their options
//	GET  /v0/usage           usage.Report: traffic, quota and cost of the metered links
//	POST /v0/reload          Reload: re-read the configuration file (root only)
//	GET  /v0/events          the engine's decisions, one JSON Event per line, until closed
//	GET  /metrics            Prometheus text exposition, when the server has metrics
//
// Errors are JSON, {"error": "..."}, with a status code: 400 bad request,
// 403 not allowed, 404 unknown route or connection or usage accounting
// off (ErrUsageOff), 405 wrong method, 413
// body too large, 429 too many event streams, 503 the engine did not
// answer in time. docs/control-socket.md documents every field.
//
// # Who may do what
//
// The socket is mode 0660, owned by the configured group, but the file mode
// is not what decides: every connection's peer credentials (SO_PEERCRED and
// SO_PEERGROUPS) are checked on every request. Reads are allowed to root,
// to the daemon's own user and to members of the group (primary or
// supplementary); anything that changes state needs uid 0.
//
// # Never blocking the engine
//
// Requests are bounded: headers must arrive within ReadHeaderTimeout and
// fit MaxHeaderBytes, bodies are cut at MaxBody, responses are written
// within WriteTimeout. Every engine query runs with QueryTimeout and at most
// a few at a time; answers are copies. Event streams are fed by a Feed
// that drops what a slow reader cannot take and tells it how much it
// missed, so the engine never waits for a client.
//
// # Wire types
//
// The engine's parts of the answers are pm's status types and pm.Decision,
// reused as they are: pm documents them as the control socket's JSON and
// marshals them with snake_case keys, and one definition cannot drift from
// what the engine knows. Links, addresses and the daemon's own facts are
// this package's. TestWireFields pins every JSON key, so a change in pm
// that would change the wire fails here; such a change needs a new route
// version.
package ctlapi
