package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Name is the name exec registers under.
const Name = "exec"

func init() {
	policy.Register(Name, func(raw json.RawMessage) (policy.Policy, error) {
		cfg, err := ParseConfig(raw)
		if err != nil {
			return nil, err
		}
		return New(cfg)
	})
}

// The lowest limits a child may get, below which no interpreter starts.
const (
	MinMemory    = 16 << 20
	MinOpenFiles = 16
	MinProcesses = 16
)

// Bounds of the durations, so that a typo cannot stall the engine: it
// waits up to Timeout for every answer.
const (
	MaxTimeout      = time.Second
	MaxStartTimeout = time.Minute
	MaxBackoff      = time.Hour
)

// Backoff is how long exec waits before it starts a child again: Initial
// after the first failure, doubling up to Max. A child that ran for at
// least Max before it failed is restarted after Initial again.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
}

// Config is the exec policy's configuration.
type Config struct {
	// Command is the program and its arguments. A program name without
	// a slash is looked up in PATH.
	Command []string
	// Timeout is how long a request may take, from writing it to reading
	// the answer; a later answer is a failure.
	Timeout time.Duration
	// StartTimeout is how long the child has to answer the handshake
	// after it is started.
	StartTimeout time.Duration
	// RestartBackoff spaces the restarts of a child that failed.
	RestartBackoff Backoff
	// PassEnv names variables of the daemon's environment that the child
	// gets too (those the daemon has), over BaseEnv.
	PassEnv []string
	// Env holds variables for the child, over BaseEnv and PassEnv.
	Env map[string]string
	// Modes are the path-manager modes the child decides in; in another
	// mode exec passes the plan through and starts no child.
	Modes []policy.Mode
	// Limits bound the child's resources.
	Limits Limits
}

// Limits bound a child's resources (setrlimit: soft and hard, so that it
// cannot raise them); 0 leaves one as the daemon has it.
type Limits struct {
	// Memory is RLIMIT_DATA in bytes: its heap and other private
	// writable memory. Address space a runtime only reserves (JIT
	// languages reserve much) does not count.
	Memory uint64
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles uint64
	// Processes is RLIMIT_NPROC: processes and threads of the child's
	// user, the daemon's own included (not enforced for uid 0).
	Processes uint64
}

// BaseEnv is the environment every child starts from: a PATH of the
// system's directories, HOME and a UTF-8 locale; nothing of the daemon's
// unless PassEnv names it.
var BaseEnv = map[string]string{
	"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME": "/",
	"LANG": "C.UTF-8",
}

// DefaultConfig returns the configuration of an empty config: no command,
// timeout 100ms, start timeout 30s, restart backoff 100ms to 30s, only
// BaseEnv, both modes, 1 GiB of memory, 1024 open files, 512 processes.
func DefaultConfig() Config {
	return Config{
		Timeout:        100 * time.Millisecond,
		StartTimeout:   30 * time.Second,
		RestartBackoff: Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second},
		Modes:          []policy.Mode{policy.ModeKernel, policy.ModeUserspace},
		Limits:         Limits{Memory: 1 << 30, OpenFiles: 1024, Processes: 512},
	}
}

// clone returns c with slices and maps of its own.
func (c Config) clone() Config {
	c.Command = slices.Clone(c.Command)
	c.PassEnv = slices.Clone(c.PassEnv)
	c.Modes = slices.Clone(c.Modes)
	if c.Env != nil {
		env := make(map[string]string, len(c.Env))
		for k, v := range c.Env {
			env[k] = v
		}
		c.Env = env
	}
	return c
}

// rawConfig is the JSON form of Config: durations are strings.
type rawConfig struct {
	Command        []string          `json:"command"`
	Timeout        string            `json:"timeout"`
	StartTimeout   string            `json:"start_timeout"`
	RestartBackoff rawBackoff        `json:"restart_backoff"`
	PassEnv        []string          `json:"pass_env"`
	Env            map[string]string `json:"env"`
	Modes          []string          `json:"modes"`
	Limits         rawLimits         `json:"limits"`
}

type rawLimits struct {
	Memory    string `json:"memory"`
	OpenFiles uint64 `json:"open_files"`
	Processes uint64 `json:"processes"`
}

type rawBackoff struct {
	Initial string `json:"initial"`
	Max     string `json:"max"`
}

// ParseConfig decodes exec's JSON configuration strictly over the
// defaults and checks it, without looking at the file system: the command
// may be missing (Validate requires it). Errors name the option.
func ParseConfig(raw json.RawMessage) (Config, error) {
	def := DefaultConfig()
	rc := rawConfig{
		Timeout:        def.Timeout.String(),
		StartTimeout:   def.StartTimeout.String(),
		RestartBackoff: rawBackoff{Initial: def.RestartBackoff.Initial.String(), Max: def.RestartBackoff.Max.String()},
		Limits: rawLimits{Memory: sizeString(def.Limits.Memory), OpenFiles: def.Limits.OpenFiles,
			Processes: def.Limits.Processes},
	}
	for _, m := range def.Modes {
		rc.Modes = append(rc.Modes, string(m))
	}
	if err := policy.DecodeConfig(raw, &rc); err != nil {
		return Config{}, err
	}
	cfg := Config{Command: rc.Command, Env: rc.Env,
		Limits: Limits{OpenFiles: rc.Limits.OpenFiles, Processes: rc.Limits.Processes}}
	if len(rc.PassEnv) > 0 {
		cfg.PassEnv = rc.PassEnv
	}
	var errs []error
	duration := func(name, s string, d *time.Duration) {
		v, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("option %q: %q is not a duration such as \"100ms\"", name, s))
			return
		}
		*d = v
	}
	duration("timeout", rc.Timeout, &cfg.Timeout)
	duration("start_timeout", rc.StartTimeout, &cfg.StartTimeout)
	duration("restart_backoff.initial", rc.RestartBackoff.Initial, &cfg.RestartBackoff.Initial)
	duration("restart_backoff.max", rc.RestartBackoff.Max, &cfg.RestartBackoff.Max)
	if rc.Limits.Memory != "" && rc.Limits.Memory != "0" {
		n, err := humanize.ParseBytes(rc.Limits.Memory)
		if err != nil {
			errs = append(errs, fmt.Errorf("option \"limits.memory\": %q is not a size such as \"512MiB\" or \"1GiB\" (\"0\": no limit)", rc.Limits.Memory))
		}
		cfg.Limits.Memory = n
	}
	if len(errs) > 0 {
		return Config{}, errs[0]
	}
	for _, m := range rc.Modes {
		cfg.Modes = append(cfg.Modes, policy.Mode(m))
	}
	if rc.Modes == nil {
		// "modes": null keeps the default.
		cfg.Modes = def.Modes
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// validate checks the configuration without looking at the file system.
func (c Config) validate() error {
	for i, a := range c.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("option \"command\": argument %d contains a NUL byte", i)
		}
	}
	if len(c.Command) > 0 && c.Command[0] == "" {
		return errors.New("option \"command\": the program is empty")
	}
	checks := []struct {
		name      string
		d, lo, hi time.Duration
	}{
		{"timeout", c.Timeout, time.Millisecond, MaxTimeout},
		{"start_timeout", c.StartTimeout, time.Millisecond, MaxStartTimeout},
		{"restart_backoff.initial", c.RestartBackoff.Initial, time.Millisecond, MaxBackoff},
		{"restart_backoff.max", c.RestartBackoff.Max, time.Millisecond, MaxBackoff},
	}
	for _, ch := range checks {
		if ch.d < ch.lo || ch.d > ch.hi {
			return fmt.Errorf("option %q: %s is not in %s..%s", ch.name, ch.d, ch.lo, ch.hi)
		}
	}
	if c.RestartBackoff.Max < c.RestartBackoff.Initial {
		return fmt.Errorf("option \"restart_backoff.max\": %s is shorter than restart_backoff.initial %s",
			c.RestartBackoff.Max, c.RestartBackoff.Initial)
	}
	for i, k := range c.PassEnv {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("option \"pass_env\": %q is not a variable name", k)
		}
		if slices.Contains(c.PassEnv[:i], k) {
			return fmt.Errorf("option \"pass_env\": %q listed twice", k)
		}
	}
	switch {
	case c.Limits.Memory != 0 && c.Limits.Memory < MinMemory:
		return fmt.Errorf("option \"limits.memory\": %s is below %s, too little for any interpreter (0: no limit)",
			sizeString(c.Limits.Memory), sizeString(MinMemory))
	case c.Limits.OpenFiles != 0 && c.Limits.OpenFiles < MinOpenFiles:
		return fmt.Errorf("option \"limits.open_files\": %d is below %d (0: no limit)", c.Limits.OpenFiles, MinOpenFiles)
	case c.Limits.Processes != 0 && c.Limits.Processes < MinProcesses:
		return fmt.Errorf("option \"limits.processes\": %d is below %d (0: no limit)", c.Limits.Processes, MinProcesses)
	}
	for k, v := range c.Env {
		switch {
		case k == "":
			return errors.New("option \"env\": empty variable name")
		case strings.ContainsAny(k, "=\x00"):
			return fmt.Errorf("option \"env\": variable name %q contains '=' or NUL", k)
		case strings.IndexByte(v, 0) >= 0:
			return fmt.Errorf("option \"env\": the value of %s contains a NUL byte", k)
		}
	}
	if len(c.Modes) == 0 {
		return errors.New("option \"modes\": empty, want kernel, userspace or both")
	}
	for i, m := range c.Modes {
		if m != policy.ModeKernel && m != policy.ModeUserspace {
			return fmt.Errorf("option \"modes\": %q is not kernel or userspace", m)
		}
		if slices.Contains(c.Modes[:i], m) {
			return fmt.Errorf("option \"modes\": %q listed twice", m)
		}
	}
	return nil
}

// checkCommand checks that the command names an executable file.
func (c Config) checkCommand() error {
	if len(c.Command) == 0 {
		return errors.New("option \"command\": missing, want the program and its arguments")
	}
	if _, err := lookPath(c.Command[0], c.environ()["PATH"]); err != nil {
		return fmt.Errorf("option \"command\": %w", err)
	}
	return nil
}

// sizeString writes a byte count in the largest binary unit that divides
// it: "1GiB", "16MiB", "1000".
func sizeString(n uint64) string {
	for _, u := range []struct {
		name string
		size uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprint(n)
}

// environ returns the child's environment: BaseEnv, then the variables
// of PassEnv the daemon has, then Env.
func (c Config) environ() map[string]string {
	env := maps.Clone(BaseEnv)
	for _, k := range c.PassEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	maps.Copy(env, c.Env)
	return env
}

// lookPath finds the program name in the directories of path (the
// child's PATH, not the daemon's) unless it has a slash, and checks that
// it is an executable file.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return osexec.LookPath(name)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never the daemon's working directory
		}
		if p, err := osexec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: not found in the program's PATH %s", name, path)
}

// Describe implements policy.Describer.
func (p *Exec) Describe() policy.Doc {
	d := DefaultConfig()
	modes := make([]string, len(d.Modes))
	for i, m := range d.Modes {
		modes[i] = string(m)
	}
	return policy.Doc{
		Summary: "run an external program as a policy, over a JSON-lines protocol (docs/plugins.md)",
		Options: []policy.Option{
			{Name: "command", Type: "array", Default: nil,
				Help: "the program and its arguments (required); a name without a slash is looked up in PATH"},
			{Name: "timeout", Type: "string", Default: d.Timeout.String(),
				Help: "how long the program may take to answer a request (1ms..1s); later, the plan passes through and the program is restarted"},
			{Name: "start_timeout", Type: "string", Default: d.StartTimeout.String(),
				Help: "how long the program may take to answer the hello after it starts"},
			{Name: "restart_backoff.initial", Type: "string", Default: d.RestartBackoff.Initial.String(),
				Help: "wait before restarting a failed program, doubling each time"},
			{Name: "restart_backoff.max", Type: "string", Default: d.RestartBackoff.Max.String(),
				Help: "the longest wait between restarts"},
			{Name: "pass_env", Type: "array", Default: []string{},
				Help: "names of the daemon's environment variables the program gets too"},
			{Name: "env", Type: "object", Default: map[string]string{},
				Help: "environment variables for the program, over PATH, HOME and LANG (docs/plugins.md) and pass_env"},
			{Name: "modes", Type: "array", Default: modes, Values: modes,
				Help: "the path-manager modes the program decides in; in others the plan passes through"},
			{Name: "limits.memory", Type: "string", Default: sizeString(d.Limits.Memory),
				Help: "the program's heap and other private memory (RLIMIT_DATA); \"0\": no limit"},
			{Name: "limits.open_files", Type: "integer", Default: d.Limits.OpenFiles,
				Help: "the program's open files (RLIMIT_NOFILE); 0: no limit"},
			{Name: "limits.processes", Type: "integer", Default: d.Limits.Processes,
				Help: "processes and threads of the program's user, the daemon's included (RLIMIT_NPROC); 0: no limit"},
		},
	}
}
