package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mptcpgod/mptcpgod/internal/usage"
)

// fixedUsage is a UsageSource with a canned report.
type fixedUsage usage.Report

func (f fixedUsage) Report() usage.Report { return usage.Report(f) }

func TestUsageCollector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		links []usage.Link
		want  []string
	}{
		{name: "no links yet", want: nil},
		{
			name: "with and without quota",
			links: []usage.Link{
				{Name: "wwan0", UsedBytes: 1_500_000, QuotaBytes: 1_000_000, OverQuota: true, QuotaReachedTotal: 2},
				{Name: "wlan0", UsedBytes: 42},
			},
			want: []string{
				`mptcpgod_usage_quota_bytes gauge {link="wwan0"} 1e+06`,
				`mptcpgod_usage_quota_reached_total counter {link="wlan0"} 0`,
				`mptcpgod_usage_quota_reached_total counter {link="wwan0"} 2`,
				`mptcpgod_usage_used_bytes gauge {link="wlan0"} 42`,
				`mptcpgod_usage_used_bytes gauge {link="wwan0"} 1.5e+06`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(&usageCollector{src: fixedUsage{Links: tt.links}})
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range families {
				for _, m := range f.GetMetric() {
					v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
					got = append(got, fmt.Sprintf("%s %s {%s=%q} %g", f.GetName(), strings.ToLower(f.GetType().String()),
						m.GetLabel()[0].GetName(), m.GetLabel()[0].GetValue(), v))
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}
