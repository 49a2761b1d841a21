package compat

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Modules is a kernel's module index: modules.dep and modules.builtin.
type Modules struct {
	// deps maps a module's name to its file (relative to the modules
	// directory) and the files it depends on.
	deps map[string]moduleEntry
	// builtin holds the names of the modules built into the kernel.
	builtin map[string]bool
}

type moduleEntry struct {
	file string
	deps []string
}

// ModuleName returns the name of a module file: its base name without
// the .ko and compression suffixes, with '-' as '_' (as the kernel names
// modules).
func ModuleName(file string) string {
	base := filepath.Base(file)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

// ReadModules reads modules.dep and modules.builtin of a modules
// directory.
func ReadModules(modDir string) (*Modules, error) {
	dep, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("compat: %w", err)
	}
	defer dep.Close()
	m, err := parseModulesDep(dep)
	if err != nil {
		return nil, fmt.Errorf("compat: %s: %w", dep.Name(), err)
	}
	// A kernel without loadable modules has no modules.builtin either.
	if b, err := os.Open(filepath.Join(modDir, "modules.builtin")); err == nil {
		defer b.Close()
		sc := bufio.NewScanner(b)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				m.builtin[ModuleName(line)] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("compat: %s: %w", b.Name(), err)
		}
	}
	return m, nil
}

// parseModulesDep parses modules.dep lines "file: dep dep...".
func parseModulesDep(r io.Reader) (*Modules, error) {
	m := &Modules{deps: map[string]moduleEntry{}, builtin: map[string]bool{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		file, deps, ok := strings.Cut(line, ":")
		if !ok || file == "" {
			return nil, fmt.Errorf("line %d: want \"module: dependencies\", got %q", n, line)
		}
		m.deps[ModuleName(file)] = moduleEntry{file: file, deps: strings.Fields(deps)}
	}
	return m, sc.Err()
}

// LoadOrder returns the module files (relative to the modules directory)
// to load for the named modules, every module after the modules it
// depends on, each once. Modules built into the kernel need no file; a
// name the kernel has neither as a module nor built in is an error.
func (m *Modules) LoadOrder(names ...string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("compat: module %s: dependency cycle through %s", name, from)
		case 2:
			return nil
		}
		e, ok := m.deps[name]
		if !ok {
			if m.builtin[name] {
				state[name] = 2
				return nil
			}
			if from != "" {
				return fmt.Errorf("compat: module %s, needed by %s, is not in modules.dep", name, from)
			}
			return fmt.Errorf("compat: the kernel has no module %s, neither loadable nor built in", name)
		}
		state[name] = 1
		for _, d := range e.deps {
			if err := visit(ModuleName(d), name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, e.file)
		return nil
	}
	for _, n := range names {
		if err := visit(strings.ReplaceAll(n, "-", "_"), ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}
