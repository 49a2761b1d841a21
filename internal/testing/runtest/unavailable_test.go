package runtest

import (
	"strings"
	"testing"
)

// TestUnavailable: a test that cannot run fails under CI=true and skips
// otherwise, with the reason either way.
func TestUnavailable(t *testing.T) {
	for _, tt := range []struct {
		ci    string
		fails bool
	}{{"true", true}, {"", false}, {"false", false}} {
		t.Setenv("CI", tt.ci)
		tb := &fakeTB{}
		inTest(func() { Unavailable(tb, "no go command") })
		ended, want := tb.skipped, "skip"
		if tt.fails {
			ended, want = tb.failures, "failure"
		}
		if len(tb.failures)+len(tb.skipped) != 1 || len(ended) != 1 || !strings.HasPrefix(ended[0], "no go command") {
			t.Errorf("CI=%q: failures %q, skips %q, want one %s with the reason", tt.ci, tb.failures, tb.skipped, want)
		}
	}
}
