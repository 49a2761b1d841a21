package usage

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// DefaultStateDir is where the usage file lives unless Config.StateDir
// says otherwise.
const DefaultStateDir = "/var/lib/mptcpgod"

// FileName is the name of the usage file in the state directory.
const FileName = "usage.json"

// Defaults of the configuration file's usage table.
const (
	// DefaultInterval is how often the daemon samples the counters.
	DefaultInterval = time.Second
	// DefaultSaveInterval is how often changed usage is written to disk.
	DefaultSaveInterval = time.Minute
	// MaxInterval and MaxSaveInterval bound them: a link over quota is
	// noticed within an interval, and usage since the last save is lost
	// in a crash.
	MaxInterval     = time.Hour
	MaxSaveInterval = 24 * time.Hour
)

// Metered says whether a link's traffic costs money or quota.
type Metered string

// Metered values.
const (
	// MeteredYes: the link is metered.
	MeteredYes Metered = "yes"
	// MeteredNo: the link is not metered.
	MeteredNo Metered = "no"
	// MeteredAuto: NetworkManager's Metered property of the device
	// decides when NetworkManager runs; otherwise the link is unmetered.
	MeteredAuto Metered = "auto"
)

// Period is the length of an accounting period.
type Period string

// Periods.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// MeteredFunc answers metered = "auto" for the interface ifname: whether
// it is metered, and who said so ("networkmanager", or "default" when
// NetworkManager does not run or does not know the device).
// nmmetered.Reader.Metered is one.
type MeteredFunc func(ifname string) (metered bool, by string)

// LinkQuota is the accounting of the links whose names match Name: whether
// they are metered, what they cost, their quota and its period.
type LinkQuota struct {
	// Name is a path.Match glob of interface names ("wwan*", "eth1").
	Name string
	// Metered says whether the links are metered.
	Metered Metered
	// CostPerGB is the price of 10^9 bytes; 0 when free or unknown.
	CostPerGB float64
	// QuotaBytes is the traffic allowed per period; 0 means no quota.
	QuotaBytes uint64
	// Period is how long an accounting period is.
	Period Period
	// ResetDay is the day a period starts: for a month, the day of the
	// month, 1 to 31 (in a shorter month, its last day); for a week, the
	// ISO weekday, 1 (Monday) to 7 (Sunday); 0 for a day.
	ResetDay int
	// ResetHour and ResetMinute are the time of day a period starts.
	ResetHour, ResetMinute int
	// Location is the time zone of ResetDay and the reset time; nil means
	// time.Local.
	Location *time.Location
}

// Config configures an Accounting.
type Config struct {
	// StateDir is the directory of the usage file; "" means
	// DefaultStateDir. It is created (mode 0750) when missing.
	StateDir string
	// Links are the accounted links; a link takes the first entry whose
	// Name matches it, and links that match none are not accounted.
	Links []LinkQuota
	// SaveInterval is how often changed usage is written to disk; the
	// file is also written when a link reaches its quota, when a period
	// starts, when a link is first seen, and by Close. 0 writes every
	// change.
	SaveInterval time.Duration
	// Auto answers metered = "auto"; nil treats such links as unmetered.
	Auto MeteredFunc
	// BootID identifies the running kernel, to tell a restart of the
	// daemon (the counters go on) from a reboot (they start from 0); ""
	// reads /proc/sys/kernel/random/boot_id.
	BootID string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives the logs (component "usage"); nil discards them.
	Logger *slog.Logger
}

// File is the usage table of mptcpgod's configuration file, as written:
// sizes, durations and times are strings. Config turns it into a Config.
type File struct {
	// StateDir is the directory of usage.json.
	StateDir string `toml:"state_dir" json:"state_dir"`
	// Interval is how often the interface counters are sampled.
	Interval string `toml:"interval" json:"interval"`
	// SaveInterval is how often changed usage is written to disk.
	SaveInterval string `toml:"save_interval" json:"save_interval"`
	// Links are the accounted links ([[usage.links]]).
	Links []LinkFile `toml:"links" json:"links"`
}

// LinkFile is one [[usage.links]] entry. Empty and zero fields take the
// defaults: metered "yes", no quota, period "month", reset_day 1 for a
// month and 1 (Monday) for a week, reset_time "00:00", the host's time
// zone.
type LinkFile struct {
	Name      string  `toml:"name" json:"name"`
	Metered   string  `toml:"metered" json:"metered"`
	CostPerGB float64 `toml:"cost_per_gb" json:"cost_per_gb"`
	Quota     string  `toml:"quota" json:"quota"`
	Period    string  `toml:"period" json:"period"`
	ResetDay  int     `toml:"reset_day" json:"reset_day"`
	ResetTime string  `toml:"reset_time" json:"reset_time"`
	Timezone  string  `toml:"timezone" json:"timezone"`
}

// DefaultFile returns the usage table of an empty configuration file:
// the state in DefaultStateDir, sampled every second, saved every minute,
// no accounted links.
func DefaultFile() File {
	return File{
		StateDir:     DefaultStateDir,
		Interval:     DefaultInterval.String(),
		SaveInterval: DefaultSaveInterval.String(),
		Links:        []LinkFile{},
	}
}

// Config returns the Config the table describes (Auto, BootID, Now and
// Logger are the caller's to fill in) and the sampling interval, or an
// error naming the first bad key: `usage: links[0].quota: "2XB": ...`.
func (f File) Config() (Config, time.Duration, error) {
	var cfg Config
	cfg.StateDir = f.StateDir
	if cfg.StateDir != "" && !strings.HasPrefix(cfg.StateDir, "/") {
		return Config{}, 0, fmt.Errorf("usage: state_dir: %q is not an absolute path", f.StateDir)
	}
	interval, err := duration(f.Interval, DefaultInterval)
	if err != nil || interval <= 0 || interval > MaxInterval {
		return Config{}, 0, fmt.Errorf("usage: interval: %q is not a duration above 0 and at most %v", f.Interval, MaxInterval)
	}
	cfg.SaveInterval, err = duration(f.SaveInterval, DefaultSaveInterval)
	if err != nil || cfg.SaveInterval < 0 || cfg.SaveInterval > MaxSaveInterval {
		return Config{}, 0, fmt.Errorf("usage: save_interval: %q is not a duration of 0 to %v", f.SaveInterval, MaxSaveInterval)
	}
	for i, lf := range f.Links {
		q, err := lf.LinkQuota()
		if err != nil {
			return Config{}, 0, fmt.Errorf("usage: links[%d].%w", i, err)
		}
		cfg.Links = append(cfg.Links, q)
	}
	return cfg, interval, nil
}

func duration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	return time.ParseDuration(s)
}

// LinkQuota returns the LinkQuota the entry describes, or an error that
// starts with the key: `quota: "2XB" is not a size ...`.
func (lf LinkFile) LinkQuota() (LinkQuota, error) {
	q := LinkQuota{Name: lf.Name, Metered: Metered(lf.Metered), CostPerGB: lf.CostPerGB, Period: Period(lf.Period), ResetDay: lf.ResetDay}
	if q.Metered == "" {
		q.Metered = MeteredYes
	}
	if q.Period == "" {
		q.Period = PeriodMonth
	}
	if q.ResetDay == 0 && q.Period != PeriodDay {
		q.ResetDay = 1
	}
	if lf.Quota != "" {
		n, err := ParseSize(lf.Quota)
		if err != nil {
			return LinkQuota{}, fmt.Errorf("quota: %w", err)
		}
		q.QuotaBytes = n
	}
	if lf.ResetTime != "" {
		t, err := time.Parse("15:04", lf.ResetTime)
		if err != nil {
			return LinkQuota{}, fmt.Errorf("reset_time: %q is not a time of day HH:MM", lf.ResetTime)
		}
		q.ResetHour, q.ResetMinute = t.Hour(), t.Minute()
	}
	switch lf.Timezone {
	case "", "Local":
		q.Location = time.Local
	default:
		loc, err := time.LoadLocation(lf.Timezone)
		if err != nil {
			return LinkQuota{}, fmt.Errorf("timezone: %q is not a known time zone: %w", lf.Timezone, err)
		}
		q.Location = loc
	}
	return q, q.Validate()
}

// ParseSize parses a byte count with an optional unit: "2MB" (2·10^6),
// "10GiB" (10·2^30), "1.5 GB", "500000". Units are B, kB, MB, GB, TB, PB,
// EB and KiB to EiB, in any case.
func ParseSize(s string) (uint64, error) {
	n, err := humanize.ParseBytes(s)
	var numErr *strconv.NumError
	switch {
	case errors.As(err, &numErr):
		return 0, fmt.Errorf("%q is not a size such as \"2MB\" or \"10GiB\"", s)
	case err != nil:
		return 0, fmt.Errorf("%q is not a size such as \"2MB\" or \"10GiB\": %w", s, err)
	}
	return n, nil
}

// Validate reports the first bad field of q, naming its key
// ("period: ...").
func (q LinkQuota) Validate() error {
	if q.Name == "" {
		return errors.New("name: missing")
	}
	if _, err := path.Match(q.Name, ""); err != nil {
		return fmt.Errorf("name: %q is not a valid glob: %w", q.Name, err)
	}
	switch q.Metered {
	case MeteredYes, MeteredNo, MeteredAuto:
	default:
		return fmt.Errorf("metered: %q is not yes, no or auto", q.Metered)
	}
	if q.CostPerGB < 0 || math.IsNaN(q.CostPerGB) || math.IsInf(q.CostPerGB, 0) {
		return fmt.Errorf("cost_per_gb: %v is not a price of 0 or more", q.CostPerGB)
	}
	switch q.Period {
	case PeriodDay:
		if q.ResetDay != 0 {
			return fmt.Errorf("reset_day: %d given for a daily period", q.ResetDay)
		}
	case PeriodWeek:
		if q.ResetDay < 1 || q.ResetDay > 7 {
			return fmt.Errorf("reset_day: %d is not a weekday 1 (Monday) to 7 (Sunday)", q.ResetDay)
		}
	case PeriodMonth:
		if q.ResetDay < 1 || q.ResetDay > 31 {
			return fmt.Errorf("reset_day: %d is not a day of the month 1 to 31", q.ResetDay)
		}
	default:
		return fmt.Errorf("period: %q is not day, week or month", q.Period)
	}
	if q.ResetHour < 0 || q.ResetHour > 23 || q.ResetMinute < 0 || q.ResetMinute > 59 {
		return fmt.Errorf("reset_time: %02d:%02d is not a time of day", q.ResetHour, q.ResetMinute)
	}
	return nil
}
