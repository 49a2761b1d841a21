package usage

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestFileConfig(t *testing.T) {
	t.Parallel()
	berlin := mustLoc(t, "Europe/Berlin")
	with := func(lf LinkFile) File {
		f := DefaultFile()
		f.Links = []LinkFile{lf}
		return f
	}
	tests := []struct {
		name     string
		file     File
		want     []LinkQuota
		interval time.Duration
		err      string
	}{
		{name: "defaults", file: DefaultFile(), interval: time.Second},
		{name: "link defaults", file: with(LinkFile{Name: "wwan0"}), interval: time.Second,
			want: []LinkQuota{{Name: "wwan0", Metered: MeteredYes, Period: PeriodMonth, ResetDay: 1, Location: time.Local}}},
		{name: "every key", interval: time.Second, file: with(LinkFile{
			Name: "wwan*", Metered: "auto", CostPerGB: 2.5, Quota: "10GiB", Period: "month", ResetDay: 31,
			ResetTime: "06:30", Timezone: "Europe/Berlin"}),
			want: []LinkQuota{{Name: "wwan*", Metered: MeteredAuto, CostPerGB: 2.5, QuotaBytes: 10 << 30,
				Period: PeriodMonth, ResetDay: 31, ResetHour: 6, ResetMinute: 30, Location: berlin}}},
		{name: "SI quota", interval: time.Second, file: with(LinkFile{Name: "usb0", Metered: "no", Quota: "2MB", Period: "day", Timezone: "UTC"}),
			want: []LinkQuota{{Name: "usb0", Metered: MeteredNo, QuotaBytes: 2_000_000, Period: PeriodDay, Location: time.UTC}}},
		{name: "week", interval: time.Second, file: with(LinkFile{Name: "usb0", Quota: "1.5 GB", Period: "week", ResetDay: 7}),
			want: []LinkQuota{{Name: "usb0", Metered: MeteredYes, QuotaBytes: 1_500_000_000, Period: PeriodWeek, ResetDay: 7, Location: time.Local}}},
		{name: "intervals", file: File{StateDir: "/run/x", Interval: "250ms", SaveInterval: "0s"}, interval: 250 * time.Millisecond},
		{name: "bad quota", file: with(LinkFile{Name: "wwan0", Quota: "2XB"}),
			err: `usage: links[0].quota: "2XB" is not a size such as "2MB" or "10GiB": unhandled size name: xb`},
		{name: "negative quota", file: with(LinkFile{Name: "wwan0", Quota: "-2MB"}),
			err: `usage: links[0].quota: "-2MB" is not a size such as "2MB" or "10GiB"`},
		{name: "no name", file: with(LinkFile{Quota: "2MB"}), err: "usage: links[0].name: missing"},
		{name: "bad glob", file: with(LinkFile{Name: "wwan[", Quota: "2MB"}),
			err: `usage: links[0].name: "wwan[" is not a valid glob: syntax error in pattern`},
		{name: "bad metered", file: with(LinkFile{Name: "wwan0", Metered: "true"}), err: `usage: links[0].metered: "true" is not yes, no or auto`},
		{name: "negative cost", file: with(LinkFile{Name: "wwan0", CostPerGB: -1}), err: "usage: links[0].cost_per_gb: -1 is not a price of 0 or more"},
		{name: "bad period", file: with(LinkFile{Name: "wwan0", Period: "year"}), err: `usage: links[0].period: "year" is not day, week or month`},
		{name: "reset day 32", file: with(LinkFile{Name: "wwan0", ResetDay: 32}), err: "usage: links[0].reset_day: 32 is not a day of the month 1 to 31"},
		{name: "reset day 8 of a week", file: with(LinkFile{Name: "wwan0", Period: "week", ResetDay: 8}),
			err: "usage: links[0].reset_day: 8 is not a weekday 1 (Monday) to 7 (Sunday)"},
		{name: "reset day of a day", file: with(LinkFile{Name: "wwan0", Period: "day", ResetDay: 2}),
			err: "usage: links[0].reset_day: 2 given for a daily period"},
		{name: "bad reset time", file: with(LinkFile{Name: "wwan0", ResetTime: "24:00"}),
			err: `usage: links[0].reset_time: "24:00" is not a time of day HH:MM`},
		{name: "bad time zone", file: with(LinkFile{Name: "wwan0", Timezone: "Mars/Olympus"}),
			err: `usage: links[0].timezone: "Mars/Olympus" is not a known time zone: unknown time zone Mars/Olympus`},
		{name: "relative state dir", file: File{StateDir: "var/lib"}, err: `usage: state_dir: "var/lib" is not an absolute path`},
		{name: "bad interval", file: File{Interval: "0s"}, err: `usage: interval: "0s" is not a duration above 0 and at most 1h0m0s`},
		{name: "interval too long", file: File{Interval: "1000h"}, err: `usage: interval: "1000h" is not a duration above 0 and at most 1h0m0s`},
		{name: "bad save interval", file: File{SaveInterval: "soon"}, err: `usage: save_interval: "soon" is not a duration of 0 to 24h0m0s`},
		{name: "save interval too long", file: File{SaveInterval: "1000h"}, err: `usage: save_interval: "1000h" is not a duration of 0 to 24h0m0s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, interval, err := tt.file.Config()
			if diff := cmp.Diff(tt.err, errString(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, cfg.Links, cmp.Comparer(func(a, b *time.Location) bool { return a.String() == b.String() })); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			if interval != tt.interval {
				t.Errorf("interval %s, want %s", interval, tt.interval)
			}
		})
	}
}
