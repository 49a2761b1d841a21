package usage

import "time"

// PeriodAt returns the accounting period that holds t: start <= t < end.
// Boundaries are calendar dates at the reset time in q's time zone, so a
// day is 23 or 25 hours long across a daylight-saving change and a month
// as long as it is. A monthly reset day past the end of a shorter month
// falls on its last day (31 is 28 February, then 31 March). A reset time
// that a daylight-saving change skips is resolved as time.Date resolves
// it; periods stay contiguous either way.
func (q LinkQuota) PeriodAt(t time.Time) (start, end time.Time) {
	boundary := q.boundaries(t)
	k := 0
	for boundary(k).After(t) {
		k--
	}
	for !boundary(k + 1).After(t) {
		k++
	}
	return boundary(k), boundary(k + 1)
}

// boundaries returns the period boundaries around t, numbered from the
// one of t's calendar day, week or month (in q's time zone) onwards.
func (q LinkQuota) boundaries(t time.Time) func(k int) time.Time {
	loc := q.Location
	if loc == nil {
		loc = time.Local
	}
	y, m, d := t.In(loc).Date()
	at := func(y int, m time.Month, d int) time.Time {
		return time.Date(y, m, d, q.ResetHour, q.ResetMinute, 0, 0, loc)
	}
	switch q.Period {
	case PeriodWeek:
		// ISO weekday: Monday 1 .. Sunday 7.
		wd := int(t.In(loc).Weekday()+6)%7 + 1
		base := d - (wd-q.ResetDay+7)%7
		return func(k int) time.Time { return at(y, m, base+7*k) }
	case PeriodMonth:
		return func(k int) time.Time {
			mk := m + time.Month(k)
			// Day 0 of the next month is the last day of month mk.
			last := time.Date(y, mk+1, 0, 0, 0, 0, 0, time.UTC).Day()
			return at(y, mk, min(q.ResetDay, last))
		}
	}
	return func(k int) time.Time { return at(y, m, d+k) }
}
