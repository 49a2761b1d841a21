package usage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/safefile"
	"github.com/mptcpgod/mptcpgod/policy"
)

// bootIDFile holds the running kernel's boot id.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// Sample is a link's byte counters at one moment, as the kernel keeps
// them since the link was created.
type Sample struct {
	Name    string
	Index   int
	RxBytes uint64
	TxBytes uint64
}

// Source is what Poll samples: a namespace's links and their counters.
// *linkmon.Monitor is one.
type Source interface {
	State() linkmon.State
	Counters(index int) (linkmon.Counters, error)
}

var _ Source = (*linkmon.Monitor)(nil)

// Accounting counts the traffic of the configured links per period and
// keeps it in the usage file. Its methods are safe for concurrent use.
type Accounting struct {
	file      string
	log       *slog.Logger
	now       func() time.Time
	auto      MeteredFunc
	saveEvery time.Duration

	mu      sync.Mutex
	links   []LinkQuota
	boot    string
	state   map[string]*linkState
	metered map[string]meteredAnswer // the last answer for each link
	present map[string]bool          // the links of the last Update
	reached map[string]uint64        // quota reached, since New
	notices []string
	saved   time.Time // when the file was last written or, before that, read
	dirty   bool      // state changed since the last write
	urgent  bool      // write at the next chance, whatever saveEvery says
}

type meteredAnswer struct {
	metered bool
	by      string
}

// New returns the accounting of cfg.Links, loaded from the usage file in
// cfg.StateDir. A usage file it cannot parse is renamed to
// usage.json.corrupt-<UTC time>, reported in the log at error level and in
// the Report's notices, and the counting starts from 0; New fails only
// when it cannot create the directory, read the file or set it aside.
func New(cfg Config) (*Accounting, error) {
	for i, q := range cfg.Links {
		if err := q.Validate(); err != nil {
			return nil, fmt.Errorf("usage: links[%d].%w", i, err)
		}
	}
	dir := cfg.StateDir
	if dir == "" {
		dir = DefaultStateDir
	}
	a := &Accounting{
		file:      filepath.Join(dir, FileName),
		log:       cfg.Logger,
		now:       cfg.Now,
		auto:      cfg.Auto,
		saveEvery: cfg.SaveInterval,
		links:     slices.Clone(cfg.Links),
		boot:      cfg.BootID,
		state:     map[string]*linkState{},
		metered:   map[string]meteredAnswer{},
		present:   map[string]bool{},
		reached:   map[string]uint64{},
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("component", "usage")
	if a.now == nil {
		a.now = time.Now
	}
	if a.boot == "" {
		if b, err := os.ReadFile(bootIDFile); err == nil {
			a.boot = strings.TrimSpace(string(b))
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("usage: state_dir: %w", err)
	}
	if err := a.load(); err != nil {
		return nil, err
	}
	return a, nil
}

// MaxFileSize bounds the usage file: a few hundred bytes per link.
const MaxFileSize = 1 << 20

// load reads the usage file, or sets it aside when it is corrupt or
// larger than MaxFileSize. Something else than a regular file (a FIFO, a
// device) is an error: it is not the daemon's, and reading it could block
// or never end.
func (a *Accounting) load() error {
	data, err := safefile.Read(a.file, MaxFileSize)
	var st *stateFile
	var derr error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		a.log.Info("no usage file yet; counting starts now", "file", a.file)
		return nil
	case errors.Is(err, safefile.ErrTooLarge):
		derr = err
	case err != nil:
		return fmt.Errorf("usage: %w", err)
	default:
		st, derr = decodeState(data)
	}
	if derr != nil {
		now := a.now()
		dst, err := setAside(a.file, now)
		if err != nil {
			return fmt.Errorf("usage: %s is corrupt (%v) and cannot be set aside: %w", a.file, derr, err)
		}
		a.log.Error("usage file corrupt: set aside, usage counts from 0", "file", a.file, "moved_to", dst, "err", derr)
		a.notices = append(a.notices, fmt.Sprintf("%s was corrupt (%v): moved to %s; usage counted from 0 since %s",
			a.file, derr, dst, now.Format(time.RFC3339)))
		a.urgent = true
		return nil
	}
	a.state, a.saved = st.Links, st.Saved
	if st.BootID != "" && a.boot != "" && st.BootID != a.boot {
		// The counters started from 0 at boot: count them whole.
		for _, ls := range st.Links {
			ls.IfIndex, ls.RxCounter, ls.TxCounter = 0, 0, 0
		}
		a.log.Info("the host rebooted since the usage file was saved: counting the links' counters since boot",
			"file", a.file, "saved", st.Saved)
	}
	a.log.Info("usage loaded", "file", a.file, "links", len(st.Links), "saved", st.Saved)
	return nil
}

// Reconfigure replaces the accounted links (a configuration reload).
// Usage so far is kept; periods follow the new settings from the next
// sample on.
func (a *Accounting) Reconfigure(links []LinkQuota) error {
	for i, q := range links {
		if err := q.Validate(); err != nil {
			return fmt.Errorf("usage: links[%d].%w", i, err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.links = slices.Clone(links)
	clear(a.metered)
	return nil
}

// match returns the first LinkQuota whose Name matches the interface
// name.
func (a *Accounting) match(name string) (LinkQuota, bool) {
	for _, q := range a.links {
		if ok, _ := path.Match(q.Name, name); ok {
			return q, true
		}
	}
	return LinkQuota{}, false
}

// Watches reports whether the link named name is accounted.
func (a *Accounting) Watches(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.match(name)
	return ok
}

// Poll samples the counters of the accounted links of src's State and
// passes them to Update. A link whose counters cannot be read is skipped
// and its error returned with Update's.
func (a *Accounting) Poll(src Source) ([]Link, error) {
	st := src.State()
	indexes := slices.Sorted(maps.Keys(st.Links))
	var samples []Sample
	var errs []error
	for _, i := range indexes {
		l := st.Links[i]
		if !a.Watches(l.Name) {
			continue
		}
		c, err := src.Counters(l.Index)
		if err != nil {
			errs = append(errs, fmt.Errorf("usage: %s: %w", l.Name, err))
			continue
		}
		samples = append(samples, Sample{Name: l.Name, Index: l.Index, RxBytes: c.RxBytes, TxBytes: c.TxBytes})
	}
	links, err := a.Update(samples)
	return links, errors.Join(append(errs, err)...)
}

// Update counts the traffic of the samples' links since their last
// samples and returns their usage. samples should hold every accounted
// link there is now; the others are reported absent. Counters that went
// down (reset) or that belong to a new interface index (the link was
// created again) are counted from 0. A link seen for the first time is
// counted from its sample on. Bytes sampled after a period ended count in
// the next period. The usage file is written when a link reaches its
// quota, a period starts or a link is first seen, and otherwise at most
// every Config.SaveInterval; the error is the write's (the counting
// itself never fails) and the write is tried again at the next Update.
func (a *Accounting) Update(samples []Sample) ([]Link, error) {
	auto := a.askAuto(samples)
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	clear(a.present)
	var out []Link
	for _, s := range samples {
		q, ok := a.match(s.Name)
		if !ok {
			continue
		}
		a.present[s.Name] = true
		ls := a.sample(q, s, now)
		a.setMetered(q, s.Name, auto)
		out = append(out, a.report(q, s.Name, ls, now))
	}
	return out, a.maybeSave(now)
}

// askAuto asks Config.Auto about the samples' links with metered "auto",
// without holding the lock: the answer may take a D-Bus round trip.
func (a *Accounting) askAuto(samples []Sample) map[string]meteredAnswer {
	if a.auto == nil {
		return nil
	}
	var names []string
	a.mu.Lock()
	for _, s := range samples {
		if q, ok := a.match(s.Name); ok && q.Metered == MeteredAuto {
			names = append(names, s.Name)
		}
	}
	a.mu.Unlock()
	answers := make(map[string]meteredAnswer, len(names))
	for _, n := range names {
		var ans meteredAnswer
		ans.metered, ans.by = a.auto(n)
		answers[n] = ans
	}
	return answers
}

// sample adds what s counted since the link's last sample.
func (a *Accounting) sample(q LinkQuota, s Sample, now time.Time) *linkState {
	ls, ok := a.state[s.Name]
	if !ok {
		start, end := q.PeriodAt(now)
		ls = &linkState{PeriodStart: start, PeriodEnd: end, IfIndex: s.Index,
			RxCounter: s.RxBytes, TxCounter: s.TxBytes, Sampled: now}
		a.state[s.Name] = ls
		a.dirty, a.urgent = true, true
		a.log.Info("link accounting started", "link", s.Name, "period_start", start, "period_end", end,
			"quota_bytes", q.QuotaBytes)
		return ls
	}
	a.roll(q, s.Name, ls, now)
	rx, rxReset := counterDelta(ls.IfIndex, ls.RxCounter, s.Index, s.RxBytes)
	tx, txReset := counterDelta(ls.IfIndex, ls.TxCounter, s.Index, s.TxBytes)
	if (rxReset || txReset) && ls.IfIndex != 0 {
		reason := "counters went down"
		if ls.IfIndex != s.Index {
			reason = "new interface index"
		}
		a.log.Info("link counters restarted: counting them from 0", "link", s.Name, "reason", reason,
			"old_ifindex", ls.IfIndex, "ifindex", s.Index)
	}
	if d := rx + tx; d > 0 {
		ls.UsedBytes = addSat(addSat(ls.UsedBytes, rx), tx)
		a.dirty = true
	}
	ls.IfIndex, ls.RxCounter, ls.TxCounter, ls.Sampled = s.Index, s.RxBytes, s.TxBytes, now
	a.checkQuota(q, s.Name, ls, now)
	return ls
}

// counterDelta returns what a counter counted from old (at oldIndex) to
// cur (at index), and whether it started again from 0: the link is a new
// one, or the counter went down.
func counterDelta(oldIndex int, old uint64, index int, cur uint64) (uint64, bool) {
	if oldIndex != index || cur < old {
		return cur, true
	}
	return cur - old, false
}

func addSat(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}

// roll moves ls to the period that holds now: when its period is over,
// the usage starts from 0. The bounds always follow q, so a changed reset
// day or time zone applies at once.
func (a *Accounting) roll(q LinkQuota, name string, ls *linkState, now time.Time) {
	start, end := q.PeriodAt(now)
	if !now.Before(ls.PeriodEnd) {
		a.log.Info("new accounting period", "link", name, "previous_used_bytes", ls.UsedBytes,
			"period_start", start, "period_end", end)
		ls.UsedBytes, ls.QuotaReached = 0, time.Time{}
		a.dirty, a.urgent = true, true
	}
	if !start.Equal(ls.PeriodStart) || !end.Equal(ls.PeriodEnd) {
		ls.PeriodStart, ls.PeriodEnd = start, end
		a.dirty = true
	}
	if !ls.QuotaReached.IsZero() && (q.QuotaBytes == 0 || ls.UsedBytes < q.QuotaBytes) {
		a.log.Info("link below its quota again", "link", name, "used_bytes", ls.UsedBytes, "quota_bytes", q.QuotaBytes)
		ls.QuotaReached = time.Time{}
		a.dirty = true
	}
}

// checkQuota notes the moment the link reaches its quota.
func (a *Accounting) checkQuota(q LinkQuota, name string, ls *linkState, now time.Time) {
	if q.QuotaBytes == 0 || ls.UsedBytes < q.QuotaBytes || !ls.QuotaReached.IsZero() {
		return
	}
	ls.QuotaReached = now
	a.reached[name]++
	a.dirty, a.urgent = true, true
	a.log.Warn("link reached its quota", "link", name, "used_bytes", ls.UsedBytes, "quota_bytes", q.QuotaBytes,
		"period_end", ls.PeriodEnd)
}

// setMetered records whether the link is metered, from the configuration
// or, for metered "auto", from Auto's answers, and logs a changed answer.
func (a *Accounting) setMetered(q LinkQuota, name string, auto map[string]meteredAnswer) {
	ans := meteredAnswer{metered: q.Metered == MeteredYes, by: "config"}
	if q.Metered == MeteredAuto {
		ans = meteredAnswer{by: "default"}
		if got, ok := auto[name]; ok {
			ans = got
		}
	}
	if old, ok := a.metered[name]; !ok || old != ans {
		a.log.Info("link metered", "link", name, "metered", ans.metered, "by", ans.by)
		a.metered[name] = ans
	}
}

// meteredOf returns the last answer for the link, without asking.
func (a *Accounting) meteredOf(q LinkQuota, name string) meteredAnswer {
	if ans, ok := a.metered[name]; ok {
		return ans
	}
	if q.Metered == MeteredAuto {
		return meteredAnswer{by: "default"}
	}
	return meteredAnswer{metered: q.Metered == MeteredYes, by: "config"}
}

// maybeSave writes the usage file when it is due.
func (a *Accounting) maybeSave(now time.Time) error {
	if !a.dirty && !a.urgent {
		return nil
	}
	if !a.urgent && a.saveEvery > 0 && now.Sub(a.saved) < a.saveEvery {
		return nil
	}
	return a.save(now)
}

func (a *Accounting) save(now time.Time) error {
	data, err := json.MarshalIndent(stateFile{Version: stateVersion, BootID: a.boot, Saved: now, Links: a.state}, "", "\t")
	if err != nil {
		return fmt.Errorf("usage: save: %w", err)
	}
	if err := writeAtomic(a.file, append(data, '\n')); err != nil {
		return fmt.Errorf("usage: save: %w", err)
	}
	a.saved, a.dirty, a.urgent = now, false, false
	return nil
}

// Annotate fills in the metered, cost, quota and usage fields of the
// accounted links among links (policy.Link.Metered, CostPerGB,
// QuotaBytes, UsedBytes, UsageSince) from the last samples; it starts a
// new period where one is due but asks nobody (metered "auto" takes
// Update's last answer).
func (a *Accounting) Annotate(links []policy.Link) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for i := range links {
		l := &links[i]
		q, ok := a.match(l.Name)
		if !ok {
			continue
		}
		l.Metered = a.meteredOf(q, l.Name).metered
		l.CostPerGB, l.QuotaBytes = q.CostPerGB, q.QuotaBytes
		if ls, ok := a.state[l.Name]; ok {
			a.roll(q, l.Name, ls, now)
			l.UsedBytes, l.UsageSince = ls.UsedBytes, ls.PeriodStart
		}
	}
}

// Report returns the usage of every accounted link known to the usage
// file, by name.
func (a *Accounting) Report() Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	r := Report{Now: now, StateFile: a.file, Saved: a.saved, Notices: slices.Clone(a.notices), Links: []Link{}}
	for _, name := range slices.Sorted(maps.Keys(a.state)) {
		q, ok := a.match(name)
		if !ok {
			continue
		}
		ls := a.state[name]
		a.roll(q, name, ls, now)
		r.Links = append(r.Links, a.report(q, name, ls, now))
	}
	return r
}

// report returns the wire form of one link's usage.
func (a *Accounting) report(q LinkQuota, name string, ls *linkState, now time.Time) Link {
	m := a.meteredOf(q, name)
	l := Link{
		Name:              name,
		Present:           a.present[name],
		Metered:           m.metered,
		MeteredBy:         m.by,
		UsedBytes:         ls.UsedBytes,
		QuotaBytes:        q.QuotaBytes,
		Period:            q.Period,
		PeriodStart:       ls.PeriodStart,
		PeriodEnd:         ls.PeriodEnd,
		CostPerGB:         q.CostPerGB,
		Cost:              q.CostPerGB * float64(ls.UsedBytes) / 1e9,
		QuotaReachedTotal: a.reached[name],
		Sampled:           ls.Sampled,
	}
	if l.Present {
		l.IfIndex = ls.IfIndex
	}
	if q.QuotaBytes > 0 {
		rem := q.QuotaBytes - min(ls.UsedBytes, q.QuotaBytes)
		l.RemainingBytes = &rem
		l.OverQuota = rem == 0
		l.QuotaReachedAt = ls.QuotaReached
	}
	return l
}

// Close writes the usage file if anything changed since it was last
// written. The Accounting may still be used; Close again writes again.
func (a *Accounting) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.dirty && !a.urgent {
		return nil
	}
	return a.save(a.now())
}
