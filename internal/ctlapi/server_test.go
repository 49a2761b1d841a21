package ctlapi

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// runServer runs a server on sock and returns its Run's error channel and
// the cancel func.
func runServer(t *testing.T, sock string) (<-chan error, *Server, context.CancelFunc) {
	t.Helper()
	s, err := NewServer(ServerConfig{Socket: sock, Backend: &fakeBackend{st: userspaceStatus(), feed: NewFeed(0)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(cancel)
	return done, s, cancel
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
		done, s, cancel := runServer(t, sock)
		select {
		case <-s.Ready():
		case err := <-done:
			t.Fatalf("Run: %v", err)
		}
		if _, err := (&Client{Socket: sock}).Status(t.Context()); err != nil {
			t.Errorf("Status through the replaced socket: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket left behind after Run: %v", err)
		}
		_, err = (&Client{Socket: sock}).Status(t.Context())
		if !errors.Is(err, ErrNotRunning) || !strings.HasSuffix(err.Error(), "is mptcpgod running?") {
			t.Errorf("Status after Run: %v, want ErrNotRunning", err)
		}
	})
	t.Run("second daemon refused", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(socketDir(t), "s.sock")
		_, first, _ := runServer(t, sock)
		<-first.Ready()
		done, _, _ := runServer(t, sock)
		err := <-done
		if want := fmt.Sprintf("ctlapi: another mptcpgod (pid %d) holds %s.lock: is one running already?", os.Getpid(), sock); err == nil || err.Error() != want {
			t.Errorf("second Run: %v", err)
		}
		if _, err := (&Client{Socket: sock}).Status(t.Context()); err != nil {
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
		done, _, _ := runServer(t, sock)
		if err := <-done; err == nil || err.Error() != "ctlapi: "+sock+": another daemon is listening on it" {
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
		done, _, _ := runServer(t, sock)
		if err := <-done; err == nil || !strings.Contains(err.Error(), "a symbolic link, refusing to follow it") {
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
		done, _, _ := runServer(t, sock)
		if err := <-done; err == nil || err.Error() != "ctlapi: "+sock+" exists and is not a socket; refusing to replace it" {
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
		{ServerConfig{}, "ctlapi: server: backend: missing"},
		{ServerConfig{Backend: b, Socket: "rel.sock"}, `ctlapi: server: socket "rel.sock": not an absolute path`},
		{ServerConfig{Backend: b, Group: "no-such-group-mptcpgod"},
			`ctlapi: server: group: ctlapi: group "no-such-group-mptcpgod": group: unknown group no-such-group-mptcpgod`},
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
	_, err := (&Client{Socket: filepath.Join(dir, "none.sock")}).Status(t.Context())
	var de *DialError
	if !errors.As(err, &de) || !errors.Is(err, ErrNotRunning) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing socket: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := &fakeBackend{st: userspaceStatus(), feed: NewFeed(0)}
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
	d := func(op string) pm.Decision { return pm.Decision{Time: t0, Kind: pm.DecisionAction, Op: op} }
	// Publishing never blocks, whoever reads.
	for i := range 5 {
		f.Publish(d(string(rune('a' + i))))
	}
	got := []Event{<-ch, <-ch}
	f.Publish(d("f"))
	got = append(got, <-ch, <-ch)
	want := []Event{{Decision: d("a")}, {Decision: d("b")},
		{Decision: pm.Decision{Time: t0, Kind: EventDropped}, Dropped: 3}, {Decision: d("f")}}
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
		f.Publish(pm.Decision{Kind: pm.DecisionResync})
	}
	if ev := <-ch; ev.Kind != pm.DecisionResync {
		t.Fatalf("first %+v", ev)
	}
	f.Publish(pm.Decision{Kind: pm.DecisionPolicy})
	if ev := <-ch; ev.Kind != EventDropped || ev.Dropped != 3 {
		t.Errorf("notice %+v, want 3 dropped", ev)
	}
	// The notice took the only slot: the policy decision was dropped too.
	f.Publish(pm.Decision{Kind: pm.DecisionPolicy})
	if ev := <-ch; ev.Kind != EventDropped || ev.Dropped != 1 {
		t.Errorf("second notice %+v, want 1 dropped", ev)
	}
}

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
		if v.Type() == reflect.TypeFor[policy.Mode]() {
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
	for _, v := range []any{&Status{}, &Links{}, &Paths{}, &Policies{}, &Reload{}, &Event{}, &errorBody{}, &usage.Report{}} {
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

// TestDeps: ctlapi imports pm, policy and usage of ours, for their types
// (usage.Report is the answer of /v0/usage; usage reads linkmon's), the
// lock of safefile, and nothing else of the daemon's.
func TestDeps(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		rest, ours := strings.CutPrefix(dep, "github.com/mptcpgod/mptcpgod/")
		if !ours {
			continue
		}
		switch rest {
		case "internal/ctlapi", "pm", "policy", "genl", "internal/usage", "internal/linkmon", "internal/safefile":
		default:
			t.Errorf("ctlapi depends on %s", dep)
		}
	}
}
