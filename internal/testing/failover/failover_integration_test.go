package failover_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/failover"
)

// TestFailover runs the scenario with mptcpgod and checks what holds
// whatever the timing; it logs the stalls, which internal/testing/bench's
// BenchmarkFailover reports.
func TestFailover(t *testing.T) {
	t.Parallel()
	o := failover.Run(t, failover.Mptcpgod, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Logf("mptcpgod: %s", o)
	if !o.Intact() {
		t.Errorf("received %d bytes, sha256 %x; sent %d, sha256 %x", o.GotN, o.GotSum, o.SentN, o.SentSum)
	}
	if o.CellBeforeCut*20 >= uint64(o.DeliveredBeforeCut) {
		t.Errorf("the cellular link carried %d bytes before the cut, of %d delivered: want under 5%%",
			o.CellBeforeCut, o.DeliveredBeforeCut)
	}
	if o.DeliveredAtRestore <= o.DeliveredBeforeCut {
		t.Errorf("nothing delivered during the cut: %d bytes before, %d at the restore",
			o.DeliveredBeforeCut, o.DeliveredAtRestore)
	}
	if o.Promoted.IsZero() {
		t.Error("the cellular subflow was not promoted during the cut")
	}
	if o.Demoted.IsZero() {
		t.Error("the cellular subflow was not demoted after the restore")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
