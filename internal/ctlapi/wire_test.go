package ctlapi

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/depstest"
)

// t0 is a time for the full values.
var t0 = time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var (
	ap   = netip.MustParseAddrPort
	addr = netip.MustParseAddr
)

// jsonKeys returns every key path of v marshalled ("conns[].paths[].state").
func jsonKeys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				p := prefix + "." + k
				if strings.HasSuffix(prefix, ".actions") || strings.HasSuffix(prefix, ".failures") || strings.HasSuffix(prefix, ".events") {
					continue
				}
				keys = append(keys, p)
				walk(p, x)
			}
		case []any:
			for _, x := range v {
				walk(prefix+"[]", x)
			}
		}
	}
	walk("", m)
	slices.Sort(keys)
	return slices.Compact(keys)
}

// full returns v with every field set, recursively, so that omitempty
// keys show.
func full(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Pointer:
		if depth > 6 {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		full(v.Elem(), depth+1)
	case reflect.Struct:
		switch v.Interface().(type) {
		case time.Time:
			v.Set(reflect.ValueOf(t0))
			return
		case netip.Addr:
			v.Set(reflect.ValueOf(addr("192.0.2.1")))
			return
		case netip.AddrPort:
			v.Set(reflect.ValueOf(ap("192.0.2.1:1")))
			return
		case netip.Prefix:
			v.Set(reflect.ValueOf(netip.MustParsePrefix("192.0.2.0/24")))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				full(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if depth > 6 {
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.Set(reflect.ValueOf([]byte(`{"x":1}`)).Convert(v.Type()))
			return
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		full(s.Index(0), depth+1)
		v.Set(s)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
	case reflect.String:
		if v.Type() == reflect.TypeFor[pmstate.Mode]() {
			v.SetString("kernel")
		} else {
			v.SetString("x")
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Interface:
		v.Set(reflect.ValueOf("x"))
	}
}

// TestWireFields pins the JSON keys of every answer: clients rely on
// them, so a key may be added but never removed or renamed without a new
// version of the routes. Added keys are logged; go test -update records
// them in the golden file.
func TestWireFields(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	for _, v := range []any{&Status{}, &Links{}, &Paths{}, &Policies{}, &Reload{}, &Event{}, &ErrorBody{}, &Usage{}, &Force{}} {
		full(reflect.ValueOf(v).Elem(), 0)
		name := reflect.TypeOf(v).Elem().Name()
		for _, k := range jsonKeys(t, v) {
			out.WriteString(name + k + "\n")
		}
	}
	p := filepath.Join("testdata", "wire.golden")
	if *update {
		if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	have := strings.Split(out.String(), "\n")
	for _, k := range strings.Split(string(want), "\n") {
		if !slices.Contains(have, k) {
			t.Errorf("wire key %s is gone: removing or renaming a key needs a new route version", k)
		}
	}
	for _, k := range have {
		if !slices.Contains(strings.Split(string(want), "\n"), k) {
			t.Logf("new wire key %s (go test -update records it; document it in docs/control-socket.md)", k)
		}
	}
}

// TestDeps: ctlapi imports the state types of ours and nothing else, so
// that mptcpctl, which imports it, builds without the daemon.
func TestDeps(t *testing.T) {
	t.Parallel()
	depstest.Allow(t, depstest.Module+"internal/ctlapi", depstest.Module+"internal/pmstate")
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"3f97be70", 0x3f97be70, true},
		{"a", 0xa, true},
		{"FFFFFFFF", 0xffffffff, true},
		{"", 0, false},
		{"123456789", 0, false},
		{"0x1", 0, false},
		{"-1", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseToken(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseToken(%q) = %#x, %v", tt.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "expected 1 to 8 hexadecimal digits") {
			t.Errorf("ParseToken(%q): %v does not say what is expected", tt.in, err)
		}
	}
}

// TestParsePeer: the peer filter every side parses alike.
func TestParsePeer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in, want string // want "" for an error
	}{
		{"203.0.113.7", "203.0.113.7/32"},
		{"::ffff:203.0.113.7", "203.0.113.7/32"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"203.0.113.9/24", "203.0.113.0/24"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"::ffff:203.0.113.0/120", ""},
		{"fe80::1%eth0", ""},
		{"203.0.113.0/33", ""},
		{"example.org", ""},
		{"", ""},
	} {
		p, err := ParsePeer(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ParsePeer(%q) = %v, want an error", tt.in, p)
		case tt.want != "" && (err != nil || p.String() != tt.want):
			t.Errorf("ParsePeer(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		}
	}
}
