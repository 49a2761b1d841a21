package netnstest

// TB is the part of testing.TB that netnstest uses. *testing.T and
// *testing.B satisfy it; so can a program that builds a testbed outside a
// test (the demo), by running its cleanups on exit and exiting on Fatal.
type TB interface {
	Helper()
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	FailNow()
	Skip(args ...any)
}
