package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// daemonT0 is when the daemons of these tests started.
var daemonT0 = time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)

var (
	dap   = netip.MustParseAddrPort
	daddr = netip.MustParseAddr
)

func testDaemonLinks() []pmstate.Link {
	return []pmstate.Link{
		{Name: "eth0", Index: 2, Kind: pmstate.LinkWired, Up: true, Usable: true, Addrs: []pmstate.Addr{
			{Addr: daddr("192.0.2.1"), Usable: true, Used: true, Use: "2 subflows", Subflows: 2},
			{Addr: daddr("2001:db8:1::1"), Reason: "tentative", Use: "not usable: tentative"},
		}},
		{Name: "wwan0", Index: 4, Kind: pmstate.LinkCellular, Up: true, Usable: true, Metered: true, Addrs: []pmstate.Addr{
			{Addr: daddr("203.0.113.1"), Usable: true, Use: "wanted; retrying 192.0.2.2:8080 after: subflow closed: connection refused"},
		}},
		{Name: "veth9", Index: 9, Kind: pmstate.LinkVirtual, Up: true, Reason: "excluded by kind virtual", Addrs: []pmstate.Addr{
			{Addr: daddr("192.0.2.99"), Reason: "excluded by kind virtual", Use: "not usable: excluded by kind virtual"},
		}},
		{Name: "eth1", Index: 3, Kind: pmstate.LinkWired, Reason: "link down", Addrs: []pmstate.Addr{}},
	}
}

func testUserspaceStatus() *ctlapi.Status {
	return &ctlapi.Status{
		Version: "v1.2.3", Mode: pmstate.ModeUserspace, Ready: true, Started: daemonT0, UptimeSeconds: 3723.4,
		ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Kernel: ctlapi.Kernel{Release: "6.1.0-57-amd64", Missing: []ctlapi.Capability{
			{ID: "listener-events", Name: "listener events", Since: "6.2", Without: "none needed: mptcpgod does not use them"},
			{ID: "conn-addr-dump", Name: "per-connection address dump", Since: "6.9", Without: "mptcpctl connections shows the path manager as unknown"}}},
		Policy: ctlapi.Policy{Name: "fullmesh (+2 rules)", Chain: []ctlapi.PolicySpec{{Name: "fullmesh"}},
			Rules: []ctlapi.PolicyRule{{PeerPrefix: netip.MustParsePrefix("203.0.113.0/24"), PeerPort: 443,
				Side: pmstate.SideClient, Chain: []ctlapi.PolicySpec{{Name: "fullmesh", Config: json.RawMessage(`{ "max_subflows": 1 }`)}}},
				{Unit: "backup.service", UID: new(uint32(0)), Chain: []ctlapi.PolicySpec{{Name: "fullmesh"}, {Name: "cost-aware"}}}}},
		Links:       testDaemonLinks(),
		Endpoints:   []pmstate.Endpoint{},
		Connections: 2, InFlight: 1,
		Counters: pmstate.Counters{Actions: map[pmstate.Op]uint64{pmstate.OpCreateSubflow: 10, pmstate.OpAnnounce: 2},
			Failures: map[pmstate.Op]uint64{pmstate.OpCreateSubflow: 1}, Events: map[string]uint64{"created": 2, "established": 2,
				"sub_established": 4}, EventBatches: 5, Backoffs: 1,
			PeerAddrsRefused: map[string]uint64{"port": 1, "class": 2}, PeerAddrsGivenUp: 1,
			PlansRefused: map[string]uint64{"path": 1, "announce": 1},
			Deferral:     pmstate.DeferralCounters{Held: 9, ReleasedTime: 3, ReleasedBytes: 1, EndedHeld: 5, ByteReads: 40}},
		Paths: map[pmstate.PathState]int{pmstate.PathEstablished: 3, pmstate.PathBackoff: 1, pmstate.PathDeferred: 1,
			pmstate.PathKept: 1, pmstate.PathRefused: 1},
		RecentErrors: []pmstate.ErrorRecord{{Time: daemonT0.Add(time.Minute), Op: pmstate.OpCreateSubflow, Token: 0xa,
			Local: dap("203.0.113.1:0"), Remote: dap("192.0.2.2:8080"), Error: "genl: create subflow: connection refused"},
			{Time: daemonT0.Add(2 * time.Minute), Op: pmstate.OpAnnounce, Token: 0xa, Addr: daddr("203.0.113.1"),
				Error: "genl: announce: address not found"}},
		Mitigation: ctlapi.Mitigation{Checksums: true, ChecksumsConfig: "on", CanDefer: true, MinJoinAge: 20 * time.Millisecond,
			MappingErrors: map[string]uint64{"DSSNotMatching": 2, "MPRstTx": 2, "DataCsumErr": 0}, Checked: daemonT0.Add(time.Hour)},
	}
}

func testKernelStatus() *ctlapi.Status {
	return &ctlapi.Status{
		Version: "v1.2.3", Mode: pmstate.ModeKernel, Started: daemonT0, UptimeSeconds: 59,
		ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Kernel:     ctlapi.Kernel{Release: "6.18.44", Missing: []ctlapi.Capability{}},
		Policy:     ctlapi.Policy{Name: "fullmesh", Chain: []ctlapi.PolicySpec{{Name: "fullmesh"}}, Rules: []ctlapi.PolicyRule{}},
		Links:      testDaemonLinks()[:1],
		Limits:     &pmstate.Limits{Subflows: 2, AddAddrAccepted: 0, WantSubflows: new(uint32(8)), WantAddAddrAccepted: new(uint32(8))},
		Endpoints: []pmstate.Endpoint{
			{ID: 100, Addr: daddr("192.0.2.1"), Dev: "eth0", IfIndex: 2, Flags: "subflow fullmesh", WantFlags: "subflow fullmesh",
				Owned: true, Desired: true, Present: true, State: pmstate.EndpointOK},
			{Addr: daddr("198.51.100.1"), Dev: "eth1", WantFlags: "subflow fullmesh", Desired: true, State: pmstate.EndpointBackoff,
				Failures: 2, BackoffUntil: daemonT0.Add(30 * time.Second), LastError: "genl: add endpoint: cannot assign requested address"},
			{ID: 1, Addr: daddr("203.0.113.1"), Port: 8080, Flags: "signal", Present: true, State: pmstate.EndpointForeign},
			{Addr: daddr("2001:db8:1::1"), WantFlags: "subflow", Desired: true, State: pmstate.EndpointBlocked,
				Reason: "address taken by endpoint id 3, not mptcpgod's"},
		},
		Resyncing: true, Paths: map[pmstate.PathState]int{},
		Counters: pmstate.Counters{Actions: map[pmstate.Op]uint64{}, Failures: map[pmstate.Op]uint64{}, Events: map[string]uint64{},
			EndpointRepairs: 3, RepairsGivenUp: 1},
		RecentErrors: []pmstate.ErrorRecord{},
		Mitigation: ctlapi.Mitigation{ChecksumsConfig: "keep", MappingErrors: map[string]uint64{"DSSNotMatching": 0},
			Checked: daemonT0.Add(59 * time.Second)},
	}
}

func testPaths() *ctlapi.Paths {
	return &ctlapi.Paths{Mode: pmstate.ModeUserspace, Conns: []pmstate.Conn{
		{Token: 0x3f97be70, Side: pmstate.SideClient, Local: dap("192.0.2.1:40000"), Remote: dap("192.0.2.2:8080"),
			Since: daemonT0, Established: true, PathManager: pmstate.PathManagerUserspace,
			Owner: &pmstate.Owner{UID: 1000, Cgroup: "/user.slice/user-1000.slice/user@1000.service/app.slice/backup.service"},
			Chain: "rules[0]",
			PeerAddrs: []pmstate.PeerAddr{{Addr: dap("192.0.2.2:8080"), Source: pmstate.SourceInitial, State: pmstate.PeerJoined},
				{ID: 1, Addr: dap("192.0.2.3:8080"), Source: pmstate.SourceAnnounced, State: pmstate.PeerJoined},
				{ID: 2, Addr: dap("203.0.113.9:25"), Source: pmstate.SourceAnnounced, State: pmstate.PeerRefused,
					Reason: "port 25 is not the connection's port 8080"},
				{ID: 3, Addr: dap("203.0.113.10:8080"), Source: pmstate.SourceAnnounced, State: pmstate.PeerGivenUp,
					Reason: "subflow closed: connection refused", Tries: 1}},
			Paths: []pmstate.Path{
				{Local: daddr("192.0.2.1"), Remote: dap("192.0.2.2:8080"), Desired: true, State: pmstate.PathEstablished,
					Subflows: []pmstate.Subflow{{Local: dap("192.0.2.1:40000"), Remote: dap("192.0.2.2:8080"), Initial: true, Established: true}}},
				{Local: daddr("198.51.100.1"), Remote: dap("192.0.2.2:8080"), Dev: "eth1", IfIndex: 3, Desired: true, WantBackup: true,
					State: pmstate.PathEstablished, Subflows: []pmstate.Subflow{{Local: dap("198.51.100.1:41000"), Remote: dap("192.0.2.2:8080"),
						LocalID: 1, Joined: true, Backup: true, Established: true, IfIndex: 3}}},
				{Local: daddr("203.0.113.1"), Remote: dap("192.0.2.2:8080"), Dev: "wwan0", Desired: true, State: "backoff",
					Failures: 3, BackoffUntil: daemonT0.Add(90 * time.Second), LastError: "subflow closed: connection refused"},
				{Local: daddr("127.0.0.1"), Remote: dap("192.0.2.2:8080"), Desired: true, State: pmstate.PathRefused,
					Reason: "local address not usable: excluded by kind loopback"},
				{Local: daddr("198.51.100.1"), Remote: dap("198.51.100.2:8080"), Dev: "eth1", IfIndex: 3, Desired: true,
					State: pmstate.PathDeferred, DeferredUntil: daemonT0.Add(50 * time.Millisecond), DeferredBytes: 262144},
				{Local: daddr("192.0.2.1"), Remote: dap("198.51.100.2:8080"), State: pmstate.PathKept,
					Subflows: []pmstate.Subflow{{Local: dap("192.0.2.1:8080"), Remote: dap("198.51.100.2:50000"), LocalID: 0, RemoteID: 2, Established: true}}},
			},
			Announces: []pmstate.Announce{
				{Addr: daddr("198.51.100.1"), ID: 255, Desired: true, Announced: true, State: pmstate.AnnounceAnnounced},
				{Addr: daddr("203.0.113.1"), Port: 8080, Desired: true, State: pmstate.AnnounceBackoff, Failures: 1,
					BackoffUntil: daemonT0.Add(time.Second), LastError: "genl: announce: address not found"},
				{Addr: daddr("224.0.0.1"), Desired: true, State: pmstate.AnnounceRefused,
					Reason: "address not usable: not an address of this host"},
			}},
		{Token: 0x0000000a, Side: pmstate.SideServer, Local: dap("[2001:db8:1::1]:443"), Remote: dap("[2001:db8:1::2]:50000"),
			Since: daemonT0, PathManager: pmstate.PathManagerUserspace, DenyJoinID0: true, Chain: "default", Paths: []pmstate.Path{},
			Announces: []pmstate.Announce{{Addr: daddr("2001:db8:2::1"), Desired: true, State: pmstate.AnnounceDeferred,
				DeferredUntil: daemonT0.Add(20 * time.Millisecond)}}},
	}}
}

// testUsage is the usage of a metered link under its quota, one over it
// and an unmetered one that is absent, with a notice.
func testUsage() *ctlapi.Usage {
	start, end := daemonT0.AddDate(0, 0, -22), daemonT0.AddDate(0, 0, 8)
	return &ctlapi.Usage{
		Now: daemonT0, StateFile: "/var/lib/mptcpgod/usage.json", Saved: daemonT0.Add(-30 * time.Second),
		Notices: []string{"usage file /var/lib/mptcpgod/usage.json did not parse; set aside as usage.json.corrupt-20261101T000000Z"},
		Links: []ctlapi.UsageLink{
			{Name: "wwan0", IfIndex: 4, Present: true, Metered: true, MeteredBy: "config", UsedBytes: 1_500_000_000,
				QuotaBytes: 10_000_000_000, RemainingBytes: new(uint64(8_500_000_000)), Period: "month",
				PeriodStart: start, PeriodEnd: end, CostPerGB: 2.5, Cost: 3.75, Sampled: daemonT0},
			{Name: "wwan1", IfIndex: 5, Present: true, Metered: true, MeteredBy: "networkmanager", UsedBytes: 2_000_123_456,
				QuotaBytes: 2_000_000_000, RemainingBytes: new(uint64(0)), OverQuota: true, QuotaReachedAt: daemonT0.Add(-time.Hour),
				Period: "day", PeriodStart: daemonT0.Truncate(24 * time.Hour), PeriodEnd: daemonT0.Truncate(24 * time.Hour).Add(24 * time.Hour),
				QuotaReachedTotal: 1, Sampled: daemonT0},
			{Name: "eth9", Metered: false, MeteredBy: "default", UsedBytes: 12_345, Period: "week",
				PeriodStart: start, PeriodEnd: end},
		},
	}
}

func TestDaemonOutputs(t *testing.T) {
	t.Parallel()
	render(t, "status-userspace", testUserspaceStatus(), func(b *bytes.Buffer, v *ctlapi.Status) error { return writeStatus(b, v) })
	render(t, "status-kernel", testKernelStatus(), func(b *bytes.Buffer, v *ctlapi.Status) error { return writeStatus(b, v) })
	render(t, "links", &ctlapi.Links{Mode: pmstate.ModeUserspace, Links: testDaemonLinks()},
		func(b *bytes.Buffer, v *ctlapi.Links) error { return writeLinks(b, v) })
	render(t, "paths", testPaths(), func(b *bytes.Buffer, v *ctlapi.Paths) error { return writePaths(b, v) })
	render(t, "paths-kernel", &ctlapi.Paths{Mode: pmstate.ModeKernel, Conns: []pmstate.Conn{}},
		func(b *bytes.Buffer, v *ctlapi.Paths) error { return writePaths(b, v) })
	render(t, "paths-empty", &ctlapi.Paths{Mode: pmstate.ModeUserspace, Conns: []pmstate.Conn{}},
		func(b *bytes.Buffer, v *ctlapi.Paths) error { return writePaths(b, v) })
	policies := []ctlapi.PolicyDoc{
		{Name: "fullmesh", Summary: "Every local address with every peer address.", Options: []ctlapi.PolicyOption{
			{Name: "max_subflows", Type: "integer", Default: 8, Mode: pmstate.ModeUserspace, Help: "At most this many extra subflows per connection."},
			{Name: "role", Type: "string", Default: "client", Values: []string{"client", "server", "both"}, Mode: pmstate.ModeKernel, Help: "Which side opens subflows."},
			{Name: "join_delay", Type: "string", Default: "50ms", Mode: pmstate.ModeUserspace, Help: "Open extra subflows once the connection is this old."},
			{Name: "exclude", Type: "array", Help: "Prefixes never used."}}},
		{Name: "null", Summary: "Wants nothing.", Options: []ctlapi.PolicyOption{}},
	}
	render(t, "policies", &ctlapi.Policies{Mode: pmstate.ModeUserspace, Policies: policies},
		func(b *bytes.Buffer, v *ctlapi.Policies) error { return writePolicies(b, v) })
	render(t, "policies-kernel", &ctlapi.Policies{Mode: pmstate.ModeKernel, Policies: policies},
		func(b *bytes.Buffer, v *ctlapi.Policies) error { return writePolicies(b, v) })
	render(t, "usage", testUsage(), func(b *bytes.Buffer, v *ctlapi.Usage) error { return writeUsage(b, v) })
	render(t, "usage-empty", &ctlapi.Usage{Now: daemonT0, StateFile: "/var/lib/mptcpgod/usage.json", Links: []ctlapi.UsageLink{}},
		func(b *bytes.Buffer, v *ctlapi.Usage) error { return writeUsage(b, v) })
	render(t, "reload", &ctlapi.Reload{Policy: "fullmesh (+1 rules)"},
		func(b *bytes.Buffer, v *ctlapi.Reload) error { return writeReload(b, v) })
}

func TestDecisionLines(t *testing.T) {
	t.Parallel()
	at := daemonT0.Add(1234 * time.Millisecond)
	evs := []ctlapi.Event{
		{Decision: pmstate.Decision{Time: at, Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow, Token: 0x3f97be70,
			Local: dap("198.51.100.1:0"), Remote: dap("192.0.2.2:8080"), Took: 1900 * time.Microsecond, Latency: 2100 * time.Microsecond}},
		{Decision: pmstate.Decision{Time: at, Kind: pmstate.DecisionAction, Op: "set_subflow_backup", Token: 0x3f97be70,
			Local: dap("198.51.100.1:41000"), Remote: dap("192.0.2.2:8080"), Backup: true, Took: time.Millisecond}},
		{Decision: pmstate.Decision{Time: at, Kind: pmstate.DecisionAction, Op: "add_endpoint", ID: 101, Addr: daddr("198.51.100.1"),
			Flags: "subflow fullmesh", Took: 250 * time.Microsecond, Latency: 20 * time.Millisecond,
			Error: "genl: add endpoint: cannot assign requested address", RetryAt: at.Add(50 * time.Millisecond)}},
		{Decision: pmstate.Decision{Time: at, Kind: pmstate.DecisionPathFailed, Token: 0xa, Local: dap("203.0.113.1:40001"),
			Remote: dap("192.0.2.2:8080"), Error: "subflow closed: connection refused", RetryAt: at.Add(100 * time.Millisecond)}},
		{Decision: pmstate.Decision{Time: at, Kind: pmstate.DecisionResync, Detail: "genl: events lost: the receive buffer overflowed"}},
		{Decision: pmstate.Decision{Time: at, Kind: pmstate.DecisionPolicy, Detail: "fullmesh -> fullmesh (+1 rules)"}},
		{Decision: pmstate.Decision{Time: at, Kind: pmstate.DecisionUnmanaged, Token: 0xb, Local: dap("192.0.2.1:40002"), Remote: dap("192.0.2.2:8080")}},
		{Decision: pmstate.Decision{Time: at, Kind: ctlapi.EventDropped}, Dropped: 12},
	}
	var text, js bytes.Buffer
	for _, ev := range evs {
		text.WriteString(decisionLine(ev) + "\n")
		if err := writeJSONLine(&js, ev); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "daemon-events.table", text.Bytes())
	golden(t, "daemon-events.json", js.Bytes())
}
