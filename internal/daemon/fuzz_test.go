package daemon

import (
	"errors"
	"testing"
)

// FuzzParse feeds Parse arbitrary files: it must not panic, every error
// must be an *Error naming the file, and what parses must build or fail
// with an *Error too.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.toml", data)
		if err != nil {
			checkErrors(t, err)
			return
		}
		r, err := c.BuildPolicy()
		if err != nil {
			checkErrors(t, err)
			return
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

func checkErrors(t *testing.T, err error) {
	t.Helper()
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) || ce.File != "fuzz.toml" {
			t.Fatalf("error %T %q is not an *Error of fuzz.toml", e, e)
		}
	}
}
