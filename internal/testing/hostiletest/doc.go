// Package hostiletest is a hostile peer for real-kernel tests: the
// userspace path manager of a server's network namespace, run by the
// test, which announces on the server's connections whatever the test
// asks (Server), and a count of the TCP segments a third host receives,
// per destination address and port (Counter) and in all (Nstat).
//
// The daemon's hostile-peer suite and the soak's hostile phase use it;
// it is for tests only.
package hostiletest
