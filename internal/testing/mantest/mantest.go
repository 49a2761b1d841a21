package mantest

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// Lint fails t when groff, formatting the man page at path for a UTF-8
// terminal with every warning on, or mandoc's linter at its warning level
// has something to say about it.
func Lint(t testing.TB, path string) {
	t.Helper()
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// -k reads the page as UTF-8 (preconv), as man(1) does; -t runs tbl
	// for a page whose first line asks for it.
	groffArgs := []string{"-k", "-man", "-ww", "-z", "-Tutf8"}
	if bytes.HasPrefix(page, []byte(`'\" t`)) {
		groffArgs = append(groffArgs, "-t")
	}
	check(t, "groff", append(groffArgs, path)...)
	check(t, "mandoc", "-T", "lint", "-W", "warning", path)
}

// check runs tool with args; anything it prints, or its failure, fails t.
func check(t testing.TB, tool string, args ...string) {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Errorf("%s is needed (CI=true; apt-get install groff-base mandoc): %v", tool, err)
		} else {
			t.Logf("%s not found (apt-get install groff-base mandoc): %s not checked with it", tool, args[len(args)-1])
		}
		return
	}
	out, err := exec.Command(p, args...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("%s %q: %v\n%s", tool, args, err, out)
	}
}
