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

// Poll calls cond until it returns "", or fails the test with what and
// cond's last answer after PollTimeout. It is for conditions that only a
// query can tell (the kernel's state, a status); wait on a channel where
// there is one.
func Poll(t testing.TB, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(PollTimeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(pollEvery)
	}
}
