package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// daemonT0 is when the daemons of these tests started.
var daemonT0 = time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)

var (
	dap   = netip.MustParseAddrPort
	daddr = netip.MustParseAddr
)

func testDaemonLinks() []ctlapi.Link {
	return []ctlapi.Link{
		{Name: "eth0", Index: 2, Kind: "wired", Up: true, Usable: true, Addrs: []ctlapi.Addr{
			{Addr: daddr("192.0.2.1"), Usable: true, Used: true, Use: "2 subflows", Subflows: 2},
			{Addr: daddr("2001:db8:1::1"), Reason: "tentative", Use: "not usable: tentative"},
		}},
		{Name: "wwan0", Index: 4, Kind: "cellular", Up: true, Usable: true, Metered: true, Addrs: []ctlapi.Addr{
			{Addr: daddr("203.0.113.1"), Usable: true, Use: "wanted; retrying 192.0.2.2:8080 after: subflow closed: connection refused"},
		}},
		{Name: "veth9", Index: 9, Kind: "virtual", Up: true, Reason: "excluded by kind virtual", Addrs: []ctlapi.Addr{
			{Addr: daddr("192.0.2.99"), Reason: "excluded by kind virtual", Use: "not usable: excluded by kind virtual"},
		}},
		{Name: "eth1", Index: 3, Kind: "wired", Reason: "link down", Addrs: []ctlapi.Addr{}},
	}
}

func testUserspaceStatus() *ctlapi.Status {
	return &ctlapi.Status{
		Version: "v1.2.3", Mode: policy.ModeUserspace, Ready: true, Started: daemonT0, UptimeSeconds: 3723.4,
		ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Policy: ctlapi.Policy{Name: "fullmesh (+1 rules)", Chain: []policy.Spec{{Name: "fullmesh"}},
			Rules: []policy.RuleSpec{{Match: policy.Match{PeerPrefix: netip.MustParsePrefix("203.0.113.0/24"), PeerPort: 443,
				Side: policy.SideClient}, Chain: []policy.Spec{{Name: "fullmesh", Config: json.RawMessage(`{ "max_subflows": 1 }`)}}}}},
		Links:       testDaemonLinks(),
		Endpoints:   []pm.EndpointStatus{},
		Connections: 2, InFlight: 1,
		Counters: pm.Counters{Actions: map[string]uint64{"create_subflow": 10, "announce": 2},
			Failures: map[string]uint64{"create_subflow": 1}, Events: map[string]uint64{"created": 2, "established": 2,
				"sub_established": 4}, EventBatches: 5, Backoffs: 1},
		RecentErrors: []pm.ErrorRecord{{Time: daemonT0.Add(time.Minute), Op: "create_subflow", Token: 0xa,
			Local: dap("203.0.113.1:0"), Remote: dap("192.0.2.2:8080"), Error: "genl: create subflow: connection refused"},
			{Time: daemonT0.Add(2 * time.Minute), Op: "announce", Token: 0xa, Addr: daddr("203.0.113.1"),
				Error: "genl: announce: address not found"}},
	}
}

func testKernelStatus() *ctlapi.Status {
	return &ctlapi.Status{
		Version: "v1.2.3", Mode: policy.ModeKernel, Started: daemonT0, UptimeSeconds: 59,
		ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Policy:     ctlapi.Policy{Name: "fullmesh", Chain: []policy.Spec{{Name: "fullmesh"}}, Rules: []policy.RuleSpec{}},
		Links:      testDaemonLinks()[:1],
		Limits:     &pm.LimitsStatus{Subflows: 2, AddAddrAccepted: 0, WantSubflows: new(uint32(8)), WantAddAddrAccepted: new(uint32(8))},
		Endpoints: []pm.EndpointStatus{
			{ID: 100, Addr: daddr("192.0.2.1"), Dev: "eth0", IfIndex: 2, Flags: "subflow fullmesh", WantFlags: "subflow fullmesh",
				Owned: true, Desired: true, Present: true, State: "ok"},
			{Addr: daddr("198.51.100.1"), Dev: "eth1", WantFlags: "subflow fullmesh", Desired: true, State: "backoff",
				Failures: 2, BackoffUntil: daemonT0.Add(30 * time.Second), LastError: "genl: add endpoint: cannot assign requested address"},
			{ID: 1, Addr: daddr("203.0.113.1"), Port: 8080, Flags: "signal", Present: true, State: "foreign"},
			{Addr: daddr("2001:db8:1::1"), WantFlags: "subflow", Desired: true, State: "blocked",
				Reason: "address taken by endpoint id 3, not mptcpgod's"},
		},
		Resyncing: true,
		Counters: pm.Counters{Actions: map[string]uint64{}, Failures: map[string]uint64{}, Events: map[string]uint64{},
			EndpointRepairs: 3, RepairsGivenUp: 1},
		RecentErrors: []pm.ErrorRecord{},
	}
}

func testPaths() *ctlapi.Paths {
	return &ctlapi.Paths{Mode: policy.ModeUserspace, Conns: []pm.ConnStatus{
		{Token: 0x3f97be70, Side: policy.SideClient, Local: dap("192.0.2.1:40000"), Remote: dap("192.0.2.2:8080"),
			Since: daemonT0, Established: true, PathManager: "userspace",
			PeerAddrs: []policy.PeerAddr{{Addr: dap("192.0.2.2:8080")}},
			Paths: []pm.PathStatus{
				{Local: daddr("192.0.2.1"), Remote: dap("192.0.2.2:8080"), Desired: true, State: "established",
					Subflows: []pm.SubflowStatus{{Local: dap("192.0.2.1:40000"), Remote: dap("192.0.2.2:8080"), Initial: true, Established: true}}},
				{Local: daddr("198.51.100.1"), Remote: dap("192.0.2.2:8080"), Dev: "eth1", IfIndex: 3, Desired: true, WantBackup: true,
					State: "established", Subflows: []pm.SubflowStatus{{Local: dap("198.51.100.1:41000"), Remote: dap("192.0.2.2:8080"),
						LocalID: 1, Joined: true, Backup: true, Established: true, IfIndex: 3}}},
				{Local: daddr("203.0.113.1"), Remote: dap("192.0.2.2:8080"), Dev: "wwan0", Desired: true, State: "backoff",
					Failures: 3, BackoffUntil: daemonT0.Add(90 * time.Second), LastError: "subflow closed: connection refused"},
				{Local: daddr("192.0.2.1"), Remote: dap("198.51.100.2:8080"), State: "kept",
					Subflows: []pm.SubflowStatus{{Local: dap("192.0.2.1:8080"), Remote: dap("198.51.100.2:50000"), LocalID: 0, RemoteID: 2, Established: true}}},
			},
			Announces: []pm.AnnounceStatus{
				{Addr: daddr("198.51.100.1"), ID: 255, Desired: true, Announced: true, State: "announced"},
				{Addr: daddr("203.0.113.1"), Port: 8080, Desired: true, State: "backoff", Failures: 1,
					BackoffUntil: daemonT0.Add(time.Second), LastError: "genl: announce: address not found"},
			}},
		{Token: 0x0000000a, Side: policy.SideServer, Local: dap("[2001:db8:1::1]:443"), Remote: dap("[2001:db8:1::2]:50000"),
			Since: daemonT0, PathManager: "userspace", DenyJoinID0: true, Paths: []pm.PathStatus{}},
	}}
}

// testUsage is the usage of a metered link under its quota, one over it
// and an unmetered one that is absent, with a notice.
func testUsage() *usage.Report {
	start, end := daemonT0.AddDate(0, 0, -22), daemonT0.AddDate(0, 0, 8)
	return &usage.Report{
		Now: daemonT0, StateFile: "/var/lib/mptcpgod/usage.json", Saved: daemonT0.Add(-30 * time.Second),
		Notices: []string{"usage file /var/lib/mptcpgod/usage.json did not parse; set aside as usage.json.corrupt-20261101T000000Z"},
		Links: []usage.Link{
			{Name: "wwan0", IfIndex: 4, Present: true, Metered: true, MeteredBy: "config", UsedBytes: 1_500_000_000,
				QuotaBytes: 10_000_000_000, RemainingBytes: new(uint64(8_500_000_000)), Period: usage.PeriodMonth,
				PeriodStart: start, PeriodEnd: end, CostPerGB: 2.5, Cost: 3.75, Sampled: daemonT0},
			{Name: "wwan1", IfIndex: 5, Present: true, Metered: true, MeteredBy: "networkmanager", UsedBytes: 2_000_123_456,
				QuotaBytes: 2_000_000_000, RemainingBytes: new(uint64(0)), OverQuota: true, QuotaReachedAt: daemonT0.Add(-time.Hour),
				Period: usage.PeriodDay, PeriodStart: daemonT0.Truncate(24 * time.Hour), PeriodEnd: daemonT0.Truncate(24 * time.Hour).Add(24 * time.Hour),
				QuotaReachedTotal: 1, Sampled: daemonT0},
			{Name: "eth9", Metered: false, MeteredBy: "default", UsedBytes: 12_345, Period: usage.PeriodWeek,
				PeriodStart: start, PeriodEnd: end},
		},
	}
}

func TestDaemonOutputs(t *testing.T) {
	t.Parallel()
	render(t, "status-userspace", testUserspaceStatus(), func(b *bytes.Buffer, v *ctlapi.Status) error { return writeStatus(b, v) })
	render(t, "status-kernel", testKernelStatus(), func(b *bytes.Buffer, v *ctlapi.Status) error { return writeStatus(b, v) })
	render(t, "links", &ctlapi.Links{Mode: policy.ModeUserspace, Links: testDaemonLinks()},
		func(b *bytes.Buffer, v *ctlapi.Links) error { return writeLinks(b, v) })
	render(t, "paths", testPaths(), func(b *bytes.Buffer, v *ctlapi.Paths) error { return writePaths(b, v) })
	render(t, "paths-kernel", &ctlapi.Paths{Mode: policy.ModeKernel, Conns: []pm.ConnStatus{}},
		func(b *bytes.Buffer, v *ctlapi.Paths) error { return writePaths(b, v) })
	render(t, "paths-empty", &ctlapi.Paths{Mode: policy.ModeUserspace, Conns: []pm.ConnStatus{}},
		func(b *bytes.Buffer, v *ctlapi.Paths) error { return writePaths(b, v) })
	render(t, "policies", &ctlapi.Policies{Policies: []policy.Doc{
		{Name: "fullmesh", Summary: "Every local address with every peer address.", Options: []policy.Option{
			{Name: "max_subflows", Type: "integer", Default: 8, Help: "At most this many extra subflows per connection."},
			{Name: "role", Type: "string", Default: "client", Values: []string{"client", "server", "both"}, Help: "Which side opens subflows."},
			{Name: "exclude", Type: "array", Help: "Prefixes never used."}}},
		{Name: "null", Summary: "Wants nothing.", Options: []policy.Option{}},
	}}, func(b *bytes.Buffer, v *ctlapi.Policies) error { return writePolicies(b, v) })
	render(t, "usage", testUsage(), func(b *bytes.Buffer, v *usage.Report) error { return writeUsage(b, v) })
	render(t, "usage-empty", &usage.Report{Now: daemonT0, StateFile: "/var/lib/mptcpgod/usage.json", Links: []usage.Link{}},
		func(b *bytes.Buffer, v *usage.Report) error { return writeUsage(b, v) })
	render(t, "reload", &ctlapi.Reload{Policy: "fullmesh (+1 rules)"},
		func(b *bytes.Buffer, v *ctlapi.Reload) error { return writeReload(b, v) })
}

func TestDecisionLines(t *testing.T) {
	t.Parallel()
	at := daemonT0.Add(1234 * time.Millisecond)
	evs := []ctlapi.Event{
		{Decision: pm.Decision{Time: at, Kind: pm.DecisionAction, Op: "create_subflow", Token: 0x3f97be70,
			Local: dap("198.51.100.1:0"), Remote: dap("192.0.2.2:8080"), Took: 1900 * time.Microsecond, Latency: 2100 * time.Microsecond}},
		{Decision: pm.Decision{Time: at, Kind: pm.DecisionAction, Op: "set_subflow_backup", Token: 0x3f97be70,
			Local: dap("198.51.100.1:41000"), Remote: dap("192.0.2.2:8080"), Backup: true, Took: time.Millisecond}},
		{Decision: pm.Decision{Time: at, Kind: pm.DecisionAction, Op: "add_endpoint", ID: 101, Addr: daddr("198.51.100.1"),
			Flags: "subflow fullmesh", Took: 250 * time.Microsecond, Latency: 20 * time.Millisecond,
			Error: "genl: add endpoint: cannot assign requested address", RetryAt: at.Add(50 * time.Millisecond)}},
		{Decision: pm.Decision{Time: at, Kind: pm.DecisionPathFailed, Token: 0xa, Local: dap("203.0.113.1:40001"),
			Remote: dap("192.0.2.2:8080"), Error: "subflow closed: connection refused", RetryAt: at.Add(100 * time.Millisecond)}},
		{Decision: pm.Decision{Time: at, Kind: pm.DecisionResync, Detail: "genl: events lost: the receive buffer overflowed"}},
		{Decision: pm.Decision{Time: at, Kind: pm.DecisionPolicy, Detail: "fullmesh -> fullmesh (+1 rules)"}},
		{Decision: pm.Decision{Time: at, Kind: pm.DecisionUnmanaged, Token: 0xb, Local: dap("192.0.2.1:40002"), Remote: dap("192.0.2.2:8080")}},
		{Decision: pm.Decision{Time: at, Kind: ctlapi.EventDropped}, Dropped: 12},
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
