package daemontest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// BinaryEnv names a prebuilt mptcpgod binary to test instead of building
// one, with mptcpctl in the same directory.
const BinaryEnv = "MPTCPGOD_TEST_BINARY"

// module is the import path of the main module.
const module = "github.com/mptcpgod/mptcpgod"

// Build says how to build a program.
type Build struct {
	// Pkg is the program's import path.
	Pkg string
	// Race builds it with the race detector.
	Race bool
	// Env is added to go build's environment (CGO_ENABLED=0).
	Env []string
}

// key names the build in the directory and among those done.
func (b Build) key() string {
	k := filepath.Base(b.Pkg)
	if b.Race {
		k += "-race"
	}
	for _, e := range b.Env {
		k += "-" + strings.NewReplacer("=", "_", "/", "_").Replace(e)
	}
	return k
}

// builds are the programs built so far, by key, into dir.
var builds = struct {
	sync.Mutex
	main bool // Main is running the tests
	dir  string
	done map[string]*built
}{done: map[string]*built{}}

// built is one program, built once.
type built struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests and removes the programs they built; call it from
// TestMain, as os.Exit(daemontest.Main(m)), in every package that builds.
func Main(m *testing.M) int {
	builds.Lock()
	builds.main = true
	builds.Unlock()
	code := m.Run()
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
	}
	return code
}

// Path builds the program of b once per test binary and returns its path;
// a second call, from any goroutine, waits for the first's build.
func Path(b Build) (string, error) {
	builds.Lock()
	if !builds.main {
		builds.Unlock()
		return "", errors.New("daemontest: Main does not run the tests: call os.Exit(daemontest.Main(m)) from TestMain")
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "mptcpgod-test-")
		if err != nil {
			builds.Unlock()
			return "", err
		}
		builds.dir = dir
	}
	dir := builds.dir
	p, ok := builds.done[b.key()]
	if !ok {
		p = &built{}
		builds.done[b.key()] = p
	}
	builds.Unlock()
	p.once.Do(func() {
		path := filepath.Join(dir, b.key())
		args := []string{"build", "-o", path}
		if b.Race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, b.Pkg)...)
		cmd.Env = append(os.Environ(), b.Env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			p.err = fmt.Errorf("daemontest: go build %s: %v\n%s", b.Pkg, err, out)
			return
		}
		p.path = path
	})
	return p.path, p.err
}

// Program returns the path of the program of b, building it on first use,
// and fails the test if it does not build.
func Program(t testing.TB, b Build) string {
	t.Helper()
	p, err := Path(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Binary returns the path of name, "mptcpgod" or "mptcpctl", built from
// cmd/NAME on first use, or beside $MPTCPGOD_TEST_BINARY when it is set.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		return filepath.Join(filepath.Dir(p), name)
	}
	return Program(t, Build{Pkg: module + "/cmd/" + name})
}
