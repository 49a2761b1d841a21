//go:build linux

package ctlhttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

func TestGate(t *testing.T) {
	t.Parallel()
	g := newGate("connections", 2, 3, 2)
	admit := func(uid uint32, ok bool) {
		t.Helper()
		if err := g.admit(uid); (err == nil) != ok {
			t.Fatalf("admit(%d): %v, want ok %v", uid, err, ok)
		}
	}
	admit(1000, true)
	admit(1000, true)
	admit(1000, false) // per user
	admit(1001, true)
	admit(1002, false) // shared places taken
	admit(0, true)     // root's own
	admit(0, true)
	admit(0, false) // root's own taken too
	g.release(1000)
	admit(1002, true) // root holds only its own places
	g.release(0)
	g.release(0)
	if err := g.admit(1002); err == nil || err.Error() != "too many connections open (at most 3 for users other than root)" {
		t.Errorf("admit beyond the shared places: %v", err)
	}
	if err := g.admit(1000); err == nil || err.Error() != "too many connections open (at most 3 for users other than root)" {
		t.Errorf("admit beyond the shared places: %v", err)
	}
	admit(0, true)
	admit(0, true)
	if err := g.admit(0); err == nil || err.Error() != "too many connections open (5)" {
		t.Errorf("root beyond its places: %v", err)
	}
}

// dialAs connects to the socket as uid/gid: the thread switches its
// credentials (the kernel records the connecting thread's as the peer's)
// and switches back.
func dialAs(t *testing.T, sock string, uid, gid uint32) (net.Conn, error) {
	t.Helper()
	runtime.LockOSThread()
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), 0); errno != 0 {
		runtime.UnlockOSThread()
		t.Fatalf("setresgid: %v", errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), 0); errno != 0 {
		t.Fatalf("setresuid: %v", errno) // the thread dies with its odd credentials
	}
	c, err := net.Dial("unix", sock)
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0); errno != 0 {
		t.Fatalf("back to root: %v", errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0); errno != 0 {
		t.Fatalf("back to root's group: %v", errno)
	}
	runtime.UnlockOSThread()
	return c, err
}

// request writes a GET of path on c, kept alive, and returns the answer's
// status and its body reader (an event stream goes on).
func request(t *testing.T, c net.Conn, path string) (*http.Response, error) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return http.ReadResponse(bufio.NewReader(c), nil)
}

// TestRootServedWhateverOthersDo: a member of the read group who opens as
// many event streams and keep-alive connections as it can gets its share
// (429 beyond, with the reason), and root's status and event stream still
// answer; a reader's idle stream ends with the idle trailer and gives its
// place back.
func TestRootServedWhateverOthersDo(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root to switch credentials")
	}
	const reader, group = 4245, 4246
	b := newFake(userspaceStatus())
	lim := DefaultLimits
	lim.IdleTimeout = time.Hour
	s, root := serve(t, b, ServerConfig{Group: fmt.Sprint(group), Limits: lim})

	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	open := func(path string) (int, string) {
		c, err := dialAs(t, s.Socket(), reader, group)
		if err != nil {
			t.Fatalf("dial as the reader: %v", err)
		}
		resp, err := request(t, c, path)
		if err != nil {
			c.Close()
			t.Fatalf("GET %s as the reader: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			c.Close()
			return resp.StatusCode, strings.TrimSpace(string(body))
		}
		if path != "/v1/events" {
			_, _ = io.Copy(io.Discard, resp.Body)
		}
		held = append(held, c)
		return resp.StatusCode, ""
	}

	streams, refusal := 0, ""
	for range lim.MaxEventStreams + 8 {
		code, body := open("/v1/events")
		if code == http.StatusOK {
			streams++
		} else if code == http.StatusTooManyRequests {
			refusal = body
		} else {
			t.Fatalf("event stream: %d %s", code, body)
		}
	}
	if streams != lim.MaxEventStreamsPerUser {
		t.Errorf("the reader opened %d event streams, want %d", streams, lim.MaxEventStreamsPerUser)
	}
	if want := fmt.Sprintf(`{"error":"too many event streams of uid %d open (at most %d per user); root has streams of its own"}`,
		reader, lim.MaxEventStreamsPerUser); refusal != want {
		t.Errorf("refusal %s, want %s", refusal, want)
	}

	conns := streams
	for range 400 {
		code, body := open("/v1/status")
		switch code {
		case http.StatusOK:
			conns++
		case http.StatusTooManyRequests:
			refusal = body
		default:
			t.Fatalf("status as the reader: %d %s", code, body)
		}
	}
	if conns != lim.MaxConnsPerUser {
		t.Errorf("the reader holds %d connections, want %d", conns, lim.MaxConnsPerUser)
	}
	if want := fmt.Sprintf(`{"error":"too many connections of uid %d open (at most %d per user); root has places of its own"}`,
		reader, lim.MaxConnsPerUser); refusal != want {
		t.Errorf("refusal %s, want %s", refusal, want)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := root.Status(ctx); err != nil {
		t.Errorf("root's status: %v", err)
	}
	es, err := root.Events(ctx)
	if err != nil {
		t.Fatalf("root's event stream: %v", err)
	}
	es.Close()
}

// TestIdleStream: a reader's stream with nothing to send ends after
// IdleTimeout with the idle trailer, which the client reports as
// ErrStreamIdle, and its place is free again; root's stream stays.
func TestIdleStream(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root to switch credentials")
	}
	const reader, group = 4247, 4248
	b := newFake(userspaceStatus())
	lim := Limits{IdleTimeout: 200 * time.Millisecond, MaxEventStreamsPerUser: 1}
	s, root := serve(t, b, ServerConfig{Group: fmt.Sprint(group), Limits: lim})
	asReader := &ctlapi.Client{Socket: s.Socket(), Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return dialAs(t, s.Socket(), reader, group)
	}}
	rootStream, err := root.Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer rootStream.Close()
	for i := range 2 {
		es, err := asReader.Events(t.Context())
		if err != nil {
			t.Fatalf("reader's stream %d: %v", i, err)
		}
		if _, err := es.Next(); !errors.Is(err, ctlapi.ErrStreamIdle) {
			t.Errorf("reader's stream %d ended with %v, want ErrStreamIdle", i, err)
		}
		es.Close()
	}
	b.feed.Publish(pmstate.Decision{Kind: pmstate.DecisionResync})
	if _, err := rootStream.Next(); err != nil {
		t.Errorf("root's stream after the reader's idle ones: %v", err)
	}
}
