package enginetest_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
)

// fatalTB records the message of Fatalf and ends the goroutine, as
// testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// pollWithin runs enginetest.PollWithin on a fatalTB and returns the
// failure's message, "" when it returned.
func pollWithin(limit time.Duration, what string, cond func() string) string {
	tb := &fatalTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		enginetest.PollWithin(tb, limit, what, cond)
	}()
	<-done
	return tb.msg
}

// TestPollWithin: PollWithin returns once its condition holds, and
// otherwise fails with what was waited for, the limit and the last answer.
func TestPollWithin(t *testing.T) {
	t.Parallel()
	n := 0
	if msg := pollWithin(time.Hour, "the third try", func() string {
		if n++; n < 3 {
			return fmt.Sprintf("try %d", n)
		}
		return ""
	}); msg != "" || n != 3 {
		t.Errorf("condition holding at the third try: failed %q after %d tries", msg, n)
	}
	n = 0
	msg := pollWithin(30*time.Millisecond, "never", func() string {
		n++
		return fmt.Sprintf("try %d", n)
	})
	if want := fmt.Sprintf("never: not within 30ms; last: try %d", n); msg != want || n < 2 {
		t.Errorf("condition never holding: failed %q after %d tries, want %q", msg, n, want)
	}
}
