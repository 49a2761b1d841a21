package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// token logs as the engine's tokens do: eight hex digits.
type token uint32

func (t token) LogValue() slog.Value { return slog.StringValue(fmt.Sprintf("%08x", uint32(t))) }

// newHandler returns a handler writing to a new stand-in journal.
func newHandler(t *testing.T, opts Options) (*Handler, *standIn) {
	t.Helper()
	s := newStandIn(t)
	opts.Socket = s.path
	h, err := NewHandler(&opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, s
}

// code returns the CODE_* fields of a record logged on the line after the
// call.
func code() []field {
	pc, file, line, _ := runtime.Caller(1)
	return []field{
		{"CODE_FILE", file},
		{"CODE_LINE", strconv.Itoa(line + 1)},
		{"CODE_FUNC", runtime.FuncForPC(pc).Name()},
	}
}

// header is the fields every entry starts with.
func header(msg string, prio int, code []field) []field {
	return append([]field{{"MESSAGE", msg}, {"PRIORITY", strconv.Itoa(prio)}, {"SYSLOG_IDENTIFIER", "mptcpgod"}}, code...)
}

func TestHandler(t *testing.T) {
	t.Parallel()
	when := time.Date(2026, 11, 23, 15, 4, 5, 6, time.UTC)
	enoent := fmt.Errorf("genl: del endpoint: %w", syscall.ENOENT)
	tests := []struct {
		name string
		log  func(*slog.Logger) []field // logs one record, returns its fields
	}{
		{
			name: "token, link and groups",
			log: func(l *slog.Logger) []field {
				l = l.With("component", "pm").WithGroup("conn")
				c := code()
				l.Info("subflow created", "token", token(0xabc), "link", "wlan0",
					slog.Group("path", "local", netip.MustParseAddrPort("192.0.2.1:0"), "remote", netip.MustParseAddrPort("[2001:db8::2]:443")))
				return append(header("subflow created", 6, c),
					field{"MPTCPGOD_COMPONENT", "pm"},
					field{"MPTCPGOD_CONN_TOKEN", "00000abc"},
					field{"MPTCPGOD_CONN_LINK", "wlan0"},
					field{"MPTCPGOD_CONN_PATH_LOCAL", "192.0.2.1:0"},
					field{"MPTCPGOD_CONN_PATH_REMOTE", "[2001:db8::2]:443"},
				)
			},
		},
		{
			name: "value kinds",
			log: func(l *slog.Logger) []field {
				c := code()
				l.Warn("kinds", "n", 42, "u", uint64(7), "f", 1.5, "ok", true, "after", 1500*time.Millisecond,
					"at", when, "error", enoent, "nil", nil, "ids", []int{1, 2})
				return append(header("kinds", 4, c),
					field{"MPTCPGOD_N", "42"},
					field{"MPTCPGOD_U", "7"},
					field{"MPTCPGOD_F", "1.5"},
					field{"MPTCPGOD_OK", "true"},
					field{"MPTCPGOD_AFTER", "1.5s"},
					field{"MPTCPGOD_AT", "2026-11-23T15:04:05.000000006Z"},
					field{"MPTCPGOD_ERROR", "genl: del endpoint: no such file or directory"},
					field{"MPTCPGOD_NIL", "<nil>"},
					field{"MPTCPGOD_IDS", "[1 2]"},
					field{"ERRNO", "2"},
				)
			},
		},
		{
			name: "names and odd values",
			log: func(l *slog.Logger) []field {
				l = l.With("owned-ids", "100-199", "error", enoent)
				c := code()
				l.Error("two\nlines", "policy/exec.command", "/usr/bin/x", slog.Group("empty"), slog.Group("", "inline", 1),
					"", "no key", "Mixed.Case", "x", strings.Repeat("k", 70), "long", "error", errors.New("again"), "error", syscall.EPERM)
				return append(header("two\nlines", 3, c),
					field{"MPTCPGOD_OWNED_IDS", "100-199"},
					field{"MPTCPGOD_ERROR", "genl: del endpoint: no such file or directory"},
					field{"MPTCPGOD_POLICY_EXEC_COMMAND", "/usr/bin/x"},
					field{"MPTCPGOD_INLINE", "1"},
					field{"MPTCPGOD_MIXED_CASE", "x"},
					field{"MPTCPGOD_" + strings.Repeat("K", 64-len("MPTCPGOD_")), "long"},
					field{"MPTCPGOD_ERROR", "again"},
					field{"MPTCPGOD_ERROR", "operation not permitted"},
					field{"ERRNO", "2"}, // the first errno, from With
				)
			},
		},
		{
			name: "debug",
			log: func(l *slog.Logger) []field {
				c := code()
				l.Debug("details", "state", "READY=1")
				return append(header("details", 7, c), field{"MPTCPGOD_STATE", "READY=1"})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, s := newHandler(t, Options{Level: slog.LevelDebug})
			want := tt.log(slog.New(h))
			if diff := cmp.Diff(want, s.next()); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHandlerLevel(t *testing.T) {
	t.Parallel()
	lv := new(slog.LevelVar)
	h, s := newHandler(t, Options{Level: lv, Identifier: "test", Prefix: "X_"})
	log := slog.New(h)
	log.Debug("hidden")
	s.none()
	lv.Set(slog.LevelDebug)
	log.Debug("shown", "a", "b")
	want := []field{{"MESSAGE", "shown"}, {"PRIORITY", "7"}, {"SYSLOG_IDENTIFIER", "test"}, {"X_A", "b"}}
	if diff := cmp.Diff(want, withoutCode(s.next())); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

// withoutCode returns fields without the CODE_* ones.
func withoutCode(fields []field) []field {
	var out []field
	for _, f := range fields {
		if !strings.HasPrefix(f.Name, "CODE_") {
			out = append(out, f)
		}
	}
	return out
}

func TestPriority(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level slog.Level
		want  int
	}{
		{slog.LevelDebug - 4, 7}, {slog.LevelDebug, 7}, {slog.LevelInfo - 1, 7},
		{slog.LevelInfo, 6}, {slog.LevelInfo + 2, 6}, {slog.LevelWarn, 4},
		{slog.LevelError - 1, 4}, {slog.LevelError, 3}, {slog.LevelError + 8, 3},
	}
	for _, tt := range tests {
		if got := Priority(tt.level); got != tt.want {
			t.Errorf("Priority(%v) = %d, want %d", tt.level, got, tt.want)
		}
	}
}

// TestLargeEntry sends an entry larger than a datagram can be: it must
// arrive whole, through a sealed memfd.
func TestLargeEntry(t *testing.T) {
	t.Parallel()
	h, s := newHandler(t, Options{})
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	slog.New(h).Info(big, "error", "x\ny")
	want := []field{{"MESSAGE", big}, {"PRIORITY", "6"}, {"SYSLOG_IDENTIFIER", "mptcpgod"}, {"MPTCPGOD_ERROR", "x\ny"}}
	if diff := cmp.Diff(want, withoutCode(s.next())); diff != "" {
		t.Errorf("fields (-want +got):\n%.2000s", diff)
	}
	if !s.viaFD {
		t.Error("the large entry came in a datagram, want a memfd")
	}
	slog.New(h).Info("small")
	if s.next(); s.viaFD {
		t.Error("a small entry came in a memfd, want a datagram")
	}
}

// TestFallback logs with no journal listening: the records, with their
// attributes and groups, go to the fallback handler.
func TestFallback(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	fb := slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
		if len(g) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	h, err := NewHandler(&Options{Socket: filepath.Join(t.TempDir(), "missing"), Fallback: fb})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	slog.New(h).With("component", "pm").WithGroup("conn").Info("subflow created", "token", token(1))
	if diff := cmp.Diff("level=INFO msg=\"subflow created\" component=pm conn.token=00000001\n", buf.String()); diff != "" {
		t.Errorf("fallback (-want +got):\n%s", diff)
	}

	noFallback, err := NewHandler(&Options{Socket: filepath.Join(t.TempDir(), "missing")})
	if err != nil {
		t.Fatal(err)
	}
	defer noFallback.Close()
	err = noFallback.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelInfo, "lost", 0))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Handle without a journal = %v, want ENOENT", err)
	}
}

func TestNewHandlerErrors(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"_X", "mptcpgod_", "A-B", strings.Repeat("A", 65)} {
		if h, err := NewHandler(&Options{Prefix: prefix}); err == nil {
			h.Close()
			t.Errorf("NewHandler with prefix %q: no error", prefix)
		} else if !strings.Contains(err.Error(), "journal: prefix") {
			t.Errorf("NewHandler with prefix %q: %v, want a journal: prefix error", prefix, err)
		}
	}
}

func TestFieldName(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, want string }{
		{"token", "MPTCPGOD_TOKEN"},
		{"add_addr_accepted", "MPTCPGOD_ADD_ADDR_ACCEPTED"},
		{"conn_path_local", "MPTCPGOD_CONN_PATH_LOCAL"},
		{"policy/exec", "MPTCPGOD_POLICY_EXEC"},
		{"é1", "MPTCPGOD__1"},
		{strings.Repeat("a", 100), "MPTCPGOD_" + strings.Repeat("A", 55)},
	}
	for _, tt := range tests {
		got := FieldName(DefaultPrefix, tt.key)
		if got != tt.want {
			t.Errorf("FieldName(%q) = %q, want %q", tt.key, got, tt.want)
		}
		if !validName(got) {
			t.Errorf("FieldName(%q) = %q, not a journal field name", tt.key, got)
		}
	}
}
