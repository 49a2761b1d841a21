package ctlapi

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

	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/pm"
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
	force := Force{BPF: Mechanism{Available: true}, Units: []ForcedUnit{{Unit: "a.service", Source: SourceConfig,
		Cgroup: "/sys/fs/cgroup/system.slice/a.service", CgroupID: 42, Selected: true}}, UIDs: []uint32{1000}}
	backend := func(st pm.Status) *forceBackend {
		return &forceBackend{fakeBackend: fakeBackend{st: st, info: testInfo(st.Mode), feed: NewFeed(0), usage: rep}, f: force}
	}
	tests := []struct {
		name, method, path string
		st                 pm.Status
	}{
		{"status-userspace", http.MethodGet, "/v0/status", userspaceStatus()},
		{"status-kernel", http.MethodGet, "/v0/status", kernelStatus()},
		{"links-userspace", http.MethodGet, "/v0/links", userspaceStatus()},
		{"links-kernel", http.MethodGet, "/v0/links", kernelStatus()},
		{"paths", http.MethodGet, "/v0/paths", userspaceStatus()},
		{"paths-token", http.MethodGet, "/v0/paths/a", userspaceStatus()},
		{"paths-unknown-token", http.MethodGet, "/v0/paths/dead", userspaceStatus()},
		{"paths-bad-token", http.MethodGet, "/v0/paths/xyz", userspaceStatus()},
		{"policies", http.MethodGet, "/v0/policies", userspaceStatus()},
		{"usage", http.MethodGet, "/v0/usage", userspaceStatus()},
		{"reload", http.MethodPost, "/v0/reload", userspaceStatus()},
		{"force", http.MethodGet, "/v0/force", kernelStatus()},
		{"force-unit", http.MethodPost, "/v0/force/units", kernelStatus()},
		{"wrong-method", http.MethodPost, "/v0/status", userspaceStatus()},
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
		// The lines of GET /v0/events: a decision, and the notice of
		// decisions missed.
		var out bytes.Buffer
		enc := json.NewEncoder(&out)
		for _, ev := range []Event{
			{Decision: pm.Decision{Time: t0, Kind: pm.DecisionAction, Op: "create_subflow", Token: 0xa,
				Local: ap("198.51.100.1:0"), Remote: ap("192.0.2.2:8080"), Error: "genl: create subflow: connection refused",
				RetryAt: t0.Add(time.Second), Took: 200 * time.Microsecond, Latency: time.Millisecond}},
			{Decision: pm.Decision{Time: t0, Kind: pm.DecisionResync, Detail: "genl: events lost"}},
			{Decision: pm.Decision{Time: t0, Kind: EventDropped}, Dropped: 3},
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
