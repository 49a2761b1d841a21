package ctlapi

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// cmpNet compares netip values by ==.
var cmpNet = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})

// t0 is the fake daemon's start.
var t0 = time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)

var (
	ap   = netip.MustParseAddrPort
	addr = netip.MustParseAddr
)

// fakeBackend is a Backend with canned answers.
type fakeBackend struct {
	mu        sync.Mutex
	st        pm.Status
	info      Info
	reloadErr error
	// block makes Status and Conn wait for ctx.
	block   bool
	reloads atomic.Int32
	feed    *Feed
	// usage is the usage report; nil means accounting is off.
	usage *usage.Report
}

func (b *fakeBackend) Status(ctx context.Context) (pm.Status, error) {
	b.mu.Lock()
	st, block := b.st, b.block
	b.mu.Unlock()
	if block {
		<-ctx.Done()
		return pm.Status{}, ctx.Err()
	}
	return st, nil
}

func (b *fakeBackend) Conn(ctx context.Context, token uint32) (pm.ConnStatus, error) {
	st, err := b.Status(ctx)
	if err != nil {
		return pm.ConnStatus{}, err
	}
	for _, c := range st.Conns {
		if c.Token == token {
			return c, nil
		}
	}
	return pm.ConnStatus{}, pm.ErrNoConn
}

func (b *fakeBackend) Info(context.Context) (Info, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.info, nil
}

func (b *fakeBackend) Reload(context.Context) error {
	b.reloads.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reloadErr != nil {
		return b.reloadErr
	}
	b.st.Policy = "fullmesh (+1 rules)"
	return nil
}

func (b *fakeBackend) Events(ctx context.Context) (<-chan Event, error) {
	return b.feed.Subscribe(ctx), nil
}

func (b *fakeBackend) Usage(context.Context) (usage.Report, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.usage == nil {
		return usage.Report{}, ErrUsageOff
	}
	return *b.usage, nil
}

// userspaceStatus is a userspace-mode engine with two connections: one
// meshed over two links, one with a path in backoff.
func userspaceStatus() pm.Status {
	return pm.Status{
		Mode: policy.ModeUserspace, Policy: "fullmesh", Started: t0, Ready: true,
		UsableAddrs: []netip.Addr{addr("192.0.2.1"), addr("198.51.100.1")},
		Conns: []pm.ConnStatus{
			{Token: 0x3f97be70, Side: policy.SideClient, Local: ap("192.0.2.1:40000"), Remote: ap("192.0.2.2:8080"),
				Since: t0, Established: true, PathManager: "userspace",
				PeerAddrs: []policy.PeerAddr{{Addr: ap("192.0.2.2:8080")}},
				Paths: []pm.PathStatus{
					{Local: addr("192.0.2.1"), Remote: ap("192.0.2.2:8080"), Desired: true, State: "established",
						Subflows: []pm.SubflowStatus{{Local: ap("192.0.2.1:40000"), Remote: ap("192.0.2.2:8080"),
							Initial: true, Established: true}}},
					{Local: addr("198.51.100.1"), Remote: ap("192.0.2.2:8080"), Dev: "eth1", IfIndex: 3, Desired: true,
						State: "established", Subflows: []pm.SubflowStatus{{Local: ap("198.51.100.1:41000"),
							Remote: ap("192.0.2.2:8080"), LocalID: 1, Joined: true, Established: true, IfIndex: 3}}},
				}},
			{Token: 0x0000000a, Side: policy.SideClient, Local: ap("192.0.2.1:40001"), Remote: ap("192.0.2.2:8080"),
				Since: t0, Established: true, PathManager: "userspace",
				PeerAddrs: []policy.PeerAddr{{Addr: ap("192.0.2.2:8080")}},
				Paths: []pm.PathStatus{
					{Local: addr("192.0.2.1"), Remote: ap("192.0.2.2:8080"), Desired: true, State: "established",
						Subflows: []pm.SubflowStatus{{Local: ap("192.0.2.1:40001"), Remote: ap("192.0.2.2:8080"),
							Initial: true, Established: true}}},
					{Local: addr("198.51.100.1"), Remote: ap("192.0.2.2:8080"), Desired: true, State: "backoff",
						Failures: 2, BackoffUntil: t0.Add(time.Second), LastError: "subflow closed: connection refused"},
				}},
		},
		Counters: pm.Counters{Actions: map[string]uint64{"create_subflow": 3}, Failures: map[string]uint64{"create_subflow": 1},
			Events: map[string]uint64{"created": 2, "established": 2}, EventBatches: 4, Backoffs: 2},
		RecentErrors: []pm.ErrorRecord{{Time: t0, Op: "create_subflow", Token: 0xa, Local: ap("198.51.100.1:0"),
			Remote: ap("192.0.2.2:8080"), Error: "genl: create subflow: connection refused"}},
	}
}

// kernelStatus is a kernel-mode engine: one owned endpoint, one in
// backoff, one foreign.
func kernelStatus() pm.Status {
	return pm.Status{
		Mode: policy.ModeKernel, Policy: "fullmesh", Started: t0, Ready: true,
		Limits: &pm.LimitsStatus{Subflows: 8, AddAddrAccepted: 8},
		Endpoints: []pm.EndpointStatus{
			{ID: 100, Addr: addr("192.0.2.1"), Dev: "eth0", IfIndex: 2, Flags: "subflow fullmesh", WantFlags: "subflow fullmesh",
				Owned: true, Desired: true, Present: true, State: "ok"},
			{Addr: addr("198.51.100.1"), Dev: "eth1", IfIndex: 3, WantFlags: "subflow fullmesh", Desired: true,
				State: "backoff", Failures: 1, BackoffUntil: t0.Add(time.Second), LastError: "genl: add endpoint: cannot assign requested address"},
			{ID: 1, Addr: addr("203.0.113.1"), Flags: "subflow", Present: true, State: "foreign"},
		},
		Counters:     pm.Counters{Actions: map[string]uint64{"add_endpoint": 2}, Failures: map[string]uint64{"add_endpoint": 1}},
		RecentErrors: []pm.ErrorRecord{},
	}
}

// testLinks are the fake daemon's links.
func testLinks() []Link {
	return []Link{
		{Name: "eth0", Index: 2, Kind: "wired", Up: true, Usable: true, Addrs: []Addr{
			{Addr: addr("192.0.2.1"), Usable: true},
			{Addr: addr("2001:db8:1::1"), Reason: "tentative"},
		}},
		{Name: "eth1", Index: 3, Kind: "wired", Up: true, Usable: true, Addrs: []Addr{{Addr: addr("198.51.100.1"), Usable: true}}},
		{Name: "eth2", Index: 4, Kind: "cellular", Up: true, Usable: true, Metered: true, Addrs: []Addr{{Addr: addr("203.0.113.1"), Usable: true}}},
		{Name: "veth9", Index: 9, Kind: "virtual", Up: true, Reason: "excluded by kind virtual", Addrs: []Addr{
			{Addr: addr("192.0.2.99"), Reason: "excluded by kind virtual"}}},
	}
}

func testInfo(mode policy.Mode) Info {
	return Info{Version: "v1.2.3", Mode: mode, ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Policy: policy.Config{Chain: []policy.Spec{{Name: "fullmesh"}}}, Links: testLinks()}
}

// socketDir returns a new directory for sockets that every user may
// traverse, removed when the test ends.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctlapi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serve runs a Server for b on a new socket until the test ends, and
// returns it with a Client for it.
func serve(t *testing.T, b Backend, cfg ServerConfig) (*Server, *Client) {
	t.Helper()
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(socketDir(t), "mptcpgod.sock")
	}
	cfg.Backend = b
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server not ready after 5s")
	}
	return s, &Client{Socket: s.Socket()}
}
