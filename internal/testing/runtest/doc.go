// Package runtest runs, for a test, what runs until its context is done
// (a Run(ctx) error method: the engine, a monitor, a server, the daemon),
// and says how long tests wait.
//
// Run starts it in a goroutine until the test ends, and the test's cleanup
// fails the test if Run returned an error; Start does the same but leaves
// the error to the test. Either returns a Running: Stop cancels Run's
// context, waits until Run returns and returns its error, as often as it is
// called, by the test and by the cleanup; Done and Wait watch a Run that
// returns by itself; WaitReady waits for the ready channel of what runs,
// failing the test if Run returns first or after ReadyTimeout.
//
// A cleanup that must follow Run's return (a Close) is registered before
// Run or Start: cleanups run last registered first.
//
// Unavailable ends a test that cannot run on this machine: it fails under
// CI=true and skips otherwise.
//
// Patience multiplies the limits of the tests' waits by
// $MPTCPGOD_TEST_PATIENCE, for slow machines.
//
// The package imports only the standard library, so that the tests of
// packages that build on every system can use it. It is for tests only.
package runtest
