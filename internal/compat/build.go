package compat

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Build holds the binaries built once for every kernel: the test
// binaries of a suite, the daemon, the CLI and the guests' init. All are
// static (CGO_ENABLED=0), so they run on any root.
type Build struct {
	// Dir holds the binaries.
	Dir string
	// Tests are the suite's packages; TestBinary(t) is each one's binary.
	Tests []Tests
	// Daemon, CLI and Init are the paths of mptcpgod, mptcpctl and the
	// guests' init.
	Daemon, CLI, Init string
	// ModRoot is the module's root directory.
	ModRoot string
}

// TestBinary returns the path of t's test binary.
func (b *Build) TestBinary(t Tests) string { return filepath.Join(b.Dir, t.binaryName()) }

// BuildBinaries builds the suite's test binaries (go test -c), mptcpgod,
// mptcpctl and the guests' init into dir with the go command goTool, run
// in the module root modRoot.
func BuildBinaries(ctx context.Context, goTool, modRoot, dir string, suite []Tests) (*Build, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b := &Build{
		Dir: dir, Tests: suite, ModRoot: modRoot,
		Daemon: filepath.Join(dir, "mptcpgod"),
		CLI:    filepath.Join(dir, "mptcpctl"),
		Init:   filepath.Join(dir, "compatinit"),
	}
	gobuild := func(args ...string) error {
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir = modRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("compat: %s %s: %w\n%s", goTool, strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, p := range []struct{ out, pkg string }{
		{b.Daemon, "./cmd/mptcpgod"},
		{b.CLI, "./cmd/mptcpctl"},
		{b.Init, "./internal/compat/cmd/compatinit"},
	} {
		if err := gobuild("build", "-o", p.out, p.pkg); err != nil {
			return nil, err
		}
	}
	built := map[string]bool{} // a package may have several runs
	for _, t := range suite {
		if bin := b.TestBinary(t); !built[bin] {
			if err := gobuild("test", "-c", "-o", bin, "./"+t.Pkg); err != nil {
				return nil, err
			}
			built[bin] = true
		}
	}
	for _, p := range append([]string{b.Daemon, b.CLI, b.Init}, b.testBinaries()...) {
		if err := checkStatic(p); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// testBinaries returns the paths of the test binaries, each once: a
// package may have several runs.
func (b *Build) testBinaries() []string {
	var out []string
	for _, t := range b.Tests {
		if bin := b.TestBinary(t); !slices.Contains(out, bin) {
			out = append(out, bin)
		}
	}
	return out
}

// checkStatic fails for a dynamically linked executable.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("compat: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("compat: %s is dynamically linked; the guests need static binaries (CGO_ENABLED=0)", path)
		}
	}
	return nil
}

// ModuleRoot returns the directory of the main module's go.mod, as the go
// command goTool run in the working directory finds it.
func ModuleRoot(goTool string) (string, error) {
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the mptcpgod module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}
