// Package exec is the "exec" policy: a program of the user's, in any
// language, decides in the chain, speaking a JSON-lines protocol over its
// standard input and output. docs/plugins.md specifies the protocol;
// docs/examples/prefer_wired.py is a complete plugin.
//
// Options (JSON keys; an empty config gives these defaults):
//
//	command          (required)  the program and its arguments; a name without
//	                             a slash is looked up in PATH
//	timeout          "100ms"     how long one request may take (1ms..1s)
//	start_timeout    "30s"       how long the program may take to answer the hello
//	restart_backoff  {"initial": "100ms", "max": "30s"}
//	                             the wait before a restart, doubling from initial
//	                             to max; back to initial after a run of max or longer
//	env              {}          variables added to the daemon's environment
//	modes            ["kernel", "userspace"]
//	                             the modes the program decides in; in the others
//	                             the plan passes through and no program starts
//
// For example {"command": ["/usr/bin/python3", "/etc/mptcpgod/prefer_wired.py"],
// "timeout": "50ms"}.
//
// # The child
//
// The factory starts nothing (package policy builds policies with an
// empty configuration only to describe them); Validate checks that the
// command is executable. The child starts with Start or, failing that, at
// the first call in a configured mode, in a process group of its own,
// with the daemon's environment plus env and the daemon's working
// directory. One child serves the policy and requests are serialised: the
// policy writes one request, waits at most timeout for its answer, and
// only then writes the next.
//
// The engine calls policies from its single loop, so the policy never
// waits long: when the answer is late, the child crashed, or the answer
// breaks the protocol (a line that is not JSON, an answer to another
// request, a line without a request), the call returns the plan it was
// given (the rest of the chain decides) and the child is killed and
// restarted with backoff. While no child is up, calls return at once with
// the plan they were given. An answer that is an error, is of the wrong
// type, or holds a plan that does not decode or validate is logged and
// passed over the same way, but the child stays. Each line the child
// writes to its standard error is logged at info level.
//
// Close stops the child: its standard input closes, the group gets
// SIGTERM and, 2 s later, SIGKILL; Close returns when the child is reaped.
//
// # Wiring
//
// The engine asks a policy again only when something changes, so plans
// made while the child was down (the rest of the chain's) stay until then.
// OnReady is called each time a child is up; the daemon uses it to have
// the engine decide again. SetLogger gives the policy the daemon's logger
// and Stats its counters.
package exec
