package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/policy"
)

// ChecksumsMode is what the daemon does with net.mptcp.checksum_enabled
// ([mitigation] checksums).
type ChecksumsMode string

// Checksums modes.
const (
	// ChecksumsKeep leaves the sysctl as it is.
	ChecksumsKeep ChecksumsMode = "keep"
	// ChecksumsOn sets it to 1 when the daemon starts.
	ChecksumsOn ChecksumsMode = "on"
	// ChecksumsOff sets it to 0 when the daemon starts.
	ChecksumsOff ChecksumsMode = "off"
)

// DefaultMinJoinAge is [mitigation] min_join_age unless configured: Linux
// 6.18 corrupted some transfers whose subflow joined in the connection's
// first 10 ms (per 1,000 joins: 8.5 at 0–1 ms, 3.1 at 1–2, 1.9 at 2–5,
// 0.6 at 5–10) and none of 13,410 joined at 10–200 ms; twice that is the
// margin.
const DefaultMinJoinAge = 20 * time.Millisecond

// MaxMinJoinAge bounds [mitigation] min_join_age.
const MaxMinJoinAge = 10 * time.Second

// MitigationConfig is the [mitigation] table, checked.
type MitigationConfig struct {
	Checksums  ChecksumsMode
	MinJoinAge time.Duration
}

// fillMitigation checks the [mitigation] table and sets c from it.
func (c *Config) fillMitigation(k *checker, f MitigationFile) {
	switch m := ChecksumsMode(f.Checksums); m {
	case ChecksumsKeep, ChecksumsOn, ChecksumsOff:
		c.Mitigation.Checksums = m
	default:
		k.fail("mitigation.checksums", "%q is not keep, on or off", f.Checksums)
	}
	d, err := time.ParseDuration(f.MinJoinAge)
	switch {
	case err != nil:
		k.fail("mitigation.min_join_age", "%q is not a duration such as \"20ms\" (\"0s\" turns it off)", f.MinJoinAge)
	case d < 0:
		k.fail("mitigation.min_join_age", "%q is negative", f.MinJoinAge)
	case d > MaxMinJoinAge:
		k.fail("mitigation.min_join_age", "%q is longer than %v", f.MinJoinAge, MaxMinJoinAge)
	default:
		c.Mitigation.MinJoinAge = d
	}
}

// applyChecksums sets net.mptcp.checksum_enabled as [mitigation]
// checksums asks and returns its value then.
func applyChecksums(client *genl.Client, mode ChecksumsMode, log *slog.Logger) (bool, error) {
	cur, err := client.Checksums()
	if err != nil {
		return false, fmt.Errorf("daemon: mitigation.checksums: %w", err)
	}
	want := mode == ChecksumsOn
	if mode == ChecksumsKeep || cur == want {
		return cur, nil
	}
	if err := client.SetChecksums(want); err != nil {
		return cur, fmt.Errorf("daemon: mitigation.checksums: %w", err)
	}
	log.Info("DSS checksums set for new connections", "sysctl", "net.mptcp.checksum_enabled", "old", boolDigit(cur),
		"new", boolDigit(want))
	return want, nil
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// mappingCounters are the kernel's MPTcpExt counters of mapping errors:
// a subflow's data mapping that contradicts what came before
// (DSSNotMatching, DSSNoMatchTCP), a DSS checksum that failed
// (DataCsumErr) and what the kernel did about it (MP_FAIL, fallback,
// reset, infinite mapping), and the MP_TCPRST resets it sent, which
// follow most of them.
var mappingCounters = []string{
	"DSSNotMatching", "DSSNoMatchTCP", "DSSCorruptionFallback", "DSSCorruptionReset",
	"DataCsumErr", "MPFailRx", "MPFailTx", "InfiniteMapRx", "InfiniteMapTx", "MPRstTx",
}

// mappingEvery is how often the daemon reads the mapping-error counters.
const mappingEvery = 5 * time.Second

// mitigation is what the daemon does against the kernel's corruption on
// joins and what it sees of the kernel's mapping errors: it reads the
// MPTcpExt counters every mappingEvery, logs a warning when one rose, and
// reports them since the daemon started.
type mitigation struct {
	log  *slog.Logger
	mode policy.Mode
	cfg  MitigationConfig
	// read reads the namespace's MPTcpExt counters (Metrics.MPTcpExt).
	read func() (map[string]uint64, error)

	mu        sync.Mutex
	checksums bool
	base      map[string]uint64 // at start; nil until read
	last      map[string]uint64
	checked   time.Time
	readErr   error
}

func newMitigation(log *slog.Logger, mode policy.Mode, cfg MitigationConfig, checksums bool,
	read func() (map[string]uint64, error)) *mitigation {
	m := &mitigation{log: log, mode: mode, cfg: cfg, checksums: checksums, read: read}
	m.check(time.Now())
	minAge := cfg.MinJoinAge.String()
	if mode == policy.ModeKernel {
		minAge = "none: the in-kernel path manager joins when a connection is established"
	}
	log.Info("mitigation of the kernel's corruption on joins", "checksums", onOff(checksums),
		"min_join_age", minAge)
	return m
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// run checks the counters every mappingEvery until ctx is done.
func (m *mitigation) run(ctx context.Context) error {
	t := time.NewTicker(mappingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			m.check(now)
		}
	}
}

// check reads the counters and logs a warning naming those that rose
// since the last check.
func (m *mitigation) check(now time.Time) {
	ext, err := m.read()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.readErr == nil {
			m.log.Warn("cannot read the kernel's MPTCP counters", "error", err)
		}
		m.readErr = err
		return
	}
	m.readErr = nil
	cur := make(map[string]uint64, len(mappingCounters))
	for _, name := range mappingCounters {
		cur[name] = ext[name]
	}
	m.checked = now
	if m.base == nil {
		m.base, m.last = cur, cur
		return
	}
	var rose []string
	for _, name := range mappingCounters {
		if cur[name] > m.last[name] {
			rose = append(rose, fmt.Sprintf("%s +%d", name, cur[name]-m.last[name]))
		}
	}
	m.last = cur
	if len(rose) == 0 {
		return
	}
	m.log.Warn("the kernel reports MPTCP data mapping errors: subflows were reset, and a transfer may have been corrupted",
		"counters", strings.Join(rose, ", "), "checksums", onOff(m.checksums), "min_join_age", m.cfg.MinJoinAge.String(),
		"see", "docs/troubleshooting.md, \"Corrupted transfers and mapping errors\"")
}

// status returns the mitigation for the control socket.
func (m *mitigation) status() ctlapi.Mitigation {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := ctlapi.Mitigation{
		Checksums:       m.checksums,
		ChecksumsConfig: string(m.cfg.Checksums),
		CanDefer:        m.mode == policy.ModeUserspace,
		MappingErrors:   map[string]uint64{},
		Checked:         m.checked,
	}
	if st.CanDefer {
		st.MinJoinAge = m.cfg.MinJoinAge
	}
	if m.readErr != nil {
		st.Error = m.readErr.Error()
	}
	for name, v := range m.last {
		st.MappingErrors[name] = v - m.base[name]
	}
	return st
}
