package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon/ctlhttp"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/ownertest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

func TestParseForceState(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{`{"units": []}`, nil, true},
		{`{"units": ["a.service", "b@c.service"]}`, []string{"a.service", "b@c.service"}, true},
		{`{}`, nil, true},
		{`{"units": ["a"]}`, nil, false},
		{`{"units": ["a.service", "a.service"]}`, nil, false},
		{`{"units": ["a.service"], "uids": [1]}`, nil, false},
		{`{"units": "a.service"}`, nil, false},
		{`{"units": []} {}`, nil, false},
		{`not json`, nil, false},
	}
	for _, tt := range tests {
		got, err := parseForceState([]byte(tt.in))
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("parseForceState(%s) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzParseForceState: the state file must never panic the daemon, and
// what it accepts are valid, distinct service names.
func FuzzParseForceState(f *testing.F) {
	f.Add([]byte(`{"units": ["a.service"]}`))
	f.Add([]byte(`{"units": ["a@.service", 1]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		units, err := parseForceState(data)
		if err != nil {
			return
		}
		for i, u := range units {
			if slices.Contains(units[:i], u) {
				t.Fatalf("%q accepted twice", u)
			}
		}
	})
}

// testForcing is forcing over a cgroup tree of the test's own, with the
// decision's maps of a bpf.Tester (real maps, a program never attached)
// as its selection; the unit's slice is test.slice.
type testForcing struct {
	*forcing
	tester *bpf.Tester
	root   string // the test's cgroup root
	slice  string // root/test.slice
}

func newTestForcing(t *testing.T, cfg ForceConfig) *testForcing {
	t.Helper()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "forcing needs root for BPF maps and cgroups")
	}
	tester, err := bpf.NewTester()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tester.Close() })
	cgRoot, err := bpf.CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cgRoot, "mgt-force-"+strconv.Itoa(os.Getpid())+"-"+t.Name())
	slice := filepath.Join(root, "test.slice")
	for _, d := range []string{root, slice} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(slice)
		for _, e := range ents {
			_ = os.Remove(filepath.Join(slice, e.Name()))
		}
		if err := errors.Join(os.Remove(slice), os.Remove(root)); err != nil {
			t.Errorf("remove test cgroups: %v", err)
		}
	})
	f, err := newForcing(slog.New(slog.DiscardHandler), cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f.cgroupRoot = root
	f.slice = func(context.Context, string) (string, error) { return "test.slice", nil }
	f.attach = func() (selector, io.Closer, error) { return tester.Selection, io.NopCloser(nil), nil }
	f.probe = func() error { return nil }
	return &testForcing{forcing: f, tester: tester, root: root, slice: slice}
}

// run runs forcing until the test ends.
func (tf *testForcing) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tf.forcing.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// waitSelected waits until the map holds exactly the cgroup ids of the
// directories dirs, each created when the call is made.
func (tf *testForcing) waitSelected(t *testing.T, dirs ...string) {
	t.Helper()
	var want []uint64
	for _, d := range dirs {
		id, err := bpf.CgroupID(d)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	slices.Sort(want)
	enginetest.Poll(t, fmt.Sprintf("cgroup map holding %v (the ids of %q)", want, dirs), func() string {
		got, err := tf.tester.Cgroups()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Sprintf("have %v", got)
		}
		return ""
	})
}

// TestForcingFollowsCgroups: a forced unit's cgroup is selected when
// systemd creates it, and again with its new id when the unit restarts;
// an unforced unit's is not; removing the unit from the configuration
// unselects it.
func TestForcingFollowsCgroups(t *testing.T) {
	tf := newTestForcing(t, ForceConfig{Units: []string{"web.service"}, UIDs: []uint32{1234}})
	tf.run(t)
	web := filepath.Join(tf.slice, "web.service")
	other := filepath.Join(tf.slice, "other.service")
	tf.waitSelected(t) // not running yet
	for i := range 3 {
		if err := os.Mkdir(web, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(other, 0o755); err != nil {
			t.Fatal(err)
		}
		tf.waitSelected(t, web)
		st := tf.status()
		if len(st.Units) != 1 || !st.Units[0].Selected || st.Units[0].Cgroup != web || st.Units[0].Source != ctlapi.SourceConfig {
			t.Errorf("start %d: status %+v", i, st.Units)
		}
		for _, d := range []string{web, other} {
			if err := os.Remove(d); err != nil {
				t.Fatal(err)
			}
		}
		tf.waitSelected(t)
	}
	if err := os.Mkdir(web, 0o755); err != nil {
		t.Fatal(err)
	}
	tf.waitSelected(t, web)
	tf.setConfig(ForceConfig{})
	tf.waitSelected(t)
}

// TestForcingSyncedFirst: once the first sync is done (the daemon's
// READY=1 waits for it), a forced unit's existing cgroup and the forced
// uids are in the maps already, so that a service ordered after the
// daemon is forced from its first socket.
func TestForcingSyncedFirst(t *testing.T) {
	tf := newTestForcing(t, ForceConfig{Units: []string{"web.service"}, UIDs: []uint32{1234}})
	web := filepath.Join(tf.slice, "web.service")
	if err := os.Mkdir(web, 0o755); err != nil {
		t.Fatal(err)
	}
	id, err := bpf.CgroupID(web)
	if err != nil {
		t.Fatal(err)
	}
	tf.run(t)
	select {
	case <-tf.synced:
	case <-time.After(runtest.ReadyTimeout):
		t.Fatalf("the first sync not done after %v", runtest.ReadyTimeout)
	}
	cgroups, err := tf.tester.Cgroups()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cgroups, []uint64{id}) {
		t.Errorf("cgroups in the map after the first sync: %v, want web.service's %d", cgroups, id)
	}
	tf.mu.Lock()
	uid := tf.uids[1234]
	tf.mu.Unlock()
	if !uid {
		t.Error("uid 1234 not in the map after the first sync")
	}
}

// TestForcingEarlySockets: a forced unit whose process, in a cgroup
// below the unit's, listened on plain TCP before the unit was selected is
// warned of with the count, and its status counts the listener; a
// restart, which reopens it as MPTCP, counts none.
func TestForcingEarlySockets(t *testing.T) {
	tf := newTestForcing(t, ForceConfig{Units: []string{"web.service"}})
	h := netnstest.NewHost(t, "early")
	var logs syncbuf.Buffer
	tf.log = slog.New(slog.NewTextHandler(&logs, nil))
	tf.tcpSockets = tcpSocketCounter(h.NetNS())
	web := filepath.Join(tf.slice, "web.service")
	worker := filepath.Join(web, "worker")
	for _, d := range []string{web, worker} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = os.Remove(worker) })
	ln := ownertest.ListenTCP(t, h, ownertest.Owner{UID: 4242, GID: 4242, Cgroup: worker}, ":0")
	tf.run(t)
	tf.waitSelected(t, web)
	const warning = `msg="a forced unit has TCP sockets it opened before it was forced; they stay TCP until it restarts" unit=web.service tcp_sockets=1`
	enginetest.Poll(t, "the warning", func() string {
		if !strings.Contains(logs.String(), warning) {
			return "not logged:\n" + logs.String()
		}
		return ""
	})
	if st := tf.status(); len(st.Units) != 1 || st.Units[0].TCPSockets != 1 {
		t.Errorf("status with the early listener: %+v, want web.service with 1 TCP socket", st.Units)
	}
	ln.Stop()
	ownertest.Listen(t, h, ownertest.Owner{UID: 4242, GID: 4242, Cgroup: worker}, ":0")
	if st := tf.status(); len(st.Units) != 1 || st.Units[0].TCPSockets != 0 {
		t.Errorf("status with an MPTCP listener: %+v, want web.service with no TCP socket", st.Units)
	}
	if n := strings.Count(logs.String(), "TCP sockets it opened before"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}

	// Forced over the control socket while it runs: the answer counts
	// the listener, and the warning is logged by the time it is given.
	api := filepath.Join(tf.slice, "api.service")
	if err := os.Mkdir(api, 0o755); err != nil {
		t.Fatal(err)
	}
	ownertest.ListenTCP(t, h, ownertest.Owner{UID: 4242, GID: 4242, Cgroup: api}, ":0")
	st, err := tf.forceUnit(t.Context(), "api.service", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range st.Units {
		if u.Unit == "api.service" && u.TCPSockets != 1 {
			t.Errorf("force unit answer: %+v, want api.service with 1 TCP socket", u)
		}
	}
	if !strings.Contains(logs.String(), `unit=api.service tcp_sockets=1`) {
		t.Errorf("no warning for api.service:\n%s", logs.String())
	}
}

// TestForceUnit: units forced over the control socket are kept in the
// state file, selected like the configuration's, and refused when they
// conflict; a new forcing (a restarted daemon) reads them back.
func TestForceUnit(t *testing.T) {
	tf := newTestForcing(t, ForceConfig{Units: []string{"conf.service"}})
	tf.run(t)
	api := filepath.Join(tf.slice, "api.service")
	if err := os.Mkdir(api, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := tf.forceUnit(ctx, "api.service", false); err != nil {
		t.Fatal(err)
	}
	tf.waitSelected(t, api)

	for _, tt := range []struct {
		unit string
		off  bool
		want error
	}{
		{"api.service", false, ctlhttp.ErrConflict},
		{"conf.service", false, ctlhttp.ErrConflict},
		{"conf.service", true, ctlhttp.ErrConflict},
		{"never.service", true, ctlhttp.ErrConflict},
		{"api", false, ctlhttp.ErrInvalid},
		{"t@.service", false, ctlhttp.ErrInvalid},
	} {
		if _, err := tf.forceUnit(ctx, tt.unit, tt.off); !errors.Is(err, tt.want) {
			t.Errorf("forceUnit(%q, off %v) = %v, want %v", tt.unit, tt.off, err, tt.want)
		}
	}
	again, err := newForcing(slog.New(slog.DiscardHandler), ForceConfig{}, filepath.Dir(tf.stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"api.service"}, again.runtime); diff != "" {
		t.Errorf("state read back (-want +got):\n%s", diff)
	}
	if _, err := tf.forceUnit(ctx, "api.service", true); err != nil {
		t.Fatal(err)
	}
	tf.waitSelected(t)
	again, err = newForcing(slog.New(slog.DiscardHandler), ForceConfig{}, filepath.Dir(tf.stateFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.runtime) != 0 {
		t.Errorf("state after --off: %q", again.runtime)
	}
}

// TestForceUnitUnavailable: where BPF cannot run, forcing a unit is
// refused with the reason and nothing is written.
func TestForceUnitUnavailable(t *testing.T) {
	f, err := newForcing(slog.New(slog.DiscardHandler), ForceConfig{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	refusal := &bpf.UnavailableError{Step: bpf.StepLoad, Reason: "the kernel refused the load"}
	f.attach = func() (selector, io.Closer, error) { return nil, nil, refusal }
	f.probe = func() error { return refusal }
	_, err = f.forceUnit(t.Context(), "a.service", false)
	if !errors.Is(err, ctlhttp.ErrUnavailable) {
		t.Fatalf("forceUnit: %v, want ErrUnavailable", err)
	}
	if _, serr := os.Stat(f.stateFile); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("state file after a refusal: %v", serr)
	}
	st := f.status()
	if st.BPF.Available || st.BPF.Reason == "" {
		t.Errorf("status %+v, want unavailable with the reason", st.BPF)
	}
}

// TestForceStateMovedAside: a state file that does not parse is moved
// aside and read as no unit.
func TestForceStateMovedAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, forceStateFile), []byte(`{"units": ["x"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := newForcing(slog.New(slog.DiscardHandler), ForceConfig{}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.runtime) != 0 {
		t.Errorf("units %q from a bad file", f.runtime)
	}
	bad, _ := filepath.Glob(filepath.Join(dir, forceStateFile+".bad-*"))
	if len(bad) != 1 {
		t.Errorf("moved aside: %q", bad)
	}
}
