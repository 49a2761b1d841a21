package main

import (
	"fmt"
	"os"
)

// runner lets netnstest build a testbed outside a test: it keeps the
// cleanups netnstest registers and runs them, newest first, when the demo
// ends or fails.
type runner struct {
	cleanups []func()
	dir      string
}

func (r *runner) Helper()                 {}
func (r *runner) Cleanup(f func())        { r.cleanups = append(r.cleanups, f) }
func (r *runner) Logf(f string, a ...any) { fmt.Printf("  "+f+"\n", a...) }
func (r *runner) Errorf(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "demo: "+f+"\n", a...)
}
func (r *runner) Fatal(a ...any)            { r.fail(fmt.Sprint(a...)) }
func (r *runner) Fatalf(f string, a ...any) { r.fail(fmt.Sprintf(f, a...)) }
func (r *runner) FailNow()                  { r.fail("failed") }
func (r *runner) Skip(a ...any)             { r.fail(fmt.Sprint(a...)) }

// fail ends the demo the way t.Fatal ends a test: it cleans up and exits.
func (r *runner) fail(msg string) {
	fmt.Fprintln(os.Stderr, "demo:", msg)
	r.cleanup()
	os.Exit(1)
}

// tempDir returns a directory that is removed at cleanup.
func (r *runner) tempDir() string {
	if r.dir == "" {
		d, err := os.MkdirTemp("", "mptcpgod-demo-")
		if err != nil {
			r.fail(err.Error())
		}
		r.dir = d
		r.Cleanup(func() { _ = os.RemoveAll(d) })
	}
	return r.dir
}

// cleanup runs the registered cleanups once, newest first.
func (r *runner) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}
