package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os/user"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/mptcpgod/mptcpgod/internal/force"
	"github.com/mptcpgod/mptcpgod/internal/linkmon"
	"github.com/mptcpgod/mptcpgod/internal/peeraddr"
	"github.com/mptcpgod/mptcpgod/internal/safefile"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// ModeAuto is the mode that follows the namespace's net.mptcp.path_manager
// sysctl.
const ModeAuto policy.Mode = "auto"

// MaxWorkers bounds [engine] workers.
const MaxWorkers = 64

// Bounds of the durations and sizes, so that a typo ("1000h" for "1000ms")
// is an error rather than a daemon that never acts.
const (
	MaxSettle         = 10 * time.Second
	MaxMaxSettle      = time.Minute
	MaxBackoffInitial = time.Minute
	MaxBackoffMax     = time.Hour
	MaxEventBuffer    = 1 << 30
)

// DefaultEventBuffer is the event socket's receive buffer unless
// engine.event_buffer says otherwise: room for the events of thousands of
// connections opened at once (each event takes an skb of about a
// kilobyte), charged only while they wait to be read. The daemon sets it
// with CAP_NET_ADMIN, past net.core.rmem_max.
const DefaultEventBuffer = 16 << 20

// Config is a checked configuration, ready for the daemon. Parse and Load
// build it from a file; DefaultConfig is that of an empty file.
type Config struct {
	// Mode is ModeAuto, policy.ModeKernel or policy.ModeUserspace.
	Mode policy.Mode
	// SetPathManager makes the daemon set net.mptcp.path_manager to Mode.
	SetPathManager bool
	// LogLevel is the level below which logs are dropped.
	LogLevel slog.Level
	// Links configures the link monitor; New fills in NetNS and Logger.
	Links linkmon.Config
	// OwnedIDs, WithdrawOnExit, Workers and Backoff configure the engine.
	OwnedIDs       pm.IDRange
	WithdrawOnExit bool
	// AcceptAnnounces lets the policy raise add_addr_accepted above 0
	// (kernel mode), trusting every peer's announces.
	AcceptAnnounces bool
	Workers         int
	Backoff         pm.Backoff
	// Peers is the peer-address policy ([peers]).
	Peers peeraddr.Config
	// EventBuffer is the event socket's receive buffer in bytes; 0 means
	// DefaultEventBuffer.
	EventBuffer int
	// Policy is the policy configuration; BuildPolicy builds it.
	Policy policy.Config
	// Control is the control socket's configuration.
	Control ControlConfig
	// MetricsListen is the TCP address of the metrics listener; "" means
	// none.
	MetricsListen string
	// Usage is the traffic accounting; it is on when Usage.Links is not
	// empty. UsageInterval is how often the counters are sampled.
	Usage         usage.Config
	UsageInterval time.Duration

	// Force is the [force] table, checked.
	Force ForceConfig

	// Mitigation is the [mitigation] table, checked.
	Mitigation MitigationConfig

	// Warnings are what is allowed but probably unwise, each at its key
	// (metrics served beyond this host); the daemon logs them and
	// --check-config prints them.
	Warnings []*Error

	// source and lines locate keys for BuildPolicy's errors.
	source string
	lines  keyLines
}

// Error is an error in a configuration file: the file, the line (0 when
// unknown), the dotted key (empty for a syntax error) and what is wrong.
type Error struct {
	File string
	Line int
	Key  string
	Err  error
}

// Error returns `FILE:LINE: key "KEY": REASON`, or `FILE:LINE: unknown key
// "KEY"` for a key the schema lacks.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	switch {
	case errors.Is(e.Err, errUnknownKey):
		fmt.Fprintf(&b, "unknown key %q", e.Key)
		return b.String()
	case e.Key != "":
		fmt.Fprintf(&b, "key %q: ", e.Key)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the reason.
func (e *Error) Unwrap() error { return e.Err }

var errUnknownKey = errors.New("unknown key")

// MaxFileSize bounds the configuration file.
const MaxFileSize = 1 << 20

// Load reads and parses the configuration file at path, which must be a
// regular file of at most MaxFileSize bytes: anything else (a FIFO, a
// device) is an error at once, never a read that blocks or never ends.
func Load(path string) (*Config, error) {
	data, err := safefile.Read(path, MaxFileSize)
	if err != nil {
		return nil, fmt.Errorf("daemon: read config: %w", err)
	}
	return Parse(path, data)
}

// DefaultConfig returns the configuration of an empty file.
func DefaultConfig() *Config {
	c, err := Parse("defaults", nil)
	if err != nil {
		panic("daemon: the defaults do not parse: " + err.Error())
	}
	return c
}

// Parse decodes data, the contents of the file called name, into the
// defaults and checks it. Every problem is an *Error naming the line and
// the key; when there are several, they are joined (errors.Join) in the
// order of the file. Policy options are checked by BuildPolicy.
func Parse(name string, data []byte) (*Config, error) {
	f := DefaultFile()
	c := &Config{source: name, lines: indexLines(data)}
	k := &checker{c: c}
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		// Unknown keys leave the rest decoded, so it is checked too;
		// after any other error, what was decoded is incomplete.
		var strict *toml.StrictMissingError
		if !errors.As(err, &strict) {
			return nil, decodeError(name, c.lines, err)
		}
		for i := range strict.Errors {
			e := &strict.Errors[i]
			line, _ := e.Position()
			k.errs = append(k.errs, &Error{File: name, Line: line, Key: c.lines.indexed(strings.Join(e.Key(), "."), line), Err: errUnknownKey})
		}
	}
	c.fill(k, &f)
	if err := k.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeError turns go-toml's syntax and type errors into an Error; the
// key gets the array indexes go-toml leaves out, from lines.
func decodeError(name string, lines keyLines, err error) error {
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return &Error{File: name, Line: line, Key: lines.indexed(strings.Join(de.Key(), "."), line), Err: errors.New(decodeMessage(de))}
	}
	return &Error{File: name, Err: err}
}

// mismatch matches go-toml's type mismatch message, which names Go types.
var mismatch = regexp.MustCompile(`^cannot decode TOML (\w+) into .* of type (\S+)$`)

// decodeMessage is the reason of a DecodeError, in the words of the file.
func decodeMessage(de *toml.DecodeError) string {
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if m := mismatch.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("a TOML %s where %s belongs", m[1], tomlType(m[2]))
	}
	return msg
}

// tomlType names a Go type of the schema as a TOML value ("an integer").
func tomlType(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a float"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	}
	return "a table"
}

// checker collects the errors of fill, each located by its key.
type checker struct {
	c    *Config
	errs []*Error
}

func (k *checker) fail(key string, format string, args ...any) {
	k.errs = append(k.errs, k.c.errorAt(key, fmt.Errorf(format, args...)))
}

// warn records a warning at key.
func (k *checker) warn(key string, format string, args ...any) {
	k.c.Warnings = append(k.c.Warnings, k.c.errorAt(key, fmt.Errorf(format, args...)))
}

// err returns the errors joined in the order of their lines.
func (k *checker) err() error {
	slices.SortStableFunc(k.errs, func(a, b *Error) int { return a.Line - b.Line })
	errs := make([]error, len(k.errs))
	for i, e := range k.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// errorAt returns err as an Error at key.
func (c *Config) errorAt(key string, err error) *Error {
	return &Error{File: c.source, Line: c.lines.line(key), Key: key, Err: err}
}

// fill checks f and sets c from it; k collects the errors.
func (c *Config) fill(k *checker, f *File) {
	switch m := policy.Mode(f.Mode); m {
	case ModeAuto, policy.ModeKernel, policy.ModeUserspace:
		c.Mode = m
	default:
		k.fail("mode", "%q is not auto, kernel or userspace", f.Mode)
	}
	c.SetPathManager = f.SetPathManager
	if f.SetPathManager && c.Mode == ModeAuto {
		k.fail("set_path_manager", `needs mode "kernel" or "userspace" (mode "auto" follows the sysctl)`)
	}
	if lv, ok := levels[f.LogLevel]; ok {
		c.LogLevel = lv
	} else {
		k.fail("log_level", "%q is not debug, info, warn or error", f.LogLevel)
	}

	l := &f.Links
	c.Links = linkmon.Config{
		IncludeNames:     k.globs("links.include_names", l.IncludeNames),
		ExcludeNames:     k.globs("links.exclude_names", l.ExcludeNames),
		CellularNames:    k.globs("links.cellular_names", l.CellularNames),
		IncludeULA:       l.IncludeULA,
		IncludeTemporary: l.IncludeTemporary,
		ConnectedRoutes:  l.ConnectedRoutes,
		Settle:           k.duration("links.settle", l.Settle, MaxSettle),
		MaxSettle:        k.duration("links.max_settle", l.MaxSettle, MaxMaxSettle),
	}
	include := k.kinds("links.include_kinds", l.IncludeKinds)
	exclude := k.kinds("links.exclude_kinds", l.ExcludeKinds)
	c.Links.IncludeKinds = include
	// A kind in both lists is included; an empty list (not nil) keeps
	// linkmon from applying its own default.
	c.Links.ExcludeKinds = []linkmon.Kind{}
	for _, x := range exclude {
		if !containsKind(include, x) {
			c.Links.ExcludeKinds = append(c.Links.ExcludeKinds, x)
		}
	}
	if c.Links.Settle > 0 && c.Links.MaxSettle > 0 && c.Links.MaxSettle < c.Links.Settle {
		k.fail("links.max_settle", "%v is shorter than settle %v", c.Links.MaxSettle, c.Links.Settle)
	}

	c.OwnedIDs = k.idRange("kernel.owned_ids", f.Kernel.OwnedIDs)
	c.WithdrawOnExit = f.Kernel.WithdrawOnExit
	c.AcceptAnnounces = f.Kernel.AcceptAnnounces

	e := &f.Engine
	c.Workers = e.Workers
	if e.Workers < 1 || e.Workers > MaxWorkers {
		k.fail("engine.workers", "%d is not in 1..%d", e.Workers, MaxWorkers)
	}
	c.Backoff = pm.Backoff{
		Initial: k.duration("engine.backoff_initial", e.BackoffInitial, MaxBackoffInitial),
		Max:     k.duration("engine.backoff_max", e.BackoffMax, MaxBackoffMax),
	}
	if c.Backoff.Initial > 0 && c.Backoff.Max > 0 && c.Backoff.Max < c.Backoff.Initial {
		k.fail("engine.backoff_max", "%v is below backoff_initial %v", c.Backoff.Max, c.Backoff.Initial)
	}
	c.EventBuffer = e.EventBuffer
	if e.EventBuffer < 0 || e.EventBuffer > MaxEventBuffer {
		k.fail("engine.event_buffer", "%d is not in 0..%d (1 GiB)", e.EventBuffer, MaxEventBuffer)
	}

	c.Peers = k.peers(&f.Peers)
	c.fillControl(k, f)
	c.fillUsage(k, f.Usage)
	c.fillForce(k, f.Force)
	c.fillMitigation(k, f.Mitigation)
	c.Policy = policy.Config{Chain: k.chain("policy.chain", f.Policy.Chain)}
	for i, r := range f.Policy.Rules {
		c.Policy.Rules = append(c.Policy.Rules, k.rule(fmt.Sprintf("policy.rules[%d]", i), r))
	}
}

// levels are the log levels by name, for log_level and --log-level.
var levels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// ParseLevel returns the log level named s: "debug", "info", "warn" or
// "error".
func ParseLevel(s string) (slog.Level, error) {
	if lv, ok := levels[s]; ok {
		return lv, nil
	}
	return 0, fmt.Errorf("daemon: log level %q is not debug, info, warn or error", s)
}

// duration parses a positive duration such as "1ms" or "30s", at most
// limit; 0 when it fails.
func (k *checker) duration(key, s string, limit time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		k.fail(key, "%q is not a duration such as \"50ms\" or \"30s\"", s)
	case d <= 0:
		k.fail(key, "%q is not positive", s)
	case d > limit:
		k.fail(key, "%q is longer than %v", s, limit)
	default:
		return d
	}
	return 0
}

// peers checks the [peers] table.
func (k *checker) peers(f *PeersFile) peeraddr.Config {
	c := peeraddr.Config{AnyPort: f.AnyPort, Tries: f.Tries}
	c.Allow = k.prefixes("peers.allow", f.Allow)
	c.Deny = k.prefixes("peers.deny", f.Deny)
	for i, p := range f.Ports {
		if p < 1 || p > 65535 {
			k.fail(fmt.Sprintf("peers.ports[%d]", i), "%d is not a port (1..65535)", p)
			continue
		}
		c.Ports = append(c.Ports, uint16(p))
	}
	if f.Tries < 1 || f.Tries > peeraddr.MaxTries {
		k.fail("peers.tries", "%d is not in 1..%d", f.Tries, peeraddr.MaxTries)
	}
	return c
}

// prefixes parses prefixes such as "203.0.113.0/24" or "2001:db8::/32";
// a single address is a prefix of its own.
func (k *checker) prefixes(key string, list []string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range list {
		at := fmt.Sprintf("%s[%d]", key, i)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				k.fail(at, "%q is not a prefix such as \"203.0.113.0/24\" or \"2001:db8::/32\"", s)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			k.fail(at, "%s is IPv4-mapped; write the IPv4 prefix", p)
			continue
		}
		out = append(out, p.Masked())
	}
	return out
}

// globs checks path.Match globs.
func (k *checker) globs(key string, globs []string) []string {
	for i, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			k.fail(fmt.Sprintf("%s[%d]", key, i), "%q is not a valid glob: %v", g, err)
		}
	}
	return globs
}

func (k *checker) kinds(key string, names []string) []linkmon.Kind {
	out := []linkmon.Kind{}
	for i, n := range names {
		kind, err := linkmon.ParseKind(n)
		if err != nil {
			k.fail(fmt.Sprintf("%s[%d]", key, i), "%q is not unknown, wired, wifi, cellular, virtual or loopback", n)
			continue
		}
		out = append(out, kind)
	}
	return out
}

func containsKind(ks []linkmon.Kind, k linkmon.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// idRange parses "MIN-MAX" with 1 ≤ MIN ≤ MAX ≤ 255.
func (k *checker) idRange(key, s string) pm.IDRange {
	lo, hi, ok := strings.Cut(s, "-")
	a, errA := strconv.ParseUint(strings.TrimSpace(lo), 10, 8)
	b, errB := strconv.ParseUint(strings.TrimSpace(hi), 10, 8)
	if !ok || errA != nil || errB != nil || a < 1 || b < a {
		k.fail(key, "%q is not a range MIN-MAX of endpoint ids within 1-255", s)
		return pm.IDRange{}
	}
	return pm.IDRange{Min: uint8(a), Max: uint8(b)}
}

// chain converts the specs of a chain; their options stay JSON for the
// policies to decode.
func (k *checker) chain(key string, specs []SpecFile) []policy.Spec {
	if len(specs) == 0 {
		k.fail(key, "empty, want at least one policy")
		return nil
	}
	out := make([]policy.Spec, 0, len(specs))
	for i, s := range specs {
		at := fmt.Sprintf("%s[%d]", key, i)
		if s.Name == "" {
			k.fail(at+".name", "missing")
		}
		sp := policy.Spec{Name: s.Name}
		if len(s.Config) > 0 {
			raw, err := json.Marshal(s.Config)
			if err != nil {
				k.fail(at+".config", "%v", err)
			}
			sp.Config = raw
		}
		out = append(out, sp)
	}
	return out
}

func (k *checker) rule(key string, r RuleFile) policy.RuleSpec {
	var rs policy.RuleSpec
	if r.PeerPrefix != "" {
		p, err := netip.ParsePrefix(r.PeerPrefix)
		switch {
		case err != nil:
			k.fail(key+".peer_prefix", "%q is not a prefix such as \"203.0.113.0/24\"", r.PeerPrefix)
		case p.Addr().Is4In6():
			k.fail(key+".peer_prefix", "%s is IPv4-mapped; write the IPv4 prefix", p)
		default:
			rs.PeerPrefix = p.Masked()
		}
	}
	rs.PeerPort, rs.LocalPort = r.PeerPort, r.LocalPort
	if err := rs.Side.UnmarshalText([]byte(r.Side)); err != nil {
		k.fail(key+".side", "%q is not any, client or server", r.Side)
	}
	if r.Unit != "" {
		if err := force.CheckUnitName(r.Unit); err != nil {
			k.fail(key+".unit", "%v", err)
		} else {
			rs.Unit = r.Unit
		}
	}
	rs.UID = k.uid(key+".uid", r.UID)
	rs.Chain = k.chain(key+".chain", r.Chain)
	return rs
}

// lookupUser resolves a user name to its uid; tests replace it.
var lookupUser = func(name string) (string, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return "", err
	}
	return u.Uid, nil
}

// uid checks a rule's uid: nil or "" for any, an integer, or the name of
// a user of this host, resolved now.
func (k *checker) uid(key string, v any) *uint32 {
	const maxUID = 1<<32 - 2 // (uid_t)-1 is no uid
	switch v := v.(type) {
	case nil:
		return nil
	case int64:
		if v < 0 || v > maxUID {
			k.fail(key, "%d is not a uid (0 to %d)", v, maxUID)
			return nil
		}
		return new(uint32(v))
	case string:
		if v == "" {
			return nil
		}
		if n, err := strconv.ParseUint(v, 10, 32); err == nil && n <= maxUID {
			return new(uint32(n))
		}
		uid, err := lookupUser(v)
		if err != nil {
			if errors.As(err, new(user.UnknownUserError)) {
				k.fail(key, "no user %q on this host (a user that exists only while its service runs, DynamicUser=, is selected by unit)", v)
			} else {
				k.fail(key, "cannot look up user %q: %v", v, err)
			}
			return nil
		}
		n, err := strconv.ParseUint(uid, 10, 32)
		if err != nil || n > maxUID {
			k.fail(key, "user %q has uid %q, which is not a uid", v, uid)
			return nil
		}
		return new(uint32(n))
	default:
		k.fail(key, "a TOML %s where a uid or a user name belongs", tomlValueType(v))
		return nil
	}
}

// tomlValueType names the TOML type go-toml decoded v from.
func tomlValueType(v any) string {
	switch v.(type) {
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	}
	return "date or time"
}

// BuildPolicy builds the configured policies and returns their router. A
// policy that rejects its options gives an Error at the option's key
// when the policy names it, else at the policy's.
func (c *Config) BuildPolicy() (*policy.Router, error) {
	r, _, err := c.buildPolicies()
	return r, err
}

// buildPolicies is BuildPolicy, and returns the policies of every chain
// too, for the daemon to prepare those that run a process (exec).
func (c *Config) buildPolicies() (*policy.Router, []policy.Policy, error) {
	def, err := c.buildChain("policy.chain", c.Policy.Chain)
	if err != nil {
		return nil, nil, err
	}
	built := []*policy.Chain{def}
	fail := func(err error) (*policy.Router, []policy.Policy, error) {
		for _, ch := range built {
			_ = ch.Close()
		}
		return nil, nil, err
	}
	rules := make([]policy.Rule, 0, len(c.Policy.Rules))
	for i, rs := range c.Policy.Rules {
		ch, err := c.buildChain(fmt.Sprintf("policy.rules[%d].chain", i), rs.Chain)
		if err != nil {
			return fail(err)
		}
		built = append(built, ch)
		rules = append(rules, policy.Rule{Match: rs.Match, Policy: ch})
	}
	r, err := policy.NewRouter(def, rules...)
	if err != nil {
		return fail(c.errorAt("policy.rules", err))
	}
	var members []policy.Policy
	for _, ch := range built {
		members = append(members, ch.Policies()...)
	}
	return r, members, nil
}

// optionName finds the option a policy's error names
// (`unknown option "max_subflow"`, `option "limits.subflows": ...`).
var optionName = regexp.MustCompile(`option "([^"]+)"`)

// buildChain builds the policies of one chain, in order.
func (c *Config) buildChain(key string, specs []policy.Spec) (*policy.Chain, error) {
	ps := make([]policy.Policy, 0, len(specs))
	for i, s := range specs {
		p, err := policy.New(s.Name, s.Config)
		if err != nil {
			for _, b := range ps {
				if cl, ok := b.(policy.Closer); ok {
					_ = cl.Close()
				}
			}
			at := fmt.Sprintf("%s[%d]", key, i)
			switch m := optionName.FindStringSubmatch(err.Error()); {
			case m != nil && c.lines[at+".config."+m[1]] > 0:
				at += ".config." + m[1]
			case m != nil:
				at += ".config"
			default:
				at += ".name"
			}
			return nil, c.errorAt(at, err)
		}
		ps = append(ps, p)
	}
	return policy.Compose(ps...), nil
}
