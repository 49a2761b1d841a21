package bpf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
)

// childEnv makes the test binary act as a child that runs the decision
// or opens sockets in its own uid and cgroup (see TestMain); childUIDEnv
// is the real uid it takes, and childDropEnv makes it take the uid as its
// effective and saved uid too, which drops every capability.
const (
	childEnv     = "MPTCPGOD_BPF_CHILD"
	childUIDEnv  = "MPTCPGOD_BPF_UID"
	childDropEnv = "MPTCPGOD_BPF_DROP"
)

// Child modes.
const (
	childDecide  = "decide"  // run the test program (fd 3) on every call
	childSockets = "sockets" // open every call's socket, report SO_PROTOCOL
	childProbe   = "probe"   // run Probe
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

// call is one socket() call's arguments.
type call struct{ Family, Type, Protocol int32 }

// outcome is what a child saw for one call: the protocol the decision
// chose (decide), or the socket's SO_PROTOCOL or errno (sockets).
type outcome struct {
	Protocol int32
	Errno    string `json:",omitempty"`
}

// childReport is a child's answer on stdout.
type childReport struct {
	Outcomes []outcome `json:",omitempty"`
	// Probe is Probe's error: "" for nil, else Step and Reason.
	ProbeStep, ProbeReason string
	ProbeOK                bool
}

// runChild reads the calls from stdin, acts and writes a childReport.
func runChild(mode string) int {
	var calls []call
	if err := json.NewDecoder(os.Stdin).Decode(&calls); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	uid, err := strconv.Atoi(os.Getenv(childUIDEnv))
	if err == nil {
		// The whole process (every thread) takes the uid.
		if os.Getenv(childDropEnv) == "1" {
			err = syscall.Setresuid(uid, uid, uid)
		} else {
			err = syscall.Setresuid(uid, -1, -1)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: uid:", err)
		return 1
	}
	var rep childReport
	switch mode {
	case childDecide:
		prog, err := ebpf.NewProgramFromFD(3)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return 1
		}
		t := &Tester{prog: prog}
		for _, c := range calls {
			p, err := t.Decide(c.Family, c.Type, c.Protocol)
			if err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				return 1
			}
			rep.Outcomes = append(rep.Outcomes, outcome{Protocol: p})
		}
	case childSockets:
		for _, c := range calls {
			rep.Outcomes = append(rep.Outcomes, openSocket(c))
		}
	case childProbe:
		err := Probe()
		rep.ProbeOK = err == nil
		if ue, ok := err.(*UnavailableError); ok {
			rep.ProbeStep, rep.ProbeReason = string(ue.Step), ue.Reason
		} else if err != nil {
			rep.ProbeReason = err.Error()
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 1
	}
	return 0
}

// openSocket makes the call and returns the socket's SO_PROTOCOL.
func openSocket(c call) outcome {
	fd, err := unix.Socket(int(c.Family), int(c.Type), int(c.Protocol))
	if err != nil {
		return outcome{Errno: unix.ErrnoName(err.(unix.Errno))}
	}
	defer unix.Close(fd)
	p, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return outcome{Errno: "SO_PROTOCOL: " + err.Error()}
	}
	return outcome{Protocol: int32(p)}
}

// child describes where and as whom a child runs.
type child struct {
	cgroup string // cgroup directory to start in
	uid    uint32 // real uid
	drop   bool   // the effective and saved uid too: no capabilities
	// caps, when set, start the child as uid (not root) with these
	// ambient capabilities and no others, as systemd starts a service
	// with User= and AmbientCapabilities=.
	caps []uintptr
	prog *ebpf.Program
}

// run starts the test binary as a child in mode and returns its report.
func (c child) run(t *testing.T, mode string, calls []call) childReport {
	t.Helper()
	cg, err := os.Open(c.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	in, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Args[0]
	if c.caps != nil {
		bin = executableFor(t, c.uid)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, childUIDEnv+"="+strconv.Itoa(int(c.uid)))
	if c.drop {
		cmd.Env = append(cmd.Env, childDropEnv+"=1")
	}
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if c.caps != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.uid, Gid: c.uid}
		cmd.SysProcAttr.AmbientCaps = c.caps
	}
	if c.prog != nil {
		f := os.NewFile(uintptr(c.prog.FD()), "prog")
		cmd.ExtraFiles = []*os.File{f}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s in %s as uid %d: %v", mode, c.cgroup, c.uid, err)
	}
	var rep childReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("child %s: %v: %q", mode, err, out)
	}
	return rep
}

// executableFor returns a copy of the test binary that uid can execute,
// removed by t.Cleanup: the go command builds it in a directory only
// root may enter.
func executableFor(t *testing.T, uid uint32) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mgt-bpf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, filepath.Base(os.Args[0]))
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, int(uid), -1); err != nil {
		t.Fatal(err)
	}
	return p
}

// needRoot skips without root, or fails when CI is "true".
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "bpf: loading programs needs root")
	}
}

// testCgroups creates a cgroup tree of its own under the cgroup v2 root,
// removed by t.Cleanup:
//
//	ROOT/mgt-bpf-PID-NAME/          top
//	                      unit.service/      unit
//	                      unit.service/sub/  sub
//	                      other.service/     other
type testCgroups struct{ top, unit, sub, other string }

func newTestCgroups(t *testing.T) testCgroups {
	t.Helper()
	root, err := CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(root, "mgt-bpf-"+strconv.Itoa(os.Getpid())+"-"+t.Name())
	cg := testCgroups{top: top, unit: filepath.Join(top, "unit.service"),
		sub: filepath.Join(top, "unit.service", "sub"), other: filepath.Join(top, "other.service")}
	for _, d := range []string{cg.top, cg.unit, cg.sub, cg.other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// Children have exited (Output waits), so the cgroups are empty.
		for _, d := range []string{cg.sub, cg.unit, cg.other, cg.top} {
			if err := os.Remove(d); err != nil {
				t.Errorf("remove test cgroup: %v", err)
			}
		}
	})
	return cg
}

// cgroupID is CgroupID that fails the test.
func cgroupID(t *testing.T, path string) uint64 {
	t.Helper()
	id, err := CgroupID(path)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
