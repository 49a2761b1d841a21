package enginetest

import (
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
)

// PollTimeout bounds Poll. It is long, so that a loaded machine does not
// fail a test that would pass: Poll returns as soon as its condition holds.
// $MPTCPGOD_TEST_PATIENCE makes it longer (netnstest.Patience).
var PollTimeout = netnstest.Patience(15 * time.Second)

// pollEvery is how often Poll asks again.
const pollEvery = 10 * time.Millisecond

// Poll calls cond until it returns "", or fails the test after PollTimeout
// with what, the limit and cond's last answer. It is for conditions that
// only a query can tell (the kernel's state, a status); wait on a channel
// where there is one.
func Poll(t testing.TB, what string, cond func() string) {
	t.Helper()
	PollWithin(t, PollTimeout, what, cond)
}

// PollWithin is Poll with a limit of its own, for a wait that PollTimeout
// does not fit: on a program the test does not control, such as an
// interpreter's start, or on a long piece of work, such as a burst of
// thousands of connections. limit is used as given: scale it with
// netnstest.Patience, as PollTimeout is.
func PollWithin(t testing.TB, limit time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, limit, msg)
		}
		time.Sleep(pollEvery)
	}
}
