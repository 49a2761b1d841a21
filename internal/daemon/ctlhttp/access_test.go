package ctlhttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// TestMain runs the test binary as a client when asked to: the access
// tests start it again under another uid.
func TestMain(m *testing.M) {
	if op := os.Getenv("CTLAPI_TEST_CLIENT"); op != "" {
		fmt.Print(clientOp(op, os.Getenv("CTLAPI_TEST_SOCKET")))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// clientOp performs op against the socket and describes the outcome.
func clientOp(op, socket string) string {
	c := &ctlapi.Client{Socket: socket}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	switch op {
	case "status":
		_, err = c.Status(ctx)
	case "reload":
		_, err = c.Reload(ctx)
	case "metrics":
		_, err = c.Metrics(ctx)
	default:
		err = fmt.Errorf("unknown op %q", op)
	}
	var ad *ctlapi.AccessDeniedError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ad):
		return "403 " + ad.Message
	}
	return "error " + err.Error()
}

func TestAccess(t *testing.T) {
	t.Parallel()
	g := uint32(4242)
	a := Access{Owner: 998, Group: &g, GroupName: "mptcpgod"}
	tests := []struct {
		name        string
		access      Access
		peer        Peer
		read, write bool
	}{
		{"root", a, Peer{UID: 0, GID: 0}, true, true},
		{"daemon user", a, Peer{UID: 998, GID: 998}, true, false},
		{"primary group", a, Peer{UID: 1000, GID: 4242}, true, false},
		{"supplementary group", a, Peer{UID: 1000, GID: 1000, Groups: []uint32{27, 4242}}, true, false},
		{"stranger", a, Peer{UID: 1000, GID: 1000, Groups: []uint32{27}}, false, false},
		{"no group configured", Access{Owner: 998}, Peer{UID: 1000, GID: 0, Groups: []uint32{0}}, false, false},
		{"group 0 configured", Access{Group: new(uint32(0))}, Peer{UID: 1000, GID: 0}, true, false},
	}
	for _, tt := range tests {
		if r, w := tt.access.CanRead(tt.peer), tt.access.CanWrite(tt.peer); r != tt.read || w != tt.write {
			t.Errorf("%s: read %v write %v, want %v %v", tt.name, r, w, tt.read, tt.write)
		}
	}
}

// TestPeerCredentials: a client running as nobody, with the read group as
// a supplementary group or without it, reads or is refused; mutations are
// refused either way; root may do both. The client is this test binary,
// started again with another uid.
func TestPeerCredentials(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root to switch credentials")
	}
	const gid = 4243 // a group of the test's own: only its members may read
	b := newFake(userspaceStatus())
	s, _ := serve(t, b, ServerConfig{Group: "4243", Metrics: okHandler{}})
	fi, err := os.Stat(s.Socket())
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o660 || st.Gid != gid {
		t.Errorf("socket mode %v group %d, want 0660 group %d", fi.Mode().Perm(), st.Gid, gid)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(cred *syscall.Credential, op string) string {
		cmd := exec.Command("/proc/self/exe")
		cmd.Env = []string{"GORACE=atexit_sleep_ms=0", "CTLAPI_TEST_CLIENT=" + op, "CTLAPI_TEST_SOCKET=" + s.Socket()}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s as %+v: %v\n%s (binary %s)", op, cred, err, out, exe)
		}
		return string(out)
	}
	nobodyIn := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{gid}}
	// Primary group: the socket's file mode alone would let it in too.
	nobodyPrimary := &syscall.Credential{Uid: 65534, Gid: gid, Groups: []uint32{}}
	// Not in the group: the file mode keeps it out before the daemon
	// sees it.
	nobodyOut := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	tests := []struct {
		name string
		cred *syscall.Credential
		op   string
		want string
	}{
		{"member reads status", nobodyIn, "status", "ok"},
		{"member reads metrics", nobodyIn, "metrics", "ok"},
		{"primary member reads", nobodyPrimary, "status", "ok"},
		{"member cannot reload", nobodyIn, "reload", "403 /v1/reload changes the daemon's state and needs root (uid 0); you are uid 65534"},
		{"stranger cannot connect", nobodyOut, "status", "error ctlapi: cannot reach mptcpgod at " + s.Socket() +
			": dial unix " + s.Socket() + ": connect: permission denied: is mptcpgod running?"},
		{"root reloads", nil, "reload", "ok"},
	}
	for _, tt := range tests {
		if got := run(tt.cred, tt.op); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if n := b.reloads.Load(); n != 1 {
		t.Errorf("%d reloads reached the backend, want 1 (root's)", n)
	}
}

// TestPeerNotInGroup: the daemon itself refuses a peer the file mode let
// in, here one connecting through a socket made world-writable.
func TestPeerNotInGroup(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root to switch credentials")
	}
	b := newFake(userspaceStatus())
	s, _ := serve(t, b, ServerConfig{Group: "4244"})
	if err := os.Chmod(s.Socket(), 0o666); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{"GORACE=atexit_sleep_ms=0", "CTLAPI_TEST_CLIENT=status", "CTLAPI_TEST_SOCKET=" + s.Socket()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "403 reading the daemon's state needs root or membership of the group 4244; you are uid 65534"
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestNoCredentials: a request whose context lacks peer credentials is
// refused.
func TestNoCredentials(t *testing.T) {
	t.Parallel()
	h := NewHandler(&fakeBackend{feed: NewFeed(0)}, HandlerOptions{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	want := `{"error":"no peer credentials: the control socket serves local Unix-socket clients only"}` + "\n"
	if rec.Code != http.StatusForbidden || rec.Body.String() != want {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}

// okHandler stands in for the metrics handler.
type okHandler struct{}

func (okHandler) ServeHTTP(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
