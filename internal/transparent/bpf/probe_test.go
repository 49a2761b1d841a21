package bpf

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
)

// TestLastLine: the reason of a verifier refusal is its last line before
// the statistics that newer (processed) and older kernels (verification
// time, stack depth, processed) end their logs with.
func TestLastLine(t *testing.T) {
	tests := []struct {
		log  []string
		want string
	}{
		{[]string{
			"0: R1=ctx() R10=fp0",
			"At program exit the register R0 has smin=0 smax=262 should have been in [0, 0]",
			"processed 164 insns (limit 1000000) max_states_per_insn 0 total_states 18 peak_states 18 mark_read 18",
			"",
		}, "At program exit the register R0 has smin=0 smax=262 should have been in [0, 0]"},
		{[]string{"R0 !read_ok", "verification time 12 usec", "stack depth 16",
			"processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0"}, "R0 !read_ok"},
		// Nothing but statistics: the error itself.
		{[]string{"", "processed 2 insns"}, ""},
	}
	for _, tt := range tests {
		ve := &ebpf.VerifierError{Cause: errors.New("load program: refused"), Log: tt.log}
		want := tt.want
		if want == "" {
			want = ve.Error()
		}
		if got := lastLine(ve); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", tt.log, got, want)
		}
	}
}
