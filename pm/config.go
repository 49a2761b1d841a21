package pm

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/peeraddr"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/policy"
)

// Config configures an Engine. Mode, Policy and NewKernel are required,
// and Events in userspace mode; zero values of the others mean their
// defaults.
type Config struct {
	// Mode is the namespace's path manager: policy.ModeKernel or
	// policy.ModeUserspace ("auto" is the daemon's to resolve).
	Mode policy.Mode
	// Policy decides the desired state; SetPolicy replaces it.
	Policy policy.Policy
	// NewKernel opens a Kernel; Run calls it once per worker and once
	// for the loop's own dumps, and closes them all when it returns.
	NewKernel func() (Kernel, error)
	// Kernel is what the running kernel offers; capabilities it lacks
	// change what the engine asks of it (the zero value lacks nothing).
	Kernel genl.Kernel
	// Workers is the number of workers, each with a Kernel of its own;
	// 0 means DefaultWorkers.
	Workers int
	// Events are the kernel's mptcp_pm events. Required in userspace
	// mode; in kernel mode they are only counted (nil is fine).
	Events EventSource
	// Owners reads a connection's owner (policy.Conn.Owner) for a policy
	// that reads it (policy.OwnerReader); nil means owners are never
	// learnt. Workers call it, several at once.
	Owners OwnerLookup
	// Conns lists existing connections. In userspace mode the engine
	// adopts them at start and after lost events; nil means it learns
	// connections from events only. In kernel mode WithdrawOnExit keeps
	// the endpoints whose address carries a live subflow.
	Conns ConnLister
	// OwnedIDs are the endpoint ids that are mptcpgod's (kernel mode);
	// the zero IDRange means DefaultOwnedIDs.
	OwnedIDs IDRange
	// WithdrawOnExit makes Run delete the owned endpoints before it
	// returns (kernel mode), but for those carrying live subflows (see
	// Conns), and put back the limits it changed: each one the kernel
	// still has at the engine's value returns to what it was at start.
	WithdrawOnExit bool
	// AddAddrAcceptedMax, when not nil, is the highest add_addr_accepted
	// limit kernel mode keeps: a policy's higher value is lowered to it,
	// and so is a higher value found in the kernel. The in-kernel path
	// manager opens subflows to whatever address and port a peer
	// announces, up to that limit.
	AddAddrAcceptedMax *uint32
	// Peers is the peer-address policy (userspace mode): the addresses a
	// peer announces that the engine lets policies use, and how many
	// times it tries a path to one before it gives the address up. The
	// zero value is the default policy, which no configuration turns off.
	Peers peeraddr.Config
	// Backoff is the retry delay of failed actions; zero fields mean
	// those of DefaultBackoff.
	Backoff Backoff
	// SweepEvery is how often userspace mode lists the connections
	// (Conns) and forgets those the kernel no longer has: a connection
	// whose connect was cancelled can leave without a CLOSED event. Zero
	// means DefaultSweepEvery; negative turns the sweep off.
	SweepEvery time.Duration
	// RepairAfter is how long after adding a subflow endpoint kernel mode
	// first checks, with Conns, that the connections older than the add
	// got a subflow from it, and replaces the endpoint when some did not
	// (the subflow repair, see the package doc); also the delay of the
	// check after a subflow closed with an error. Zero means
	// DefaultRepairAfter; negative turns the repair off. Without Conns
	// there is no repair.
	RepairAfter time.Duration
	// RepairEvery is the period of the later checks of each subflow
	// endpoint. Zero means DefaultRepairEvery; negative leaves only the
	// check after an add and those after a subflow closed with an error.
	RepairEvery time.Duration
	// MinJoinAge holds back, in userspace mode, every subflow the engine
	// would open and every address it would announce while the
	// connection is younger than this, whatever the policy's
	// policy.Deferral says: Linux 6.18 corrupts some transfers when a
	// subflow joins in a connection's first 10 ms or so. The age counts
	// from the connection's CREATED event; connections found by a
	// listing (at start, after lost events) are taken as old. Zero means
	// no floor.
	MinJoinAge time.Duration
	// Bytes reads the connections' byte counters for the AfterBytes of
	// a policy.Deferral; nil means only the deferral's NotBefore (and
	// MinJoinAge) end it.
	Bytes ByteReader
	// BytesEvery is how often Bytes is read while a deferral waits on
	// bytes; zero means DefaultBytesEvery.
	BytesEvery time.Duration
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Run's goroutines
	// and SetHost call it, so it must be safe for concurrent use.
	Now func() time.Time
	// Observe, when set, receives every Decision, in order, from Run's
	// loop. The loop waits for it, so it must return at once: hand the
	// Decision on without blocking, dropping it when nobody keeps up.
	Observe func(pmstate.Decision)
}

// DefaultWorkers is the number of workers when Config.Workers is 0.
const DefaultWorkers = 4

// DefaultOwnedIDs is the endpoint id range mptcpgod owns when
// Config.OwnedIDs is zero.
var DefaultOwnedIDs = IDRange{Min: 100, Max: 199}

// DefaultSweepEvery is the connection sweep's period when
// Config.SweepEvery is zero.
const DefaultSweepEvery = 30 * time.Second

// DefaultBytesEvery is the period of the byte reads when
// Config.BytesEvery is zero: a connection crossing a deferral's byte
// threshold gets its paths within about this long.
const DefaultBytesEvery = 5 * time.Millisecond

// DefaultRepairAfter is the delay of the first repair check after an add
// when Config.RepairAfter is zero: the kernel's own attempt has had its
// chance by then.
const DefaultRepairAfter = time.Second

// DefaultRepairEvery is the period of the later repair checks when
// Config.RepairEvery is zero.
const DefaultRepairEvery = 30 * time.Second

// DefaultBackoff is the retry delay when Config.Backoff is zero.
var DefaultBackoff = Backoff{Initial: 50 * time.Millisecond, Max: 30 * time.Second}

// IDRange is an inclusive range of endpoint ids.
type IDRange struct {
	Min, Max uint8
}

// Contains reports whether id is in r.
func (r IDRange) Contains(id uint8) bool { return id >= r.Min && id <= r.Max }

// String returns "min-max".
func (r IDRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// Backoff is an exponential retry delay: a path or endpoint that failed n
// times in a row waits Initial·2^(n-1), at most Max, less up to a quarter
// of jitter, before the engine tries it again. A path's count starts over
// once its subflow has stayed established for a second.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// delay returns the delay after fails consecutive failures (fails ≥ 1),
// before jitter.
func (b Backoff) delay(fails int) time.Duration {
	d := b.Initial
	for i := 1; i < fails && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// withDefaults returns cfg with the defaults filled in, or an error naming
// the first bad field.
func (cfg Config) withDefaults() (Config, error) {
	switch cfg.Mode {
	case policy.ModeKernel, policy.ModeUserspace:
	case "":
		return cfg, errors.New("pm: config: mode: missing (want kernel or userspace)")
	default:
		return cfg, fmt.Errorf("pm: config: mode: %q is not kernel or userspace", cfg.Mode)
	}
	if cfg.Policy == nil {
		return cfg, errors.New("pm: config: policy: missing")
	}
	if cfg.NewKernel == nil {
		return cfg, errors.New("pm: config: new kernel: missing")
	}
	if cfg.Events == nil && cfg.Mode == policy.ModeUserspace {
		return cfg, errors.New("pm: config: events: required in userspace mode")
	}
	if err := cfg.Peers.Validate(); err != nil {
		return cfg, fmt.Errorf("pm: config: peers: %w", err)
	}
	switch {
	case cfg.Workers < 0:
		return cfg, fmt.Errorf("pm: config: workers: %d is negative", cfg.Workers)
	case cfg.Workers == 0:
		cfg.Workers = DefaultWorkers
	}
	if cfg.OwnedIDs == (IDRange{}) {
		cfg.OwnedIDs = DefaultOwnedIDs
	}
	if cfg.OwnedIDs.Min == 0 || cfg.OwnedIDs.Max < cfg.OwnedIDs.Min {
		return cfg, fmt.Errorf("pm: config: owned ids: %s is not a range within 1-255", cfg.OwnedIDs)
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	if cfg.RepairAfter == 0 {
		cfg.RepairAfter = DefaultRepairAfter
	}
	if cfg.RepairEvery == 0 {
		cfg.RepairEvery = DefaultRepairEvery
	}
	switch {
	case cfg.MinJoinAge < 0:
		return cfg, fmt.Errorf("pm: config: min join age: %v is negative", cfg.MinJoinAge)
	case cfg.BytesEvery < 0:
		return cfg, fmt.Errorf("pm: config: bytes every: %v is negative", cfg.BytesEvery)
	case cfg.BytesEvery == 0:
		cfg.BytesEvery = DefaultBytesEvery
	}
	if cfg.Backoff.Initial == 0 {
		cfg.Backoff.Initial = DefaultBackoff.Initial
	}
	if cfg.Backoff.Max == 0 {
		cfg.Backoff.Max = max(DefaultBackoff.Max, cfg.Backoff.Initial)
	}
	switch {
	case cfg.Backoff.Initial < 0:
		return cfg, fmt.Errorf("pm: config: backoff: initial %v is negative", cfg.Backoff.Initial)
	case cfg.Backoff.Max < cfg.Backoff.Initial:
		return cfg, fmt.Errorf("pm: config: backoff: max %v is below initial %v", cfg.Backoff.Max, cfg.Backoff.Initial)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}
