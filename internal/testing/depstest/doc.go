// Package depstest keeps the dependency arrows of docs/architecture.md
// in tests: it asks the go command what a package imports.
//
// A package's TestDeps names its own import path and its rule, and says
// why in its doc comment:
//
//	// TestDeps keeps transparent a leaf: none of our packages, and
//	// outside the standard library x/sys and x/net/bpf only.
//	func TestDeps(t *testing.T) {
//		t.Parallel()
//		depstest.Allow(t, depstest.Module+"internal/transparent", "golang.org/x/sys/...", "golang.org/x/net/bpf")
//	}
//
// Allow fails the test for every dependency outside the standard library
// that matches none of the allowed patterns, Forbid for every one that
// matches a forbidden pattern and no exception. Deps returns those
// dependencies and Imports the direct imports, for a rule of another
// shape; both look at the package in the test's directory and fail the
// test unless go list lists it under the import path the test names, so
// that a test copied to another package cannot pass by looking at the
// wrong one. List is go list itself, for the packages a pattern names
// (plugins/all looks at every plugin). IO lists the standard library's
// packages through which a program does I/O, for the packages that must
// do none. Patterns are go list's: an import path, or one that ends in
// "/..." for it and every package below it.
//
// Without the go command the test fails under CI=true and skips otherwise
// (runtest.Unavailable); a go list that fails fails the test.
//
// The package imports only the standard library and runtest, so that the
// tests of packages that build on every system can use it. It is for
// tests only.
package depstest
