package compat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/cavaliergopher/cpio"
)

// Initramfs collects the files of an initramfs and writes it as a newc
// cpio archive, the format the kernel unpacks. Paths are absolute in the
// guest; parent directories are added as needed.
type Initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode    cpio.FileMode // type and permission bits
	src     string        // file on this machine, for a regular file
	data    []byte        // contents, for a regular file without src
	symlink string        // target, for a symlink
}

// NewInitramfs returns an empty initramfs.
func NewInitramfs() *Initramfs {
	return &Initramfs{entries: map[string]entry{}}
}

// clean checks a guest path and returns it without the leading slash.
func clean(p string) (string, error) {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("compat: initramfs path %q: want a clean absolute path below /", p)
	}
	return p[1:], nil
}

func (fs *Initramfs) add(p string, e entry) error {
	name, err := clean(p)
	if err != nil {
		return err
	}
	if old, ok := fs.entries[name]; ok {
		if old.mode&cpio.ModeType == cpio.TypeDir && e.mode&cpio.ModeType == cpio.TypeDir {
			return nil
		}
		return fmt.Errorf("compat: initramfs path %s added twice", p)
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if d, ok := fs.entries[dir]; ok {
			if d.mode&cpio.ModeType != cpio.TypeDir {
				return fmt.Errorf("compat: initramfs path %s: /%s is not a directory", p, dir)
			}
			continue
		}
		fs.entries[dir] = entry{mode: cpio.TypeDir | 0o755}
	}
	fs.entries[name] = e
	return nil
}

// Dir adds a directory with the given permissions.
func (fs *Initramfs) Dir(p string, perm os.FileMode) error {
	mode := cpio.TypeDir | cpio.FileMode(perm.Perm())
	if perm&os.ModeSticky != 0 {
		mode |= cpio.ModeSticky
	}
	return fs.add(p, entry{mode: mode})
}

// File adds the file src of this machine (following symlinks) as p, with
// src's permissions.
func (fs *Initramfs) File(p, src string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("compat: initramfs %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("compat: initramfs %s: %s is not a regular file", p, src)
	}
	return fs.add(p, entry{mode: cpio.TypeReg | cpio.FileMode(fi.Mode().Perm()), src: src})
}

// Bytes adds a regular file with the given contents and permissions.
func (fs *Initramfs) Bytes(p string, data []byte, perm os.FileMode) error {
	return fs.add(p, entry{mode: cpio.TypeReg | cpio.FileMode(perm.Perm()), data: slices.Clone(data)})
}

// Symlink adds a symbolic link p pointing to target.
func (fs *Initramfs) Symlink(p, target string) error {
	if target == "" {
		return fmt.Errorf("compat: initramfs symlink %s: empty target", p)
	}
	return fs.add(p, entry{mode: cpio.TypeSymlink | 0o777, symlink: target})
}

// Paths returns the guest paths of every entry, sorted.
func (fs *Initramfs) Paths() []string {
	var out []string
	for name := range fs.entries {
		out = append(out, "/"+name)
	}
	slices.Sort(out)
	return out
}

// WriteTo writes the archive: entries sorted by path, so that every
// directory comes before what it holds, all owned by root.
func (fs *Initramfs) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	cw2 := cpio.NewWriter(bw)
	names := make([]string, 0, len(fs.entries))
	for name := range fs.entries {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		// Compare path elements, so that "a/b" sorts right after "a".
		return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
	})
	mtime := time.Unix(0, 0)
	for i, name := range names {
		e := fs.entries[name]
		h := &cpio.Header{Name: name, Mode: e.mode, ModTime: mtime, Links: 1, Inode: int64(i + 1)}
		if err := fs.writeEntry(cw2, h, e); err != nil {
			return cw.n, fmt.Errorf("compat: initramfs /%s: %w", name, err)
		}
	}
	if err := cw2.Close(); err != nil {
		return cw.n, fmt.Errorf("compat: initramfs: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("compat: initramfs: %w", err)
	}
	return cw.n, nil
}

// WriteFile writes the archive to the file name and returns its size.
func (fs *Initramfs) WriteFile(name string) (int64, error) {
	f, err := os.Create(name)
	if err != nil {
		return 0, err
	}
	n, err := fs.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

func (fs *Initramfs) writeEntry(w *cpio.Writer, h *cpio.Header, e entry) error {
	switch h.Mode & cpio.ModeType {
	case cpio.TypeDir:
		h.Links = 2
		return w.WriteHeader(h)
	case cpio.TypeSymlink:
		h.Linkname = e.symlink
		h.Size = int64(len(e.symlink))
		if err := w.WriteHeader(h); err != nil {
			return err
		}
		_, err := io.WriteString(w, e.symlink)
		return err
	}
	if e.src == "" {
		h.Size = int64(len(e.data))
		if err := w.WriteHeader(h); err != nil {
			return err
		}
		_, err := w.Write(e.data)
		return err
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h.Size = fi.Size()
	if err := w.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(w, f)
	if err == nil && n != h.Size {
		err = fmt.Errorf("%s changed while being read: %d bytes, want %d", e.src, n, h.Size)
	}
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
