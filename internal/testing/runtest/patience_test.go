package runtest

import (
	"testing"
	"time"
)

// TestPatience: the waits grow by the factor of MPTCPGOD_TEST_PATIENCE,
// and never shrink.
func TestPatience(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want time.Duration
	}{{"", 10 * time.Second}, {"4", 40 * time.Second}, {"2.5", 25 * time.Second}, {"0.5", 10 * time.Second}, {"x", 10 * time.Second}} {
		t.Setenv(PatienceEnv, tt.env)
		if got := Patience(10 * time.Second); got != tt.want {
			t.Errorf("Patience(10s) with %s=%q = %v, want %v", PatienceEnv, tt.env, got, tt.want)
		}
	}
}
