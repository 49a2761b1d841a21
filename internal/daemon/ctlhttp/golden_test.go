package ctlhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/usage"
)

// TestRouteGoldens compares the JSON of every route with
// testdata/routes/NAME.golden: the exact bytes a client reads.
func TestRouteGoldens(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return t0.Add(90 * time.Second) }
	quota := uint64(8_500_000_000)
	rep := &usage.Report{Now: t0, StateFile: "/var/lib/mptcpgod/usage.json", Saved: t0.Add(-30 * time.Second),
		Links: []usage.Link{{Name: "wwan0", IfIndex: 4, Present: true, Metered: true, MeteredBy: "config",
			UsedBytes: 1_500_000_000, QuotaBytes: 10_000_000_000, RemainingBytes: &quota, Period: usage.PeriodMonth,
			PeriodStart: t0.Add(-24 * time.Hour), PeriodEnd: t0.Add(24 * time.Hour), CostPerGB: 2.5, Cost: 3.75,
			Sampled: t0}}}
	force := ctlapi.Force{BPF: ctlapi.Mechanism{Available: true}, Units: []ctlapi.ForcedUnit{{Unit: "a.service", Source: ctlapi.SourceConfig,
		Cgroup: "/sys/fs/cgroup/system.slice/a.service", CgroupID: 42, Selected: true}}, UIDs: []uint32{1000}}
	backend := func(es engineState) *forceBackend {
		b := &forceBackend{fakeBackend: fakeBackend{st: es.st, conns: es.conns, info: testInfo(es.st.Mode),
			feed: NewFeed(0), usage: rep}, f: force}
		return b
	}
	tests := []struct {
		name, method, path string
		st                 engineState
	}{
		{"status-userspace", http.MethodGet, "/v1/status", userspaceStatus()},
		{"status-kernel", http.MethodGet, "/v1/status", kernelStatus()},
		{"links-userspace", http.MethodGet, "/v1/links", userspaceStatus()},
		{"links-kernel", http.MethodGet, "/v1/links", kernelStatus()},
		{"paths", http.MethodGet, "/v1/paths", userspaceStatus()},
		{"paths-page", http.MethodGet, "/v1/paths?limit=1", userspaceStatus()},
		{"paths-next-page", http.MethodGet, "/v1/paths?from=b&limit=1", userspaceStatus()},
		{"paths-peer", http.MethodGet, "/v1/paths?peer=198.51.100.0/24", userspaceStatus()},
		{"paths-bad-query", http.MethodGet, "/v1/paths?limit=0", userspaceStatus()},
		{"paths-token", http.MethodGet, "/v1/paths/a", userspaceStatus()},
		{"paths-unknown-token", http.MethodGet, "/v1/paths/dead", userspaceStatus()},
		{"paths-bad-token", http.MethodGet, "/v1/paths/xyz", userspaceStatus()},
		{"policies", http.MethodGet, "/v1/policies", userspaceStatus()},
		{"usage", http.MethodGet, "/v1/usage", userspaceStatus()},
		{"reload", http.MethodPost, "/v1/reload", userspaceStatus()},
		{"force", http.MethodGet, "/v1/force", kernelStatus()},
		{"force-unit", http.MethodPost, "/v1/force/units", kernelStatus()},
		{"wrong-method", http.MethodPost, "/v1/status", userspaceStatus()},
		{"unknown-route", http.MethodGet, "/v0/status", userspaceStatus()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(backend(tt.st), HandlerOptions{Now: now})
			var body *strings.Reader
			if tt.method == http.MethodPost && strings.HasSuffix(tt.path, "/units") {
				body = strings.NewReader(`{"unit":"b.service"}`)
			} else {
				body = strings.NewReader("")
			}
			req := httptest.NewRequestWithContext(WithPeer(context.Background(), Peer{}), tt.method, tt.path, body)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, w.Body.Bytes(), "", "  "); err != nil {
				t.Fatalf("%s %s: %v: %q", tt.method, tt.path, err, w.Body.String())
			}
			got := []byte(w.Result().Status + "\n" + pretty.String() + "\n")
			golden(t, filepath.Join("testdata", "routes", tt.name+".golden"), got)
		})
	}
	t.Run("events", func(t *testing.T) {
		// The lines of GET /v1/events: a decision, and the notice of
		// decisions missed.
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		for _, ev := range []ctlapi.Event{
			{Decision: pmstate.Decision{Time: t0, Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow, Token: 0xa,
				Local: ap("198.51.100.1:0"), Remote: ap("192.0.2.2:8080"), Error: "genl: create subflow: connection refused",
				RetryAt: t0.Add(time.Second), Took: 200 * time.Microsecond, Latency: time.Millisecond}},
			{Decision: pmstate.Decision{Time: t0, Kind: pmstate.DecisionResync, Detail: "genl: events lost"}},
			{Decision: pmstate.Decision{Time: t0, Kind: ctlapi.EventDropped}, Dropped: 3},
		} {
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
		}
		golden(t, filepath.Join("testdata", "routes", "events.golden"), out.Bytes())
	})
}

// golden compares got with the file at p; -update writes it.
func golden(t *testing.T, p string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs:\n--- want\n%s\n--- got\n%s", p, want, got)
	}
}
