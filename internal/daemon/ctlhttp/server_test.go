package ctlhttp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// runServer runs a server on sock until the test ends, and returns it
// running; its Run's error is the test's to check.
func runServer(t *testing.T, sock string) (*runtest.Running, *Server) {
	t.Helper()
	s, err := NewServer(ServerConfig{Socket: sock, Backend: newFake(userspaceStatus())})
	if err != nil {
		t.Fatal(err)
	}
	return runtest.Start(t, "server", s.Run), s
}

func TestListen(t *testing.T) {
	t.Parallel()
	t.Run("stale socket replaced", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(socketDir(t), "s.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		_ = ln.Close()
		run, s := runServer(t, sock)
		run.WaitReady(t, s.Ready())
		if _, err := (&ctlapi.Client{Socket: sock}).Status(t.Context()); err != nil {
			t.Errorf("Status through the replaced socket: %v", err)
		}
		if err := run.Stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket left behind after Run: %v", err)
		}
		_, err = (&ctlapi.Client{Socket: sock}).Status(t.Context())
		if !errors.Is(err, ctlapi.ErrNotRunning) || !strings.HasSuffix(err.Error(), "is mptcpgod running?") {
			t.Errorf("Status after Run: %v, want ErrNotRunning", err)
		}
	})
	t.Run("second daemon refused", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(socketDir(t), "s.sock")
		run, first := runServer(t, sock)
		run.WaitReady(t, first.Ready())
		second, _ := runServer(t, sock)
		err := second.Wait()
		if want := fmt.Sprintf("ctlhttp: another mptcpgod (pid %d) holds %s.lock: is one running already?", os.Getpid(), sock); err == nil || err.Error() != want {
			t.Errorf("second Run: %v", err)
		}
		if _, err := (&ctlapi.Client{Socket: sock}).Status(t.Context()); err != nil {
			t.Errorf("the first daemon lost its socket: %v", err)
		}
	})
	t.Run("live listener without the lock", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(socketDir(t), "s.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		run, _ := runServer(t, sock)
		if err := run.Wait(); err == nil || err.Error() != "ctlhttp: "+sock+": another daemon is listening on it" {
			t.Errorf("Run: %v", err)
		}
	})
	t.Run("lock file is a symbolic link", func(t *testing.T) {
		t.Parallel()
		dir := socketDir(t)
		sock := filepath.Join(dir, "s.sock")
		victim := filepath.Join(dir, "victim")
		if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(victim, sock+".lock"); err != nil {
			t.Fatal(err)
		}
		run, _ := runServer(t, sock)
		if err := run.Wait(); err == nil || !strings.Contains(err.Error(), "a symbolic link, refusing to follow it") {
			t.Errorf("Run: %v", err)
		}
		if b, _ := os.ReadFile(victim); string(b) != "precious" {
			t.Errorf("the link's target was touched: %q", b)
		}
	})
	t.Run("not a socket", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(socketDir(t), "s.sock")
		if err := os.WriteFile(sock, []byte("precious"), 0o644); err != nil {
			t.Fatal(err)
		}
		run, _ := runServer(t, sock)
		if err := run.Wait(); err == nil || err.Error() != "ctlhttp: "+sock+" exists and is not a socket; refusing to replace it" {
			t.Errorf("Run: %v", err)
		}
		if b, _ := os.ReadFile(sock); string(b) != "precious" {
			t.Errorf("the file was touched: %q", b)
		}
	})
}

func TestNewServerErrors(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{feed: NewFeed(0)}
	tests := []struct {
		cfg  ServerConfig
		want string
	}{
		{ServerConfig{}, "ctlhttp: server: backend: missing"},
		{ServerConfig{Backend: b, Socket: "rel.sock"}, `ctlhttp: server: socket "rel.sock": not an absolute path`},
		{ServerConfig{Backend: b, Group: "no-such-group-mptcpgod"},
			`ctlhttp: server: group: ctlhttp: group "no-such-group-mptcpgod": group: unknown group no-such-group-mptcpgod`},
	}
	for _, tt := range tests {
		if _, err := NewServer(tt.cfg); err == nil || err.Error() != tt.want {
			t.Errorf("NewServer(%+v): %v, want %s", tt.cfg, err, tt.want)
		}
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	dir := socketDir(t)
	_, err := (&ctlapi.Client{Socket: filepath.Join(dir, "none.sock")}).Status(t.Context())
	var de *ctlapi.DialError
	if !errors.As(err, &de) || !errors.Is(err, ctlapi.ErrNotRunning) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing socket: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := newFake(userspaceStatus())
	_, c := serve(t, b, ServerConfig{})
	if _, err := c.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestFeed(t *testing.T) {
	t.Parallel()
	f := NewFeed(2)
	ctx, cancel := context.WithCancel(t.Context())
	ch := f.Subscribe(ctx)
	d := func(op string) pmstate.Decision {
		return pmstate.Decision{Time: t0, Kind: pmstate.DecisionAction, Op: pmstate.Op(op)}
	}
	// Publishing never blocks, whoever reads.
	for i := range 5 {
		f.Publish(d(string(rune('a' + i))))
	}
	got := []ctlapi.Event{<-ch, <-ch}
	f.Publish(d("f"))
	got = append(got, <-ch, <-ch)
	want := []ctlapi.Event{{Decision: d("a")}, {Decision: d("b")},
		{Decision: pmstate.Decision{Time: t0, Kind: ctlapi.EventDropped}, Dropped: 3}, {Decision: d("f")}}
	if diff := cmp.Diff(want, got, cmpNet); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Error("channel open after cancel")
	}
	f.Publish(d("g"))
	if n := f.Subscribers(); n != 0 {
		t.Errorf("%d subscribers after cancel", n)
	}
}

// TestFeedFullBuffer: a full subscriber keeps counting until it can take
// the notice.
func TestFeedFullBuffer(t *testing.T) {
	t.Parallel()
	f := NewFeed(1)
	ch := f.Subscribe(t.Context())
	for range 4 {
		f.Publish(pmstate.Decision{Kind: pmstate.DecisionResync})
	}
	if ev := <-ch; ev.Kind != pmstate.DecisionResync {
		t.Fatalf("first %+v", ev)
	}
	f.Publish(pmstate.Decision{Kind: pmstate.DecisionPolicy})
	if ev := <-ch; ev.Kind != ctlapi.EventDropped || ev.Dropped != 3 {
		t.Errorf("notice %+v, want 3 dropped", ev)
	}
	// The notice took the only slot: the policy decision was dropped too.
	f.Publish(pmstate.Decision{Kind: pmstate.DecisionPolicy})
	if ev := <-ch; ev.Kind != ctlapi.EventDropped || ev.Dropped != 1 {
		t.Errorf("second notice %+v, want 1 dropped", ev)
	}
}
