// Package enginetest holds the test support that the tests of pm and of
// the packages around it share: an engine runner (Start, Run, WaitReady),
// the Kernels and event subscription of a test's network namespace
// (NewKernel, Subscribe), a poll for conditions only a query can tell
// (Poll, and PollWithin for a limit of its own), every connection an
// engine tracks, page by page, with its status (Conns, Status), and a
// logger into the test's log (Logger).
//
// It is for tests only; the daemon never imports it. pm's own unit tests,
// in package pm, have their fake-kernel harness in pm/fake_test.go.
package enginetest
