// Package holdtest holds thousands of MPTCP connections open for
// benchmarks: a server end that accepts them and keeps them until the
// benchmark ends, the client end's dials, and the open-file limit they
// need.
//
// The server end is a child process, the test binary itself: with both
// ends in one process, 10,000 connections need more descriptors than
// RLIMIT_NOFILE may allow. Start runs it by a given command (a test
// host's, netnstest.Host.Command, to run it in that network namespace)
// with the address to listen on in its environment, and returns the port
// it listens on; the test's cleanup closes its stdin and waits for it. The
// child is the test TestHoldConns of the package that calls Start, which
// must have it as one line:
//
//	func TestHoldConns(t *testing.T) { holdtest.Child(t) }
//
// Child skips unless the environment makes the process the child. The
// child listens with MPTCP, prints "listening PORT" on its standard
// output, accepts every connection and holds it until its stdin closes,
// and then closes them.
//
// Accept is the child's accept-and-hold loop, for a test that holds the
// connections of a listener of its own; Dial opens many connections a few
// at a time per CPU, and RaiseFiles lifts RLIMIT_NOFILE for them.
//
// It is for tests only.
package holdtest
