package metrics

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNetstat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Netstat
		err  string
	}{
		{name: "empty", in: "", want: Netstat{}},
		{name: "two sections", in: "TcpExt: A B\nTcpExt: 1 2\nMPTcpExt: MPJoinSynRx MPCurrEstab\nMPTcpExt: 7 18446744073709551615\n",
			want: Netstat{"TcpExt": {"A": 1, "B": 2}, "MPTcpExt": {"MPJoinSynRx": 7, "MPCurrEstab": 18446744073709551615}}},
		{name: "no trailing newline", in: "MPTcpExt: X\nMPTcpExt: 3", want: Netstat{"MPTcpExt": {"X": 3}}},
		{name: "empty section", in: "MPTcpExt:\nMPTcpExt:\n", want: Netstat{"MPTcpExt": {}}},
		{name: "names only", in: "TcpExt: A B\n", err: "metrics: netstat: line 1: section TcpExt has no line of values"},
		{name: "count mismatch", in: "TcpExt: A B\nTcpExt: 1\n", err: "metrics: netstat: line 2: TcpExt has 2 names but 1 values"},
		{name: "section mismatch", in: "TcpExt: A\nIpExt: 1\n", err: "metrics: netstat: line 2: section IpExt where the values of TcpExt belong"},
		{name: "negative", in: "TcpExt: A\nTcpExt: -1\n", err: `metrics: netstat: line 2: TcpExt A: "-1" is not an unsigned decimal`},
		{name: "overflow", in: "TcpExt: A\nTcpExt: 18446744073709551616\n",
			err: `metrics: netstat: line 2: TcpExt A: "18446744073709551616" is not an unsigned decimal`},
		{name: "no section", in: "A B\n1 2\n", err: `metrics: netstat: line 1: no "Section:" at the start`},
		{name: "repeated section", in: "T: A\nT: 1\nT: B\nT: 2\n", err: "metrics: netstat: line 3: section T repeated"},
		{name: "repeated name", in: "T: A A\nT: 1 2\n", err: "metrics: netstat: line 1: T: counter A repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseNetstat([]byte(tt.in))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseNetstatCaptured parses a /proc/net/netstat of Linux 6.18.
func TestParseNetstatCaptured(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "netstat"))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := ParseNetstat(data)
	if err != nil {
		t.Fatal(err)
	}
	m := ns["MPTcpExt"]
	for _, name := range []string{"MPCapableSYNRX", "MPJoinSynRx", "MPCurrEstab", "MPTCPRetrans"} {
		if _, ok := m[name]; !ok {
			t.Errorf("MPTcpExt lacks %s: %v", name, m)
		}
	}
	if len(ns["TcpExt"]) < 100 || len(m) < 40 {
		t.Errorf("sections: TcpExt %d counters, MPTcpExt %d", len(ns["TcpExt"]), len(m))
	}
}

func FuzzParseNetstat(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "netstat"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("MPTcpExt: A B\nMPTcpExt: 1 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ns, err := ParseNetstat(data)
		if err != nil {
			return
		}
		for sec, m := range ns {
			if sec == "" {
				t.Errorf("empty section name in %q", data)
			}
			for name := range m {
				if name == "" {
					t.Errorf("empty counter name in %q", data)
				}
			}
		}
	})
}
