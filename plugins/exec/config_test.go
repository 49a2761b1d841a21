package exec_test

import (
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/plugins/exec"
	"github.com/mptcpgod/mptcpgod/policy"
)

// TestConfig checks options with one-line configurations, good and bad,
// without the file system.
func TestConfig(t *testing.T) {
	t.Parallel()
	def := exec.DefaultConfig()
	with := policytest.With(exec.DefaultConfig)
	policytest.RunConfigs(t, []policytest.ConfigCase[exec.Config]{
		{Config: ``, Want: def},
		{Config: `{}`, Want: def},
		{Config: `null`, Want: def},
		{Config: `{"command": ["/nonexistent/prog", "-v"]}`, Want: with(func(c *exec.Config) { c.Command = []string{"/nonexistent/prog", "-v"} })},
		{Config: `{"timeout": "50ms", "start_timeout": "1s"}`, Want: with(func(c *exec.Config) { c.Timeout, c.StartTimeout = 50*time.Millisecond, time.Second })},
		{Config: `{"restart_backoff": {"initial": "1s"}}`, Want: with(func(c *exec.Config) { c.RestartBackoff.Initial = time.Second })},
		{Config: `{"restart_backoff": {"initial": "2s", "max": "2s"}}`, Want: with(func(c *exec.Config) { c.RestartBackoff = exec.Backoff{Initial: 2 * time.Second, Max: 2 * time.Second} })},
		{Config: `{"env": {"LANG": "C", "X": ""}}`, Want: with(func(c *exec.Config) { c.Env = map[string]string{"LANG": "C", "X": ""} })},
		{Config: `{"modes": ["userspace"]}`, Want: with(func(c *exec.Config) { c.Modes = []policy.Mode{policy.ModeUserspace} })},
		{Config: `{"modes": null}`, Want: def},
		{Config: `{"pass_env": ["TZ", "http_proxy"]}`, Want: with(func(c *exec.Config) { c.PassEnv = []string{"TZ", "http_proxy"} })},
		{Config: `{"limits": {"memory": "256MiB", "open_files": 64, "processes": 0}}`, Want: with(func(c *exec.Config) {
			c.Limits = exec.Limits{Memory: 256 << 20, OpenFiles: 64}
		})},
		{Config: `{"limits": {"memory": "0"}}`, Want: with(func(c *exec.Config) { c.Limits.Memory = 0 })},
		{Config: `{"limits": {"memory": "lots"}}`, Err: `option "limits.memory": "lots" is not a size such as "512MiB" or "1GiB" ("0": no limit)`},
		{Config: `{"limits": {"memory": "1MiB"}}`, Err: `option "limits.memory": 1MiB is below 16MiB, too little for any interpreter (0: no limit)`},
		{Config: `{"limits": {"open_files": 3}}`, Err: `option "limits.open_files": 3 is below 16 (0: no limit)`},
		{Config: `{"limits": {"processes": 1}}`, Err: `option "limits.processes": 1 is below 16 (0: no limit)`},
		{Config: `{"limits": {"processes": -1}}`, Err: `option "limits.processes": cannot use number -1 as uint64`},
		{Config: `{"pass_env": ["A=B"]}`, Err: `option "pass_env": "A=B" is not a variable name`},
		{Config: `{"pass_env": ["TZ", "TZ"]}`, Err: `option "pass_env": "TZ" listed twice`},
		{Config: `{"comand": ["x"]}`, Err: `unknown option "comand"`},
		{Config: `{"restart_backoff": {"inital": "1s"}}`, Err: `unknown option "restart_backoff.inital"`},
		{Config: `{"command": "/bin/true"}`, Err: `option "command": cannot use string as []string`},
		{Config: `{"command": [""]}`, Err: `option "command": the program is empty`},
		{Config: `{"command": ["a\u0000b"]}`, Err: `option "command": argument 0 contains a NUL byte`},
		{Config: `{"timeout": 50}`, Err: `option "timeout": cannot use number as string`},
		{Config: `{"timeout": "50"}`, Err: `option "timeout": "50" is not a duration such as "100ms"`},
		{Config: `{"timeout": "2s"}`, Err: `option "timeout": 2s is not in 1ms..1s`},
		{Config: `{"timeout": "0s"}`, Err: `option "timeout": 0s is not in 1ms..1s`},
		{Config: `{"start_timeout": "-1s"}`, Err: `option "start_timeout": -1s is not in 1ms..1m0s`},
		{Config: `{"restart_backoff": {"max": "2h"}}`, Err: `option "restart_backoff.max": 2h0m0s is not in 1ms..1h0m0s`},
		{Config: `{"restart_backoff": {"initial": "1m"}}`, Err: `option "restart_backoff.max": 30s is shorter than restart_backoff.initial 1m0s`},
		{Config: `{"env": {"": "x"}}`, Err: `option "env": empty variable name`},
		{Config: `{"env": {"A=B": "x"}}`, Err: `option "env": variable name "A=B" contains '=' or NUL`},
		{Config: `{"env": {"A": 1}}`, Err: `option "env": cannot use number as string`},
		{Config: `{"modes": []}`, Err: `option "modes": empty, want kernel, userspace or both`},
		{Config: `{"modes": ["user"]}`, Err: `option "modes": "user" is not kernel or userspace`},
		{Config: `{"modes": ["kernel", "kernel"]}`, Err: `option "modes": "kernel" listed twice`},
		{Config: `["x"]`, Err: `config must be a JSON object`},
	}, exec.ParseConfig)
}

// TestNew: policy.New decodes, then validates against the file system;
// errors name the policy and the option.
func TestNew(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sh, err := osexec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh: %v", err)
	}
	tests := []struct {
		config string
		err    string
	}{
		{`{"command": ["` + sh + `", "-c", "true"]}`, ""},
		{`{"command": ["sh"]}`, ""},
		{``, `policy/exec: option "command": missing, want the program and its arguments`},
		{`{"command": []}`, `policy/exec: option "command": missing, want the program and its arguments`},
		{`{"command": ["` + filepath.Join(dir, "none") + `"]}`, `policy/exec: option "command": exec: "` + filepath.Join(dir, "none") + `": stat ` + filepath.Join(dir, "none") + `: no such file or directory`},
		{`{"command": ["` + plain + `"]}`, `policy/exec: option "command": exec: "` + plain + `": permission denied`},
		{`{"command": ["` + dir + `"]}`, `policy/exec: option "command": exec: "` + dir + `": is a directory`},
		{`{"command": ["mptcpgod-no-such-plugin"]}`, `policy/exec: option "command": exec: "mptcpgod-no-such-plugin": not found in the program's PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`},
		{`{"timeout": "2s"}`, `policy/exec: option "timeout": 2s is not in 1ms..1s`},
	}
	for _, tt := range tests {
		t.Run(tt.config, func(t *testing.T) {
			t.Parallel()
			p, err := policy.New("exec", json.RawMessage(tt.config))
			if diff := cmp.Diff(tt.err, policytest.ErrString(err)); diff != "" {
				t.Fatalf("error (-want +got):\n%s", diff)
			}
			if err == nil {
				if err := p.(policy.Closer).Close(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestDescribe: the documented defaults are those of an empty config, and
// describing starts no process.
func TestDescribe(t *testing.T) {
	t.Parallel()
	d, got := policytest.Defaults(t, exec.Name)
	def := exec.DefaultConfig()
	want := map[string]any{
		"command": nil, "timeout": def.Timeout.String(), "start_timeout": def.StartTimeout.String(),
		"restart_backoff.initial": def.RestartBackoff.Initial.String(), "restart_backoff.max": def.RestartBackoff.Max.String(),
		"env": map[string]string{}, "modes": []string{"kernel", "userspace"}, "pass_env": []string{},
		"limits.memory": "1GiB", "limits.open_files": uint64(1024), "limits.processes": uint64(512),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("option defaults (-want +got):\n%s", diff)
	}
	if d.Name != "exec" || !strings.Contains(d.Summary, "JSON") {
		t.Errorf("Describe = %+v", d)
	}
	// The defaults are parseable as the options they document.
	raw, err := json.Marshal(map[string]any{
		"timeout":         got["timeout"],
		"start_timeout":   got["start_timeout"],
		"restart_backoff": map[string]any{"initial": got["restart_backoff.initial"], "max": got["restart_backoff.max"]},
		"env":             got["env"],
		"modes":           got["modes"],
		"pass_env":        got["pass_env"],
		"limits": map[string]any{"memory": got["limits.memory"], "open_files": got["limits.open_files"],
			"processes": got["limits.processes"]},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := exec.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(def, cfg, cmp.Transformer("env", func(m map[string]string) int { return len(m) })); diff != "" {
		t.Errorf("documented defaults parse to (-want +got):\n%s", diff)
	}
}
