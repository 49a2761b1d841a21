package exec

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/policy"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want policy.ConnPlan
		err  string // of decodeReply, else of decodePlan
	}{
		{name: "answer", line: `{"type":"conn","id":3,"plan":{"paths":[{"local":"192.0.2.1","remote":"203.0.113.1:443","backup":true}]}}`,
			want: policy.ConnPlan{Paths: []policy.Path{{Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddrPort("203.0.113.1:443"), Backup: true}}}},
		{name: "unknown keys ignored", line: `{"type":"conn","id":3,"later":[1],"plan":{"paths":null,"weights":{"a":1}}}`},
		{name: "not JSON", line: `paths: none`, err: "not a JSON object: invalid character 'p' looking for beginning of value"},
		{name: "not an object", line: `[1]`, err: "not a JSON object: json: cannot unmarshal array into Go value of type exec.reply"},
		{name: "no type", line: `{"id":3}`, err: `no "type"`},
		{name: "negative id", line: `{"type":"conn","id":-3}`, err: "not a JSON object: json: cannot unmarshal number -3 into Go struct field reply.id of type uint64"},
		{name: "no plan", line: `{"type":"conn","id":3}`, err: `no "plan"`},
		{name: "plan not an object", line: `{"type":"conn","id":3,"plan":[]}`, err: `"plan" is not an object`},
		{name: "bad address", line: `{"type":"conn","id":3,"plan":{"paths":[{"local":"192.0.2.300","remote":"203.0.113.1:443"}]}}`,
			err: `plan: ParseAddr("192.0.2.300"): IPv4 field has value >255`},
		{name: "invalid plan", line: `{"type":"conn","id":3,"plan":{"paths":[{"local":"192.0.2.1","remote":"[2001:db8::1]:443"}]}}`,
			err: "policy: paths[0]: 192.0.2.1 and 2001:db8::1 are of different families"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := decodeReply([]byte(tt.line))
			var got policy.ConnPlan
			if err == nil {
				err = decodePlan(r.Plan, &got)
			}
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if diff := cmp.Diff(tt.err, gotErr); diff != "" || err != nil {
				if diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got, policytest.NetOpts); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecodeReply feeds lines as a plugin writes them: decoding never
// panics, and a plan it accepts is valid and survives a round trip.
func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"type":"conn","id":1,"plan":{"paths":[],"announces":[{"addr":"2001:db8::1","port":8080}]}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := decodeReply(line)
		if err != nil {
			if !strings.Contains(err.Error(), "JSON") && !strings.Contains(err.Error(), "type") {
				t.Fatalf("error %q says neither what nor where", err)
			}
			return
		}
		var cp policy.ConnPlan
		if err := decodePlan(r.Plan, &cp); err == nil {
			roundTrip(t, cp)
		}
		var kp policy.KernelPlan
		if err := decodePlan(r.Plan, &kp); err == nil {
			roundTrip(t, kp)
		}
	})
}

// roundTrip checks that a decoded plan encodes and decodes to itself.
func roundTrip[T any, PT interface {
	*T
	Validate() error
}](t *testing.T, p T) {
	t.Helper()
	if err := PT(&p).Validate(); err != nil {
		t.Fatalf("accepted an invalid plan: %v", err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatalf("marshal %+v: %v", p, err)
	}
	var again T
	if err := decodePlan(b, PT(&again)); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if diff := cmp.Diff(p, again, policytest.NetOpts); diff != "" {
		t.Fatalf("round trip of %s (-want +got):\n%s", b, diff)
	}
}
