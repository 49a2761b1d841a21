//go:build linux

package soak_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRaces: every race report of every run is found, cut at its end.
func TestRaces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		logs []string
		want []string
	}{
		{name: "none", logs: []string{"level=INFO msg=ready\n"}},
		{
			name: "two runs",
			logs: []string{
				"a\n==================\nWARNING: DATA RACE\nWrite at 1\n==================\nb\n",
				"c\n",
				"WARNING: DATA RACE\nRead at 2\n==================\nWARNING: DATA RACE\nRead at 3\n==================\n",
			},
			want: []string{"run 1: \nWrite at 1\n", "run 3: \nRead at 2\n", "run 3: \nRead at 3\n"},
		},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, races(tt.logs)); diff != "" {
			t.Errorf("%s: races (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestVerdict: only a reply with a count and a different checksum counts
// as corrupted; a missing or truncated reply is a failure of another kind.
func TestVerdict(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("payload"))
	other := sha256.Sum256([]byte("pay1oad"))
	reply := func(n uint64, s [32]byte) []byte { return append(binary.BigEndian.AppendUint64(nil, n), s[:]...) }
	tests := []struct {
		name          string
		got           []byte
		ok, corrupted bool
	}{
		{name: "match", got: reply(7, sum), ok: true},
		{name: "other checksum", got: reply(7, other), corrupted: true},
		{name: "other count", got: reply(6, sum), corrupted: true},
		{name: "no answer", got: nil},
		{name: "truncated", got: reply(7, sum)[:20]},
	}
	for _, tt := range tests {
		err := verdict(7, sum[:], tt.got)
		got := []bool{err == nil, errors.Is(err, errCorrupt)}
		if diff := cmp.Diff([]bool{tt.ok, tt.corrupted}, got); diff != "" {
			t.Errorf("%s: verdict = %v; [ok corrupted] (-want +got):\n%s", tt.name, err, diff)
		}
	}
}

// lateContext is a context whose deadline has passed while its own timer
// has not said so yet: the moment a dial bounded by it fails at once.
type lateContext struct{ context.Context }

func (lateContext) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// TestEnded: a transfer's dial error counts only while its phase runs,
// and the phase is over from its deadline on, whatever ctx.Err says.
func TestEnded(t *testing.T) {
	t.Parallel()
	live, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	tests := []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"running", live, false},
		{"no deadline", context.Background(), false},
		{"cancelled", done, true},
		{"past its deadline, not yet done", lateContext{context.Background()}, true},
	}
	for _, tt := range tests {
		if got := ended(tt.ctx); got != tt.want {
			t.Errorf("%s: ended = %v, want %v", tt.name, got, tt.want)
		}
	}
}
