package exec_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/plugins/exec"
	"github.com/mptcpgod/mptcpgod/policy"
)

// sandboxReport is what the report fake writes (fake_test.go).
func readReport(t *testing.T, file string) sandboxReport {
	t.Helper()
	var r sandboxReport
	enginetest.Poll(t, "the child's report", func() string {
		b, err := os.ReadFile(file)
		if err != nil {
			return err.Error()
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return err.Error()
		}
		return ""
	})
	return r
}

// TestChildSandbox: the child runs without a capability (the test runs as
// root: no bounding set either), with no_new_privs, in /, in a process
// group of its own, with BaseEnv plus pass_env plus env and nothing else
// of the daemon's, and under the configured resource limits, core dumps
// off.
func TestChildSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "needs root: the test checks that root's capabilities are dropped")
	}
	t.Setenv("MPTCPGOD_TEST_PASSED", "passed")
	t.Setenv("MPTCPGOD_TEST_SECRET", "not for the child")
	file := filepath.Join(t.TempDir(), "report.json")
	cfg := fakeConfig(t, "report:"+file)
	cfg.PassEnv = []string{"MPTCPGOD_TEST_PASSED", "MPTCPGOD_TEST_UNSET"}
	cfg.Env["LANG"] = "C"
	cfg.Limits = exec.Limits{Memory: 512 << 20, OpenFiles: 64, Processes: 100}
	p, _ := newExec(t, cfg)
	start(t, p, policy.ModeUserspace)
	r := readReport(t, file)

	want := map[string]string{"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000",
		"CapBnd": "0000000000000000", "CapAmb": "0000000000000000"}
	if diff := cmp.Diff(want, r.Caps); diff != "" {
		t.Errorf("capabilities (-want +got):\n%s", diff)
	}
	if r.NoNewPrivs != "1" {
		t.Errorf("NoNewPrivs %q, want 1", r.NoNewPrivs)
	}
	if r.Dir != "/" {
		t.Errorf("working directory %q, want /", r.Dir)
	}
	if r.PGID != r.PID {
		t.Errorf("process group %d, want its own (%d)", r.PGID, r.PID)
	}
	wantEnv := []string{"HOME=/", "LANG=C", "MPTCPGOD_EXEC_FAKE=report:" + file, "MPTCPGOD_TEST_PASSED=passed",
		"PATH=" + exec.BaseEnv["PATH"]}
	slices.Sort(r.Env)
	if diff := cmp.Diff(wantEnv, r.Env); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	wantLimits := map[int][2]uint64{
		int(syscall.RLIMIT_CORE): {0, 0}, int(syscall.RLIMIT_DATA): {512 << 20, 512 << 20},
		int(syscall.RLIMIT_NOFILE): {64, 64}, 6: {100, 100},
	}
	if diff := cmp.Diff(wantLimits, r.Limits); diff != "" {
		t.Errorf("resource limits (-want +got):\n%s", diff)
	}
}

// sessionOf returns the session of pid, from /proc/PID/stat.
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		t.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return sid
}

// alive reports whether the process pid exists, zombie or not.
func alive(pid int) bool { return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// TestOrphanKilled: a plugin that ignores SIGTERM and leaves behind a
// descendant in a session of its own (setsid), which ignores SIGTERM too,
// is gone with that descendant, reaped, when the policy stops; so when it
// is killed and restarted.
func TestOrphanKilled(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"close", "restart"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "sleeper.pid")
			cfg := fakeConfig(t, "orphan:"+file)
			cfg.Timeout = 50 * time.Millisecond
			p, _ := newExec(t, cfg)
			exec.SetGrace(p, 100*time.Millisecond)
			start(t, p, policy.ModeUserspace)
			leader := p.Stats().PID
			var sleeper int
			enginetest.Poll(t, "the sleeper's pid", func() string {
				b, err := os.ReadFile(file)
				if err == nil {
					sleeper, err = strconv.Atoi(strings.TrimSpace(string(b)))
				}
				if err != nil {
					return err.Error()
				}
				return ""
			})
			if sid := sessionOf(t, sleeper); sid != sleeper {
				t.Fatalf("the sleeper %d is in session %d, want its own", sleeper, sid)
			}
			if how == "close" {
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				// A request the orphan fake answers late makes the
				// policy kill it and start another.
				if err := os.Remove(file); err != nil {
					t.Fatal(err)
				}
				exec.KillChild(p)
			}
			enginetest.Poll(t, "the plugin and its orphan gone", func() string {
				if alive(leader) || alive(sleeper) {
					return "leader " + strconv.FormatBool(alive(leader)) + ", orphan " + strconv.FormatBool(alive(sleeper))
				}
				return ""
			})
		})
	}
}
