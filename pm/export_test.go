package pm

import (
	"testing"
	"time"
)

// TrackedEngine runs an engine tracking n connections, as trackedEngine
// does, for the benchmarks outside the package; open opens one more
// connection (the i-th) and returns the time from its ESTABLISHED event
// to the worker's CreateSubflow.
func TrackedEngine(b *testing.B, n int) (e *Engine, open func(i int) time.Duration) {
	e, events, created := trackedEngine(b, n)
	return e, connTimer(b, events, created, measuredBase)
}
