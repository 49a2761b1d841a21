package cgroups

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// TestResolverTree: on a plain directory tree (inode numbers stand for
// cgroup ids) a Resolver finds every directory with one walk, learns of
// directories created and removed since (inotify) or, without inotify,
// walks again for an id above the highest seen, and for an unknown id
// below it only after RewalkAfter.
func TestResolverTree(t *testing.T) {
	t.Parallel()
	for _, inotify := range []bool{true, false} {
		name := "inotify"
		if !inotify {
			name = "walks only"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			mkdir := func(rel string) uint64 {
				t.Helper()
				if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
					t.Fatal(err)
				}
				return ino(t, filepath.Join(root, rel))
			}
			mkdir("system.slice/a.service/sub")
			mkdir("user.slice")
			if err := os.WriteFile(filepath.Join(root, "cgroup.procs"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1000, 0)
			r := NewResolver(root)
			t.Cleanup(func() { _ = r.Close() })
			if !inotify {
				_ = r.Close()
				r.closed = false
			}
			r.now = func() time.Time { return now }
			for _, rel := range []string{"", "system.slice", "system.slice/a.service", "system.slice/a.service/sub", "user.slice"} {
				got, err := r.Path(ino(t, filepath.Join(root, rel)))
				if err != nil || got != "/"+rel {
					t.Errorf("Path of %q = %q, %v; want %q", rel, got, err, "/"+rel)
				}
			}
			if n := r.Walks(); n != 1 {
				t.Errorf("%d walks for known ids, want 1", n)
			}
			if _, err := r.Path(ino(t, filepath.Join(root, "cgroup.procs"))); !errors.Is(err, ErrNotFound) {
				t.Errorf("Path of a file: %v, want ErrNotFound", err)
			}

			walks := r.Walks()
			_, err := r.Path(1) // below every id seen: no walk within RewalkAfter
			if !errors.Is(err, ErrNotFound) || r.Walks() != walks {
				t.Errorf("Path(1) = %v after %d walks; want ErrNotFound and no new walk", err, r.Walks())
			}
			now = now.Add(RewalkAfter)
			if _, err := r.Path(1); !errors.Is(err, ErrNotFound) || r.Walks() != walks+1 {
				t.Errorf("Path(1) after RewalkAfter = %v after %d walks; want ErrNotFound and a new walk", err, r.Walks())
			}

			walks = r.Walks()
			if _, err := r.Path(r.maxID + 1); !errors.Is(err, ErrNotFound) || r.Walks() != walks+1 {
				t.Errorf("Path above the highest id = %v after %d walks; want ErrNotFound and a new walk at once", err, r.Walks())
			}

			// A plain file system reuses inode numbers, which cgroupfs
			// does not: without inotify, time passes before each lookup
			// of a new directory, so that it walks whatever its number.
			walks = r.Walks()
			late := mkdir("user.slice/late.scope/sub")
			if !inotify {
				now = now.Add(RewalkAfter)
			}
			if got, err := r.Path(late); err != nil || got != "/user.slice/late.scope/sub" {
				t.Errorf("Path of a directory created since = %q, %v", got, err)
			}
			if inotify && r.Walks() != walks {
				t.Errorf("%d walks, want %d: inotify tells of new directories", r.Walks(), walks)
			}

			gone := mkdir("user.slice/gone.scope")
			if !inotify {
				now = now.Add(RewalkAfter)
			}
			if _, err := r.Path(gone); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(root, "user.slice/gone.scope")); err != nil {
				t.Fatal(err)
			}
			now = now.Add(RewalkAfter)
			_, err = r.Path(gone)
			if inotify && !errors.Is(err, ErrNotFound) {
				t.Errorf("Path of a directory removed: %v, want ErrNotFound at once", err)
			}
			_, _ = r.Path(1) // walks without inotify
			if _, err := r.Path(gone); !errors.Is(err, ErrNotFound) {
				t.Errorf("Path of a directory removed before the last walk: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestResolverNoRoot(t *testing.T) {
	t.Parallel()
	r := NewResolver(filepath.Join(t.TempDir(), "missing"))
	defer r.Close()
	if _, err := r.Path(1); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Path without a hierarchy: %v, want an error other than ErrNotFound", err)
	}
	_ = r.Close()
	if _, err := r.Path(1); err == nil {
		t.Error("Path after Close: no error")
	}
}

func TestParseEvents(t *testing.T) {
	t.Parallel()
	rec := func(wd int32, mask uint32, name string, pad int) []byte {
		b := binary.NativeEndian.AppendUint32(nil, uint32(wd))
		b = binary.NativeEndian.AppendUint32(b, mask)
		b = binary.NativeEndian.AppendUint32(b, 0)
		n := len(name) + pad
		b = binary.NativeEndian.AppendUint32(b, uint32(n))
		return append(append(b, name...), make([]byte, pad)...)
	}
	in := append(rec(1, unix.IN_CREATE|unix.IN_ISDIR, "a.service", 7), rec(2, unix.IN_IGNORED, "", 0)...)
	want := []event{{1, unix.IN_CREATE | unix.IN_ISDIR, "a.service"}, {2, unix.IN_IGNORED, ""}}
	if diff := cmp.Diff(want, parseEvents(in), cmp.AllowUnexported(event{})); diff != "" {
		t.Errorf("parseEvents (-want +got):\n%s", diff)
	}
	if got := parseEvents(append(in, rec(3, unix.IN_DELETE, "b", 3)[:18]...)); len(got) != 2 {
		t.Errorf("parseEvents with a truncated record: %d events, want 2", len(got))
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, inotifyEventLen))
	f.Add(append(binary.NativeEndian.AppendUint32(make([]byte, 12), 4), "a\x00\x00\x00"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		for _, ev := range parseEvents(b) {
			n += inotifyEventLen + len(ev.name)
		}
		if n > len(b) {
			t.Fatalf("parseEvents: events of %d bytes from %d", n, len(b))
		}
	})
}

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
