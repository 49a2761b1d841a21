package policy

import (
	"testing"
	"time"
)

func TestDeferralHolds(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	d := Deferral{NotBefore: t0.Add(50 * time.Millisecond), AfterBytes: 1000}
	tests := []struct {
		name           string
		d              Deferral
		now            time.Time
		sent, received uint64
		want           bool
	}{
		{"zero", Deferral{}, t0, 0, 0, false},
		{"young", d, t0, 0, 0, true},
		{"at the threshold", d, t0, 1000, 1000, true},
		{"sent more", d, t0, 1001, 0, false},
		{"received more", d, t0, 0, 1001, false},
		{"due", d, t0.Add(50 * time.Millisecond), 0, 0, false},
		{"time only", Deferral{NotBefore: t0.Add(time.Second)}, t0, 1 << 40, 1 << 40, true},
	}
	for _, tt := range tests {
		if got := tt.d.Holds(tt.now, tt.sent, tt.received); got != tt.want {
			t.Errorf("%s: Holds = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDeferJoins(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	c := Conn{Created: created}
	if got, want := DeferJoins(c, 20*time.Millisecond, 4096), (Deferral{NotBefore: created.Add(20 * time.Millisecond), AfterBytes: 4096}); got != want {
		t.Errorf("DeferJoins = %+v, want %+v", got, want)
	}
	if got := DeferJoins(c, 0, 4096); got != (Deferral{}) {
		t.Errorf("DeferJoins without a delay = %+v, want none", got)
	}
	if got := DeferJoins(Conn{}, time.Second, 0); got != (Deferral{}) {
		t.Errorf("DeferJoins of a connection of unknown age = %+v, want none", got)
	}
}
