//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// TestVerify: the server finds a replaced block, traces it to where in
// the stream its bytes come from, and refuses a transfer whose header
// does not match it.
func TestVerify(t *testing.T) {
	t.Parallel()
	const size = 256 << 10
	want := stream(7, size)
	moved := bytes.Clone(want)
	copy(moved[88752:102184], want[89560:])
	short := bytes.Clone(want[:size/2])
	tests := []struct {
		name string
		got  []byte
		want Reply
	}{
		{name: "intact", got: want, want: Reply{Received: size}},
		{name: "moved block", got: moved, want: Reply{Received: size, Blocks: []Block{{Start: 88752, End: 102184, From: 89560}}}},
		{name: "cut short", got: short, want: Reply{Received: size / 2,
			Error: fmt.Sprintf("the header says %d bytes (seed 7): header corrupted or data lost", size)}},
		{name: "no header", got: want[:10], want: Reply{Received: 10, Error: "shorter than the header"}},
	}
	for _, tt := range tests {
		got := verify(tt.got)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: verify = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestParse: ranges and sizes of the client's flags.
func TestParse(t *testing.T) {
	t.Parallel()
	lo, hi, err := parseRange("64KiB-1MiB", parseSize)
	if err != nil || lo != 64<<10 || hi != 1<<20 {
		t.Errorf("parseRange(64KiB-1MiB) = %d, %d, %v", lo, hi, err)
	}
	lo, hi, err = parseRange("300", parseSize)
	if err != nil || lo != 300 || hi != 300 {
		t.Errorf("parseRange(300) = %d, %d, %v", lo, hi, err)
	}
	for _, bad := range []string{"2-1", "x", "1-y", "-5"} {
		if _, _, err := parseRange(bad, parseSize); err == nil {
			t.Errorf("parseRange(%q): no error", bad)
		}
	}
}

// TestAttrs: netlink attributes read back as written, nested flag
// stripped; a truncated buffer ends the walk.
func TestAttrs(t *testing.T) {
	t.Parallel()
	b := attr(nil, pmAttrToken, []byte{1, 2, 3, 4})
	b = attr(b, pmAttrAddr|nlaFNested, []byte{5})
	var got []string
	for typ, val := range attrs(b) {
		got = append(got, fmt.Sprintf("%d:%v", typ, val))
	}
	if want := "[4:[1 2 3 4] 1:[5]]"; fmt.Sprint(got) != want {
		t.Errorf("attrs = %v, want %s", got, want)
	}
	n := 0
	for range attrs(b[:len(b)-4]) {
		n++
	}
	if n != 1 {
		t.Errorf("attrs of a truncated buffer: %d attributes, want 1", n)
	}
}

// FuzzVerify: whatever a client sends, the server answers without
// panicking, and an intact stream has no bad block.
func FuzzVerify(f *testing.F) {
	f.Add(stream(1, 64))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := verify(b)
		if r.Error == "" && bytes.Equal(b, stream(binary.BigEndian.Uint64(b), len(b))) && len(r.Blocks) != 0 {
			t.Fatalf("intact stream: blocks %+v", r.Blocks)
		}
	})
}

// FuzzAttrs: any bytes from the kernel walk without panicking, and every
// attribute lies within them.
func FuzzAttrs(f *testing.F) {
	f.Add(attr(attr(nil, 1, []byte("mptcp_pm\x00")), 2, []byte{1, 0}))
	f.Add([]byte{0xff, 0xff, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		for _, val := range attrs(b) {
			total += 4 + len(val)
		}
		if total > len(b) {
			t.Fatalf("attributes of %d bytes in a %d-byte buffer", total, len(b))
		}
	})
}

// nsSeq makes the script's namespace names unique in this test binary.
var nsSeq atomic.Int64

// runScript runs joincorrupt.sh with env and args, and returns its
// output. The namespaces carry internal/netnstest's prefix and this
// process's pid, so that a later test run deletes them if this one dies
// before its cleanup.
func runScript(t *testing.T, env []string, args ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "joincorrupt: the script needs root (network namespaces)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the script builds main.go: %v", err)
	}
	prefix := fmt.Sprintf("mgt-%d-jc%d", os.Getpid(), nsSeq.Add(1))
	t.Cleanup(func() {
		for _, ns := range []string{prefix + "-cli", prefix + "-srv"} {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	cmd := exec.Command("sh", append([]string{"./joincorrupt.sh"}, args...)...)
	cmd.Env = append(os.Environ(), append(env, "GO="+goBin, "NS_PREFIX="+prefix)...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("joincorrupt.sh %s %s:\n%s", strings.Join(env, " "), strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("joincorrupt.sh: %v", err)
	}
	return string(out)
}

// summary is the client's closing line.
var summary = regexp.MustCompile(`transfers (\d+): corrupted (\d+), failed (\d+); with an extra subflow (\d+); joins requested (\d+) \((\d+) refused\)`)

// counts returns the numbers of the summary line of out.
func counts(t *testing.T, out string) (transfers, corrupted, failed, joined, requested, refused int) {
	t.Helper()
	m := summary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in the output")
	}
	n := make([]int, 6)
	for i := range n {
		_, _ = fmt.Sscan(m[i+1], &n[i])
	}
	return n[0], n[1], n[2], n[3], n[4], n[5]
}

// TestScript runs the reproducer as a kernel developer would, briefly: it
// must transfer and verify data with joins through either path manager,
// and report a block the client replaced itself (-inject) as the kernel's
// corruption looks. It does not look for the kernel's corruption: a
// corrupted transfer is logged, not a failure.
func TestScript(t *testing.T) {
	t.Parallel()
	t.Run("userspace PM", func(t *testing.T) {
		t.Parallel()
		out := runScript(t, []string{"PM=userspace", "CSUM=0"}, "-transfers", "16", "-workers", "4", "-size", "1MiB", "-at", "0-5ms")
		// Under load a transfer may end before its join point: every
		// transfer must be verified, every join asked for must be sent,
		// and one at least must be up.
		transfers, corrupted, failed, joined, requested, refused := counts(t, out)
		if transfers != 16 || failed != 0 || joined == 0 || refused != 0 {
			t.Errorf("16 transfers, joined: got %d transfers, %d failed, %d with an extra subflow, %d joins requested, %d refused", transfers, failed, joined, requested, refused)
		}
		if corrupted > 0 {
			t.Logf("%d transfers corrupted by the kernel", corrupted)
		}
		if !regexp.MustCompile(fmt.Sprintf(`client MPTcpExt:.* MPJoinSynTx=%d\b`, requested)).MatchString(out) || !strings.Contains(out, "kernel "+uname(t)) {
			t.Errorf("the output lacks the kernel version or the client's %d MP_JOIN SYNs", requested)
		}
	})
	t.Run("in-kernel PM with checksums", func(t *testing.T) {
		t.Parallel()
		out := runScript(t, []string{"PM=kernel", "CSUM=1"}, "-transfers", "8", "-workers", "4", "-size", "1MiB")
		transfers, _, failed, joined, requested, _ := counts(t, out)
		if transfers != 8 || failed != 0 || joined == 0 || requested != 0 {
			t.Errorf("8 transfers joined by the in-kernel PM: got %d transfers, %d failed, %d with an extra subflow, %d joins requested by the client", transfers, failed, joined, requested)
		}
		if !regexp.MustCompile(`server MPTcpExt:.* MPJoinAckRx=[1-8]\b`).MatchString(out) {
			t.Errorf("the output lacks the server's MP_JOIN ACKs")
		}
	})
	t.Run("the checker sees a replaced block", func(t *testing.T) {
		t.Parallel()
		out := runScript(t, []string{"PM=none"}, "-transfers", "2", "-workers", "1", "-size", "1MiB", "-inject", "88752")
		transfers, corrupted, failed, _, _, _ := counts(t, out)
		if transfers != 2 || corrupted != 2 || failed != 0 {
			t.Errorf("2 transfers with a replaced block: got %d transfers, %d corrupted, %d failed", transfers, corrupted, failed)
		}
		if want := "bad bytes [88752, 92848) (4096 bytes), start % 64 KiB = 23216, end % 64 KiB = 27312; they are the stream's bytes at 89560 (+808)"; !strings.Contains(out, want) {
			t.Errorf("no %q in the output", want)
		}
	})
}

// uname returns the kernel's release.
func uname(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("uname", "-r").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
