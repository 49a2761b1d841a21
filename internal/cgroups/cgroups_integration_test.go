package cgroups_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/cgroups"
	"github.com/mptcpgod/mptcpgod/internal/testing/ownertest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

// needRoot skips without root, or fails when CI is "true".
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "creating cgroups needs root")
	}
}

// TestResolverCgroupfs: on the real hierarchy, a Resolver gives every
// test cgroup its path, by the id the kernel reports (name_to_handle_at,
// as bpf.CgroupID reads it), finds a cgroup created after its last walk
// at once, and forgets one removed.
func TestResolverCgroupfs(t *testing.T) {
	t.Parallel()
	needRoot(t)
	root, err := bpf.CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	cg := ownertest.NewCgroups(t)
	top := "/" + filepath.Base(cg.Top())
	dirs := map[string]string{
		cg.Top():                    top,
		cg.New("a.service"):         top + "/a.service",
		cg.New("a.service/worker"):  top + "/a.service/worker",
		cg.New("b.slice"):           top + "/b.slice",
		cg.New("b.slice/c.service"): top + "/b.slice/c.service",
	}
	r := cgroups.NewResolver(root)
	t.Cleanup(func() { _ = r.Close() })
	for dir, want := range dirs {
		id := ownertest.ID(t, dir)
		if got, err := r.Path(id); err != nil || got != want {
			t.Errorf("Path(%d) = %q, %v; want %q", id, got, err, want)
		}
	}
	if got, err := r.Path(ownertest.ID(t, root)); err != nil || got != "/" {
		t.Errorf("Path of the root = %q, %v; want /", got, err)
	}

	walks := r.Walks()
	late := cg.New("late.service")
	lateSub := cg.New("late.service/sub")
	if got, err := r.Path(ownertest.ID(t, lateSub)); err != nil || got != top+"/late.service/sub" {
		t.Errorf("Path of a cgroup created after the walk = %q, %v", got, err)
	}
	if got, err := r.Path(ownertest.ID(t, late)); err != nil || got != top+"/late.service" {
		t.Errorf("Path of a cgroup created after the walk = %q, %v", got, err)
	}
	if r.Walks() != walks {
		t.Errorf("%d walks, want %d: inotify tells of new cgroups", r.Walks(), walks)
	}

	gone := cg.New("gone.service")
	goneID := ownertest.ID(t, gone)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Path(goneID); !errors.Is(err, cgroups.ErrNotFound) {
		t.Errorf("Path of a removed cgroup: %v, want ErrNotFound", err)
	}
}

// BenchmarkResolve measures a lookup of a known id (cached: a map access
// and a read of the empty inotify queue), the first lookup, which walks
// a hierarchy of the machine's cgroups plus 500 of the test's and
// watches every directory, a lookup of a cgroup created since (inotify
// tells where), and, for comparison, open_by_handle_at with readlink,
// which needs CAP_DAC_READ_SEARCH.
func BenchmarkResolve(b *testing.B) {
	needRoot(b)
	root, err := bpf.CgroupRoot()
	if err != nil {
		b.Fatal(err)
	}
	cg := ownertest.NewCgroups(b)
	var ids []uint64
	for i := range 500 {
		ids = append(ids, ownertest.ID(b, cg.New(fmt.Sprintf("u%d.service", i))))
	}
	r := cgroups.NewResolver(root)
	defer r.Close()
	if _, err := r.Path(ids[0]); err != nil {
		b.Fatal(err)
	}
	n := 0
	_ = filepath.WalkDir(root, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && d.IsDir() {
			n++
		}
		return nil
	})
	b.Run("cached", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := r.Path(ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("walk-%d-cgroups", n), func(b *testing.B) {
		for b.Loop() {
			fresh := cgroups.NewResolver(root)
			if _, err := fresh.Path(ids[len(ids)-1]); err != nil {
				b.Fatal(err)
			}
			_ = fresh.Close()
		}
	})
	b.Run("created", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			id := ownertest.ID(b, cg.New(fmt.Sprintf("new%d.scope", i)))
			b.StartTimer()
			if _, err := r.Path(id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open_by_handle_at", func(b *testing.B) {
		mount, err := os.Open(root)
		if err != nil {
			b.Fatal(err)
		}
		defer mount.Close()
		for i := 0; b.Loop(); i++ {
			p, err := byHandle(int(mount.Fd()), ids[i%len(ids)])
			if err != nil {
				b.Fatal(err)
			}
			if !strings.HasPrefix(p, root) {
				b.Fatalf("path %q outside %s", p, root)
			}
		}
	})
}
