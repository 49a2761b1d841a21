package compat

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// libDirs are the directories the dynamic linker searches by default on
// Debian amd64, in its order.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// SharedLibs returns what the dynamically linked executables need to run
// on another root: their ELF interpreter and, transitively, the shared
// libraries they name (DT_NEEDED), as paths on this machine, each once,
// in the order found. Static executables need nothing.
func SharedLibs(executables ...string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	queue := append([]string(nil), executables...)
	for len(queue) > 0 {
		path := queue[0]
		queue = queue[1:]
		interp, needed, err := elfDeps(path)
		if err != nil {
			return nil, err
		}
		var found []string
		if interp != "" {
			found = append(found, interp)
		}
		for _, lib := range needed {
			p, err := findLib(lib)
			if err != nil {
				return nil, fmt.Errorf("compat: %s needs %s: %w", path, lib, err)
			}
			found = append(found, p)
		}
		for _, p := range found {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
				queue = append(queue, p)
			}
		}
	}
	return out, nil
}

// elfDeps returns an ELF file's interpreter and needed libraries.
func elfDeps(path string) (interp string, needed []string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("compat: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return "", nil, fmt.Errorf("compat: %s: read interpreter: %w", path, err)
		}
		if n := len(b); n > 0 && b[n-1] == 0 {
			b = b[:n-1]
		}
		interp = string(b)
	}
	needed, err = f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return "", nil, fmt.Errorf("compat: %s: %w", path, err)
	}
	return interp, needed, nil
}

// findLib finds a shared library by its soname in libDirs.
func findLib(name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	for _, d := range libDirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %v", libDirs)
}
