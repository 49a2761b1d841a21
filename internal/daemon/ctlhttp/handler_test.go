package ctlhttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh" // a compiled-in policy for /v1/policies
	"github.com/mptcpgod/mptcpgod/policy"
)

func TestStatusRoute(t *testing.T) {
	t.Parallel()
	b := newFake(userspaceStatus())
	_, c := serve(t, b, ServerConfig{})
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.UptimeSeconds <= 0 {
		t.Errorf("uptime %v, want > 0", st.UptimeSeconds)
	}
	st.UptimeSeconds = 0
	us := userspaceStatus().st
	want := &ctlapi.Status{
		Version: "v1.2.3", Mode: pmstate.ModeUserspace, Ready: true, Started: t0,
		ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Kernel: ctlapi.Kernel{Release: "6.1.0-57-amd64", Missing: []ctlapi.Capability{{ID: "conn-addr-dump",
			Name: "per-connection address dump", Since: "6.9", Without: "the path manager of a connection is unknown"}}},
		Policy: ctlapi.Policy{Name: "fullmesh", Chain: []ctlapi.PolicySpec{{Name: "fullmesh"}},
			Rules: []ctlapi.PolicyRule{}},
		Links: annotate(testLinks(), &us), Endpoints: []pmstate.Endpoint{}, Connections: 2,
		Paths:    map[pmstate.PathState]int{pmstate.PathEstablished: 3, pmstate.PathBackoff: 1},
		Counters: us.Counters, RecentErrors: us.RecentErrors, Mitigation: testInfo(pmstate.ModeUserspace).Mitigation,
	}
	if diff := cmp.Diff(want, st, cmpNet); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestLinksRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   engineState
		want map[netip4]string // address: used, use
	}{
		{
			name: "userspace",
			st:   userspaceStatus(),
			want: map[netip4]string{
				"192.0.2.1":     "true 2 subflows",
				"2001:db8:1::1": "false not usable: tentative",
				"198.51.100.1":  "true 1 subflow",
				"203.0.113.1":   "false usable; the policy wants no path from it",
				"192.0.2.99":    "false not usable: excluded by kind virtual",
			},
		},
		{
			name: "kernel",
			st:   kernelStatus(),
			want: map[netip4]string{
				"192.0.2.1":     "true endpoint id 100 (subflow fullmesh)",
				"2001:db8:1::1": "false not usable: tentative",
				"198.51.100.1":  "false backoff until 13:00:01: genl: add endpoint: cannot assign requested address",
				"203.0.113.1":   "false endpoint id 1 (subflow) is not mptcpgod's; left alone",
				"192.0.2.99":    "false not usable: excluded by kind virtual",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newFake(tt.st)
			_, c := serve(t, b, ServerConfig{})
			ls, err := c.Links(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ls.Mode != tt.st.st.Mode || len(ls.Links) != 4 || ls.Links[3].Reason != "excluded by kind virtual" || !ls.Links[2].Metered {
				t.Errorf("links %+v", ls)
			}
			got := map[netip4]string{}
			for _, l := range ls.Links {
				for _, a := range l.Addrs {
					got[netip4(a.Addr.String())] = fmt.Sprintf("%v %s", a.Used, a.Use)
					if tt.st.st.Mode == pmstate.ModeKernel && (a.Endpoint != nil) != strings.Contains(a.Use, "endpoint") &&
						!strings.HasPrefix(a.Use, "backoff") {
						t.Errorf("%s: endpoint %+v with use %q", a.Addr, a.Endpoint, a.Use)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("address use (-want +got):\n%s", diff)
			}
		})
	}
}

// netip4 is an address written out, as a map key.
type netip4 string

func TestDescribeUse(t *testing.T) {
	t.Parallel()
	us := userspaceStatus()
	kernel := func(eps ...pmstate.Endpoint) pmstate.Status {
		return pmstate.Status{Mode: pmstate.ModeKernel, Endpoints: eps}
	}
	tests := []struct {
		name string
		st   pmstate.Status
		in   pmstate.Addr
		want string
	}{
		{"no connections", pmstate.Status{Mode: pmstate.ModeUserspace}, pmstate.Addr{Addr: addr("192.0.2.1"), Usable: true},
			"usable; no connections yet"},
		{"wanted in backoff", summed(pmstate.Status{Mode: pmstate.ModeUserspace}, us.conns[:1]).st,
			pmstate.Addr{Addr: addr("198.51.100.1"), Usable: true},
			"wanted; retrying 192.0.2.2:8080 after: subflow closed: connection refused"},
		{"wanted in backoff, failure unknown", pmstate.Status{Mode: pmstate.ModeUserspace, Connections: 1,
			Addrs: []pmstate.AddrUse{{Addr: addr("198.51.100.1"), Wanted: 2, Backoff: 2}}},
			pmstate.Addr{Addr: addr("198.51.100.1"), Usable: true}, "wanted; 2 paths in backoff"},
		{"wanted connecting", summed(pmstate.Status{Mode: pmstate.ModeUserspace}, []pmstate.Conn{{Paths: []pmstate.Path{
			{Local: addr("198.51.100.1"), Desired: true, State: pmstate.PathConnecting}}}}).st,
			pmstate.Addr{Addr: addr("198.51.100.1"), Usable: true}, "wanted by 1 path, none up yet"},
		{"unusable with subflows", us.st, pmstate.Addr{Addr: addr("198.51.100.1"), Reason: "link down"},
			"not usable (link down); 1 subflow still on it"},
		{"kernel no endpoint", kernel(), pmstate.Addr{Addr: addr("192.0.2.1"), Usable: true},
			"usable; the policy wants no endpoint for it"},
		{"kernel blocked", kernel(pmstate.Endpoint{Addr: addr("192.0.2.1"), Desired: true, State: pmstate.EndpointBlocked,
			Reason: "address taken by endpoint id 3, not mptcpgod's"}),
			pmstate.Addr{Addr: addr("192.0.2.1"), Usable: true}, "blocked: address taken by endpoint id 3, not mptcpgod's"},
		{"kernel owned pending", kernel(pmstate.Endpoint{ID: 101, Addr: addr("192.0.2.1"), Flags: "subflow",
			WantFlags: "subflow backup", Owned: true, Present: true, Desired: true, State: pmstate.EndpointPending}),
			pmstate.Addr{Addr: addr("192.0.2.1"), Usable: true}, "endpoint id 101 (subflow); pending"},
		{"kernel owned and foreign", kernel(
			pmstate.Endpoint{ID: 3, Addr: addr("192.0.2.1"), Present: true, State: pmstate.EndpointForeign},
			pmstate.Endpoint{ID: 100, Addr: addr("192.0.2.1"), Port: 8080, Flags: "signal", Owned: true, Present: true,
				State: pmstate.EndpointOK}),
			pmstate.Addr{Addr: addr("192.0.2.1"), Usable: true}, "endpoint id 100 (signal)"},
		{"kernel unusable left in", kernel(pmstate.Endpoint{ID: 100, Addr: addr("192.0.2.1"), Owned: true, Present: true,
			State: pmstate.EndpointRemoving}), pmstate.Addr{Addr: addr("192.0.2.1"), Reason: "link down"},
			"endpoint id 100 (no flags); removing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := tt.in
			describeUse(&a, &tt.st)
			if a.Use != tt.want {
				t.Errorf("use %q, want %q", a.Use, tt.want)
			}
		})
	}
}

func TestPathsRoutes(t *testing.T) {
	t.Parallel()
	b := newFake(userspaceStatus())
	_, c := serve(t, b, ServerConfig{})
	us := userspaceStatus()
	all, err := c.Paths(t.Context(), ctlapi.PathsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&ctlapi.Paths{Mode: pmstate.ModeUserspace, Conns: us.conns}, all, cmpNet); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	first, err := c.Paths(t.Context(), ctlapi.PathsQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Conns) != 1 || first.Conns[0].Token != 0xa || first.Next != 0x3f97be70 {
		t.Errorf("first page of 1: %+v", first)
	}
	second, err := c.Paths(t.Context(), ctlapi.PathsQuery{From: first.Next, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Conns) != 1 || second.Conns[0].Token != 0x3f97be70 || second.Next != 0 {
		t.Errorf("second page of 1: %+v", second)
	}
	none, err := c.Paths(t.Context(), ctlapi.PathsQuery{Peer: netip.MustParsePrefix("203.0.113.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	if len(none.Conns) != 0 || none.Conns == nil {
		t.Errorf("paths of peers in 203.0.113.0/24: %+v, want an empty list", none)
	}
	one, err := c.Conn(t.Context(), 0xa)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&ctlapi.Paths{Mode: pmstate.ModeUserspace, Conns: us.conns[:1]}, one, cmpNet); diff != "" {
		t.Errorf("paths of 0000000a (-want +got):\n%s", diff)
	}
	_, err = c.Conn(t.Context(), 0xdead)
	if !errors.Is(err, ctlapi.ErrNotFound) || !strings.Contains(err.Error(), "the daemon tracks no connection with token 0000dead") {
		t.Errorf("unknown token: %v", err)
	}
	var nf *ctlapi.NotFoundError
	if !errors.As(err, &nf) || nf.Message != "the daemon tracks no connection with token 0000dead" {
		t.Errorf("unknown token: %v (%T) does not carry the daemon's reason alone", err, err)
	}
}

func TestPoliciesRoute(t *testing.T) {
	t.Parallel()
	_, c := serve(t, &fakeBackend{info: testInfo(pmstate.ModeKernel), feed: NewFeed(0)}, ServerConfig{})
	ps, err := c.Policies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ps.Mode != pmstate.ModeKernel {
		t.Errorf("policies of mode %q, want the daemon's, kernel", ps.Mode)
	}
	want, err := policy.Describe("fullmesh")
	if err != nil {
		t.Fatal(err)
	}
	var got *ctlapi.PolicyDoc
	for i := range ps.Policies {
		if ps.Policies[i].Name == "fullmesh" {
			got = &ps.Policies[i]
		}
	}
	if got == nil || got.Summary != want.Summary || len(got.Options) != len(want.Options) || len(want.Options) == 0 {
		t.Errorf("policies %+v, want fullmesh as %+v", ps, want)
	}
}

func TestUsageRoute(t *testing.T) {
	t.Parallel()
	rem := uint64(500)
	rep := usage.Report{Now: t0, StateFile: "/var/lib/mptcpgod/usage.json", Links: []usage.Link{
		{Name: "wwan0", IfIndex: 4, Present: true, Metered: true, MeteredBy: "config", UsedBytes: 1500,
			QuotaBytes: 2000, RemainingBytes: &rem, Period: usage.PeriodMonth, PeriodStart: t0.AddDate(0, 0, -22),
			PeriodEnd: t0.AddDate(0, 0, 8), Sampled: t0}}}
	wire := &ctlapi.Usage{Now: t0, StateFile: "/var/lib/mptcpgod/usage.json", Links: []ctlapi.UsageLink{
		{Name: "wwan0", IfIndex: 4, Present: true, Metered: true, MeteredBy: "config", UsedBytes: 1500,
			QuotaBytes: 2000, RemainingBytes: &rem, Period: "month", PeriodStart: t0.AddDate(0, 0, -22),
			PeriodEnd: t0.AddDate(0, 0, 8), Sampled: t0}}}
	tests := []struct {
		name    string
		usage   *usage.Report
		want    *ctlapi.Usage
		wantErr string
	}{
		{"on", &rep, wire, ""},
		{"no links yet", &usage.Report{Now: t0, StateFile: "/s/usage.json"},
			&ctlapi.Usage{Now: t0, StateFile: "/s/usage.json", Links: []ctlapi.UsageLink{}}, ""},
		{"off", nil, nil, "ctlapi: not found: usage accounting is off: no [usage] links configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c := serve(t, &fakeBackend{feed: NewFeed(0), usage: tt.usage}, ServerConfig{})
			got, err := c.Usage(t.Context())
			if tt.wantErr != "" {
				if !errors.Is(err, ctlapi.ErrNotFound) || err.Error() != tt.wantErr {
					t.Errorf("error %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReloadRoute(t *testing.T) {
	t.Parallel()
	b := newFake(userspaceStatus())
	_, c := serve(t, b, ServerConfig{})
	r, err := c.Reload(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r.Policy != "fullmesh (+1 rules)" || b.reloads.Load() != 1 {
		t.Errorf("reload: %+v after %d reloads", r, b.reloads.Load())
	}
	b.mu.Lock()
	b.reloadErr = errors.New(`test.toml:3: unknown key "polcy"`)
	b.mu.Unlock()
	_, err = c.Reload(t.Context())
	var se *ctlapi.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnprocessableEntity ||
		se.Message != `reload refused, the running configuration stays: test.toml:3: unknown key "polcy"` {
		t.Errorf("refused reload: %v", err)
	}
}

func TestEventsRoute(t *testing.T) {
	t.Parallel()
	feed := NewFeed(2)
	_, c := serve(t, &fakeBackend{feed: feed}, ServerConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := feed.Subscribers(); n != 1 {
		t.Fatalf("%d subscribers after Events returned, want 1", n)
	}
	d := pmstate.Decision{Time: t0, Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow, Token: 7, Local: ap("192.0.2.1:0"),
		Remote: ap("192.0.2.2:80"), Took: time.Millisecond}
	feed.Publish(d)
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ctlapi.Event{Decision: d}, ev, cmpNet); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for feed.Subscribers() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the subscription outlived the client")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// raw sends a raw HTTP request to s and returns the status code and body.
func raw(t *testing.T, s *Server, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("unix", s.Socket())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	b := newFake(userspaceStatus())
	s, _ := serve(t, b, ServerConfig{Limits: Limits{MaxEventStreams: 1}})
	post := func(path, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", path, len(body), body)
	}
	get := func(path string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	}
	routes := "(routes: /v1/status, /v1/links, /v1/paths, /v1/paths/{token}, /v1/policies, /v1/usage, /v1/reload, /v1/events, /v1/force, /v1/force/units, /metrics)"
	tests := []struct {
		name string
		req  string
		code int
		body string
	}{
		{"unknown route", get("/v1/bogus"), 404, `{"error":"no such route \"/v1/bogus\" ` + routes + `"}`},
		{"old version", get("/v0/status"), 404, `{"error":"no such route \"/v0/status\" ` + routes + `"}`},
		{"no metrics", get("/metrics"), 404, `{"error":"no such route \"/metrics\" ` + routes + `"}`},
		{"wrong method", post("/v1/status", ""), 405, `{"error":"POST /v1/status: method not allowed, use GET"}`},
		{"get reload", get("/v1/reload"), 405, `{"error":"GET /v1/reload: method not allowed, use POST"}`},
		{"malformed JSON", post("/v1/reload", "{"), 400, `{"error":"malformed JSON body: unexpected EOF"}`},
		{"not an object", post("/v1/reload", "[1]"), 400,
			`{"error":"malformed JSON body: json: cannot unmarshal array into Go value of type ctlhttp.reloadRequest"}`},
		{"unknown field", post("/v1/reload", `{"force":true}`), 400, `{"error":"malformed JSON body: json: unknown field \"force\""}`},
		{"trailing data", post("/v1/reload", `{} {}`), 400, `{"error":"malformed JSON body: data after the object"}`},
		{"bad token", get("/v1/paths/xyz"), 400, `{"error":"invalid token \"xyz\": expected 1 to 8 hexadecimal digits"}`},
		{"long token", get("/v1/paths/123456789"), 400, `{"error":"invalid token \"123456789\": expected 1 to 8 hexadecimal digits"}`},
		{"unknown token", get("/v1/paths/beef"), 404, `{"error":"the daemon tracks no connection with token 0000beef"}`},
		{"usage off", get("/v1/usage"), 404, `{"error":"usage accounting is off: no [usage] links configured"}`},
		{"post usage", post("/v1/usage", ""), 405, `{"error":"POST /v1/usage: method not allowed, use GET"}`},
		{"10 MB body", "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n", 413,
			`{"error":"request body of 10485760 bytes is too large (at most 65536)"}`},
		{"chunked body too large", "POST /v1/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"11000\r\n" + strings.Repeat("x", 0x11000) + "\r\n0\r\n\r\n", 413, `{"error":"request body is too large (at most 65536 bytes)"}`},
		{"empty body reload", post("/v1/reload", ""), 200, `{"policy":"fullmesh (+1 rules)"}`},
		{"huge header", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431,
			"431 Request Header Fields Too Large"},
		{"garbage", "HELLO\r\n\r\n", 400, "400 Bad Request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := raw(t, s, tt.req)
			if code != tt.code || body != tt.body {
				t.Errorf("got %d %s\nwant %d %s", code, body, tt.code, tt.body)
			}
		})
	}
}

// TestEngineTimeout: a query the engine does not answer gets 503 after
// QueryTimeout, and waiting queries beyond MaxQueries give up too.
func TestEngineTimeout(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{block: true, info: testInfo(pmstate.ModeUserspace), feed: NewFeed(0)}
	_, c := serve(t, b, ServerConfig{Limits: Limits{QueryTimeout: 100 * time.Millisecond, MaxQueries: 1}})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := c.Status(t.Context())
			errs <- err
		}()
	}
	var msgs []string
	for range 3 {
		err := <-errs
		var se *ctlapi.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
			t.Fatalf("Status of a stuck engine: %v, want 503", err)
		}
		msgs = append(msgs, se.Message)
	}
	if !slicesContain(msgs, "the engine did not answer within 100ms") {
		t.Errorf("messages %q lack the timeout", msgs)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestTooManyStreams: root's event streams beyond the shared and its own
// places get 429.
func TestTooManyStreams(t *testing.T) {
	t.Parallel()
	_, c := serve(t, &fakeBackend{feed: NewFeed(0)}, ServerConfig{Limits: Limits{MaxEventStreams: 1, RootEventStreams: 1}})
	for range 2 {
		s, err := c.Events(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	_, err := c.Events(t.Context())
	var se *ctlapi.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || se.Message != "too many event streams open (2)" {
		t.Errorf("third stream: %v", err)
	}
}
