package runtest

import "os"

// Skipper is the part of testing.TB that Unavailable uses, so that a test
// bed built outside a test (netnstest's TB, for the demo) can be given too.
type Skipper interface {
	Helper()
	Fatalf(format string, args ...any)
	Skip(args ...any)
}

// Unavailable ends a test that cannot run on this machine (a program or a
// privilege it needs is missing), with reason: it fails the test when $CI
// is "true", so that a green CI means every test ran, and skips it
// otherwise.
func Unavailable(tb Skipper, reason string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s (CI=true: failing instead of skipping)", reason)
	}
	tb.Skip(reason)
}
