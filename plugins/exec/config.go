package exec

import (
	"encoding/json"
	"errors"
	"fmt"
	osexec "os/exec"
	"slices"
	"strings"
	"time"

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
	// Env holds variables added to the daemon's environment for the
	// child (replacing those of the same name).
	Env map[string]string
	// Modes are the path-manager modes the child decides in; in another
	// mode exec passes the plan through and starts no child.
	Modes []policy.Mode
}

// DefaultConfig returns the configuration of an empty config: no command,
// timeout 100ms, start timeout 30s, restart backoff 100ms to 30s, no extra
// environment, both modes.
func DefaultConfig() Config {
	return Config{
		Timeout:        100 * time.Millisecond,
		StartTimeout:   30 * time.Second,
		RestartBackoff: Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second},
		Modes:          []policy.Mode{policy.ModeKernel, policy.ModeUserspace},
	}
}

// clone returns c with slices and maps of its own.
func (c Config) clone() Config {
	c.Command = slices.Clone(c.Command)
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
	Env            map[string]string `json:"env"`
	Modes          []string          `json:"modes"`
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
	}
	for _, m := range def.Modes {
		rc.Modes = append(rc.Modes, string(m))
	}
	if err := policy.DecodeConfig(raw, &rc); err != nil {
		return Config{}, err
	}
	cfg := Config{Command: rc.Command, Env: rc.Env}
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
	if _, err := osexec.LookPath(c.Command[0]); err != nil {
		return fmt.Errorf("option \"command\": %w", err)
	}
	return nil
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
			{Name: "env", Type: "object", Default: map[string]string{},
				Help: "environment variables added to the daemon's for the program"},
			{Name: "modes", Type: "array", Default: modes, Values: modes,
				Help: "the path-manager modes the program decides in; in others the plan passes through"},
		},
	}
}
