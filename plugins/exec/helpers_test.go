package exec_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/plugins/exec"
	"github.com/mptcpgod/mptcpgod/policy"
)

// record is a log record as the recorder keeps it: its attributes, those
// of the logger included, as text.
type record struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu    *sync.Mutex
	recs  *[]record
	attrs []slog.Attr
}

func newRecorder() *recorder { return &recorder{mu: new(sync.Mutex), recs: new([]record)} }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	attrs := map[string]string{}
	for _, a := range r.attrs {
		attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.recs = append(*r.recs, record{rec.Level, rec.Message, attrs})
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	n := *r
	n.attrs = append(slices.Clone(r.attrs), as...)
	return &n
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// find returns the records with the message or the reason msg.
func (r *recorder) find(msg string) []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []record
	for _, rec := range *r.recs {
		if rec.msg == msg || rec.attrs["reason"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range *r.recs {
		fmt.Fprintf(&b, "%s %q %v\n", rec.level, rec.msg, rec.attrs)
	}
	return b.String()
}

// testBinary returns the path of the running test binary, which is a
// fake plugin when fakeEnv is set.
func testBinary(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeConfig is the configuration of the fake plugin mode: a generous
// timeout for healthy fakes, quick restarts.
func fakeConfig(t testing.TB, mode string) exec.Config {
	cfg := exec.DefaultConfig()
	cfg.Command = []string{testBinary(t)}
	cfg.Env = map[string]string{fakeEnv: mode}
	cfg.Timeout = exec.MaxTimeout
	cfg.RestartBackoff = exec.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	return cfg
}

// newExec builds the policy for cfg, logging to a recorder, and closes it
// at cleanup; the log is printed when the test failed.
func newExec(t testing.TB, cfg exec.Config) (*exec.Exec, *recorder) {
	t.Helper()
	p, err := exec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	p.SetLogger(slog.New(rec))
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", rec)
		}
	})
	return p, rec
}

// start starts p in mode and fails the test when it does not come up. It
// waits as long as a start may be configured to take: a python3 behind a
// pyenv shim on a loaded machine takes tens of seconds.
func start(t testing.TB, p *exec.Exec, mode policy.Mode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exec.MaxStartTimeout)
	defer cancel()
	if err := p.Start(ctx, mode); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// The synthetic host of the unit tests: eth0 is wired, wlan0 wifi and
// wwan0 cellular.
var (
	eth0Addr = netip.MustParseAddr("192.0.2.1")
	wlanAddr = netip.MustParseAddr("198.51.100.1")
	wwanAddr = netip.MustParseAddr("203.0.113.1")
	peer     = netip.MustParseAddrPort("203.0.113.200:443")
)

func testView(mode policy.Mode) policy.View {
	return policy.View{
		Mode: mode,
		Now:  time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Links: []policy.Link{
			{Name: "eth0", Index: 2, Kind: policy.LinkWired, Up: true, Usable: true},
			{Name: "wlan0", Index: 3, Kind: policy.LinkWiFi, Up: true, Usable: true},
			{Name: "wwan0", Index: 4, Kind: policy.LinkCellular, Up: true, Usable: true, Metered: true},
		},
		Addrs: []policy.LocalAddr{
			{Addr: eth0Addr, Link: "eth0", IfIndex: 2, Usable: true},
			{Addr: wlanAddr, Link: "wlan0", IfIndex: 3, Usable: true},
			{Addr: wwanAddr, Link: "wwan0", IfIndex: 4, Usable: true},
		},
	}
}

func testConn() policy.Conn {
	local := netip.AddrPortFrom(eth0Addr, 40000)
	return policy.Conn{
		Token: 7, Side: policy.SideClient, Local: local, Remote: peer,
		PeerAddrs: []policy.PeerAddr{{Addr: peer, Source: policy.SourceInitial}},
		Subflows:  []policy.Subflow{{Local: local, Remote: peer, Established: true}},
	}
}

func testConnPlan() policy.ConnPlan {
	return policy.ConnPlan{Paths: []policy.Path{
		{Local: eth0Addr, Dev: "eth0", IfIndex: 2, Remote: peer},
		{Local: wlanAddr, Dev: "wlan0", IfIndex: 3, Remote: peer},
	}}
}

func testKernelPlan() policy.KernelPlan {
	return policy.KernelPlan{
		Endpoints: []policy.Endpoint{
			{Addr: eth0Addr, Dev: "eth0", IfIndex: 2, Subflow: true, Fullmesh: true},
			{Addr: wlanAddr, Dev: "wlan0", IfIndex: 3, Subflow: true, Fullmesh: true},
		},
		Limits: policy.Limits{Subflows: new(uint32(8)), AddAddrAccepted: new(uint32(8))},
	}
}

// backupConnPlan and backupKernelPlan are what the fake "backup" makes of
// the test plans.
func backupConnPlan() policy.ConnPlan {
	p := testConnPlan()
	for i := range p.Paths {
		p.Paths[i].Backup = true
	}
	return p
}

func backupKernelPlan() policy.KernelPlan {
	p := testKernelPlan()
	for i := range p.Endpoints {
		p.Endpoints[i].Backup = true
	}
	return p
}
