package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/daemon/ctlhttp"
	"github.com/mptcpgod/mptcpgod/internal/force"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/transparent"
)

// fakeSystemd is a systemd of the test's own for mptcpctl force: units
// with a unit file in a temporary directory, the systemctl calls made.
type fakeSystemd struct {
	dir   string            // the drop-in directory (/etc/systemd/system)
	units map[string]string // unit → fragment path
	state string            // ActiveState of every unit
	calls []string
	fail  string // a systemctl verb that fails
	// noRun, when set, is why mptcpctl run cannot work here.
	noRun string
	// socket is the daemon's control socket; "" for no daemon.
	socket string
}

func newFakeSystemd(t *testing.T) *fakeSystemd {
	t.Helper()
	s := &fakeSystemd{dir: t.TempDir(), units: map[string]string{}, state: "active"}
	return s
}

// addUnit writes a unit file.
func (s *fakeSystemd) addUnit(t *testing.T, unit, text string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), unit)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s.units[unit] = p
}

func (s *fakeSystemd) systemctl(_ context.Context, args ...string) (string, error) {
	s.calls = append(s.calls, strings.Join(args, " "))
	if args[0] == s.fail {
		return "", fmt.Errorf("systemctl %s: exit status 1", args[0])
	}
	if args[0] != "show" {
		return "", nil
	}
	unit := args[len(args)-1]
	frag, ok := s.units[unit]
	if !ok {
		return "LoadState=not-found\nFragmentPath=\nDropInPaths=\nActiveState=inactive\n", nil
	}
	return fmt.Sprintf("LoadState=loaded\nFragmentPath=%s\nDropInPaths=\nActiveState=%s\n", frag, s.state), nil
}

// run runs mptcpctl with s as systemd, as uid euid, with the daemon of
// s.socket, or none.
func (s *fakeSystemd) run(t *testing.T, euid int, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	// The flag, not a.socket, which the flag's default overwrites: a
	// daemon running on this machine must not answer.
	sock := s.socket
	if sock == "" {
		sock = filepath.Join(t.TempDir(), "none.sock")
	}
	args = append([]string{"--socket", sock}, args...)
	a.forceEnv = forceEnv{
		systemdDir: s.dir,
		systemctl:  s.systemctl,
		euid:       func() int { return euid },
		booted:     func() bool { return true },
		mptcpctl:   func() (string, error) { return "/usr/bin/mptcpctl", nil },
		probe:      func() error { return errors.New("bpf: unavailable (load): refused here") },
		runProbe: func() error {
			if s.noRun != "" {
				return &transparent.UnavailableError{Reason: s.noRun}
			}
			return nil
		},
	}
	code := a.execute(context.Background(), args)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

const webUnit = `[Service]
Type=notify
ExecStart=/usr/bin/web --listen ":8080" %i
`

func TestForceUnitDropIn(t *testing.T) {
	t.Parallel()
	s := newFakeSystemd(t)
	s.addUnit(t, "web.service", webUnit)
	r := s.run(t, 0, "force", "unit", "web.service")
	if r.code != 0 {
		t.Fatalf("force unit: %d %s", r.code, r.stderr)
	}
	dropIn := filepath.Join(s.dir, "web.service.d", force.DropInName)
	got, err := os.ReadFile(dropIn)
	if err != nil {
		t.Fatal(err)
	}
	want, err := force.DropIn("web.service", []string{`/usr/bin/web --listen ":8080" %i`}, "/usr/bin/mptcpctl")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("drop-in (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.stdout, "restart it with: systemctl restart web.service (or --now)") {
		t.Errorf("output does not say a restart is needed:\n%s", r.stdout)
	}
	wantCalls := []string{"show", "daemon-reload"}
	if got := verbs(s.calls); !cmp.Equal(got, wantCalls) {
		t.Errorf("systemctl calls %q, want %q", got, wantCalls)
	}

	// Again: already forced, nothing changes.
	s.calls = nil
	r = s.run(t, 0, "force", "unit", "web.service")
	if r.code != 1 || !strings.Contains(r.stderr, "already forced, with the drop-in") {
		t.Errorf("forcing twice: %d %q", r.code, r.stderr)
	}
	if got := verbs(s.calls); !cmp.Equal(got, []string{"show"}) {
		t.Errorf("forcing twice called systemctl %q", got)
	}

	// Status lists it.
	r = s.run(t, 0, "force", "status", "--json")
	var st forceStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v: %s %s", err, r.stdout, r.stderr)
	}
	if len(st.Units) != 1 || st.Units[0] != (forceStatusUnit{Unit: "web.service", Mechanism: mechDropIn, Source: dropIn}) {
		t.Errorf("status units %+v", st.Units)
	}
	if st.Mechanisms.BPF.Available || !strings.Contains(st.Mechanisms.BPF.Reason, "not running") ||
		!strings.Contains(st.Mechanisms.BPF.Reason, "refused here") || !st.Mechanisms.DropIn.Available {
		t.Errorf("status mechanisms %+v", st.Mechanisms)
	}

	// --off --now removes it, reloads, restarts.
	s.calls = nil
	r = s.run(t, 0, "force", "unit", "--off", "--now", "web.service")
	if r.code != 0 {
		t.Fatalf("--off: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(dropIn); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("drop-in after --off: %v", err)
	}
	if got := verbs(s.calls); !cmp.Equal(got, []string{"daemon-reload", "show", "try-restart"}) {
		t.Errorf("--off --now called systemctl %q", got)
	}
	r = s.run(t, 0, "force", "unit", "--off", "web.service")
	if r.code != 1 || !strings.Contains(r.stderr, "is not forced") {
		t.Errorf("--off twice: %d %q", r.code, r.stderr)
	}
}

// verbs are the systemctl verbs called.
func verbs(calls []string) []string {
	var out []string
	for _, c := range calls {
		out = append(out, strings.Fields(c)[0])
	}
	return out
}

func TestForceUnitRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		euid int
		unit string // the unit file's text, for web.service
		fail string // a systemctl verb that fails
		args []string
		code int
		want string
	}{
		{"not a service", 0, webUnit, "", []string{"force", "unit", "web"}, 2, `"web" is not a service`},
		{"a template", 0, webUnit, "", []string{"force", "unit", "getty@.service"}, 2, "is a template"},
		{"two units", 0, webUnit, "", []string{"force", "unit", "a.service", "b.service"}, 2, "expected one unit"},
		{"bad mechanism", 0, webUnit, "", []string{"force", "unit", "--mechanism", "ebpf", "web.service"}, 2, "expected auto, bpf or drop-in"},
		{"not root", 1000, webUnit, "", []string{"force", "unit", "web.service"}, 1, "needs root"},
		{"not found", 0, webUnit, "", []string{"force", "unit", "nope.service"}, 1, "unit nope.service not found"},
		{"argv0", 0, "[Service]\nExecStart=@/bin/busybox httpd -f\n", "", []string{"force", "unit", "web.service"}, 1, "argv[0]"},
		{"no ExecStart", 0, "[Service]\nType=oneshot\n", "", []string{"force", "unit", "web.service"}, 1, "has no ExecStart="},
		{"bpf unavailable", 0, webUnit, "", []string{"force", "unit", "--mechanism", "bpf", "web.service"}, 1, "BPF mechanism is unavailable"},
		{"reload fails", 0, webUnit, "daemon-reload", []string{"force", "unit", "web.service"}, 1, "drop-in was removed again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newFakeSystemd(t)
			s.addUnit(t, "web.service", tt.unit)
			s.fail = tt.fail
			r := s.run(t, tt.euid, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
			if ents, _ := os.ReadDir(s.dir); len(ents) != 0 && tt.fail == "" {
				t.Errorf("a refusal left %v in the drop-in directory", ents)
			}
			if tt.fail != "" {
				if _, err := os.Stat(filepath.Join(s.dir, "web.service.d", force.DropInName)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("drop-in left after a failed reload: %v", err)
				}
			}
		})
	}
}

// TestForceDropInNeedsRun: on a kernel where mptcpctl run cannot work
// (no seccomp user notification), the drop-in mechanism is refused and
// force status says why, instead of writing a drop-in whose service
// would then fail to start.
func TestForceDropInNeedsRun(t *testing.T) {
	t.Parallel()
	s := newFakeSystemd(t)
	s.addUnit(t, "web.service", webUnit)
	s.noRun = "Linux 5.10 is older than 5.14"
	r := s.run(t, 0, "force", "unit", "web.service")
	if r.code != 1 || !strings.Contains(r.stderr, "drop-in mechanism is unavailable: mptcpctl run cannot work here: Linux 5.10 is older than 5.14") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(s.dir); len(ents) != 0 {
		t.Errorf("the refusal left %v in the drop-in directory", ents)
	}
	r = s.run(t, 0, "force", "status", "--json")
	var st forceStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("%v: %s %s", err, r.stdout, r.stderr)
	}
	if st.Mechanisms.DropIn.Available || !strings.Contains(st.Mechanisms.DropIn.Reason, "older than 5.14") {
		t.Errorf("drop-in mechanism %+v", st.Mechanisms.DropIn)
	}
}

// TestWriteForceStatus: a selected unit shows its cgroup, and the TCP
// sockets it opened before it was selected when it has any.
func TestWriteForceStatus(t *testing.T) {
	st := &forceStatus{Units: []forceStatusUnit{
		{Unit: "web.service", Mechanism: mechBPF, Source: ctlapi.SourceConfig, CgroupID: 7, Selected: true, TCPSockets: 2},
		{Unit: "api.service", Mechanism: mechBPF, Source: ctlapi.SourceControl, CgroupID: 8, Selected: true},
		{Unit: "idle.service", Mechanism: mechBPF, Source: ctlapi.SourceControl},
	}}
	var b strings.Builder
	if err := writeForceStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"web.service   bpf        config    selected (cgroup 7); TCP sockets opened before, TCP until it restarts: 2\n",
		"api.service   bpf        mptcpctl  selected (cgroup 8)\n",
		"idle.service  bpf        mptcpctl  not running\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no line %q in:\n%s", want, b.String())
		}
	}
}

// forceDaemon is a daemon that forces with BPF: it records the units
// forced and answers each with tcpSockets TCP sockets opened before.
type forceDaemon struct {
	*fakeDaemon
	tcpSockets int
	forced     []string
}

func (d *forceDaemon) Force(context.Context) (ctlapi.Force, error) {
	f := ctlapi.Force{BPF: ctlapi.Mechanism{Available: true}, Units: []ctlapi.ForcedUnit{}, UIDs: []uint32{}}
	for _, u := range d.forced {
		f.Units = append(f.Units, ctlapi.ForcedUnit{Unit: u, Source: ctlapi.SourceControl, CgroupID: 9, Selected: true,
			TCPSockets: d.tcpSockets})
	}
	return f, nil
}

func (d *forceDaemon) ForceUnit(ctx context.Context, unit string, off bool) (ctlapi.Force, error) {
	d.forced = append(d.forced, unit)
	return d.Force(ctx)
}

// TestForceUnitBPF: force unit with BPF asks the daemon, and says how
// many TCP sockets the running service opened before, which stay TCP,
// when the daemon counts any.
func TestForceUnitBPF(t *testing.T) {
	for _, tt := range []struct {
		tcpSockets int
		want       string
	}{
		{0, "web.service runs: sockets it opened before stay TCP until it reopens them; restart it with: systemctl restart web.service (or --now)\n"},
		{2, "web.service runs: the TCP sockets it opened before (2 now) stay TCP until it reopens them; restart it with: systemctl restart web.service (or --now)\n"},
	} {
		s := newFakeSystemd(t)
		s.addUnit(t, "web.service", webUnit)
		d := &forceDaemon{fakeDaemon: &fakeDaemon{feed: ctlhttp.NewFeed(0)}, tcpSockets: tt.tcpSockets}
		sock := filepath.Join(t.TempDir(), "mptcpgod.sock")
		srv, err := ctlhttp.NewServer(ctlhttp.ServerConfig{Socket: sock, Backend: d})
		if err != nil {
			t.Fatal(err)
		}
		runtest.Run(t, "server", srv.Run).WaitReady(t, srv.Ready())
		s.socket = sock
		r := s.run(t, 0, "force", "unit", "web.service")
		want := "web.service forced to MPTCP with BPF: its new TCP sockets are MPTCP\n" + tt.want
		if r.code != 0 || r.stdout != want {
			t.Errorf("%d TCP sockets: exit %d\n%s%s\nwant:\n%s", tt.tcpSockets, r.code, r.stdout, r.stderr, want)
		}
		if !slices.Equal(d.forced, []string{"web.service"}) {
			t.Errorf("%d TCP sockets: the daemon forced %q, want web.service", tt.tcpSockets, d.forced)
		}
	}
}
