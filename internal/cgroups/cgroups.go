package cgroups

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// RewalkAfter is how old the last walk must be before a lookup of an id
// it could have seen walks again (see the package doc).
const RewalkAfter = time.Second

// ErrNotFound is returned (wrapped) for an id no cgroup has: the cgroup
// was removed, or belongs to another hierarchy.
var ErrNotFound = errors.New("no such cgroup")

// watchMask is what the Resolver watches each directory for.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW

// A Resolver maps cgroup ids to paths. It is safe for concurrent use;
// lookups wait while a walk runs.
type Resolver struct {
	root string
	now  func() time.Time

	mu     sync.Mutex
	paths  map[uint64]string // id → path
	ids    map[string]uint64 // path → id
	maxID  uint64
	walked time.Time // when the last walk started
	walks  int
	// inotify is the descriptor watching every directory, -1 when
	// inotify is unavailable (then only walks find new cgroups); wds are
	// the watched directories' paths by watch descriptor.
	inotify int
	wds     map[int32]string
	buf     []byte
	closed  bool
}

// NewResolver returns a Resolver of the cgroup v2 hierarchy mounted at
// root. It reads nothing before the first lookup.
func NewResolver(root string) *Resolver {
	r := &Resolver{root: root, now: time.Now, inotify: -1}
	if fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC); err == nil {
		r.inotify, r.buf = fd, make([]byte, 64<<10)
	}
	return r
}

// Close releases the inotify descriptor; lookups fail afterwards.
func (r *Resolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.inotify < 0 {
		return nil
	}
	err := unix.Close(r.inotify)
	r.inotify = -1
	return err
}

// Path returns the path of cgroup id from the hierarchy's root: "/" for
// the root cgroup, "/system.slice/nginx.service" for a service's. An id
// no cgroup has gives an error matching ErrNotFound.
func (r *Resolver) Path(id uint64) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "", errors.New("cgroups: resolver closed")
	}
	if r.paths != nil {
		if err := r.drain(); err != nil {
			return "", err
		}
	}
	if p, ok := r.paths[id]; ok {
		return p, nil
	}
	if r.paths == nil || id > r.maxID || r.now().Sub(r.walked) >= RewalkAfter {
		if err := r.walk(); err != nil {
			return "", err
		}
		if p, ok := r.paths[id]; ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("cgroups: cgroup id %d: %w", id, ErrNotFound)
}

// Walks returns how many times the whole hierarchy was walked.
func (r *Resolver) Walks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.walks
}

// walk rebuilds the maps from the hierarchy and watches every directory;
// r.mu is held.
func (r *Resolver) walk() error {
	r.walked = r.now()
	r.walks++
	r.paths = make(map[uint64]string, max(len(r.paths), 64))
	r.ids = make(map[string]uint64, max(len(r.ids), 64))
	r.wds = make(map[int32]string, max(len(r.wds), 64))
	r.maxID = 0
	var st unix.Stat_t
	if err := unix.Stat(r.root, &st); err != nil {
		r.paths = nil
		return fmt.Errorf("cgroups: %s: %w", r.root, err)
	}
	r.add("/", st.Ino)
	if err := r.walkDir("/"); err != nil {
		r.paths = nil
		return err
	}
	// Events queued before the watches were added describe the old
	// tree: the walk has seen what they say.
	return r.drainDiscard()
}

// add records the cgroup rel with id and watches its directory.
func (r *Resolver) add(rel string, id uint64) {
	r.paths[id], r.ids[rel] = rel, id
	r.maxID = max(r.maxID, id)
	if r.inotify >= 0 {
		if wd, err := unix.InotifyAddWatch(r.inotify, r.dir(rel), watchMask); err == nil {
			r.wds[int32(wd)] = rel
		}
	}
}

// dir returns the directory of the cgroup rel.
func (r *Resolver) dir(rel string) string { return r.root + rel }

// walkDir records the cgroups below rel, which is recorded.
func (r *Resolver) walkDir(rel string) error {
	f, err := os.Open(r.dir(rel))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && rel != "/" {
			return nil // removed while the walk runs
		}
		return fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	var st unix.Stat_t
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		if err := unix.Fstatat(int(f.Fd()), ent.Name(), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue // removed meanwhile
		}
		p := path.Join(rel, ent.Name())
		r.add(p, st.Ino)
		if err := r.walkDir(p); err != nil {
			return err
		}
	}
	return nil
}

// drain applies the queued inotify events: a directory created is
// recorded with what it holds, one removed is forgotten; a rename or a
// lost event walks the whole hierarchy again. r.mu is held.
func (r *Resolver) drain() error {
	for {
		buf, err := r.read()
		if buf == nil || err != nil {
			return err
		}
		for _, ev := range parseEvents(buf) {
			if ev.mask&(unix.IN_Q_OVERFLOW|unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0 {
				return r.walk()
			}
			parent, ok := r.wds[ev.wd]
			if ev.mask&unix.IN_IGNORED != 0 {
				delete(r.wds, ev.wd)
				continue
			}
			if !ok || ev.mask&unix.IN_ISDIR == 0 || ev.name == "" {
				continue
			}
			rel := path.Join(parent, ev.name)
			switch {
			case ev.mask&unix.IN_CREATE != 0:
				var st unix.Stat_t
				if unix.Lstat(r.dir(rel), &st) != nil {
					continue // created and removed
				}
				r.add(rel, st.Ino)
				if err := r.walkDir(rel); err != nil {
					return err
				}
			case ev.mask&unix.IN_DELETE != 0:
				if id, ok := r.ids[rel]; ok {
					delete(r.paths, id)
					delete(r.ids, rel)
				}
			}
		}
	}
}

// drainDiscard empties the inotify queue; r.mu is held.
func (r *Resolver) drainDiscard() error {
	for {
		buf, err := r.read()
		if buf == nil || err != nil {
			return err
		}
	}
}

// read returns the next queued inotify events, nil when none is queued
// (or inotify is unavailable).
func (r *Resolver) read() ([]byte, error) {
	if r.inotify < 0 {
		return nil, nil
	}
	n, err := unix.Read(r.inotify, r.buf)
	if err == unix.EAGAIN || err == unix.EINTR || n <= 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cgroups: read inotify events: %w", err)
	}
	return r.buf[:n], nil
}

// event is a decoded struct inotify_event.
type event struct {
	wd   int32
	mask uint32
	name string
}

// inotifyEventLen is sizeof(struct inotify_event) without its name.
const inotifyEventLen = unix.SizeofInotifyEvent

// parseEvents decodes the struct inotify_event records of one read: wd,
// mask, cookie, len (32 bits each, host order), then len bytes of name
// padded with NULs. A truncated record ends the list.
func parseEvents(b []byte) []event {
	var evs []event
	for len(b) >= inotifyEventLen {
		n := int(binary.NativeEndian.Uint32(b[12:]))
		if n > len(b)-inotifyEventLen {
			break
		}
		evs = append(evs, event{
			wd:   int32(binary.NativeEndian.Uint32(b)),
			mask: binary.NativeEndian.Uint32(b[4:]),
			name: strings.TrimRight(string(b[inotifyEventLen:inotifyEventLen+n]), "\x00"),
		})
		b = b[inotifyEventLen+n:]
	}
	return evs
}
