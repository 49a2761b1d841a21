package enginetest

import (
	"bytes"
	"log/slog"
	"os"
	"testing"
)

// Logger returns a logger, at debug level, into the test's log, or to
// standard error when the environment variable MPTCPGOD_TEST_LOG is "1"
// (to follow a long test as it runs).
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter writes each log line to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if os.Getenv("MPTCPGOD_TEST_LOG") == "1" {
		return os.Stderr.Write(p)
	}
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
