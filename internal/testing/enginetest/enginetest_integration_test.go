package enginetest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// TestStartKernel: an engine started in a namespace of its own, with its
// Kernels and event subscription, becomes ready, answers, and stops with
// Run's error, once however often stop is called.
func TestStartKernel(t *testing.T) {
	t.Parallel()
	h := netnstest.NewHost(t, "engine")
	fm, err := fullmesh.New(fullmesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	e, stop := enginetest.Start(t, pm.Config{
		Mode: policy.ModeUserspace, Policy: fm, NewKernel: enginetest.NewKernel(h.NetNS()),
		Events: enginetest.Subscribe(t, h.NetNS()), Conns: enginetest.NoConns{}, Logger: enginetest.Logger(t),
	})
	e.SetHost(nil, nil)
	enginetest.WaitReady(t, e)
	enginetest.Poll(t, "status", func() string {
		st, err := e.Status(t.Context())
		if err != nil {
			return err.Error()
		}
		if !st.Ready {
			return "not ready"
		}
		return ""
	})
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := e.Status(t.Context()); !errors.Is(err, pm.ErrNotRunning) {
		t.Errorf("Status after stop: %v, want pm.ErrNotRunning", err)
	}
}

// TestStartError: Start reports a Run that fails (no Kernel can be
// opened) through stop.
func TestStartError(t *testing.T) {
	t.Parallel()
	fm, err := fullmesh.New(fullmesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("no kernel here")
	e, stop := enginetest.Start(t, pm.Config{
		Mode: policy.ModeKernel, Policy: fm, Logger: enginetest.Logger(t),
		NewKernel: func() (pm.Kernel, error) { return nil, boom },
	})
	if err := stop(); !errors.Is(err, boom) || !strings.Contains(err.Error(), "open kernel") {
		t.Errorf("stop: %v, want the failure to open a kernel", err)
	}
	if _, err := e.Status(t.Context()); !errors.Is(err, pm.ErrNotRunning) {
		t.Errorf("Status: %v, want pm.ErrNotRunning", err)
	}
}
