// Package daemontest runs mptcpgod in tests, the one harness of the
// tests of the daemon, the CLI, the benchmarks and the soak suite.
//
// The binary: Binary builds cmd/mptcpgod and cmd/mptcpctl once per test
// binary (Program builds any other package the same way), into a
// directory that Main removes when the tests end; a package that builds
// calls Main from its TestMain. $MPTCPGOD_TEST_BINARY names a prebuilt
// mptcpgod, with mptcpctl beside it, for machines without the go command
// (the compatibility matrix's guests).
//
// The process: Start runs the binary in a test host's network namespace
// with a configuration, and returns once the daemon has told it, as it
// tells systemd (READY=1 on $NOTIFY_SOCKET), that it is ready, or fails
// the test when it exits first. Its standard output and error are its log
// (Daemon.Log); the test's cleanup stops it with SIGTERM, fails the test
// if it does not exit cleanly, and logs what it wrote when the test failed.
//
// In-process: Run runs the daemon's own package (internal/daemon) in the
// test process instead, for tests that inspect it through its Go API.
//
// Every wait returns on its event; the limits only bound a daemon that
// never answers, longer by $MPTCPGOD_TEST_PATIENCE (netnstest.Patience).
//
// It is for tests only.
package daemontest
