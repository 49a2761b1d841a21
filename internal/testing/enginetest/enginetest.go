package enginetest

import (
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/pm"
)

// Start runs an engine of cfg. The returned function stops it and returns
// Run's error; the test's cleanup stops it if the test did not.
func Start(t testing.TB, cfg pm.Config) (*pm.Engine, func() error) {
	t.Helper()
	e := newEngine(t, cfg)
	return e, runtest.Start(t, "engine", e.Run).Stop
}

// Run runs an engine of cfg until the test ends, and then fails the test if
// Run returned an error.
func Run(t testing.TB, cfg pm.Config) *pm.Engine {
	t.Helper()
	e := newEngine(t, cfg)
	runtest.Run(t, "engine", e.Run)
	return e
}

func newEngine(t testing.TB, cfg pm.Config) *pm.Engine {
	t.Helper()
	e, err := pm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// WaitReady waits until e is ready (pm.Engine.Ready), and fails the test
// after runtest.ReadyTimeout.
func WaitReady(t testing.TB, e *pm.Engine) {
	t.Helper()
	select {
	case <-e.Ready():
	case <-time.After(runtest.ReadyTimeout):
		t.Fatalf("engine not ready after %v", runtest.ReadyTimeout)
	}
}

// NewKernel returns a pm.Config.NewKernel that opens genl clients in the
// network namespace netns (a file descriptor, as netnstest.Host.NetNS
// gives).
func NewKernel(netns int) func() (pm.Kernel, error) {
	return func() (pm.Kernel, error) { return genl.New(&genl.Config{NetNS: netns}) }
}

// Subscribe subscribes to the mptcp_pm events of the network namespace
// netns until the test ends.
func Subscribe(t testing.TB, netns int) *genl.Subscription {
	t.Helper()
	c, err := genl.New(&genl.Config{NetNS: netns})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe()
	if err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(); _ = c.Close() })
	return sub
}

// NoConns is a pm.ConnLister of a namespace without connections yet.
type NoConns struct{}

// ListConns implements pm.ConnLister.
func (NoConns) ListConns() ([]pm.ExistingConn, error) { return nil, nil }

var _ pm.ConnLister = NoConns{}
