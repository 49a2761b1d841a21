package usage

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeState feeds usage files as they may be found on disk: decoding
// never panics, and a state it accepts is written back to the same state.
func FuzzDecodeState(f *testing.F) {
	f.Add([]byte(`{"version":1,"boot_id":"b","saved":"2025-02-10T11:00:00Z","links":{}}`))
	f.Add([]byte(`{"version":1,"links":{"wwan0":{"period_start":"2025-02-01T00:00:00+01:00",` +
		`"period_end":"2025-03-01T00:00:00+01:00","used_bytes":5,"ifindex":4,"rx_counter":1,"tx_counter":2,` +
		`"quota_reached":"2025-02-03T00:00:00Z","sampled":"2025-02-10T11:00:00Z"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeState(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("an accepted state does not marshal: %v", err)
		}
		back, err := decodeState(out)
		if err != nil {
			t.Fatalf("a written state does not decode: %v\n%s", err, out)
		}
		again, err := json.Marshal(back)
		if err != nil || string(again) != string(out) {
			t.Fatalf("round trip changed the state:\n%s\n%s", out, again)
		}
	})
}
