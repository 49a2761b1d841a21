package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mptcpgod/mptcpgod/internal/usage"
)

// UsageSource is the traffic accounting, asked at each scrape;
// *usage.Accounting is one.
type UsageSource interface {
	Report() usage.Report
}

var _ UsageSource = (*usage.Accounting)(nil)

// The usage metrics, read from usage.Report at each scrape.
var (
	usageUsed = prometheus.NewDesc("mptcpgod_usage_used_bytes",
		"Traffic (received and sent) of an accounted link in its current accounting period.", []string{"link"}, nil)
	usageQuota = prometheus.NewDesc("mptcpgod_usage_quota_bytes",
		"Quota of an accounted link per accounting period; links without a quota are left out.", []string{"link"}, nil)
	usageReached = prometheus.NewDesc("mptcpgod_usage_quota_reached_total",
		"Times an accounted link reached its quota since the daemon started.", []string{"link"}, nil)
)

// usageCollector exports a usage.Report.
type usageCollector struct {
	src UsageSource
}

// Describe implements prometheus.Collector.
func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- usageUsed
	ch <- usageQuota
	ch <- usageReached
}

// Collect implements prometheus.Collector.
func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.src.Report().Links {
		ch <- prometheus.MustNewConstMetric(usageUsed, prometheus.GaugeValue, float64(l.UsedBytes), l.Name)
		if l.QuotaBytes > 0 {
			ch <- prometheus.MustNewConstMetric(usageQuota, prometheus.GaugeValue, float64(l.QuotaBytes), l.Name)
		}
		ch <- prometheus.MustNewConstMetric(usageReached, prometheus.CounterValue, float64(l.QuotaReachedTotal), l.Name)
	}
}
