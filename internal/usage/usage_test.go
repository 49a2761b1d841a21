package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/policy"
)

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(s string) *clock {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &clock{t: t}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(s string) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// logBuf collects logs for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// wwan is a monthly 2 MB quota on wwan*, from the 1st, in UTC.
var wwan = LinkQuota{Name: "wwan*", Metered: MeteredYes, CostPerGB: 2, QuotaBytes: 2_000_000,
	Period: PeriodMonth, ResetDay: 1, Location: time.UTC}

type env struct {
	dir   string
	clock *clock
	logs  *logBuf
	cfg   Config
}

func newEnv(t *testing.T, links ...LinkQuota) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), clock: newClock("2025-02-10T12:00:00Z"), logs: &logBuf{}}
	e.cfg = Config{StateDir: e.dir, Links: links, BootID: "boot-1", Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil))}
	return e
}

func (e *env) open(t *testing.T) *Accounting {
	t.Helper()
	a, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *env) file(t *testing.T) stateFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeState(data)
	if err != nil {
		t.Fatalf("the saved file does not decode: %v\n%s", err, data)
	}
	return *st
}

func used(t *testing.T, a *Accounting, name string) uint64 {
	t.Helper()
	for _, l := range a.Report().Links {
		if l.Name == name {
			return l.UsedBytes
		}
	}
	t.Fatalf("no link %s in the report", name)
	return 0
}

func update(t *testing.T, a *Accounting, samples ...Sample) []Link {
	t.Helper()
	links, err := a.Update(samples)
	if err != nil {
		t.Fatal(err)
	}
	return links
}

// TestCounting feeds sample sequences and checks what is counted.
func TestCounting(t *testing.T) {
	t.Parallel()
	s := func(index int, rx, tx uint64) Sample {
		return Sample{Name: "wwan0", Index: index, RxBytes: rx, TxBytes: tx}
	}
	tests := []struct {
		name    string
		samples []Sample
		want    uint64
	}{
		{"first sample counts from there", []Sample{s(4, 5000, 7000)}, 0},
		{"increments", []Sample{s(4, 5000, 7000), s(4, 6000, 7500), s(4, 9000, 8000)}, 4000 + 1000},
		{"no change", []Sample{s(4, 5000, 7000), s(4, 5000, 7000)}, 0},
		{"counter reset counts from 0", []Sample{s(4, 5000, 7000), s(4, 6000, 8000), s(4, 300, 200), s(4, 400, 300)},
			2000 + 500 + 200},
		{"one counter reset", []Sample{s(4, 5000, 7000), s(4, 100, 7100)}, 100 + 100},
		{"link created again", []Sample{s(4, 5000, 7000), s(4, 6000, 7000), s(9, 10, 20), s(9, 110, 20)}, 1000 + 30 + 100},
		{"near the top of the counter", []Sample{s(4, 1<<64-10, 0), s(4, 1<<64-1, 0)}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, wwan)
			e.cfg.Links[0].QuotaBytes = 0
			a := e.open(t)
			var got []Link
			for _, smp := range tt.samples {
				got = update(t, a, smp)
			}
			if len(got) != 1 || got[0].UsedBytes != tt.want {
				t.Errorf("Update = %+v, want used %d", got, tt.want)
			}
		})
	}
}

// TestUnaccountedLinks: only links that match a LinkQuota are counted, each
// by the first that matches.
func TestUnaccountedLinks(t *testing.T) {
	t.Parallel()
	eth1 := LinkQuota{Name: "eth1", Metered: MeteredNo, Period: PeriodDay, Location: time.UTC}
	e := newEnv(t, eth1, wwan, LinkQuota{Name: "*", Metered: MeteredYes, Period: PeriodWeek, ResetDay: 1})
	e.cfg.Links = e.cfg.Links[:2]
	a := e.open(t)
	got := update(t, a, Sample{Name: "eth0", Index: 2}, Sample{Name: "eth1", Index: 3}, Sample{Name: "wwan0", Index: 4})
	var names []string
	for _, l := range got {
		names = append(names, l.Name+":"+string(l.Period))
	}
	if diff := cmp.Diff([]string{"eth1:day", "wwan0:month"}, names); diff != "" {
		t.Errorf("accounted links (-want +got):\n%s", diff)
	}
	if a.Watches("eth0") || !a.Watches("wwan7") {
		t.Errorf("Watches(eth0) = %v, Watches(wwan7) = %v", a.Watches("eth0"), a.Watches("wwan7"))
	}
}

// TestQuotaAndPeriod follows a link through a period: usage grows, the
// quota is reached (logged, counted, written at once), and the next
// period starts from 0.
func TestQuotaAndPeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wwan)
	e.cfg.SaveInterval = time.Hour
	a := e.open(t)
	s := func(rx uint64) Sample { return Sample{Name: "wwan0", Index: 4, RxBytes: rx} }
	update(t, a, s(1000))
	update(t, a, s(1_500_000))
	l := a.Report().Links[0]
	if l.OverQuota || *l.RemainingBytes != 501_000 || l.QuotaReachedTotal != 0 {
		t.Fatalf("below the quota: %+v", l)
	}
	if st := e.file(t); st.Links["wwan0"].UsedBytes != 0 {
		t.Errorf("file written before the save interval: used %d", st.Links["wwan0"].UsedBytes)
	}

	e.clock.Set("2025-02-10T12:00:05Z")
	got := update(t, a, s(2_001_000))[0]
	want := Link{
		Name: "wwan0", IfIndex: 4, Present: true, Metered: true, MeteredBy: "config",
		UsedBytes: 2_000_000, QuotaBytes: 2_000_000, RemainingBytes: new(uint64(0)), OverQuota: true,
		QuotaReachedAt: e.clock.Now(), Period: PeriodMonth,
		PeriodStart: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		CostPerGB: 2, Cost: 0.004, QuotaReachedTotal: 1, Sampled: e.clock.Now(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("at the quota (-want +got):\n%s", diff)
	}
	if st := e.file(t); st.Links["wwan0"].UsedBytes != 2_000_000 || st.Links["wwan0"].QuotaReached.IsZero() {
		t.Errorf("file not written when the quota was reached: %+v", st.Links["wwan0"])
	}
	if n := strings.Count(e.logs.String(), "link reached its quota"); n != 1 {
		t.Errorf("quota logged %d times, want 1:\n%s", n, e.logs)
	}
	update(t, a, s(2_500_000))
	if l := a.Report().Links[0]; l.QuotaReachedTotal != 1 || !l.QuotaReachedAt.Equal(want.QuotaReachedAt) {
		t.Errorf("past the quota: %+v", l)
	}

	// The period ends: Annotate and Report show the new one before the
	// next sample, and the bytes of the interval that crossed the
	// boundary count in the new period.
	e.clock.Set("2025-03-01T00:00:00Z")
	links := []policy.Link{{Name: "wwan0", Index: 4}}
	a.Annotate(links)
	if links[0].UsedBytes != 0 || !links[0].UsageSince.Equal(time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Annotate after the period ended: %+v", links[0])
	}
	got = update(t, a, s(2_600_000))[0]
	if got.UsedBytes != 100_000 || got.OverQuota || !got.QuotaReachedAt.IsZero() || got.QuotaReachedTotal != 1 ||
		!got.PeriodEnd.Equal(time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("new period: %+v", got)
	}
	if st := e.file(t); st.Links["wwan0"].UsedBytes != 100_000 {
		t.Errorf("file not written when the period started: %+v", st.Links["wwan0"])
	}
	if !strings.Contains(e.logs.String(), "new accounting period") {
		t.Errorf("no log of the new period:\n%s", e.logs)
	}

	// A raised quota takes the link back below it.
	update(t, a, s(4_700_000))
	if l := a.Report().Links[0]; !l.OverQuota || l.QuotaReachedTotal != 2 {
		t.Fatalf("second time at the quota: %+v", l)
	}
	q := wwan
	q.QuotaBytes = 3_000_000
	if err := a.Reconfigure([]LinkQuota{q}); err != nil {
		t.Fatal(err)
	}
	if l := a.Report().Links[0]; l.OverQuota || *l.RemainingBytes != 800_000 || !l.QuotaReachedAt.IsZero() {
		t.Errorf("after the quota was raised: %+v", l)
	}
}

// TestSaveInterval: changes are written at most every SaveInterval, and
// by Close.
func TestSaveInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wwan)
	e.cfg.SaveInterval = time.Minute
	a := e.open(t)
	s := func(rx uint64) Sample { return Sample{Name: "wwan0", Index: 4, RxBytes: rx} }
	update(t, a, s(0)) // first seen: written
	saved := e.file(t).Saved
	for i, at := range []string{"2025-02-10T12:00:10Z", "2025-02-10T12:00:59Z"} {
		e.clock.Set(at)
		update(t, a, s(uint64(i+1)*100))
	}
	if st := e.file(t); st.Links["wwan0"].UsedBytes != 0 || !st.Saved.Equal(saved) {
		t.Errorf("written within the interval: %+v", st)
	}
	e.clock.Set("2025-02-10T12:01:00Z")
	update(t, a, s(300))
	if st := e.file(t); st.Links["wwan0"].UsedBytes != 300 {
		t.Errorf("not written after the interval: used %d", st.Links["wwan0"].UsedBytes)
	}
	e.clock.Set("2025-02-10T12:01:01Z")
	update(t, a, s(400))
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if st := e.file(t); st.Links["wwan0"].UsedBytes != 400 {
		t.Errorf("not written by Close: used %d", st.Links["wwan0"].UsedBytes)
	}
	entries, err := os.ReadDir(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != FileName {
		t.Errorf("state directory holds %v, want only %s", entries, FileName)
	}
}

// TestRestart: a new Accounting on the same directory goes on from the
// saved usage and counts what passed while it was down, once; after a
// reboot it counts the counters whole.
func TestRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		boot   string
		sample Sample // the first sample after the restart
		want   uint64
	}{
		{"same counters", "boot-1", Sample{Name: "wwan0", Index: 4, RxBytes: 11000, TxBytes: 2000}, 1000},
		{"traffic while down", "boot-1", Sample{Name: "wwan0", Index: 4, RxBytes: 15000, TxBytes: 2500}, 1000 + 4500},
		{"link created again while down", "boot-1", Sample{Name: "wwan0", Index: 7, RxBytes: 300, TxBytes: 200}, 1000 + 500},
		{"reboot", "boot-2", Sample{Name: "wwan0", Index: 4, RxBytes: 20000, TxBytes: 100}, 1000 + 20100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, wwan)
			a := e.open(t)
			update(t, a, Sample{Name: "wwan0", Index: 4, RxBytes: 10000, TxBytes: 2000})
			update(t, a, Sample{Name: "wwan0", Index: 4, RxBytes: 11000, TxBytes: 2000})
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}

			e.cfg.BootID = tt.boot
			b := e.open(t)
			if got := used(t, b, "wwan0"); got != 1000 {
				t.Fatalf("after the restart, used %d, want 1000", got)
			}
			if got := update(t, b, tt.sample)[0].UsedBytes; got != tt.want {
				t.Errorf("first sample after the restart: used %d, want %d", got, tt.want)
			}
			if got := update(t, b, tt.sample)[0].UsedBytes; got != tt.want {
				t.Errorf("same sample again: used %d, want %d", got, tt.want)
			}
		})
	}
}

// TestCorruptFile: a usage file that does not parse is set aside under
// a new name, reported, and never overwritten.
func TestCorruptFile(t *testing.T) {
	t.Parallel()
	valid := `{"version":1,"saved":"2025-02-10T11:00:00Z","links":{"wwan0":{"period_start":"2025-02-01T00:00:00Z",` +
		`"period_end":"2025-03-01T00:00:00Z","used_bytes":5,"ifindex":4,"rx_counter":1,"tx_counter":2,"sampled":"2025-02-10T11:00:00Z"}}}`
	tests := []struct {
		name, data, why string
	}{
		{"garbage", "\x00\x01garbage", "invalid character"},
		{"truncated", valid[:60], "unexpected EOF"},
		{"empty", "", "EOF"},
		{"other version", strings.Replace(valid, `"version":1`, `"version":2`, 1), "version 2, want 1"},
		{"unknown field", strings.Replace(valid, `"used_bytes"`, `"usedbytes"`, 1), `unknown field "usedbytes"`},
		{"negative usage", strings.Replace(valid, `"used_bytes":5`, `"used_bytes":-5`, 1), "cannot unmarshal number -5"},
		{"empty period", strings.Replace(valid, `"period_end":"2025-03-01T00:00:00Z"`, `"period_end":"2025-02-01T00:00:00Z"`, 1), "is empty"},
		{"no links", `{"version":1,"saved":"2025-02-10T11:00:00Z"}`, "links: missing"},
		{"two objects", valid + valid, "data after the object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, wwan)
			file := filepath.Join(e.dir, FileName)
			if err := os.WriteFile(file, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			a := e.open(t)
			aside := file + ".corrupt-20250210T120000Z"
			data, err := os.ReadFile(aside)
			if err != nil {
				t.Fatalf("not set aside: %v", err)
			}
			if string(data) != tt.data {
				t.Errorf("set-aside file holds %q, want the original", data)
			}
			r := a.Report()
			if len(r.Notices) != 1 || !strings.Contains(r.Notices[0], aside) || !strings.Contains(r.Notices[0], tt.why) {
				t.Errorf("notices %q, want one naming %s and %q", r.Notices, aside, tt.why)
			}
			if !strings.Contains(e.logs.String(), "level=ERROR msg=\"usage file corrupt") {
				t.Errorf("no error logged:\n%s", e.logs)
			}
			// The fresh file is written at the first chance.
			update(t, a, Sample{Name: "wwan0", Index: 4})
			if st := e.file(t); st.Links["wwan0"].UsedBytes != 0 {
				t.Errorf("fresh file %+v", st)
			}
		})
	}

	t.Run("valid file is kept", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, wwan)
		if err := os.WriteFile(filepath.Join(e.dir, FileName), []byte(valid), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := used(t, e.open(t), "wwan0"); got != 5 {
			t.Errorf("used %d, want 5", got)
		}
	})

	t.Run("second corruption in the same second", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, wwan)
		file := filepath.Join(e.dir, FileName)
		for i := range 2 {
			if err := os.WriteFile(file, []byte{'x', byte('0' + i)}, 0o600); err != nil {
				t.Fatal(err)
			}
			e.open(t)
		}
		for name, want := range map[string]string{".corrupt-20250210T120000Z": "x0", ".corrupt-20250210T120000Z.1": "x1"} {
			if data, err := os.ReadFile(file + name); err != nil || string(data) != want {
				t.Errorf("%s: %q, %v; want %q", name, data, err, want)
			}
		}
	})

	t.Run("too large file is set aside", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, wwan)
		file := filepath.Join(e.dir, FileName)
		if err := os.WriteFile(file, make([]byte, MaxFileSize+1), 0o600); err != nil {
			t.Fatal(err)
		}
		r := e.open(t).Report()
		if len(r.Notices) != 1 || !strings.Contains(r.Notices[0], "more than 1048576") {
			t.Errorf("notices %q, want one saying the file is too large", r.Notices)
		}
		if _, err := os.Stat(file + ".corrupt-20250210T120000Z"); err != nil {
			t.Errorf("not set aside: %v", err)
		}
	})

	// A FIFO or a device is an error at once: reading would block (a
	// FIFO without a writer) or never end (/dev/zero), with the daemon's
	// signals unhandled meanwhile.
	for _, special := range []struct{ name, want string }{{"fifo", "is a FIFO, not a regular file"}, {"/dev/zero", "is a character device, not a regular file"}} {
		t.Run(special.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, wwan)
			file := filepath.Join(e.dir, FileName)
			var err error
			if special.name == "fifo" {
				err = syscall.Mkfifo(file, 0o600)
			} else {
				err = os.Symlink(special.name, file)
			}
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := New(e.cfg)
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("New blocks on the usage file")
			}
			if err == nil || !strings.HasPrefix(err.Error(), "usage: ") || !strings.Contains(err.Error(), special.want) {
				t.Errorf("New: %v, want a usage error saying it %s", err, special.want)
			}
		})
	}

	t.Run("unreadable file is an error", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, wwan)
		if err := os.Mkdir(filepath.Join(e.dir, FileName), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := New(e.cfg); err == nil || !strings.HasPrefix(err.Error(), "usage: ") {
			t.Errorf("New with a directory for a file: %v, want a usage error", err)
		}
	})
}

// TestSaveError: a failed write is reported and tried again.
func TestSaveError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wwan)
	a := e.open(t)
	// A directory in the file's place makes the rename fail.
	file := filepath.Join(e.dir, FileName)
	if err := os.Mkdir(file, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Update([]Sample{{Name: "wwan0", Index: 4}}); err == nil || !strings.HasPrefix(err.Error(), "usage: save: ") {
		t.Fatalf("Update with an unwritable file: %v", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	update(t, a, Sample{Name: "wwan0", Index: 4, RxBytes: 10})
	if st := e.file(t); st.Links["wwan0"].UsedBytes != 10 {
		t.Errorf("not written on the next Update: %+v", st.Links["wwan0"])
	}
	entries, _ := os.ReadDir(e.dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestAnnotate fills in the view's links.
func TestAnnotate(t *testing.T) {
	t.Parallel()
	eth := LinkQuota{Name: "eth*", Metered: MeteredAuto, Period: PeriodDay, Location: time.UTC}
	usb := LinkQuota{Name: "usb0", Metered: MeteredNo, CostPerGB: 0.5, Period: PeriodDay, Location: time.UTC}
	e := newEnv(t, wwan, eth, usb)
	e.cfg.Auto = func(name string) (bool, string) {
		if name == "eth1" {
			return true, "networkmanager"
		}
		return false, "default"
	}
	a := e.open(t)
	in := []policy.Link{{Name: "lo", Index: 1}, {Name: "eth0", Index: 2}, {Name: "eth1", Index: 3}, {Name: "wwan0", Index: 4}, {Name: "usb0", Index: 5}}
	// Before any sample: the configuration, and no usage; "auto" is
	// unmetered until asked.
	got := append([]policy.Link(nil), in...)
	a.Annotate(got)
	want := []policy.Link{
		{Name: "lo", Index: 1}, {Name: "eth0", Index: 2}, {Name: "eth1", Index: 3},
		{Name: "wwan0", Index: 4, Metered: true, CostPerGB: 2, QuotaBytes: 2_000_000},
		{Name: "usb0", Index: 5, CostPerGB: 0.5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Annotate before samples (-want +got):\n%s", diff)
	}
	var samples []Sample
	for _, l := range in {
		samples = append(samples, Sample{Name: l.Name, Index: int(l.Index), RxBytes: 100})
	}
	update(t, a, samples...)
	for i := range samples {
		samples[i].TxBytes = uint64(i) * 1000
	}
	links := update(t, a, samples...)
	var by []string
	for _, l := range links {
		by = append(by, l.Name+":"+l.MeteredBy)
	}
	if diff := cmp.Diff([]string{"eth0:default", "eth1:networkmanager", "wwan0:config", "usb0:config"}, by); diff != "" {
		t.Errorf("metered by (-want +got):\n%s", diff)
	}
	got = append([]policy.Link(nil), in...)
	a.Annotate(got)
	feb10 := time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC)
	want = []policy.Link{
		{Name: "lo", Index: 1},
		{Name: "eth0", Index: 2, UsedBytes: 1000, UsageSince: feb10},
		{Name: "eth1", Index: 3, Metered: true, UsedBytes: 2000, UsageSince: feb10},
		{Name: "wwan0", Index: 4, Metered: true, CostPerGB: 2, QuotaBytes: 2_000_000, UsedBytes: 3000,
			UsageSince: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "usb0", Index: 5, CostPerGB: 0.5, UsedBytes: 4000, UsageSince: feb10},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Annotate (-want +got):\n%s", diff)
	}
	// NetworkManager changes its mind.
	e.cfg.Auto = nil
	a.auto = func(string) (bool, string) { return false, "networkmanager" }
	update(t, a, samples...)
	got = append([]policy.Link(nil), in...)
	a.Annotate(got)
	if got[2].Metered {
		t.Errorf("eth1 still metered after NetworkManager said no")
	}
	if n := strings.Count(e.logs.String(), "msg=\"link metered\" component=usage link=eth1 "); n != 2 {
		t.Errorf("eth1's metered answer logged %d times, want 2 (one per change):\n%s", n, e.logs)
	}
}

// fakeSource is a Source of fixed links and counters.
type fakeSource struct {
	st       linkmon.State
	counters map[int]linkmon.Counters
}

func (f fakeSource) State() linkmon.State { return f.st }

func (f fakeSource) Counters(index int) (linkmon.Counters, error) {
	c, ok := f.counters[index]
	if !ok {
		return linkmon.Counters{}, errors.New("no such link")
	}
	return c, nil
}

func TestPoll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wwan, LinkQuota{Name: "eth1", Metered: MeteredNo, Period: PeriodDay, Location: time.UTC})
	a := e.open(t)
	src := fakeSource{
		st: linkmon.State{Links: map[int]linkmon.Link{
			1: {Index: 1, Name: "lo"}, 3: {Index: 3, Name: "eth1"}, 4: {Index: 4, Name: "wwan0"}, 5: {Index: 5, Name: "wwan1"},
		}},
		counters: map[int]linkmon.Counters{1: {RxBytes: 1}, 3: {RxBytes: 10}, 4: {RxBytes: 100, TxBytes: 5}},
	}
	if _, err := a.Poll(src); err == nil || !strings.Contains(err.Error(), "usage: wwan1: no such link") {
		t.Fatalf("Poll with an unreadable link: %v", err)
	}
	src.counters[3] = linkmon.Counters{RxBytes: 20}
	src.counters[4] = linkmon.Counters{RxBytes: 200, TxBytes: 5}
	src.counters[5] = linkmon.Counters{RxBytes: 7}
	links, err := a.Poll(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range links {
		got = append(got, l.Name)
	}
	if diff := cmp.Diff([]string{"eth1", "wwan0", "wwan1"}, got); diff != "" {
		t.Errorf("polled links (-want +got):\n%s", diff)
	}
	if u := used(t, a, "wwan0"); u != 100 {
		t.Errorf("wwan0 used %d, want 100", u)
	}
	// A link that is gone is reported absent, with its usage.
	delete(src.st.Links, 5)
	if _, err := a.Poll(src); err != nil {
		t.Fatal(err)
	}
	for _, l := range a.Report().Links {
		if l.Present != (l.Name != "wwan1") {
			t.Errorf("%s present = %v", l.Name, l.Present)
		}
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, wwan, LinkQuota{Name: "eth1", Metered: MeteredAuto, Period: PeriodDay, Location: time.UTC})
	a := e.open(t)
	update(t, a, Sample{Name: "wwan0", Index: 4}, Sample{Name: "eth1", Index: 3})
	update(t, a, Sample{Name: "wwan0", Index: 4, RxBytes: 1_234_567}, Sample{Name: "eth1", Index: 3, TxBytes: 5_000_000_000})
	r := a.Report()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	for _, key := range []string{`"used_bytes":1234567`, `"remaining_bytes":765433`, `"metered_by":"default"`, `"period_end":"2025-03-01T00:00:00Z"`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Errorf("JSON lacks %s: %s", key, data)
		}
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"bad link", Config{StateDir: dir, Links: []LinkQuota{{Name: "wwan0", Metered: "maybe", Period: PeriodDay}}},
			`usage: links[0].metered: "maybe" is not yes, no or auto`},
		{"state dir is a file", Config{StateDir: filepath.Join(blocker, "sub")},
			"usage: state_dir: mkdir " + blocker + ": not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.cfg)
			if err == nil || err.Error() != tt.err {
				t.Errorf("New: %v, want %s", err, tt.err)
			}
		})
	}
	a, err := New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Reconfigure([]LinkQuota{{Name: "[", Metered: MeteredYes, Period: PeriodDay}}); err == nil ||
		err.Error() != `usage: links[0].name: "[" is not a valid glob: syntax error in pattern` {
		t.Errorf("Reconfigure with a bad glob: %v", err)
	}
}
