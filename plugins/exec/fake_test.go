package exec_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mptcpgod/mptcpgod/policy"
)

// fakeEnv names the variable that turns the test binary into a fake
// plugin: its value is the behaviour, "mode" or "mode:argument".
const fakeEnv = "MPTCPGOD_EXEC_FAKE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fake(mode))
	}
	// The spawner keeps a thread for the children's parent-death signal.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/mptcpgod/mptcpgod/plugins/exec.spawner"))
}

// fakeRequest is what the fake reads of a request.
type fakeRequest struct {
	Type    string          `json:"type"`
	ID      uint64          `json:"id"`
	Version int             `json:"version"`
	Mode    string          `json:"mode"`
	Next    json.RawMessage `json:"next"`
}

// fake is a plugin whose behaviour mode selects:
//
//	echo          answers with next
//	backup        answers with next, every path and endpoint made backup
//	hang          answers the hello, then nothing
//	crash:N       as backup for N requests, then exits 3 on reading the next
//	garbage       answers with a line that is not JSON
//	wrongid       answers with the id of the request plus one
//	invalid       answers with a plan that does not validate
//	error         answers with an error
//	wrongtype     answers a kernel request as conn and the reverse
//	long          answers with a line longer than MaxLine
//	unsolicited   as echo, and writes an extra line after the first answer
//	slowhello:D   as echo, after sleeping D before the hello
//	badversion    says hello with version 2
//	nohello       answers the hello as if it were a request
//	stderr        as echo, and writes two lines to standard error on the first request
//	ignoreterm    as echo, ignores SIGTERM and the end of its input
//	report:FILE   as echo, after writing what it was given (sandboxReport) to FILE
//	orphan:FILE   as ignoreterm, after starting a sleeper in a session of its own
//	sleeper:FILE  ignores SIGTERM, writes its pid to FILE and sleeps for ever
//
// It exits 0 at the end of its input, unless told otherwise.
func fake(spec string) int {
	mode, arg, _ := strings.Cut(spec, ":")
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 16<<20)
	out := bufio.NewWriter(os.Stdout)
	write := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		out.Write(append(b, '\n'))
		out.Flush()
	}
	switch mode {
	case "ignoreterm", "orphan":
		signal.Ignore(syscall.SIGTERM)
	case "sleeper":
		signal.Ignore(syscall.SIGTERM)
		if err := os.WriteFile(arg, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			panic(err)
		}
		select {}
	case "report":
		if err := writeReport(arg); err != nil {
			fmt.Fprintf(os.Stderr, "fake: report: %v\n", err)
			return 2
		}
	}
	if mode == "orphan" {
		self, err := os.Executable()
		if err != nil {
			panic(err)
		}
		sleeper := osexec.Command(self)
		sleeper.Env = []string{fakeEnv + "=sleeper:" + arg}
		sleeper.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := sleeper.Start(); err != nil {
			panic(err)
		}
	}
	if mode == "slowhello" {
		d, err := time.ParseDuration(arg)
		if err != nil {
			panic(err)
		}
		time.Sleep(d)
	}
	answered := 0
	for in.Scan() {
		var r fakeRequest
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			fmt.Fprintf(os.Stderr, "fake: bad request: %v\n", err)
			return 2
		}
		if r.Type == "hello" {
			switch mode {
			case "badversion":
				write(map[string]any{"type": "hello", "version": 2, "name": "fake"})
			case "nohello":
				write(map[string]any{"type": "conn", "id": 0, "plan": map[string]any{}})
			default:
				write(map[string]any{"type": "hello", "version": 1, "name": "fake-" + mode, "extra": "ignored"})
			}
			continue
		}
		plan := r.Next
		if mode == "stderr" && answered == 0 {
			fmt.Fprintln(os.Stderr, "fake: first line")
			fmt.Fprintln(os.Stderr, "fake: second line")
		}
		switch mode {
		case "hang":
			continue
		case "crash":
			n, _ := strconv.Atoi(arg)
			if answered >= n {
				fmt.Fprintln(os.Stderr, "fake: crashing")
				return 3
			}
			plan = allBackup(r.Type, r.Next)
		case "backup":
			plan = allBackup(r.Type, r.Next)
		case "garbage":
			out.WriteString("this is not JSON\n")
			out.Flush()
			continue
		case "wrongid":
			r.ID++
		case "invalid":
			plan = json.RawMessage(`{"paths":[{"local":"192.0.2.1","remote":"203.0.113.1:0"}],"endpoints":[{"subflow":true}]}`)
		case "error":
			write(map[string]any{"type": "error", "id": r.ID, "message": "fake: no idea"})
			continue
		case "wrongtype":
			if r.Type == "conn" {
				r.Type = "kernel"
			} else {
				r.Type = "conn"
			}
		case "long":
			out.WriteString(`{"type":"conn","id":` + strconv.FormatUint(r.ID, 10) + `,"pad":"` + strings.Repeat("x", 1<<20) + "\"}\n")
			out.Flush()
			continue
		}
		write(map[string]any{"type": r.Type, "id": r.ID, "plan": plan, "extra": true})
		answered++
		if mode == "unsolicited" && answered == 1 {
			write(map[string]any{"type": r.Type, "id": r.ID, "plan": plan})
		}
	}
	if mode == "ignoreterm" || mode == "orphan" {
		select {}
	}
	return 0
}

// sandboxReport is what the report fake found it was given.
type sandboxReport struct {
	// Caps are the CapInh, CapPrm, CapEff, CapBnd and CapAmb lines of
	// /proc/self/status, NoNewPrivs its line.
	Caps       map[string]string
	NoNewPrivs string
	Dir        string
	Env        []string
	// Limits are the soft and hard limits by resource number.
	Limits map[int][2]uint64
	PID    int
	PGID   int
}

func writeReport(file string) error {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	r := sandboxReport{Caps: map[string]string{}, Limits: map[int][2]uint64{}, Env: os.Environ(), PID: os.Getpid()}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case strings.HasPrefix(k, "Cap"):
			r.Caps[k] = strings.TrimSpace(v)
		case k == "NoNewPrivs":
			r.NoNewPrivs = strings.TrimSpace(v)
		}
	}
	if r.Dir, err = os.Getwd(); err != nil {
		return err
	}
	if r.PGID, err = syscall.Getpgid(0); err != nil {
		return err
	}
	for _, res := range []int{syscall.RLIMIT_CORE, syscall.RLIMIT_DATA, syscall.RLIMIT_NOFILE, 6 /* RLIMIT_NPROC */} {
		var l syscall.Rlimit
		if err := syscall.Getrlimit(res, &l); err != nil {
			return err
		}
		r.Limits[res] = [2]uint64{l.Cur, l.Max}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}

// allBackup returns the plan next with every path and endpoint backup.
func allBackup(typ string, next json.RawMessage) json.RawMessage {
	var b []byte
	var err error
	if typ == "kernel" {
		var p policy.KernelPlan
		if err := json.Unmarshal(next, &p); err != nil {
			panic(err)
		}
		for i := range p.Endpoints {
			p.Endpoints[i].Backup = true
		}
		b, err = json.Marshal(p)
	} else {
		var p policy.ConnPlan
		if err := json.Unmarshal(next, &p); err != nil {
			panic(err)
		}
		for i := range p.Paths {
			p.Paths[i].Backup = true
		}
		b, err = json.Marshal(p)
	}
	if err != nil {
		panic(err)
	}
	return b
}
