// Package soak holds mptcpgod's soak test: the built daemon, run in a
// network namespace of an internal/netnstest testbed, is put under hours'
// worth of abuse compressed into minutes (link flaps, kill -9 and restart
// under traffic, floods of short MPTCP connections, a stream of bad
// control-socket requests), and at the end the test asserts that the daemon
// is up, that the kernel's state is the desired one with nothing duplicated
// or leaked, that its goroutines and memory came back to their baseline,
// and that no transfer was corrupted.
//
// The test is opt-in: it skips unless run with -soak (`make soak`); see
// docs/soak.md for the flags and what each assertion means. The package
// has no non-test code.
package soak
