package dist

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// needTool returns the path of the program name; without it the test skips,
// or fails in CI.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		runtest.Unavailable(t, fmt.Sprintf("%s not found: %v", name, err))
	}
	return p
}

// needRoot skips the test without root, or fails it in CI.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root")
	}
}

// repoRoot is the top of the source tree (the tests run in dist/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// needInstallInputs skips the test while a file that `make install` copies
// has not been written yet: the daemon (cmd/mptcpgod) and its default
// configuration are written alongside this package. Once they exist the
// test always runs.
func needInstallInputs(t *testing.T) {
	t.Helper()
	root := repoRoot(t)
	for _, p := range []string{"cmd/mptcpgod/main.go", "dist/mptcpgod.toml"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Skipf("%s does not exist yet: %v", p, err)
		}
	}
}

// runCmd runs a program with extra environment variables and returns its
// combined output.
func runCmd(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// mustRun is runCmd that fails the test on error.
func mustRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runCmd(dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// cleanEnv is the test's environment without the variables of an enclosing
// make (`make test` runs the tests), so a nested make starts afresh.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// runMake runs make in the source tree with the given arguments.
func runMake(t *testing.T, args ...string) string {
	t.Helper()
	needTool(t, "make")
	return mustRun(t, repoRoot(t), nil, "make", append([]string{"--no-print-directory"}, args...)...)
}

// fileInfo is what the tests check of an installed file.
type fileInfo struct {
	Mode fs.FileMode
}

// walkFiles lists the regular files under dir by their path relative to
// dir, with their permission bits.
func walkFiles(t *testing.T, dir string) map[string]fileInfo {
	t.Helper()
	files := make(map[string]fileInfo)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[rel] = fileInfo{Mode: info.Mode()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// manPages lists the man pages under docs/man as "man<section>/<name>", the
// layout below MANDIR.
func manPages(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot(t), "docs", "man", "*.[1-9]"))
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	for _, p := range paths {
		name := filepath.Base(p)
		pages = append(pages, "man"+filepath.Ext(name)[1:]+"/"+name)
	}
	return pages
}

// docFiles lists the files installed into the documentation directory.
func docFiles(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot(t), "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{"README.md", "copyright"}
	for _, p := range paths {
		docs = append(docs, filepath.Base(p))
	}
	return docs
}

// unitFile is a parsed systemd unit: section → key → values in order.
type unitFile map[string]map[string][]string

// parseUnit reads a unit file: comments and blank lines are skipped, a
// repeated key keeps every value.
func parseUnit(b []byte) (unitFile, error) {
	u := make(unitFile)
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = make(map[string][]string)
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("line %d: want key=value inside a section, got %q", n, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	return u, sc.Err()
}
