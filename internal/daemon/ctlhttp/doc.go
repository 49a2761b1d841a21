// Package ctlhttp serves mptcpgod's control socket: the HTTP handler over
// the daemon (Backend), routed with the standard ServeMux, and the Server
// that listens on the Unix socket. The answers are internal/ctlapi's wire
// types and internal/pmstate's state types; this package converts the
// daemon's own types to them at the edge (present.go: the policy
// configuration and documentation, the usage accounting) and writes the
// text that says how each address is used (annotate).
//
// # Who may do what
//
// The socket is mode 0660, owned by the configured group, but the file mode
// is not what decides: every connection's peer credentials (SO_PEERCRED and
// SO_PEERGROUPS) are checked on every request. Reads are allowed to root,
// to the daemon's own user and to members of the group (primary or
// supplementary); anything that changes state needs uid 0.
//
// # Root is always served
//
// Every connection (gatedListener) and every event stream takes a place of
// its peer's uid (gate): a user other than root has at most a few of each,
// all of them together a bounded number, and root has places of its own
// beyond those, so that no member of the group can lock root out. A
// connection beyond them is answered 429, with the reason, and closed; an
// event stream of a user other than root ends after IdleTimeout without a
// decision, with the trailer ctlapi.StreamEndTrailer: idle.
//
// # Never blocking the engine
//
// Requests are bounded: headers must arrive within ReadHeaderTimeout and
// fit MaxHeaderBytes, bodies are cut at MaxBody, responses are written
// within WriteTimeout. Every engine query runs with QueryTimeout and at most
// MaxQueries at a time; answers are copies. GET /v1/status costs the
// engine's loop nothing (the engine's Status reads the counts the loop
// posts), and GET /v1/paths asks for a page, which the engine describes a
// few connections per question so that its decisions never wait long. Event streams are
// fed by a Feed that drops what a slow reader cannot take and tells it how
// much it missed, so the engine never waits for a client.
package ctlhttp
