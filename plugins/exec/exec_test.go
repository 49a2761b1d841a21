package exec_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mptcpgod/mptcpgod/internal/testing/enginetest"
	"github.com/mptcpgod/mptcpgod/internal/testing/policytest"
	"github.com/mptcpgod/mptcpgod/plugins/exec"
	"github.com/mptcpgod/mptcpgod/policy"
)

// TestAnswers: the plans a healthy plugin returns are the policy's, in
// both modes; unknown keys in its lines are ignored.
func TestAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode       string
		wantConn   policy.ConnPlan
		wantKernel policy.KernelPlan
	}{
		{"echo", testConnPlan(), testKernelPlan()},
		{"backup", backupConnPlan(), backupKernelPlan()},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			p, _ := newExec(t, fakeConfig(t, tt.mode))
			start(t, p, policy.ModeUserspace)
			for i := range 3 {
				got := p.Conn(testView(policy.ModeUserspace), testConn(), testConnPlan())
				if diff := cmp.Diff(tt.wantConn, got, policytest.NetOpts); diff != "" {
					t.Errorf("Conn #%d (-want +got):\n%s", i, diff)
				}
			}
			gotK := p.Kernel(testView(policy.ModeKernel), testKernelPlan())
			if diff := cmp.Diff(tt.wantKernel, gotK, policytest.NetOpts); diff != "" {
				t.Errorf("Kernel (-want +got):\n%s", diff)
			}
			st := p.Stats()
			want := exec.Stats{Running: true, PID: st.PID, Plugin: "fake-" + tt.mode, Starts: 1, Requests: 4, Answers: 4}
			if diff := cmp.Diff(want, st); diff != "" {
				t.Errorf("Stats (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFallback: a plugin that hangs, crashes or breaks the protocol
// leaves the plan as it was given, and is restarted; one that answers
// with an error or a plan that does not validate leaves it too, but
// stays.
func TestFallback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode    string
		restart bool   // the plugin is killed and started again
		log     string // a warning about it ("a|b": either)
		stat    func(exec.Stats) uint64
	}{
		{"hang", true, "no answer in time", func(s exec.Stats) uint64 { return s.Timeouts }},
		{"crash:0", true, "plugin exited; restarting it", func(s exec.Stats) uint64 { return s.Crashes }},
		{"garbage", true, "bad line", nil},
		{"long", true, "bad line", nil},
		{"wrongid", true, "answer to another request", nil},
		// The extra line is read before the next request, or as its answer.
		{"unsolicited", true, "a line without a request|answer to another request", nil},
		{"invalid", false, "plugin answer rejected", func(s exec.Stats) uint64 { return s.Invalid }},
		{"error", false, "plugin error", func(s exec.Stats) uint64 { return s.Invalid }},
		{"wrongtype", false, "plugin answer rejected", func(s exec.Stats) uint64 { return s.Invalid }},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			cfg := fakeConfig(t, tt.mode)
			// A hang must time out soon; every other failure must be
			// read whole before the deadline, which a loaded machine can
			// stretch past even MaxTimeout for a 1 MiB line: the test
			// waits for the failure itself, not for a clock.
			if tt.mode == "hang" {
				cfg.Timeout = 50 * time.Millisecond
			}
			p, rec := newExec(t, cfg)
			if tt.mode != "hang" {
				exec.SetTimeout(p, time.Minute)
			}
			start(t, p, policy.ModeUserspace)
			pid := p.Stats().PID
			calls := 1
			if tt.mode == "unsolicited" {
				// The first answer is good; the extra line breaks the
				// second request.
				if diff := cmp.Diff(testConnPlan(), p.Conn(testView(policy.ModeUserspace), testConn(), testConnPlan()), policytest.NetOpts); diff != "" {
					t.Errorf("first Conn (-want +got):\n%s", diff)
				}
				calls = 2
			}
			// next is what the plan was before exec: the fakes that echo
			// would give it back too, so it carries a mark of its own.
			next := backupConnPlan()
			if got := p.Conn(testView(policy.ModeUserspace), testConn(), next); !cmp.Equal(backupConnPlan(), got, policytest.NetOpts) {
				t.Errorf("Conn = %+v, want next unchanged", got)
			}
			kgot := p.Kernel(testView(policy.ModeKernel), backupKernelPlan())
			if !cmp.Equal(backupKernelPlan(), kgot, policytest.NetOpts) {
				t.Errorf("Kernel = %+v, want next unchanged", kgot)
			}
			enginetest.Poll(t, "warning", func() string {
				for _, msg := range strings.Split(tt.log, "|") {
					if len(rec.find(msg)) > 0 {
						return ""
					}
				}
				return fmt.Sprintf("no %q in the log", tt.log)
			})
			st := p.Stats()
			if tt.stat != nil && tt.stat(st) == 0 {
				t.Errorf("Stats %+v: the counter of the failure is 0", st)
			}
			if st.Fallbacks < 1 || st.Answers != uint64(calls-1) {
				t.Errorf("Stats %+v: want a fallback and %d answers", st, calls-1)
			}
			if !tt.restart {
				if st.PID != pid || !st.Running || st.Starts != 1 {
					t.Errorf("Stats %+v: want the child %d kept", st, pid)
				}
				return
			}
			enginetest.Poll(t, "restart", func() string {
				st := p.Stats()
				if st.Starts < 2 || !st.Running || st.PID == pid {
					return fmt.Sprintf("stats %+v, first pid %d", st, pid)
				}
				return ""
			})
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("the first child %d is still there: kill 0: %v", pid, err)
			}
		})
	}
}

// TestNeverWaitsWhileDown: once a plugin missed its deadline, calls return
// at once with next until it is back; the hung one was waited for once.
func TestNeverWaitsWhileDown(t *testing.T) {
	t.Parallel()
	cfg := fakeConfig(t, "hang")
	cfg.Timeout = 200 * time.Millisecond
	cfg.RestartBackoff = exec.Backoff{Initial: time.Hour, Max: time.Hour}
	p, _ := newExec(t, cfg)
	start(t, p, policy.ModeUserspace)
	v, c := testView(policy.ModeUserspace), testConn()
	began := time.Now()
	p.Conn(v, c, testConnPlan())
	if d := time.Since(began); d < cfg.Timeout {
		t.Errorf("the first call returned after %s, before the timeout %s", d, cfg.Timeout)
	}
	began = time.Now()
	for range 20 {
		if got := p.Conn(v, c, backupConnPlan()); !cmp.Equal(backupConnPlan(), got, policytest.NetOpts) {
			t.Fatalf("Conn = %+v, want next", got)
		}
	}
	// A call that asked the plugin counts a request and, with nothing to
	// answer, a timeout (the Stats below). Had every call waited the
	// timeout without asking, the 20 would have taken 20 timeouts; the
	// bound is not tighter, as a loaded machine stretches 20 calls that
	// wait for nothing past one timeout (573 ms measured with two test
	// suites and a qemu guest on 2 CPUs).
	if d := time.Since(began); d >= 20*cfg.Timeout {
		t.Errorf("20 calls while the plugin is down took %s, as long as 20 timeouts", d)
	}
	st := p.Stats()
	if st.Requests != 1 || st.Timeouts != 1 || st.Fallbacks != 21 || st.Running {
		t.Errorf("Stats %+v: want 1 request, 1 timeout, 21 fallbacks, not running", st)
	}
}

// TestCrashAfter: a plugin that crashes after two answers falls back on
// the third request and answers again once restarted.
func TestCrashAfter(t *testing.T) {
	t.Parallel()
	p, rec := newExec(t, fakeConfig(t, "crash:2"))
	ready := make(chan struct{}, 10)
	p.OnReady(func() { ready <- struct{}{} })
	start(t, p, policy.ModeUserspace)
	v, c := testView(policy.ModeUserspace), testConn()
	for i := range 2 {
		if diff := cmp.Diff(backupConnPlan(), p.Conn(v, c, testConnPlan()), policytest.NetOpts); diff != "" {
			t.Errorf("Conn #%d (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff(testConnPlan(), p.Conn(v, c, testConnPlan()), policytest.NetOpts); diff != "" {
		t.Errorf("Conn after the crash (-want +got):\n%s", diff)
	}
	for n := range 2 {
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("OnReady called %d times, want 2", n)
		}
	}
	if diff := cmp.Diff(backupConnPlan(), p.Conn(v, c, testConnPlan()), policytest.NetOpts); diff != "" {
		t.Errorf("Conn after the restart (-want +got):\n%s", diff)
	}
	st := p.Stats()
	if st.Crashes != 1 || st.Starts != 2 || st.Answers != 3 || st.Fallbacks != 1 {
		t.Errorf("Stats %+v: want 1 crash, 2 starts, 3 answers, 1 fallback", st)
	}
	enginetest.Poll(t, "stderr logged", func() string {
		for _, r := range rec.find("plugin stderr") {
			if r.attrs["line"] == "fake: crashing" {
				return ""
			}
		}
		return "no stderr line in the log"
	})
	crash := rec.find("plugin exited; restarting it")
	if len(crash) != 1 || crash[0].attrs["status"] != "exit status 3" {
		t.Errorf("crash records %+v, want one with exit status 3", crash)
	}
}

// TestStart: a slow hello within the start timeout is waited for; one
// beyond it, a wrong version or no hello at all fail the start, and the
// plan passes through.
func TestStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode         string
		startTimeout time.Duration
		err          string
	}{
		{"slowhello:300ms", 5 * time.Second, ""},
		{"slowhello:10s", 100 * time.Millisecond, "exec: hello: no answer within 100ms"},
		{"badversion", 5 * time.Second, "exec: hello: the plugin speaks version 2, the daemon 1"},
		{"nohello", 5 * time.Second, `exec: hello: answer of type "conn", want "hello"`},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			cfg := fakeConfig(t, tt.mode)
			cfg.StartTimeout = tt.startTimeout
			p, rec := newExec(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := p.Start(ctx, policy.ModeUserspace)
			if diff := cmp.Diff(tt.err, policytest.ErrString(err)); diff != "" {
				t.Fatalf("Start error (-want +got):\n%s", diff)
			}
			got := p.Conn(testView(policy.ModeUserspace), testConn(), backupConnPlan())
			if tt.err == "" {
				if diff := cmp.Diff(backupConnPlan(), got, policytest.NetOpts); diff != "" {
					t.Errorf("Conn (-want +got):\n%s", diff)
				}
				return
			}
			if !cmp.Equal(backupConnPlan(), got, policytest.NetOpts) {
				t.Errorf("Conn = %+v, want next", got)
			}
			// It keeps trying, with backoff.
			enginetest.Poll(t, "retries", func() string {
				if st := p.Stats(); st.Starts < 3 || st.Running {
					return fmt.Sprintf("stats %+v", st)
				}
				return ""
			})
			if len(rec.find("plugin did not start; retrying")) == 0 {
				t.Errorf("no warning about the start")
			}
		})
	}
}

// TestBackoff: restarts wait twice as long each time, up to the maximum.
func TestBackoff(t *testing.T) {
	t.Parallel()
	cfg := fakeConfig(t, "badversion")
	cfg.RestartBackoff = exec.Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond}
	p, rec := newExec(t, cfg)
	p.Kernel(testView(policy.ModeKernel), testKernelPlan())
	want := []string{"10ms", "20ms", "40ms", "40ms", "40ms"}
	enginetest.Poll(t, "retries", func() string {
		var got []string
		for _, r := range rec.find("plugin did not start; retrying") {
			got = append(got, r.attrs["after"])
		}
		if len(got) < len(want) {
			return fmt.Sprintf("waits %q", got)
		}
		if diff := cmp.Diff(want, got[:len(want)]); diff != "" {
			t.Fatalf("waits (-want +got):\n%s", diff)
		}
		return ""
	})
}

// TestLazyStart: without Start, the first call starts the plugin and
// passes the plan through; OnReady tells when it is up.
func TestLazyStart(t *testing.T) {
	t.Parallel()
	p, _ := newExec(t, fakeConfig(t, "backup"))
	ready := make(chan struct{}, 1)
	p.OnReady(func() { ready <- struct{}{} })
	v := testView(policy.ModeKernel)
	if diff := cmp.Diff(testKernelPlan(), p.Kernel(v, testKernelPlan()), policytest.NetOpts); diff != "" {
		t.Errorf("first Kernel (-want +got):\n%s", diff)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after 10s")
	}
	if diff := cmp.Diff(backupKernelPlan(), p.Kernel(v, testKernelPlan()), policytest.NetOpts); diff != "" {
		t.Errorf("Kernel once up (-want +got):\n%s", diff)
	}
}

// TestModes: in a mode the configuration leaves out, the plan passes
// through and no plugin starts.
func TestModes(t *testing.T) {
	t.Parallel()
	cfg := fakeConfig(t, "backup")
	cfg.Modes = []policy.Mode{policy.ModeUserspace}
	p, _ := newExec(t, cfg)
	if err := p.Start(t.Context(), policy.ModeKernel); err != nil {
		t.Fatalf("Start(kernel): %v", err)
	}
	if diff := cmp.Diff(testKernelPlan(), p.Kernel(testView(policy.ModeKernel), testKernelPlan()), policytest.NetOpts); diff != "" {
		t.Errorf("Kernel (-want +got):\n%s", diff)
	}
	if st := p.Stats(); st != (exec.Stats{}) {
		t.Errorf("Stats %+v, want nothing started", st)
	}
	start(t, p, policy.ModeUserspace)
	if diff := cmp.Diff(backupConnPlan(), p.Conn(testView(policy.ModeUserspace), testConn(), testConnPlan()), policytest.NetOpts); diff != "" {
		t.Errorf("Conn (-want +got):\n%s", diff)
	}
}

// TestStderr: the plugin's standard error goes to the log, line by line,
// with the component and the plugin's name.
func TestStderr(t *testing.T) {
	t.Parallel()
	p, rec := newExec(t, fakeConfig(t, "stderr"))
	start(t, p, policy.ModeUserspace)
	p.Conn(testView(policy.ModeUserspace), testConn(), testConnPlan())
	enginetest.Poll(t, "stderr lines", func() string {
		var got []string
		for _, r := range rec.find("plugin stderr") {
			if r.attrs["component"] != "policy/exec" || r.attrs["plugin"] != "fake-stderr" || r.attrs["pid"] == "" {
				return fmt.Sprintf("record %+v lacks component, plugin or pid", r)
			}
			got = append(got, r.attrs["line"])
		}
		if want := "fake: first line|fake: second line"; strings.Join(got, "|") != want {
			return fmt.Sprintf("lines %q, want %q", got, want)
		}
		return ""
	})
}

// TestClose: Close stops the plugin and reaps it, with SIGKILL for one
// that ignores SIGTERM; afterwards calls pass the plan through and Start
// fails.
func TestClose(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"echo", "ignoreterm", "hang"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p, rec := newExec(t, fakeConfig(t, mode))
			// The one that ignores SIGTERM is killed after a short grace;
			// the others get one long enough for a loaded machine to
			// schedule their exit.
			grace := time.Minute
			if mode == "ignoreterm" {
				grace = 100 * time.Millisecond
			}
			exec.SetGrace(p, grace)
			start(t, p, policy.ModeUserspace)
			pid := p.Stats().PID
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("child %d still there after Close: kill 0: %v", pid, err)
			}
			killed := len(rec.find("plugin ignored SIGTERM; killing it")) > 0
			if killed != (mode == "ignoreterm") {
				t.Errorf("SIGKILL after the grace period: %v, want %v", killed, mode == "ignoreterm")
			}
			if got := p.Conn(testView(policy.ModeUserspace), testConn(), backupConnPlan()); !cmp.Equal(backupConnPlan(), got, policytest.NetOpts) {
				t.Errorf("Conn after Close = %+v, want next", got)
			}
			if err := p.Start(t.Context(), policy.ModeUserspace); !errors.Is(err, exec.ErrClosed) {
				t.Errorf("Start after Close: %v, want ErrClosed", err)
			}
			if st := p.Stats(); st.Starts != 1 || st.Crashes != 0 {
				t.Errorf("Stats %+v: want 1 start, no crash", st)
			}
		})
	}
}

// TestCloseWhileStarting: Close during a slow hello returns at once and
// leaves nothing behind.
func TestCloseWhileStarting(t *testing.T) {
	t.Parallel()
	p, _ := newExec(t, fakeConfig(t, "slowhello:1h"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Start(ctx, policy.ModeUserspace); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start: %v, want the context's deadline", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWhileWaiting: a Start that waits for the next attempt, while
// the policy backs off after a failed one, returns when Close is called.
func TestCloseWhileWaiting(t *testing.T) {
	t.Parallel()
	cfg := fakeConfig(t, "badversion")
	cfg.RestartBackoff = exec.Backoff{Initial: time.Hour, Max: time.Hour}
	p, _ := newExec(t, cfg)
	if err := p.Start(t.Context(), policy.ModeUserspace); err == nil {
		t.Fatal("Start succeeded with a plugin of another version")
	}
	errC := make(chan error, 1)
	go func() { errC <- p.Start(t.Context(), policy.ModeUserspace) }()
	// Start waits until the next attempt, in an hour, or Close.
	select {
	case err := <-errC:
		t.Fatalf("Start returned %v during the backoff", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errC:
		if !errors.Is(err, exec.ErrClosed) {
			t.Errorf("Start: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start still waiting 10s after Close")
	}
}

// BenchmarkRoundTrip measures one request and its answer with a plugin
// that echoes the plan.
func BenchmarkRoundTrip(b *testing.B) {
	b.ReportAllocs()
	p, _ := newExec(b, fakeConfig(b, "echo"))
	start(b, p, policy.ModeUserspace)
	v, c, next := testView(policy.ModeUserspace), testConn(), testConnPlan()
	for b.Loop() {
		p.Conn(v, c, next)
	}
	if st := p.Stats(); st.Fallbacks != 0 {
		b.Fatalf("%d fallbacks", st.Fallbacks)
	}
}
