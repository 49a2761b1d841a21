package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("mode = \"kernel\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 101), 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, path string
		want       string
		is         error
		msg        string
	}{
		{name: "regular", path: regular, want: "mode = \"kernel\"\n"},
		{name: "symbolic link to a regular file", path: link, want: "mode = \"kernel\"\n"},
		{name: "fifo", path: fifo, is: ErrNotRegular, msg: fifo + " is a FIFO, not a regular file"},
		{name: "dev zero", path: "/dev/zero", is: ErrNotRegular, msg: "/dev/zero is a character device, not a regular file"},
		{name: "link to dev zero", path: zero, is: ErrNotRegular, msg: zero + " is a character device, not a regular file"},
		{name: "directory", path: dir, is: ErrNotRegular, msg: dir + " is a directory, not a regular file"},
		{name: "too large", path: big, is: ErrTooLarge, msg: big + " has 101 bytes, more than 100: file too large"},
		{name: "missing", path: filepath.Join(dir, "missing"), is: fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var got []byte
			var err error
			go func() {
				defer close(done)
				got, err = Read(tt.path, 100)
			}()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatalf("Read(%s) blocks", tt.path)
			}
			if tt.is == nil {
				if err != nil || string(got) != tt.want {
					t.Fatalf("Read = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("Read: %v, want %v", err, tt.is)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("Read: %q, want %q", err, tt.msg)
			}
		})
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "netns.lock")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q (%v), want the pid %d", b, err, os.Getpid())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v (%v), want 0600", fi.Mode(), err)
	}

	_, err = Acquire(path)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() || held.Path != path {
		t.Fatalf("second Acquire: %v, want held by pid %d", err, os.Getpid())
	}
	if want := path + " is held by pid " + strconv.Itoa(os.Getpid()); err.Error() != want {
		t.Errorf("second Acquire: %q, want %q", err, want)
	}

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Release the lock file is still there: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	l2, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	defer l2.Release()
}

// TestLockRefuses: a symbolic link (even to a file the daemon may write)
// and a FIFO are refused and left as they are.
func TestLockRefuses(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	if err := os.WriteFile(target, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.lock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.lock")
	if err := os.Symlink(filepath.Join(dir, "created-through-link"), dangling); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.lock")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, dangling, fifo} {
		if l, err := Acquire(p); !errors.Is(err, ErrNotRegular) {
			l.Release()
			t.Errorf("Acquire(%s): %v, want ErrNotRegular", p, err)
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Errorf("the link's target was changed: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "created-through-link")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file was created through the dangling link: %v", err)
	}
}

// TestLockReplaced: when the holder releases (removes the file) between
// Acquire's open and its lock, Acquire ends up holding the file the path
// names, not the removed one: a later Acquire is refused.
func TestLockReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	first, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	opened = func() {
		opened = func() {}
		if err := first.Release(); err != nil {
			t.Error(err)
		}
	}
	defer func() { opened = func() {} }()
	l, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire while the holder releases: %v", err)
	}
	defer l.Release()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the lock is held on a removed file: %v", err)
	}
	var held *HeldError
	if _, err := Acquire(path); !errors.As(err, &held) {
		t.Errorf("a later Acquire: %v, want a HeldError", err)
	}
}
