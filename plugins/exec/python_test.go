package exec_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/plugins/exec"
	_ "github.com/mptcpgod/mptcpgod/plugins/fullmesh"
	"github.com/mptcpgod/mptcpgod/policy"
)

// pythonExample returns the command that runs the example policy of
// docs/plugins.md with args. Without python3 the test skips, unless CI is
// "true".
func pythonExample(t testing.TB, args ...string) []string {
	t.Helper()
	py, err := osexec.LookPath("python3")
	if err != nil {
		runtest.Unavailable(t, fmt.Sprintf("python3: %v", err))
	}
	script, err := filepath.Abs("../../docs/examples/prefer_wired.py")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{py, script}, args...)
}

// pythonChain is fullmesh, then the example with args, as a config file
// gives them; the example is started in mode.
func pythonChain(t testing.TB, mode policy.Mode, args ...string) *policy.Chain {
	t.Helper()
	raw, err := json.Marshal(map[string]any{"command": pythonExample(t, args...), "timeout": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := policy.NewChain([]policy.Spec{{Name: "fullmesh"}, {Name: "exec", Config: raw}})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", rec)
		}
	})
	p := c.Policies()[1].(*exec.Exec)
	p.SetLogger(slog.New(rec))
	start(t, p, mode)
	return c
}

// TestPythonExample: the example decides over what fullmesh proposes, for
// synthetic hosts: wired paths are regular and the others backup while a
// wired one exists, dropped kinds go.
func TestPythonExample(t *testing.T) {
	t.Parallel()
	path := func(a netip.Addr, dev string, idx int32, remote netip.AddrPort, backup bool) policy.Path {
		return policy.Path{Local: a, Dev: dev, IfIndex: idx, Remote: remote, Backup: backup}
	}
	noWired := testView(policy.ModeUserspace)
	noWired.Links[0].Usable = false
	server := testConn()
	server.Side = policy.SideServer
	server.Local = netip.AddrPortFrom(eth0Addr, 443)
	server.Remote = netip.MustParseAddrPort("203.0.113.200:40000")
	server.PeerAddrs = []policy.PeerAddr{{Addr: server.Remote}}
	server.Subflows = []policy.Subflow{{Local: server.Local, Remote: server.Remote, Established: true}}

	tests := []struct {
		name string
		args []string
		view policy.View
		conn policy.Conn
		want policy.ConnPlan
	}{
		{
			name: "wired, wifi backup, cellular dropped",
			args: []string{"--drop", "cellular"},
			view: testView(policy.ModeUserspace), conn: testConn(),
			want: policy.ConnPlan{Paths: []policy.Path{
				path(eth0Addr, "eth0", 2, peer, false), path(wlanAddr, "wlan0", 3, peer, true),
			}, Announces: []policy.Announce{}},
		},
		{
			name: "everything but wired backup",
			view: testView(policy.ModeUserspace), conn: testConn(),
			want: policy.ConnPlan{Paths: []policy.Path{
				path(eth0Addr, "eth0", 2, peer, false), path(wlanAddr, "wlan0", 3, peer, true), path(wwanAddr, "wwan0", 4, peer, true),
			}, Announces: []policy.Announce{}},
		},
		{
			name: "no wired link: wifi carries",
			args: []string{"--drop", "cellular"},
			view: noWired, conn: testConn(),
			want: policy.ConnPlan{Paths: []policy.Path{path(wlanAddr, "wlan0", 3, peer, false)}, Announces: []policy.Announce{}},
		},
		{
			name: "server side: cellular not announced",
			args: []string{"--drop", "cellular", "--drop", "virtual"},
			view: testView(policy.ModeUserspace), conn: server,
			want: policy.ConnPlan{
				Paths:     []policy.Path{path(eth0Addr, "eth0", 2, server.Remote, false)},
				Announces: []policy.Announce{{Addr: wlanAddr, Dev: "wlan0", IfIndex: 3}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := pythonChain(t, policy.ModeUserspace, tt.args...)
			got := c.Conn(tt.view, tt.conn, policy.ConnPlan{})
			if diff := cmp.Diff(tt.want, got, policytest.NetOpts); diff != "" {
				t.Errorf("Conn (-want +got):\n%s", diff)
			}
			if st := c.Policies()[1].(*exec.Exec).Stats(); st.Answers != 1 || st.Plugin != "prefer-wired" {
				t.Errorf("Stats %+v: want one answer from prefer-wired", st)
			}
		})
	}

	t.Run("kernel mode", func(t *testing.T) {
		t.Parallel()
		c := pythonChain(t, policy.ModeKernel, "--drop", "cellular")
		ep := func(a netip.Addr, dev string, idx int32, backup bool) policy.Endpoint {
			return policy.Endpoint{Addr: a, Dev: dev, IfIndex: idx, Subflow: true, Fullmesh: true, Backup: backup}
		}
		want := policy.KernelPlan{
			Endpoints: []policy.Endpoint{ep(eth0Addr, "eth0", 2, false), ep(wlanAddr, "wlan0", 3, true)},
			Limits:    policy.Limits{Subflows: new(uint32(8)), AddAddrAccepted: new(uint32(8))},
		}
		got := c.Kernel(testView(policy.ModeKernel), policy.KernelPlan{})
		if diff := cmp.Diff(want, got, policytest.NetOpts); diff != "" {
			t.Errorf("Kernel (-want +got):\n%s", diff)
		}
	})
}

// TestPythonProtocol talks to the example directly: it answers a newer
// daemon with version 1, unknown requests and broken lines with errors
// (and a traceback on standard error), and exits 0 at the end of its
// input.
func TestPythonProtocol(t *testing.T) {
	t.Parallel()
	argv := pythonExample(t)
	cmd := osexec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(strings.Join([]string{
		`{"type":"hello","version":2,"mode":"userspace","later":true}`,
		`{"type":"stats","id":7}`,
		`{"type":"conn","id":8,"view":{},"conn":{}}`,
		`not JSON`,
		``,
	}, "\n"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, stderr.String())
	}
	var got []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, m)
	}
	want := []map[string]any{
		{"type": "hello", "version": 1.0, "name": "prefer-wired"},
		{"type": "error", "id": 7.0, "message": "unknown request type 'stats'"},
		{"type": "error", "id": 8.0, "message": "KeyError: 'next'"},
		{"type": "error", "id": nil, "message": "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr.String(), "Traceback") {
		t.Errorf("standard error %q has no traceback", stderr.String())
	}
}

// BenchmarkRoundTripPython measures one request and its answer with the
// example policy.
func BenchmarkRoundTripPython(b *testing.B) {
	c := pythonChain(b, policy.ModeUserspace, "--drop", "cellular")
	v, conn := testView(policy.ModeUserspace), testConn()
	p := c.Policies()[1]
	next := testConnPlan()
	for b.Loop() {
		p.Conn(v, conn, next)
	}
	if st := p.(*exec.Exec).Stats(); st.Fallbacks != 0 {
		b.Fatalf("%d fallbacks", st.Fallbacks)
	}
}
