package linkmon

import (
	"fmt"
	"log/slog"
	"path"
	"time"
)

// Defaults used for zero Config fields.
const (
	// DefaultSettle is the default Config.Settle: long enough to gather the
	// burst of messages a link coming up causes. Changes complete by
	// themselves (an address added or deleted, a link going down) do not
	// wait for it.
	DefaultSettle = time.Millisecond
	// DefaultMaxSettle is the default Config.MaxSettle.
	DefaultMaxSettle = 20 * time.Millisecond
)

// defaultExcludeKinds are excluded when Config.ExcludeKinds is nil, less the
// kinds listed in Config.IncludeKinds.
var defaultExcludeKinds = []Kind{KindVirtual, KindLoopback}

// Config configures a Monitor. The zero value (or a nil *Config) monitors the
// calling thread's network namespace with the defaults below.
type Config struct {
	// IncludeNames and ExcludeNames are path.Match globs on interface names
	// ("eth*", "wlan0"). A name matching ExcludeNames is always excluded; a
	// name matching IncludeNames is included whatever its kind.
	IncludeNames, ExcludeNames []string

	// IncludeKinds, when not empty, includes only links of these kinds (and
	// links matching IncludeNames). ExcludeKinds excludes links of these
	// kinds; nil means the default, virtual and loopback, less the kinds in
	// IncludeKinds. Set IncludeKinds to []Kind{KindVirtual}, or IncludeNames
	// to the veth names, to use veth links (tests, containers, the demo).
	IncludeKinds, ExcludeKinds []Kind

	// CellularNames are path.Match globs of interface names that are
	// cellular whatever else the link looks like ("wwan*", "usb0").
	CellularNames []string

	// IncludeULA makes unique local IPv6 addresses (fc00::/7) usable; they
	// are skipped by default.
	IncludeULA bool
	// IncludeTemporary makes IPv6 temporary (privacy) addresses usable; they
	// are skipped by default.
	IncludeTemporary bool
	// ConnectedRoutes counts the prefix routes the kernel adds for each
	// address (protocol kernel, no gateway) as routes, for hosts whose extra
	// links only reach their own subnets (a server with a second LAN card
	// and no gateway there). By default an address needs a default route, a
	// gateway route or a route someone configured through its link.
	ConnectedRoutes bool

	// Settle is how long the monitor waits for more messages after the last
	// one before it reports a change that later messages may complete (see
	// the package documentation); 0 means DefaultSettle.
	Settle time.Duration
	// MaxSettle bounds the wait from the first message of a burst, so a
	// steady stream of messages cannot delay a report forever; 0 means
	// DefaultMaxSettle. It must not be shorter than Settle.
	MaxSettle time.Duration

	// NetNS is a file descriptor of the network namespace to monitor; 0
	// means the namespace of the thread that calls New and Run.
	NetNS int

	// Logger receives the monitor's logs (component "linkmon"); nil
	// discards them.
	Logger *slog.Logger
}

// config is a validated Config with its defaults applied.
type config struct {
	filter           filter
	includeULA       bool
	includeTemporary bool
	connectedRoutes  bool
	settle           time.Duration
	maxSettle        time.Duration
	netNS            int
	log              *slog.Logger
}

// newConfig validates c and applies the defaults.
func newConfig(c *Config) (config, error) {
	if c == nil {
		c = &Config{}
	}
	for _, f := range []struct {
		name  string
		globs []string
	}{
		{"include names", c.IncludeNames},
		{"exclude names", c.ExcludeNames},
		{"cellular names", c.CellularNames},
	} {
		for _, g := range f.globs {
			if _, err := path.Match(g, ""); err != nil {
				return config{}, fmt.Errorf("linkmon: %s: glob %q: %w", f.name, g, err)
			}
		}
	}
	for _, f := range []struct {
		name  string
		kinds []Kind
	}{
		{"include kinds", c.IncludeKinds},
		{"exclude kinds", c.ExcludeKinds},
	} {
		for _, k := range f.kinds {
			if k >= numKinds {
				return config{}, fmt.Errorf("linkmon: %s: invalid kind %d", f.name, uint8(k))
			}
		}
	}
	if c.Settle < 0 {
		return config{}, fmt.Errorf("linkmon: settle: %v is negative", c.Settle)
	}
	if c.MaxSettle < 0 {
		return config{}, fmt.Errorf("linkmon: max settle: %v is negative", c.MaxSettle)
	}
	if c.NetNS < 0 {
		return config{}, fmt.Errorf("linkmon: netns: %d is not a file descriptor", c.NetNS)
	}
	cfg := config{
		includeULA:       c.IncludeULA,
		includeTemporary: c.IncludeTemporary,
		connectedRoutes:  c.ConnectedRoutes,
		settle:           c.Settle,
		maxSettle:        c.MaxSettle,
		netNS:            c.NetNS,
		log:              c.Logger,
	}
	if cfg.settle == 0 {
		cfg.settle = DefaultSettle
	}
	if cfg.maxSettle == 0 {
		cfg.maxSettle = max(DefaultMaxSettle, cfg.settle)
	}
	if cfg.maxSettle < cfg.settle {
		return config{}, fmt.Errorf("linkmon: max settle: %v is shorter than settle %v", cfg.maxSettle, cfg.settle)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	cfg.log = cfg.log.With("component", "linkmon")

	f := filter{
		includeNames: append([]string(nil), c.IncludeNames...),
		excludeNames: append([]string(nil), c.ExcludeNames...),
		cellular:     append([]string(nil), c.CellularNames...),
		includeKinds: kindSet(c.IncludeKinds),
		excludeKinds: kindSet(c.ExcludeKinds),
	}
	if c.ExcludeKinds == nil {
		f.excludeKinds = kindSet(defaultExcludeKinds) &^ f.includeKinds
	}
	cfg.filter = f
	return cfg, nil
}

// kinds is a set of Kinds, one bit each.
type kinds uint32

func kindSet(ks []Kind) kinds {
	var s kinds
	for _, k := range ks {
		s |= 1 << k
	}
	return s
}

func (s kinds) has(k Kind) bool { return s&(1<<k) != 0 }

// filter decides which links are included.
type filter struct {
	includeNames, excludeNames, cellular []string
	includeKinds, excludeKinds           kinds
}

// check returns why the link named name of kind k is excluded, or "" when it
// is included. Name rules beat kind rules, and exclusion beats inclusion at
// the same level.
func (f *filter) check(name string, k Kind) string {
	switch {
	case matchAny(f.excludeNames, name):
		return "excluded by name"
	case matchAny(f.includeNames, name):
		return ""
	case f.excludeKinds.has(k):
		return "excluded by kind " + k.String()
	case f.includeKinds != 0:
		if f.includeKinds.has(k) {
			return ""
		}
		return "kind " + k.String() + " not included"
	case len(f.includeNames) > 0:
		return "name not included"
	}
	return ""
}
