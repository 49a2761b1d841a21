package journal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	slogjournal "github.com/systemd/slog-journal"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// TestSlogJournal shows what the package doc says of
// github.com/systemd/slog-journal: given the best ReplaceAttr and
// ReplaceGroup there are, it names a grouped attribute's field with the
// group before the prefix, and when the journal's socket is gone it
// returns nil, the entry lost. It runs on a thread of its own in a mount
// namespace whose /run is a new tmpfs, so that the library's fixed socket
// path is a stand-in. When it fails, the library may now do what this
// package does.
func TestSlogJournal(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root for a mount namespace")
	}
	done := make(chan error)
	go func() {
		// Never unlocked: the thread, the only one in the new mount
		// namespace, ends with this goroutine.
		runtime.LockOSThread()
		done <- slogJournalDefects()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// slogJournalDefects is TestSlogJournal on its locked thread.
func slogJournalDefects() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make / private: %w", err)
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "size=1m,mode=0755"); err != nil {
		return fmt.Errorf("tmpfs on /run: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(DefaultSocket), 0o755); err != nil {
		return err
	}
	s, err := listenStandIn(DefaultSocket)
	if err != nil {
		return err
	}
	defer s.conn.Close()

	lib, err := slogjournal.NewHandler(&slogjournal.Options{
		ReplaceGroup: func(g string) string { return FieldName("", g) },
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 { // not in a WithGroup group; maybe in an inline one
				a.Key = FieldName(DefaultPrefix, a.Key)
			} else {
				a.Key = FieldName("", a.Key)
			}
			return a
		},
	})
	if err != nil {
		return err
	}
	ours, err := NewHandler(nil)
	if err != nil {
		return err
	}
	defer ours.Close()

	logPath := func(h slog.Handler) ([]string, error) {
		slog.New(h).Info("subflow created", slog.Group("path", "local", "192.0.2.1:0"))
		fields, err := s.receive()
		var names []string
		for _, f := range fields {
			names = append(names, f.Name)
		}
		return names, err
	}
	names, err := logPath(lib)
	if err != nil {
		return fmt.Errorf("slog-journal: %w", err)
	}
	if slices.Contains(names, "MPTCPGOD_PATH_LOCAL") || !slices.Contains(names, "PATH_MPTCPGOD_LOCAL") {
		return fmt.Errorf("slog-journal's fields %q: want PATH_MPTCPGOD_LOCAL, not MPTCPGOD_PATH_LOCAL (docs/logging.md's name)", names)
	}
	if names, err = logPath(ours); err != nil || !slices.Contains(names, "MPTCPGOD_PATH_LOCAL") {
		return fmt.Errorf("ours: fields %q, %v; want MPTCPGOD_PATH_LOCAL", names, err)
	}

	// journald restarting: no socket.
	if err := os.Remove(DefaultSocket); err != nil {
		return err
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "lost", 0)
	if err := lib.Handle(context.Background(), r); err != nil {
		return fmt.Errorf("slog-journal reports the missing socket now (%w): a fallback could take the entry", err)
	}
	if err := ours.Handle(context.Background(), r); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "journal: send") {
		return fmt.Errorf("ours without a socket: %v, want a journal: send error wrapping ENOENT", err)
	}
	return nil
}
