package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/testing/mantest"
)

// result is what one mptcpctl invocation printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// mptcpctl runs the command line args in-process.
func mptcpctl(t *testing.T, args ...string) result {
	t.Helper()
	return mptcpctlContext(t, context.Background(), args...)
}

// mptcpctlContext runs args with ctx.
func mptcpctlContext(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	// None of these reaches the kernel: the namespace below does not exist,
	// and opening it would fail with exit code 1 instead.
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"endpoints", "add", "192.0.2.300"}, `endpoints add: invalid address "192.0.2.300"`},
		{[]string{"endpoints", "add", "192.0.2.1", "id", "300"}, "endpoints add: id 300: out of range 1..255"},
		{[]string{"endpoints", "add", "192.0.2.1", "fulmesh"}, `endpoints add: unknown word "fulmesh": expected dev, id, port, signal, subflow, backup, fullmesh or laminar`},
		{[]string{"endpoints", "add", "192.0.2.1", "signal", "fullmesh"}, "endpoints add: signal with fullmesh: an endpoint cannot be both"},
		{[]string{"endpoints", "add", "192.0.2.1", "port", "80"}, "endpoints add: port without signal: an endpoint with a port must be signal and not subflow"},
		{[]string{"endpoints", "add", "192.0.2.1", "--fullmesh"}, "endpoints add: unknown flag: --fullmesh"},
		{[]string{"endpoints", "del"}, "endpoints del: missing endpoint: expected an id 1..255 or an address"},
		{[]string{"endpoints", "set", "1", "fast"}, `endpoints set: unknown word "fast": expected backup, nobackup, fullmesh or nofullmesh`},
		{[]string{"endpoints", "show", "0"}, "endpoints show: id 0: out of range 1..255"},
		{[]string{"endpoints", "show", "1", "2"}, `endpoints show: unexpected word "2": expected at most an endpoint id`},
		{[]string{"endpoints", "flush", "all"}, `endpoints flush: unexpected word "all": flush takes no arguments`},
		{[]string{"endpoints", "shw"}, `endpoints: unknown command "shw": expected add, del, flush, set or show (did you mean show?)`},
		{[]string{"limits", "set"}, "limits set: nothing to set: expected subflows N or add-addr-accepted N"},
		{[]string{"limits", "set", "subflows", "9"}, "limits set: subflows 9: out of range 0..8"},
		{[]string{"limits", "get"}, `limits: unknown command "get": expected set (did you mean set?)`},
		{[]string{"connections", "now"}, `connections: unknown command "now": expected announce or remove`},
		{[]string{"subflows", "create", "1", "192.0.2.1"}, `subflows create: missing remote address: expected TOKEN LOCAL REMOTE:PORT [id N] [dev IFNAME] [backup]`},
		{[]string{"connections", "announce", "1", "192.0.2.1", "id", "0"}, `connections announce: id 0: out of range 1..255`},
		{[]string{"subflows", "xyz"}, `subflows: invalid token "xyz": expected up to 8 hexadecimal digits`},
		{[]string{"subflows", "1", "2"}, `subflows: unexpected word "2": expected at most a connection token`},
		{[]string{"monitor", "-x"}, "monitor: unknown shorthand flag: 'x' in -x"},
		{[]string{"pm", "bpf"}, `pm: unknown path manager "bpf": expected kernel or userspace`},
		{[]string{"pm", "kernel", "now"}, `pm: unexpected word "now": expected at most kernel or userspace`},
		{[]string{"run"}, "run: expected PROGRAM [ARGS...]"},
		{[]string{"run", "--check", "true"}, `run: unexpected word "true": --check runs no program`},
		{[]string{"run", "--json", "true"}, "run: --json: run prints nothing of its own (but with --check)"},
		{[]string{"run", "--verbos", "true"}, "run: unknown flag: --verbos"},
		{[]string{"endpoint"}, ""}, // alias: reaches the namespace, see below
		{[]string{"bogus"}, `unknown command "bogus": expected completion, connections, endpoints, events, force, limits, links, monitor, paths, pm, policies, reload, run, status, subflows, top or usage`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-n", "mptcpctl-test-no-such-ns"}, tt.args...)
			r := mptcpctl(t, args...)
			if tt.msg == "" {
				if r.code != exitRefused || !strings.Contains(r.stderr, `network namespace "mptcpctl-test-no-such-ns" not found`) {
					t.Errorf("got exit %d, stderr %q; want exit 1 and namespace not found", r.code, r.stderr)
				}
				return
			}
			if r.code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr %q", r.code, exitUsage, r.stderr)
			}
			first, hint, _ := strings.Cut(r.stderr, "\n")
			if diff := cmp.Diff("mptcpctl: "+tt.msg, first); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(hint, "Run 'mptcpctl") || !strings.Contains(hint, "--help' for usage.") {
				t.Errorf("no usage hint after the error: %q", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
}

// TestRunCheck: run --check reports the mechanism, in a table and in
// JSON, and says why it is unavailable when it is.
func TestRunCheck(t *testing.T) {
	t.Parallel()
	r := mptcpctl(t, "run", "--check")
	if !strings.HasPrefix(r.stdout, "mechanism: seccomp user notification: ") || !strings.Contains(r.stdout, "\nMPTCP:     ") {
		t.Errorf("run --check printed %q", r.stdout)
	}
	j := mptcpctl(t, "--json", "run", "--check")
	var out runCheckOut
	if err := json.Unmarshal([]byte(j.stdout), &out); err != nil {
		t.Fatalf("run --check --json printed %q: %v", j.stdout, err)
	}
	if out.Mechanism != "seccomp user notification" || j.code != r.code {
		t.Errorf("run --check --json: %+v, exit %d (table: exit %d)", out, j.code, r.code)
	}
	switch {
	case out.Available && (r.code != exitOK || out.Reason != ""):
		t.Errorf("available, yet exit %d, reason %q", r.code, out.Reason)
	case !out.Available && (r.code != exitRefused || out.Reason == "" || !strings.Contains(r.stderr, out.Reason)):
		t.Errorf("unavailable: exit %d, reason %q, stderr %q", r.code, out.Reason, r.stderr)
	}
}

func TestGlobalOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring
		stderr string // a substring
	}{
		{name: "version", args: []string{"--version"}, stdout: "mptcpctl " + programVersion() + "\n"},
		{name: "help", args: []string{"--help"}, stdout: "Kernel commands (work with or without the daemon):"},
		{name: "no command", args: nil, stdout: "Usage:\n  mptcpctl [flags]\n  mptcpctl [command]"},
		{name: "sub help", args: []string{"endpoints", "add", "--help"}, stdout: "dev IFNAME  bind it to the interface"},
		{name: "help command", args: []string{"help", "subflows"}, stdout: "v valid mapping"},
		{name: "netns missing value", args: []string{"endpoints", "-n"}, code: exitUsage, stderr: "mptcpctl: endpoints: flag needs an argument: 'n' in -n"},
		{name: "netns with slash", args: []string{"-n", "../x", "endpoints"}, code: exitUsage, stderr: `mptcpctl: endpoints: --netns "../x": invalid namespace name`},
		{name: "netns not found", args: []string{"--netns", "mptcpctl-test-no-such-ns", "limits"}, code: exitRefused,
			stderr: `mptcpctl: limits: network namespace "mptcpctl-test-no-such-ns" not found (no /run/netns/mptcpctl-test-no-such-ns; see ip netns list)` + "\n"},
		{name: "completion", args: []string{"completion", "fish"}, stdout: "complete -c mptcpctl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mptcpctl(t, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("stdout %q does not contain %q", r.stdout, tt.stdout)
			}
			if !strings.Contains(r.stderr, tt.stderr) || (tt.stderr == "" && r.stderr != "") {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tt.stderr)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	eperm := &genl.Error{Op: "add endpoint", Err: unix.EPERM}
	exist := &genl.Error{Op: "add endpoint", Err: unix.EEXIST, Message: "too many addresses or duplicate one: -17"}
	tests := []struct {
		name string
		err  error
		code int
		msg  string
	}{
		{name: "nil", err: nil, code: exitOK},
		{name: "usage", err: usagef("unknown word %q", "x"), code: exitUsage, msg: `unknown word "x"`},
		{name: "wrapped usage", err: fmt.Errorf("ctx: %w", usagef("bad")), code: exitUsage, msg: "ctx: bad"},
		{name: "refused", err: &refusedError{msg: "no endpoint with id 3"}, code: exitRefused, msg: "no endpoint with id 3"},
		{name: "kernel extack", err: kernelError("192.0.2.1", exist), code: exitRefused, msg: "192.0.2.1: too many addresses or duplicate one: -17"},
		{name: "kernel errno only", err: kernelError("flush", &genl.Error{Err: unix.EINVAL}), code: exitRefused, msg: "flush: invalid argument"},
		{name: "no context", err: kernelError("", exist), code: exitRefused, msg: "too many addresses or duplicate one: -17"},
		{name: "permission", err: kernelError("flush", eperm), code: exitRefused, msg: "flush: operation not permitted (this needs CAP_NET_ADMIN: try sudo)"},
		{name: "unavailable", err: kernelError("open mptcp_pm", fmt.Errorf("x: %w", genl.ErrUnavailable)), code: exitRefused,
			msg: "open mptcp_pm: the kernel has no MPTCP path manager (generic netlink family mptcp_pm is missing): is MPTCP enabled (CONFIG_MPTCP)?"},
		{name: "system", err: errors.New("boom"), code: exitRefused, msg: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := exitCode(tt.err); got != tt.code {
				t.Errorf("exitCode = %d, want %d", got, tt.code)
			}
			if tt.err != nil && tt.err.Error() != tt.msg {
				t.Errorf("message %q, want %q", tt.err.Error(), tt.msg)
			}
		})
	}
	pmErr := pmSetError(genl.PathManagerUserspace, &os.PathError{Op: "open", Path: "/proc/sys/net/mptcp/path_manager", Err: unix.EACCES})
	if got, want := pmErr.Error(), "set path manager userspace: permission denied: setting the path manager needs CAP_NET_ADMIN (try sudo)"; got != want || exitCode(pmErr) != exitRefused {
		t.Errorf("pmSetError = %q (exit %d), want %q (exit 1)", got, exitCode(pmErr), want)
	}
	if err := kernelError("x", eperm); !errors.Is(err, os.ErrPermission) {
		t.Errorf("kernelError lost the genl error: %v", err)
	}
}

// TestGeneratedDocs fails when the committed man pages or completion
// scripts differ from what the command tree generates, go test -update (or
// go generate) rewrites them, or when groff or mandoc find fault with a
// page.
func TestGeneratedDocs(t *testing.T) {
	t.Parallel()
	manDir, complDir := filepath.Join("..", "..", "docs", "man"), filepath.Join("..", "..", "dist", "completions")
	if updating() {
		if err := genDocs(newApp(&bytes.Buffer{}, &bytes.Buffer{}).rootCmd(), manDir, complDir); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	genMan, genCompl := filepath.Join(tmp, "man"), filepath.Join(tmp, "completions")
	if err := genDocs(newApp(&bytes.Buffer{}, &bytes.Buffer{}).rootCmd(), genMan, genCompl); err != nil {
		t.Fatal(err)
	}
	compare := func(genDir, dir, pattern string) {
		want, _ := filepath.Glob(filepath.Join(genDir, pattern))
		have, _ := filepath.Glob(filepath.Join(dir, pattern))
		base := func(ps []string) []string {
			var out []string
			for _, p := range ps {
				out = append(out, filepath.Base(p))
			}
			return out
		}
		if diff := cmp.Diff(base(want), base(have)); diff != "" {
			t.Errorf("%s: files differ from the generator (-want +got):\n%s\nrun go generate ./cmd/mptcpctl", dir, diff)
		}
		for _, p := range want {
			w, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			h, err := os.ReadFile(filepath.Join(dir, filepath.Base(p)))
			if err != nil {
				continue // reported above
			}
			if !bytes.Equal(w, h) {
				t.Errorf("%s is out of date: run go generate ./cmd/mptcpctl", filepath.Join(dir, filepath.Base(p)))
			}
		}
	}
	compare(genMan, manDir, "mptcpctl*.8")
	compare(genCompl, complDir, "*")
	pages, _ := filepath.Glob(filepath.Join(manDir, "mptcpctl*.8"))
	if len(pages) < 20 {
		t.Fatalf("%d man pages in %s", len(pages), manDir)
	}
	for _, p := range pages {
		mantest.Lint(t, p)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	// Completions that need no kernel: keywords and fixed words.
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"endpoints", "add", "192.0.2.1", ""}, []string{"dev", "id", "port", "signal", "subflow", "backup", "fullmesh", "laminar"}},
		{[]string{"endpoints", "add", "192.0.2.1", "signal", "id", "3", ""}, []string{"dev", "port", "subflow", "backup", "fullmesh", "laminar"}},
		{[]string{"endpoints", "add", "192.0.2.1", "port", ""}, nil},
		{[]string{"limits", "set", "subflows", "2", ""}, []string{"add-addr-accepted"}},
		{[]string{"pm", ""}, []string{"kernel\tthe in-kernel path manager", "userspace\ta userspace daemon decides"}},
		{[]string{"endpoints", ""}, []string{"add\tAdd an endpoint", "del\tDelete the endpoint with id ID or address ADDR",
			"flush\tDelete every endpoint", "set\tChange an endpoint's backup or fullmesh flag", "show\tShow all endpoints, or the one with id ID"}},
	}
	for _, tt := range tests {
		r := mptcpctl(t, append([]string{"__complete"}, tt.args...)...)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
			t.Errorf("%q: no directive in %q", tt.args, r.stdout)
			continue
		}
		got := lines[:len(lines)-1]
		if len(got) == 0 {
			got = nil
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("__complete %q (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestKernelAtLeast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		release string
		want    bool
	}{
		{"6.9.0", true},
		{"6.18.4-amd64", true},
		{"7.0", true},
		{"6.8.12", false},
		{"5.19.0", false},
		{"", false},
		{"weird", false},
	}
	for _, tt := range tests {
		if got := kernelAtLeast(tt.release, 6, 9); got != tt.want {
			t.Errorf("kernelAtLeast(%q, 6, 9) = %v, want %v", tt.release, got, tt.want)
		}
	}
}

// TestUnexplained: the refusals older kernels give without a text are
// explained by what they mean on that kernel; refusals with the kernel's
// text, and every other error, are left to kernelError.
func TestUnexplained(t *testing.T) {
	t.Parallel()
	esrch := &genl.Error{Op: "destroy subflow", Err: unix.ESRCH}
	einval := &genl.Error{Op: "set flags", Err: unix.EINVAL}
	tests := []struct {
		op      string
		err     error
		release string
		want    string
	}{
		{"destroy", esrch, "6.1.0-57-amd64", "subflow not found"},
		{"destroy", fmt.Errorf("x: %w", esrch), "6.12.118+deb12-amd64", "subflow not found"},
		{"backup", einval, "6.12.118+deb12-amd64", "subflow not found"},
		{"backup", einval, "6.1.0-57-amd64",
			"subflow not found, or the connection is not run by the userspace path manager (Linux 6.1.0-57-amd64 does not say which)"},
		{"destroy", &genl.Error{Err: unix.ESRCH, Message: "subflow not found"}, "6.18.4", ""},
		{"backup", &genl.Error{Err: unix.EINVAL, Message: "userspace PM not selected"}, "6.18.4", ""},
		{"create", einval, "6.1.0-57-amd64", ""},
		{"destroy", einval, "6.1.0-57-amd64", ""},
		{"destroy", errors.New("boom"), "6.1.0-57-amd64", ""},
	}
	for _, tt := range tests {
		if got := unexplained(tt.op, tt.err, tt.release); got != tt.want {
			t.Errorf("unexplained(%s, %v, %s) = %q, want %q", tt.op, tt.err, tt.release, got, tt.want)
		}
	}
}
