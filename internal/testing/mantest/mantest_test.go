package mantest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// recorder is a testing.TB that records the errors reported to it.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Logf(format string, args ...any) { r.TB.Logf(format, args...) }

func TestLint(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"groff", "mandoc"} {
		if _, err := exec.LookPath(tool); err != nil {
			runtest.Unavailable(t, fmt.Sprintf("%s not found: %v", tool, err))
		}
	}
	tests := []struct {
		name, page string
		want       []string // in the errors, one each; none for a clean page
	}{
		{name: "clean", page: ".TH \"X\" \"8\" \"2026-11-23\" \"x\" \"x manual\"\n.SH NAME\nx \\- does x\n.SH DESCRIPTION\nText.\n"},
		{
			name: "unknown request, no date",
			page: ".TH \"X\" \"8\"\n.SH NAME\nx \\- does x\n.SH DESCRIPTION\n.XY\nText.\n",
			want: []string{"groff", "mandoc"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "x.8")
			if err := os.WriteFile(path, []byte(tt.page), 0o644); err != nil {
				t.Fatal(err)
			}
			r := &recorder{TB: t}
			Lint(r, path)
			if len(r.errs) != len(tt.want) {
				t.Fatalf("Lint reported %d errors, want %d: %q", len(r.errs), len(tt.want), r.errs)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(r.errs[i], w+" ") {
					t.Errorf("error %d: %q, want one from %s", i, r.errs[i], w)
				}
			}
		})
	}
}
