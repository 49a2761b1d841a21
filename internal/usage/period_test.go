package usage

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // the tests' time zones, whatever the host has

	"github.com/google/go-cmp/cmp"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestPeriodAt(t *testing.T) {
	t.Parallel()
	berlin, ny := mustLoc(t, "Europe/Berlin"), mustLoc(t, "America/New_York")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	month := func(day, h, m int, loc *time.Location) LinkQuota {
		return LinkQuota{Period: PeriodMonth, ResetDay: day, ResetHour: h, ResetMinute: m, Location: loc}
	}
	tests := []struct {
		name       string
		q          LinkQuota
		at         string
		start, end string
	}{
		{"month from the 1st", month(1, 0, 0, time.UTC), "2025-02-14T10:00:00Z", "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"},
		{"at the boundary a new period starts", month(1, 0, 0, time.UTC), "2025-03-01T00:00:00Z", "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"},
		{"a nanosecond before", month(1, 0, 0, time.UTC), "2025-02-28T23:59:59.999999999Z", "2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z"},
		{"reset day 31 in February", month(31, 0, 0, time.UTC), "2025-02-15T00:00:00Z", "2025-01-31T00:00:00Z", "2025-02-28T00:00:00Z"},
		{"reset day 31 after February", month(31, 0, 0, time.UTC), "2025-03-01T00:00:00Z", "2025-02-28T00:00:00Z", "2025-03-31T00:00:00Z"},
		{"reset day 31 in April", month(31, 0, 0, time.UTC), "2025-04-30T12:00:00Z", "2025-04-30T00:00:00Z", "2025-05-31T00:00:00Z"},
		{"reset day 30 in a leap February", month(30, 0, 0, time.UTC), "2024-02-29T12:00:00Z", "2024-02-29T00:00:00Z", "2024-03-30T00:00:00Z"},
		{"reset day 29 in a common February", month(29, 0, 0, time.UTC), "2025-03-01T12:00:00Z", "2025-02-28T00:00:00Z", "2025-03-29T00:00:00Z"},
		{"across the year", month(15, 0, 0, time.UTC), "2025-01-03T00:00:00Z", "2024-12-15T00:00:00Z", "2025-01-15T00:00:00Z"},
		// 06:30 in Berlin is 05:30Z in winter.
		{"reset time in a time zone", month(15, 6, 30, berlin), "2025-03-15T05:29:00Z", "2025-02-15T05:30:00Z", "2025-03-15T05:30:00Z"},
		{"reset time in a time zone, after", month(15, 6, 30, berlin), "2025-03-15T05:30:00Z", "2025-03-15T05:30:00Z", "2025-04-15T04:30:00Z"},
		// The UTC instant is still 31 January; in Berlin it is 1 February.
		{"the time zone decides the date", month(1, 0, 0, berlin), "2025-01-31T23:30:00Z", "2025-01-31T23:00:00Z", "2025-02-28T23:00:00Z"},
		// March 2025 in Berlin starts in winter time and ends in summer time.
		{"month across daylight saving", month(1, 0, 0, berlin), "2025-03-20T00:00:00Z", "2025-02-28T23:00:00Z", "2025-03-31T22:00:00Z"},
		{"day", LinkQuota{Period: PeriodDay, Location: time.UTC}, "2025-02-14T10:00:00Z", "2025-02-14T00:00:00Z", "2025-02-15T00:00:00Z"},
		{"day before its reset time", LinkQuota{Period: PeriodDay, ResetHour: 4, Location: time.UTC}, "2025-02-14T03:00:00Z", "2025-02-13T04:00:00Z", "2025-02-14T04:00:00Z"},
		// 30 March 2025: Berlin skips 02:00-03:00, the day has 23 hours.
		{"day of 23 hours", LinkQuota{Period: PeriodDay, Location: berlin}, "2025-03-30T10:00:00Z", "2025-03-29T23:00:00Z", "2025-03-30T22:00:00Z"},
		// 26 October 2025: Berlin repeats 02:00-03:00, the day has 25 hours.
		{"day of 25 hours", LinkQuota{Period: PeriodDay, Location: berlin}, "2025-10-26T10:00:00Z", "2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z"},
		{"week from Monday", LinkQuota{Period: PeriodWeek, ResetDay: 1, Location: time.UTC}, "2025-02-12T10:00:00Z", "2025-02-10T00:00:00Z", "2025-02-17T00:00:00Z"},
		{"week, Sunday before the reset", LinkQuota{Period: PeriodWeek, ResetDay: 1, Location: time.UTC}, "2025-02-16T23:59:00Z", "2025-02-10T00:00:00Z", "2025-02-17T00:00:00Z"},
		{"week, on the reset day before the reset time", LinkQuota{Period: PeriodWeek, ResetDay: 3, ResetHour: 12, Location: time.UTC}, "2025-02-12T11:00:00Z", "2025-02-05T12:00:00Z", "2025-02-12T12:00:00Z"},
		// 9 March 2025: New York springs forward; Sunday 18:00 EST is 23:00Z, EDT 22:00Z.
		{"week across daylight saving", LinkQuota{Period: PeriodWeek, ResetDay: 7, ResetHour: 18, Location: ny}, "2025-03-09T16:00:00Z", "2025-03-02T23:00:00Z", "2025-03-09T22:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start, end := tt.q.PeriodAt(utc(tt.at))
			got := []string{start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339)}
			if diff := cmp.Diff([]string{tt.start, tt.end}, got); diff != "" {
				t.Errorf("PeriodAt(%s) (-want +got):\n%s", tt.at, diff)
			}
		})
	}
}

// TestPeriodsContiguous walks two years of periods in time zones with and
// without daylight saving, with reset times that a change skips or
// repeats: every period holds the time it was asked for, starts where the
// previous one ended, and is as long as its calendar unit, give or take
// an hour.
func TestPeriodsContiguous(t *testing.T) {
	t.Parallel()
	const hour = time.Hour
	const day = 24 * hour
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"} {
		loc := mustLoc(t, zone)
		for _, q := range []LinkQuota{
			{Period: PeriodDay},
			{Period: PeriodDay, ResetHour: 2, ResetMinute: 30},
			{Period: PeriodWeek, ResetDay: 7, ResetHour: 2, ResetMinute: 30},
			{Period: PeriodWeek, ResetDay: 1, ResetHour: 23, ResetMinute: 59},
			{Period: PeriodMonth, ResetDay: 31, ResetHour: 2, ResetMinute: 30},
			{Period: PeriodMonth, ResetDay: 1},
			{Period: PeriodMonth, ResetDay: 29, ResetHour: 3},
		} {
			q.Location = loc
			name := fmt.Sprintf("%s %s %d %02d:%02d", zone, q.Period, q.ResetDay, q.ResetHour, q.ResetMinute)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				lo, hi := day-hour, day+hour
				switch q.Period {
				case PeriodWeek:
					lo, hi = 7*day-hour, 7*day+hour
				case PeriodMonth:
					lo, hi = 28*day-hour, 31*day+hour
				}
				at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
				prevEnd, _ := q.PeriodAt(at)
				for at.Year() < 2026 {
					start, end := q.PeriodAt(at)
					if at.Before(start) || !at.Before(end) {
						t.Fatalf("PeriodAt(%s) = %s to %s, which does not hold it", at, start, end)
					}
					if n := end.Sub(start); n < lo || n > hi {
						t.Fatalf("PeriodAt(%s) = %s to %s: %s long", at, start, end, n)
					}
					if !start.Equal(prevEnd) {
						t.Fatalf("period %s to %s does not start where the previous one ended, %s", start, end, prevEnd)
					}
					if s2, e2 := q.PeriodAt(end.Add(-time.Nanosecond)); !s2.Equal(start) || !e2.Equal(end) {
						t.Fatalf("the period's last instant is in %s to %s, not %s to %s", s2, e2, start, end)
					}
					prevEnd = end
					at = end
				}
			})
		}
	}
}
