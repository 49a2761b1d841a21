package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon/ctlhttp"
	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/ownertest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	_ "github.com/mptcpgod/mptcpgod/plugins/all" // the daemon's compiled-in policies
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// TestMain runs mptcpctl itself instead of the tests when
// MPTCPCTL_TEST_MAIN is set: the tests start the test binary again under
// another uid to see what the daemon lets that user do. It runs an
// ownertest child when the environment asks for one.
func TestMain(m *testing.M) {
	ownertest.RunChild()
	if os.Getenv("MPTCPCTL_TEST_MAIN") != "" {
		crashOutput(os.Getenv(crashFileEnv))
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// fakeDaemon is a ctlhttp.Backend with canned answers.
type fakeDaemon struct {
	mu      sync.Mutex
	st      pmstate.Status
	conns   []pmstate.Conn
	reloads int
	feed    *ctlhttp.Feed
	// usage is the usage report; nil means accounting is off.
	usage *usage.Report
	// subscribed counts the event streams opened.
	subscribed atomic.Int32
}

func (f *fakeDaemon) Status(context.Context) (pmstate.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, nil
}

func (f *fakeDaemon) Conn(_ context.Context, token uint32) (pmstate.Conn, error) {
	for _, c := range f.conns {
		if c.Token == token {
			return c, nil
		}
	}
	return pmstate.Conn{}, pm.ErrNoConn
}

// Conns answers pages of one connection, so that mptcpctl pages.
func (f *fakeDaemon) Conns(_ context.Context, q pmstate.ConnQuery) (pmstate.ConnPage, error) {
	conns := slices.Clone(f.conns)
	slices.SortFunc(conns, func(a, b pmstate.Conn) int { return int(int64(a.Token) - int64(b.Token)) })
	page := pmstate.ConnPage{Conns: []pmstate.Conn{}}
	for _, c := range conns {
		if c.Token < q.From || q.Peer.IsValid() && !q.Peer.Contains(c.Remote.Addr()) {
			continue
		}
		if len(page.Conns) == 1 {
			page.Next = c.Token
			break
		}
		page.Conns = append(page.Conns, c)
	}
	return page, nil
}

func (f *fakeDaemon) Info(context.Context) (ctlhttp.Info, error) {
	return ctlhttp.Info{Version: "v1.2.3", Mode: f.st.Mode, ConfigFile: "/etc/mptcpgod/mptcpgod.toml",
		Policy: policy.Config{Chain: []policy.Spec{{Name: "fullmesh"}}}, Links: testDaemonLinks()}, nil
}

func (f *fakeDaemon) Reload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return nil
}

func (f *fakeDaemon) reloadCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloads
}

func (f *fakeDaemon) Events(ctx context.Context) (<-chan ctlapi.Event, error) {
	ch := f.feed.Subscribe(ctx)
	f.subscribed.Add(1)
	return ch, nil
}

func (f *fakeDaemon) Usage(context.Context) (usage.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.usage == nil {
		return usage.Report{}, ctlhttp.ErrUsageOff
	}
	return *f.usage, nil
}

// testUsageReport is testUsage as the daemon's accounting reports it.
func testUsageReport() *usage.Report {
	u := testUsage()
	rep := &usage.Report{Now: u.Now, StateFile: u.StateFile, Saved: u.Saved, Notices: u.Notices}
	for _, l := range u.Links {
		rep.Links = append(rep.Links, usage.Link{Name: l.Name, IfIndex: l.IfIndex, Present: l.Present, Metered: l.Metered,
			MeteredBy: l.MeteredBy, UsedBytes: l.UsedBytes, QuotaBytes: l.QuotaBytes, RemainingBytes: l.RemainingBytes,
			OverQuota: l.OverQuota, QuotaReachedAt: l.QuotaReachedAt, Period: usage.Period(l.Period),
			PeriodStart: l.PeriodStart, PeriodEnd: l.PeriodEnd, CostPerGB: l.CostPerGB, Cost: l.Cost,
			QuotaReachedTotal: l.QuotaReachedTotal, Sampled: l.Sampled})
	}
	return rep
}

// serveFake runs a control socket for a fake userspace daemon, readable by
// group gid, in a directory every user may traverse.
func serveFake(t *testing.T, gid string) (string, *fakeDaemon) {
	t.Helper()
	return serveFakeWith(t, gid, ctlhttp.Limits{})
}

// serveFakeWith is serveFake with the server's limits.
func serveFakeWith(t *testing.T, gid string, lim ctlhttp.Limits) (string, *fakeDaemon) {
	t.Helper()
	dir, err := os.MkdirTemp("", "mptcpctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fakeDaemon{feed: ctlhttp.NewFeed(0), st: pmstate.Status{Mode: pmstate.ModeUserspace, Policy: "fullmesh", Ready: true,
		Started: time.Now().Add(-time.Hour), Connections: len(testPaths().Conns),
		Counters: pmstate.Counters{Actions: map[pmstate.Op]uint64{pmstate.OpCreateSubflow: 1}}},
		conns: testPaths().Conns, usage: testUsageReport()}
	sock := filepath.Join(dir, "mptcpgod.sock")
	s, err := ctlhttp.NewServer(ctlhttp.ServerConfig{Socket: sock, Group: gid, Backend: f, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	runtest.Run(t, "server", s.Run).WaitReady(t, s.Ready())
	return sock, f
}

// TestDaemonNotRunning: every daemon command says in one line that the
// daemon is not running and how to start it; kernel commands work on.
func TestDaemonNotRunning(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, cmd := range []string{"status", "links", "paths", "policies", "usage", "reload", "events"} {
		r := mptcpctl(t, "--socket", sock, cmd)
		want := "mptcpctl: " + cmd + ": mptcpgod is not running (nothing listens on " + sock +
			"); start it with: sudo systemctl start mptcpgod\n"
		if r.code != exitRefused || r.stderr != want || r.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", cmd, r.code, r.stdout, r.stderr, want)
		}
	}
	// A socket file nobody listens on, as a killed daemon leaves it.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	if err := exec.Command("python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])", stale).Run(); err != nil {
		t.Fatalf("make a stale socket: %v", err)
	}
	if r := mptcpctl(t, "--socket", stale, "status"); r.code != exitRefused || !strings.Contains(r.stderr, "mptcpgod is not running") {
		t.Errorf("stale socket: exit %d, stderr %q", r.code, r.stderr)
	}
	h := netnstest.NewHost(t, "ctl")
	if r := ctl(t, h, "--socket", sock, "limits"); r.code != exitOK || !strings.Contains(r.stdout, "SUBFLOWS") {
		t.Errorf("limits without the daemon: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestDaemonCommandsFake runs every daemon command through a real socket
// to a fake daemon, as a table and with --json.
func TestDaemonCommandsFake(t *testing.T) {
	t.Parallel()
	sock, f := serveFake(t, "")
	tests := []struct {
		args  []string
		table string // a line of the table
		json  func(string) error
	}{
		{[]string{"status"}, "policy    fullmesh", func(s string) error { return decodeInto[ctlapi.Status](s) }},
		{[]string{"links"}, "veth9  virtual   up, excluded by kind virtual  192.0.2.99     no    not usable: excluded by kind virtual",
			func(s string) error { return decodeInto[ctlapi.Links](s) }},
		{[]string{"paths"}, "token 3f97be70  client  192.0.2.1:40000 → 192.0.2.2:8080  pm userspace",
			func(s string) error { return decodeInto[ctlapi.Paths](s) }},
		{[]string{"paths", "a"}, "token 0000000a  server", func(s string) error { return decodeInto[ctlapi.Paths](s) }},
		{[]string{"policies"}, "fullmesh: ", func(s string) error { return decodeInto[ctlapi.Policies](s) }},
		{[]string{"usage"}, "yes (networkmanager)  2.0 GB  2.0 GB  0 B (reached)",
			func(s string) error { return decodeInto[ctlapi.Usage](s) }},
		{[]string{"reload"}, "reloaded; policy fullmesh", func(s string) error { return decodeInto[ctlapi.Reload](s) }},
	}
	for _, tt := range tests {
		r := mptcpctl(t, append([]string{"--socket", sock}, tt.args...)...)
		if r.code != exitOK || !strings.Contains(r.stdout, tt.table) {
			t.Errorf("%v: exit %d, stderr %q, stdout:\n%s\nwant a line %q", tt.args, r.code, r.stderr, r.stdout, tt.table)
		}
		r = mptcpctl(t, append([]string{"--socket", sock, "--json"}, tt.args...)...)
		if r.code != exitOK {
			t.Errorf("%v --json: exit %d, stderr %q", tt.args, r.code, r.stderr)
		} else if err := tt.json(r.stdout); err != nil {
			t.Errorf("%v --json: %v\n%s", tt.args, err, r.stdout)
		}
	}
	if n := f.reloadCount(); n != 2 {
		t.Errorf("%d reloads, want 2", n)
	}
	r := mptcpctl(t, "--socket", sock, "paths", "beef")
	if want := "mptcpctl: paths: the daemon tracks no connection with token 0000beef\n"; r.code != exitRefused || r.stderr != want {
		t.Errorf("paths of an unknown token: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	f.mu.Lock()
	f.usage = nil
	f.mu.Unlock()
	r = mptcpctl(t, "--socket", sock, "usage")
	if want := "mptcpctl: usage: usage accounting is off: no [usage] links configured\n"; r.code != exitRefused || r.stderr != want {
		t.Errorf("usage without [usage] links: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	r = mptcpctl(t, "--socket", sock, "-n", "x", "status")
	if r.code != exitUsage || !strings.HasPrefix(r.stderr, `mptcpctl: status: --netns "x": the daemon commands reach a daemon through its socket; use --socket PATH`) {
		t.Errorf("status -n: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := mptcpctl(t, "--socket", sock, "paths", "xyz"); r.code != exitUsage {
		t.Errorf("paths xyz: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := mptcpctl(t, "--socket", sock, "status", "now"); r.code != exitUsage {
		t.Errorf("status now: exit %d, stderr %q", r.code, r.stderr)
	}
}

// decodeInto checks that s is one JSON value of type T, strictly.
func decodeInto[T any](s string) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.DisallowUnknownFields()
	var v T
	if err := d.Decode(&v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("more than one value")
	}
	return nil
}

// TestEventsCommandFake: events prints the decisions the daemon publishes,
// a line each, until interrupted.
func TestEventsCommandFake(t *testing.T) {
	t.Parallel()
	sock, f := serveFake(t, "")
	for _, asJSON := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		a := newApp(&syncbuf.Buffer{}, &syncbuf.Buffer{})
		a.subscribed = func() {
			f.feed.Publish(pmstate.Decision{Time: time.Now(), Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow, Token: 0x3f97be70})
		}
		args := []string{"--socket", sock, "events"}
		if asJSON {
			args = append(args, "--json")
		}
		done := make(chan int, 1)
		go func() { done <- a.execute(ctx, args) }()
		out := a.stdout.(*syncbuf.Buffer)
		waitFor(t, "the decision printed", func() bool { return strings.Contains(out.String(), "create_subflow") })
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("events (json %v): exit %d, stderr %q", asJSON, code, a.stderr.(*syncbuf.Buffer).String())
		}
		line := strings.TrimSpace(out.String())
		if asJSON {
			var ev ctlapi.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Op != "create_subflow" || ev.Token != 0x3f97be70 {
				t.Errorf("events --json printed %q (%v)", line, err)
			}
		} else if !strings.HasSuffix(line, " action op=create_subflow token=3f97be70 ok") {
			t.Errorf("events printed %q", line)
		}
	}
}

// TestEventsIdleReconnect: a reader's stream that the daemon ends for
// being idle is opened again at once, without a word, and the decisions
// after it are printed.
func TestEventsIdleReconnect(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root to switch credentials")
	}
	sock, f := serveFakeWith(t, "4249", ctlhttp.Limits{IdleTimeout: 100 * time.Millisecond})
	cmd := exec.Command("/proc/self/exe", "--socket", sock, "events")
	cmd.Env = []string{"MPTCPCTL_TEST_MAIN=1", "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{4249}}}
	var out, errb syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(time.Minute)
	for f.subscribed.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("events opened %d streams in a minute; stderr %q", f.subscribed.Load(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for !strings.Contains(out.String(), "create_subflow") {
		f.feed.Publish(pmstate.Decision{Time: time.Now(), Kind: pmstate.DecisionAction, Op: pmstate.OpCreateSubflow, Token: 0x3f97be70})
		if time.Now().After(deadline) {
			t.Fatalf("events printed %q; stderr %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if errb.String() != "" {
		t.Errorf("events wrote to stderr: %q", errb.String())
	}
}

// asUser runs mptcpctl args as the given credentials, from this test
// binary started again, and returns its exit code, stdout and stderr.
func asUser(t *testing.T, cred *syscall.Credential, args ...string) result {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = []string{"MPTCPCTL_TEST_MAIN=1", "GORACE=atexit_sleep_ms=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run as %+v: %v", cred, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// TestDaemonCommandsAsNobody: a user in the daemon's group reads and is
// refused a reload with a clear message; a user outside cannot even open
// the socket.
func TestDaemonCommandsAsNobody(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root to switch credentials")
	}
	const gid = 4245
	sock, f := serveFake(t, "4245")
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{gid}}
	stranger := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	for _, cmd := range []string{"status", "links", "paths", "policies", "usage"} {
		if r := asUser(t, member, "--socket", sock, cmd); r.code != exitOK || r.stdout == "" {
			t.Errorf("%s as a member: exit %d, stderr %q", cmd, r.code, r.stderr)
		}
	}
	r := asUser(t, member, "--socket", sock, "reload")
	want := "mptcpctl: reload: /v1/reload changes the daemon's state and needs root (uid 0); you are uid 65534 (try sudo)\n"
	if diff := cmp.Diff(want, r.stderr); diff != "" || r.code != exitRefused {
		t.Errorf("reload as a member: exit %d, stderr (-want +got):\n%s", r.code, diff)
	}
	r = asUser(t, stranger, "--socket", sock, "status")
	want = "mptcpctl: status: cannot open " + sock + ": permission denied: the daemon's state is for root and the members of its group (try sudo)\n"
	if diff := cmp.Diff(want, r.stderr); diff != "" || r.code != exitRefused {
		t.Errorf("status as a stranger: exit %d, stderr (-want +got):\n%s", r.code, diff)
	}
	if n := f.reloadCount(); n != 0 {
		t.Errorf("%d reloads reached the daemon", n)
	}
}
