package ctlapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/usage"
	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh" // a compiled-in policy for /v0/policies
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

func TestStatusRoute(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{st: userspaceStatus(), info: testInfo(policy.ModeUserspace), feed: NewFeed(0)}
	_, c := serve(t, b, ServerConfig{})
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.UptimeSeconds <= 0 {
		t.Errorf("uptime %v, want > 0", st.UptimeSeconds)
	}
	st.UptimeSeconds = 0
	us := userspaceStatus()
	want := &Status{
		Version: "v1.2.3", Mode: policy.ModeUserspace, Ready: true, Started: t0,
		ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Policy:     Policy{Name: "fullmesh", Chain: []policy.Spec{{Name: "fullmesh"}}, Rules: []policy.RuleSpec{}},
		Links:      annotate(testLinks(), &us), Endpoints: []pm.EndpointStatus{}, Connections: 2,
		Counters: us.Counters, RecentErrors: us.RecentErrors,
	}
	if diff := cmp.Diff(want, st, cmpNet); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestLinksRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   pm.Status
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
			b := &fakeBackend{st: tt.st, info: testInfo(tt.st.Mode), feed: NewFeed(0)}
			_, c := serve(t, b, ServerConfig{})
			ls, err := c.Links(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ls.Mode != tt.st.Mode || len(ls.Links) != 4 || ls.Links[3].Reason != "excluded by kind virtual" || !ls.Links[2].Metered {
				t.Errorf("links %+v", ls)
			}
			got := map[netip4]string{}
			for _, l := range ls.Links {
				for _, a := range l.Addrs {
					got[netip4(a.Addr.String())] = fmt.Sprintf("%v %s", a.Used, a.Use)
					if tt.st.Mode == policy.ModeKernel && (a.Endpoint != nil) != strings.Contains(a.Use, "endpoint") &&
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
	st := userspaceStatus()
	tests := []struct {
		name string
		st   pm.Status
		in   Addr
		want string
	}{
		{"no connections", pm.Status{Mode: policy.ModeUserspace}, Addr{Addr: addr("192.0.2.1"), Usable: true}, "usable; no connections yet"},
		{"wanted in backoff", pm.Status{Mode: policy.ModeUserspace, Conns: st.Conns[1:]}, Addr{Addr: addr("198.51.100.1"), Usable: true},
			"wanted; retrying 192.0.2.2:8080 after: subflow closed: connection refused"},
		{"wanted connecting", pm.Status{Mode: policy.ModeUserspace, Conns: []pm.ConnStatus{{Paths: []pm.PathStatus{
			{Local: addr("198.51.100.1"), Desired: true, State: "connecting"}}}}}, Addr{Addr: addr("198.51.100.1"), Usable: true},
			"wanted by 1 path, none up yet"},
		{"unusable with subflows", st, Addr{Addr: addr("198.51.100.1"), Reason: "link down"},
			"not usable (link down); 1 subflow still on it"},
		{"kernel no endpoint", pm.Status{Mode: policy.ModeKernel}, Addr{Addr: addr("192.0.2.1"), Usable: true},
			"usable; the policy wants no endpoint for it"},
		{"kernel blocked", pm.Status{Mode: policy.ModeKernel, Endpoints: []pm.EndpointStatus{{Addr: addr("192.0.2.1"),
			Desired: true, State: "blocked", Reason: "address taken by endpoint id 3, not mptcpgod's"}}},
			Addr{Addr: addr("192.0.2.1"), Usable: true}, "blocked: address taken by endpoint id 3, not mptcpgod's"},
		{"kernel owned pending", pm.Status{Mode: policy.ModeKernel, Endpoints: []pm.EndpointStatus{{ID: 101, Addr: addr("192.0.2.1"),
			Flags: "subflow", WantFlags: "subflow backup", Owned: true, Present: true, Desired: true, State: "pending"}}},
			Addr{Addr: addr("192.0.2.1"), Usable: true}, "endpoint id 101 (subflow); pending"},
		{"kernel owned and foreign", pm.Status{Mode: policy.ModeKernel, Endpoints: []pm.EndpointStatus{
			{ID: 3, Addr: addr("192.0.2.1"), Present: true, State: "foreign"},
			{ID: 100, Addr: addr("192.0.2.1"), Port: 8080, Flags: "signal", Owned: true, Present: true, State: "ok"}}},
			Addr{Addr: addr("192.0.2.1"), Usable: true}, "endpoint id 100 (signal)"},
		{"kernel unusable left in", pm.Status{Mode: policy.ModeKernel, Endpoints: []pm.EndpointStatus{{ID: 100, Addr: addr("192.0.2.1"),
			Owned: true, Present: true, State: "removing"}}}, Addr{Addr: addr("192.0.2.1"), Reason: "link down"},
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
	b := &fakeBackend{st: userspaceStatus(), info: testInfo(policy.ModeUserspace), feed: NewFeed(0)}
	_, c := serve(t, b, ServerConfig{})
	all, err := c.Paths(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Paths{Mode: policy.ModeUserspace, Conns: userspaceStatus().Conns}, all, cmpNet); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	one, err := c.Conn(t.Context(), 0xa)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&Paths{Mode: policy.ModeUserspace, Conns: userspaceStatus().Conns[1:]}, one, cmpNet); diff != "" {
		t.Errorf("paths of 0000000a (-want +got):\n%s", diff)
	}
	_, err = c.Conn(t.Context(), 0xdead)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "the daemon tracks no connection with token 0000dead") {
		t.Errorf("unknown token: %v", err)
	}
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Message != "the daemon tracks no connection with token 0000dead" {
		t.Errorf("unknown token: %v (%T) does not carry the daemon's reason alone", err, err)
	}
}

func TestPoliciesRoute(t *testing.T) {
	t.Parallel()
	_, c := serve(t, &fakeBackend{feed: NewFeed(0)}, ServerConfig{})
	ps, err := c.Policies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want, err := policy.Describe("fullmesh")
	if err != nil {
		t.Fatal(err)
	}
	var got *policy.Doc
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
	tests := []struct {
		name    string
		usage   *usage.Report
		want    *usage.Report
		wantErr string
	}{
		{"on", &rep, &rep, ""},
		{"no links yet", &usage.Report{Now: t0, StateFile: "/s/usage.json"},
			&usage.Report{Now: t0, StateFile: "/s/usage.json", Links: []usage.Link{}}, ""},
		{"off", nil, nil, "ctlapi: not found: usage accounting is off: no [usage] links configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c := serve(t, &fakeBackend{feed: NewFeed(0), usage: tt.usage}, ServerConfig{})
			got, err := c.Usage(t.Context())
			if tt.wantErr != "" {
				if !errors.Is(err, ErrNotFound) || err.Error() != tt.wantErr {
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
	b := &fakeBackend{st: userspaceStatus(), info: testInfo(policy.ModeUserspace), feed: NewFeed(0)}
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
	var se *StatusError
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
	d := pm.Decision{Time: t0, Kind: pm.DecisionAction, Op: "create_subflow", Token: 7, Local: ap("192.0.2.1:0"),
		Remote: ap("192.0.2.2:80"), Took: time.Millisecond}
	feed.Publish(d)
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Event{Decision: d}, ev, cmpNet); diff != "" {
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
	b := &fakeBackend{st: userspaceStatus(), info: testInfo(policy.ModeUserspace), feed: NewFeed(0)}
	s, _ := serve(t, b, ServerConfig{Limits: Limits{MaxEventStreams: 1}})
	post := func(path, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", path, len(body), body)
	}
	get := func(path string) string {
		return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	}
	routes := "(routes: /v0/status, /v0/links, /v0/paths, /v0/paths/{token}, /v0/policies, /v0/usage, /v0/reload, /v0/events, /v0/force, /v0/force/units, /metrics)"
	tests := []struct {
		name string
		req  string
		code int
		body string
	}{
		{"unknown route", get("/v0/bogus"), 404, `{"error":"no such route \"/v0/bogus\" ` + routes + `"}`},
		{"old version", get("/v1/status"), 404, `{"error":"no such route \"/v1/status\" ` + routes + `"}`},
		{"no metrics", get("/metrics"), 404, `{"error":"no such route \"/metrics\" ` + routes + `"}`},
		{"wrong method", post("/v0/status", ""), 405, `{"error":"POST /v0/status: method not allowed, use GET"}`},
		{"get reload", get("/v0/reload"), 405, `{"error":"GET /v0/reload: method not allowed, use POST"}`},
		{"malformed JSON", post("/v0/reload", "{"), 400, `{"error":"malformed JSON body: unexpected EOF"}`},
		{"not an object", post("/v0/reload", "[1]"), 400,
			`{"error":"malformed JSON body: json: cannot unmarshal array into Go value of type ctlapi.reloadRequest"}`},
		{"unknown field", post("/v0/reload", `{"force":true}`), 400, `{"error":"malformed JSON body: json: unknown field \"force\""}`},
		{"trailing data", post("/v0/reload", `{} {}`), 400, `{"error":"malformed JSON body: data after the object"}`},
		{"bad token", get("/v0/paths/xyz"), 400, `{"error":"invalid token \"xyz\": expected 1 to 8 hexadecimal digits"}`},
		{"long token", get("/v0/paths/123456789"), 400, `{"error":"invalid token \"123456789\": expected 1 to 8 hexadecimal digits"}`},
		{"unknown token", get("/v0/paths/beef"), 404, `{"error":"the daemon tracks no connection with token 0000beef"}`},
		{"usage off", get("/v0/usage"), 404, `{"error":"usage accounting is off: no [usage] links configured"}`},
		{"post usage", post("/v0/usage", ""), 405, `{"error":"POST /v0/usage: method not allowed, use GET"}`},
		{"10 MB body", "POST /v0/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n", 413,
			`{"error":"request body of 10485760 bytes is too large (at most 65536)"}`},
		{"chunked body too large", "POST /v0/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"11000\r\n" + strings.Repeat("x", 0x11000) + "\r\n0\r\n\r\n", 413, `{"error":"request body is too large (at most 65536 bytes)"}`},
		{"empty body reload", post("/v0/reload", ""), 200, `{"policy":"fullmesh (+1 rules)"}`},
		{"huge header", "GET /v0/status HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", 431,
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
	b := &fakeBackend{block: true, info: testInfo(policy.ModeUserspace), feed: NewFeed(0)}
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
		var se *StatusError
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
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || se.Message != "too many event streams open (2)" {
		t.Errorf("third stream: %v", err)
	}
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"3f97be70", 0x3f97be70, true},
		{"a", 0xa, true},
		{"FFFFFFFF", 0xffffffff, true},
		{"", 0, false},
		{"123456789", 0, false},
		{"-1", 0, false},
		{"0x1", 0, false},
		{"g", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseToken(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseToken(%q) = %x, %v; want %x, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
