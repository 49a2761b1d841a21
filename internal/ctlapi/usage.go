package ctlapi

import "time"

// Usage is GET /v1/usage: the traffic accounting of the links of the
// configuration's [usage] table.
//
//	{"now":"2025-02-10T12:00:00Z","state_file":"/var/lib/mptcpgod/usage.json",
//	 "saved":"2025-02-10T11:59:30Z",
//	 "links":[{"name":"wwan0","ifindex":4,"present":true,"metered":true,"metered_by":"config",
//	           "used_bytes":1500000000,"quota_bytes":10000000000,"remaining_bytes":8500000000,
//	           "period":"month","period_start":"2025-02-01T00:00:00+01:00",
//	           "period_end":"2025-03-01T00:00:00+01:00","cost_per_gb":2.5,"cost":3.75,
//	           "quota_reached_total":0,"sampled":"2025-02-10T11:59:59Z"}]}
type Usage struct {
	// Now is when the report was made.
	Now time.Time `json:"now"`
	// StateFile is the usage file.
	StateFile string `json:"state_file"`
	// Saved is when the usage file was last written; zero when never.
	Saved time.Time `json:"saved,omitzero"`
	// Notices are things the user must know, such as a corrupt usage file
	// that was set aside.
	Notices []string `json:"notices,omitempty"`
	// Links are the accounted links, by name.
	Links []UsageLink `json:"links"`
}

// UsageLink is one link's usage in its current period.
type UsageLink struct {
	// Name is the interface name.
	Name string `json:"name"`
	// IfIndex is the interface index at the last sample.
	IfIndex int `json:"ifindex,omitempty"`
	// Present reports whether the link was there at the last sample.
	Present bool `json:"present"`
	// Metered reports whether the link is metered, and MeteredBy who said
	// so: "config", "networkmanager", or "default" (metered = "auto"
	// without an answer from NetworkManager: unmetered).
	Metered   bool   `json:"metered"`
	MeteredBy string `json:"metered_by"`
	// UsedBytes is the traffic (received and sent) of the period so far.
	UsedBytes uint64 `json:"used_bytes"`
	// QuotaBytes is the quota of a period; 0 when there is none.
	QuotaBytes uint64 `json:"quota_bytes,omitempty"`
	// RemainingBytes is what is left of the quota, 0 once it is reached;
	// absent without a quota.
	RemainingBytes *uint64 `json:"remaining_bytes,omitempty"`
	// OverQuota reports that the quota is reached; QuotaReachedAt is when.
	OverQuota      bool      `json:"over_quota,omitempty"`
	QuotaReachedAt time.Time `json:"quota_reached_at,omitzero"`
	// Period is the period's length ("day", "week" or "month");
	// PeriodStart and PeriodEnd its bounds (PeriodEnd is when the usage
	// starts again from 0).
	Period      string    `json:"period"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	// CostPerGB is the configured price of 10^9 bytes; Cost is what the
	// period's traffic cost so far.
	CostPerGB float64 `json:"cost_per_gb,omitempty"`
	Cost      float64 `json:"cost"`
	// QuotaReachedTotal counts the times the link reached its quota since
	// the daemon started.
	QuotaReachedTotal uint64 `json:"quota_reached_total"`
	// Sampled is when the link's counters were last read.
	Sampled time.Time `json:"sampled,omitzero"`
}
