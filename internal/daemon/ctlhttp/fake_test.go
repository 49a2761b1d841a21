package ctlhttp

import (
	"cmp"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
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

// fakeBackend is a Backend with canned answers: an engine's status and
// its connections.
type fakeBackend struct {
	mu        sync.Mutex
	st        pmstate.Status
	conns     []pmstate.Conn
	info      Info
	reloadErr error
	// block makes Status, Conn and Conns wait for ctx.
	block   bool
	reloads atomic.Int32
	feed    *Feed
	// usage is the usage report; nil means accounting is off.
	usage *usage.Report
}

// newFake returns a fakeBackend with the engine state of es.
func newFake(es engineState) *fakeBackend {
	return &fakeBackend{st: es.st, conns: es.conns, info: testInfo(es.st.Mode), feed: NewFeed(0)}
}

func (b *fakeBackend) wait(ctx context.Context) error {
	b.mu.Lock()
	block := b.block
	b.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (b *fakeBackend) Status(ctx context.Context) (pmstate.Status, error) {
	if err := b.wait(ctx); err != nil {
		return pmstate.Status{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st, nil
}

func (b *fakeBackend) Conn(ctx context.Context, token uint32) (pmstate.Conn, error) {
	if err := b.wait(ctx); err != nil {
		return pmstate.Conn{}, err
	}
	for _, c := range b.conns {
		if c.Token == token {
			return c, nil
		}
	}
	return pmstate.Conn{}, pm.ErrNoConn
}

// Conns pages through the connections as the engine does, in token
// order.
func (b *fakeBackend) Conns(ctx context.Context, q pmstate.ConnQuery) (pmstate.ConnPage, error) {
	if err := b.wait(ctx); err != nil {
		return pmstate.ConnPage{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = pmstate.DefaultConnLimit
	}
	conns := slices.Clone(b.conns)
	slices.SortFunc(conns, func(x, y pmstate.Conn) int { return cmp.Compare(x.Token, y.Token) })
	page := pmstate.ConnPage{Conns: []pmstate.Conn{}}
	for _, c := range conns {
		if c.Token < q.From || q.Peer.IsValid() && !q.Peer.Contains(c.Remote.Addr()) {
			continue
		}
		if len(page.Conns) == limit {
			page.Next = c.Token
			break
		}
		page.Conns = append(page.Conns, c)
	}
	return page, nil
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

func (b *fakeBackend) Events(ctx context.Context) (<-chan ctlapi.Event, error) {
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

// engineState is an engine's status and its connections.
type engineState struct {
	st    pmstate.Status
	conns []pmstate.Conn
}

// summed returns es with its status counting its connections as the
// engine does: connections, paths by state, the addresses' use.
func summed(st pmstate.Status, conns []pmstate.Conn) engineState {
	st.Connections, st.Paths = len(conns), map[pmstate.PathState]int{}
	use := map[netip.Addr]*pmstate.AddrUse{}
	for _, c := range conns {
		for _, p := range c.Paths {
			st.Paths[p.State]++
			u := use[p.Local]
			if u == nil {
				u = &pmstate.AddrUse{Addr: p.Local}
				use[p.Local] = u
			}
			if p.Desired {
				u.Wanted++
				if p.State == pmstate.PathBackoff {
					u.Backoff++
					u.LastFailure = &pmstate.PathFailure{Remote: p.Remote, Time: t0, Error: p.LastError}
				}
			}
			for _, s := range p.Subflows {
				if s.Established {
					u.Subflows++
				}
			}
		}
	}
	for _, u := range use {
		st.Addrs = append(st.Addrs, *u)
	}
	slices.SortFunc(st.Addrs, func(a, b pmstate.AddrUse) int { return a.Addr.Compare(b.Addr) })
	return engineState{st: st, conns: conns}
}

// userspaceStatus is a userspace-mode engine with two connections: one
// meshed over two links, one with a path in backoff.
func userspaceStatus() engineState {
	return summed(pmstate.Status{
		Mode: pmstate.ModeUserspace, Policy: "fullmesh", Started: t0, Ready: true,
		UsableAddrs: []netip.Addr{addr("192.0.2.1"), addr("198.51.100.1")},
		Counters: pmstate.Counters{Actions: map[pmstate.Op]uint64{pmstate.OpCreateSubflow: 3},
			Failures: map[pmstate.Op]uint64{pmstate.OpCreateSubflow: 1},
			Events:   map[string]uint64{"created": 2, "established": 2}, EventBatches: 4, Backoffs: 2},
		RecentErrors: []pmstate.ErrorRecord{{Time: t0, Op: pmstate.OpCreateSubflow, Token: 0xa, Local: ap("198.51.100.1:0"),
			Remote: ap("192.0.2.2:8080"), Error: "genl: create subflow: connection refused"}},
	}, []pmstate.Conn{
		{Token: 0x0000000a, Side: pmstate.SideClient, Local: ap("192.0.2.1:40001"), Remote: ap("192.0.2.2:8080"),
			Since: t0, Established: true, PathManager: pmstate.PathManagerUserspace,
			PeerAddrs: []pmstate.PeerAddr{{Addr: ap("192.0.2.2:8080"), Source: pmstate.SourceInitial, State: pmstate.PeerJoined}},
			Paths: []pmstate.Path{
				{Local: addr("192.0.2.1"), Remote: ap("192.0.2.2:8080"), Desired: true, State: pmstate.PathEstablished,
					Subflows: []pmstate.Subflow{{Local: ap("192.0.2.1:40001"), Remote: ap("192.0.2.2:8080"),
						Initial: true, Established: true}}},
				{Local: addr("198.51.100.1"), Remote: ap("192.0.2.2:8080"), Desired: true, State: pmstate.PathBackoff,
					Failures: 2, BackoffUntil: t0.Add(time.Second), LastError: "subflow closed: connection refused"},
			}},
		{Token: 0x3f97be70, Side: pmstate.SideClient, Local: ap("192.0.2.1:40000"), Remote: ap("192.0.2.2:8080"),
			Since: t0, Established: true, PathManager: pmstate.PathManagerUserspace,
			PeerAddrs: []pmstate.PeerAddr{{Addr: ap("192.0.2.2:8080"), Source: pmstate.SourceInitial, State: pmstate.PeerJoined}},
			Paths: []pmstate.Path{
				{Local: addr("192.0.2.1"), Remote: ap("192.0.2.2:8080"), Desired: true, State: pmstate.PathEstablished,
					Subflows: []pmstate.Subflow{{Local: ap("192.0.2.1:40000"), Remote: ap("192.0.2.2:8080"),
						Initial: true, Established: true}}},
				{Local: addr("198.51.100.1"), Remote: ap("192.0.2.2:8080"), Dev: "eth1", IfIndex: 3, Desired: true,
					State: pmstate.PathEstablished, Subflows: []pmstate.Subflow{{Local: ap("198.51.100.1:41000"),
						Remote: ap("192.0.2.2:8080"), LocalID: 1, Joined: true, Established: true, IfIndex: 3}}},
			}},
	})
}

// kernelStatus is a kernel-mode engine: one owned endpoint, one in
// backoff, one foreign.
func kernelStatus() engineState {
	return summed(pmstate.Status{
		Mode: pmstate.ModeKernel, Policy: "fullmesh", Started: t0, Ready: true,
		Limits: &pmstate.Limits{Subflows: 8, AddAddrAccepted: 8},
		Endpoints: []pmstate.Endpoint{
			{ID: 100, Addr: addr("192.0.2.1"), Dev: "eth0", IfIndex: 2, Flags: "subflow fullmesh", WantFlags: "subflow fullmesh",
				Owned: true, Desired: true, Present: true, State: pmstate.EndpointOK},
			{Addr: addr("198.51.100.1"), Dev: "eth1", IfIndex: 3, WantFlags: "subflow fullmesh", Desired: true,
				State: pmstate.EndpointBackoff, Failures: 1, BackoffUntil: t0.Add(time.Second),
				LastError: "genl: add endpoint: cannot assign requested address"},
			{ID: 1, Addr: addr("203.0.113.1"), Flags: "subflow", Present: true, State: pmstate.EndpointForeign},
		},
		Counters: pmstate.Counters{Actions: map[pmstate.Op]uint64{pmstate.OpAddEndpoint: 2},
			Failures: map[pmstate.Op]uint64{pmstate.OpAddEndpoint: 1}},
		RecentErrors: []pmstate.ErrorRecord{},
	}, nil)
}

// testLinks are the fake daemon's links.
func testLinks() []pmstate.Link {
	return []pmstate.Link{
		{Name: "eth0", Index: 2, Kind: pmstate.LinkWired, Up: true, Usable: true, Addrs: []pmstate.Addr{
			{Addr: addr("192.0.2.1"), Usable: true},
			{Addr: addr("2001:db8:1::1"), Reason: "tentative"},
		}},
		{Name: "eth1", Index: 3, Kind: pmstate.LinkWired, Up: true, Usable: true,
			Addrs: []pmstate.Addr{{Addr: addr("198.51.100.1"), Usable: true}}},
		{Name: "eth2", Index: 4, Kind: pmstate.LinkCellular, Up: true, Usable: true, Metered: true,
			Addrs: []pmstate.Addr{{Addr: addr("203.0.113.1"), Usable: true}}},
		{Name: "veth9", Index: 9, Kind: pmstate.LinkVirtual, Up: true, Reason: "excluded by kind virtual", Addrs: []pmstate.Addr{
			{Addr: addr("192.0.2.99"), Reason: "excluded by kind virtual"}}},
	}
}

func testInfo(mode pmstate.Mode) Info {
	return Info{Version: "v1.2.3", Mode: mode, ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Policy: policy.Config{Chain: []policy.Spec{{Name: "fullmesh"}}}, Links: testLinks(),
		Kernel: ctlapi.Kernel{Release: "6.1.0-57-amd64", Missing: []ctlapi.Capability{{ID: "conn-addr-dump",
			Name: "per-connection address dump", Since: "6.9", Without: "the path manager of a connection is unknown"}}},
		Mitigation: ctlapi.Mitigation{Checksums: true, ChecksumsConfig: "on", CanDefer: mode == pmstate.ModeUserspace,
			MappingErrors: map[string]uint64{"DSSNotMatching": 1}, Checked: t0}}
}

// socketDir returns a new directory for sockets that every user may
// traverse, removed when the test ends.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctlhttp-")
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
func serve(t *testing.T, b Backend, cfg ServerConfig) (*Server, *ctlapi.Client) {
	t.Helper()
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(socketDir(t), "mptcpgod.sock")
	}
	cfg.Backend = b
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runtest.Run(t, "server", s.Run).WaitReady(t, s.Ready())
	return s, &ctlapi.Client{Socket: s.Socket()}
}
