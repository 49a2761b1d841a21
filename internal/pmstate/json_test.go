package pmstate_test

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// TestDecisionJSON: decisions marshal with snake_case keys, leave out
// what does not apply, and read back as they were.
func TestDecisionJSON(t *testing.T) {
	t.Parallel()
	d := pmstate.Decision{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Kind: pmstate.DecisionAction,
		Op: pmstate.OpCreateSubflow, Token: 0x11111111, Local: netip.MustParseAddrPort("198.51.100.1:0"),
		Remote: netip.MustParseAddrPort("203.0.113.80:443"), Took: 2 * time.Millisecond, Latency: 3 * time.Millisecond}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2026-01-02T03:04:05Z","kind":"action","op":"create_subflow","token":286331153,` +
		`"local":"198.51.100.1:0","remote":"203.0.113.80:443","took_ns":2000000,"latency_ns":3000000}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
	var back pmstate.Decision
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, back, cmpopts.EquateComparable(netip.AddrPort{}, netip.Addr{})); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

// TestUnknownNames: a state or kind a newer daemon adds reads back as it
// is, so that an older reader shows it instead of failing.
func TestUnknownNames(t *testing.T) {
	t.Parallel()
	var p pmstate.Path
	if err := json.Unmarshal([]byte(`{"local":"192.0.2.1","remote":"192.0.2.2:80","desired":true,"state":"deferred"}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.State != "deferred" {
		t.Errorf("state %q, want deferred", p.State)
	}
}
