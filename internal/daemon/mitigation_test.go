package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mptcpgod/mptcpgod/policy"
)

// TestMitigationWatch: the mapping-error counters are reported since the
// daemon started, a rise is logged once with what rose, and a counter
// that cannot be read is reported.
func TestMitigationWatch(t *testing.T) {
	var (
		mu   sync.Mutex
		ext  = map[string]uint64{"DSSNotMatching": 5, "MPRstTx": 9, "MPJoinSynRx": 100}
		fail error
		logs bytes.Buffer
	)
	read := func() (map[string]uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]uint64{}
		for k, v := range ext {
			out[k] = v
		}
		return out, fail
	}
	log := slog.New(slog.NewTextHandler(&logs, nil))
	m := newMitigation(log, policy.ModeUserspace, MitigationConfig{Checksums: ChecksumsKeep, MinJoinAge: 20 * time.Millisecond}, false, read)
	st := m.status()
	if st.MappingErrors["DSSNotMatching"] != 0 || st.MappingErrors["MPRstTx"] != 0 || !st.CanDefer || st.MinJoinAge != 20*time.Millisecond {
		t.Errorf("status at start %+v, want no errors since start, deferral possible", st)
	}
	if _, ok := st.MappingErrors["MPJoinSynRx"]; ok {
		t.Errorf("status reports MPJoinSynRx among mapping errors: %v", st.MappingErrors)
	}
	m.check(time.Now())
	if strings.Contains(logs.String(), "mapping errors") {
		t.Errorf("warned without a rise:\n%s", logs.String())
	}
	mu.Lock()
	ext["DSSNotMatching"], ext["MPRstTx"] = 7, 11
	mu.Unlock()
	m.check(time.Now())
	if !strings.Contains(logs.String(), `level=WARN msg="the kernel reports MPTCP data mapping errors`) ||
		!strings.Contains(logs.String(), `counters="DSSNotMatching +2, MPRstTx +2"`) {
		t.Errorf("no warning naming the rise:\n%s", logs.String())
	}
	if st := m.status(); st.MappingErrors["DSSNotMatching"] != 2 || st.MappingErrors["MPRstTx"] != 2 {
		t.Errorf("errors since start %v, want 2 and 2", st.MappingErrors)
	}
	mu.Lock()
	fail = errors.New("no netstat")
	mu.Unlock()
	m.check(time.Now())
	if st := m.status(); st.Error != "no netstat" {
		t.Errorf("status error %q, want the read's", st.Error)
	}
	if n := strings.Count(logs.String(), "cannot read the kernel's MPTCP counters"); n != 1 {
		t.Errorf("read failure logged %d times, want once", n)
	}
	m.check(time.Now())
	if n := strings.Count(logs.String(), "cannot read the kernel's MPTCP counters"); n != 1 {
		t.Errorf("a second read failure logged again (%d lines)", n)
	}

	k := newMitigation(log, policy.ModeKernel, MitigationConfig{Checksums: ChecksumsOn, MinJoinAge: 20 * time.Millisecond}, true, read)
	if st := k.status(); st.CanDefer || st.MinJoinAge != 0 || !st.Checksums || st.ChecksumsConfig != "on" {
		t.Errorf("kernel mode status %+v, want no deferral, checksums on", st)
	}
}
