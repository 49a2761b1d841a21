package ctlhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// forceBackend is a fakeBackend that forces units.
type forceBackend struct {
	fakeBackend
	f   ctlapi.Force
	err error // ForceUnit's answer when set
}

func (b *forceBackend) Force(context.Context) (ctlapi.Force, error) { return b.f, nil }

func (b *forceBackend) ForceUnit(_ context.Context, unit string, off bool) (ctlapi.Force, error) {
	if b.err != nil {
		return ctlapi.Force{}, b.err
	}
	if off {
		b.f.Units = nil
	} else {
		b.f.Units = append(b.f.Units, ctlapi.ForcedUnit{Unit: unit, Source: ctlapi.SourceControl})
	}
	return b.f, nil
}

func TestForceRoutes(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "POST /v1/force/units needs root")
	}
	b := &forceBackend{fakeBackend: fakeBackend{info: testInfo(pmstate.ModeKernel), feed: NewFeed(0)},
		f: ctlapi.Force{BPF: ctlapi.Mechanism{Available: true}, Units: []ctlapi.ForcedUnit{{Unit: "a.service", Source: ctlapi.SourceConfig,
			Cgroup: "/sys/fs/cgroup/system.slice/a.service", CgroupID: 42, Selected: true}}, UIDs: []uint32{1000}}}
	var logs syncbuf.Buffer
	_, c := serve(t, b, ServerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	got, err := c.Force(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&b.f, got); diff != "" {
		t.Errorf("GET /v1/force (-want +got):\n%s", diff)
	}
	got, err = c.ForceUnit(t.Context(), "b.service", false)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Units); n != 2 || got.Units[1].Unit != "b.service" {
		t.Errorf("after forcing b.service: %+v", got.Units)
	}
	if _, err := c.ForceUnit(t.Context(), "b.service", true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`msg="unit forced over the control socket" component=control unit=b.service`,
		`msg="unit no longer forced, over the control socket" component=control unit=b.service`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %s:\n%s", want, logs.String())
		}
	}

	for _, tt := range []struct {
		err  error
		code int
	}{
		{fmt.Errorf("%w: not a service", ErrInvalid), http.StatusBadRequest},
		{fmt.Errorf("%w: already forced", ErrConflict), http.StatusConflict},
		{fmt.Errorf("%w: no BPF here", ErrUnavailable), http.StatusServiceUnavailable},
	} {
		b.err = tt.err
		_, err := c.ForceUnit(t.Context(), "c.service", false)
		var se *ctlapi.StatusError
		if !errors.As(err, &se) || se.Code != tt.code || se.Message != tt.err.Error() {
			t.Errorf("ForceUnit with the backend's %v: %v, want a %d with the message", tt.err, err, tt.code)
		}
	}
}

func TestForceRouteWithoutForceBackend(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{info: testInfo(pmstate.ModeKernel), feed: NewFeed(0)}
	_, c := serve(t, b, ServerConfig{})
	if _, err := c.Force(t.Context()); !errors.Is(err, ctlapi.ErrNotFound) {
		t.Errorf("GET /v1/force of a daemon that does not force: %v, want ErrNotFound", err)
	}
}
