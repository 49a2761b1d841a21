//go:build linux

package transparent_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/netnstest"
	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/testing/syncbuf"
)

// nobody is the uid and gid the programs drop to.
const nobody = "65534"

// cgroupSeq makes the names of the tests' cgroups unique.
var cgroupSeq atomic.Uint64

// newCgroup creates a cgroup v2 group for the test and returns its open
// directory, for SysProcAttr.CgroupFD. At cleanup it kills what is left
// in it and removes it.
func newCgroup(t *testing.T) *os.File {
	t.Helper()
	root := cgroup2Mount(t)
	dir := filepath.Join(root, fmt.Sprintf("mgt-%d-run-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.Close()
		_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
		waitFor(t, "the test's cgroup to empty", func() (bool, string) {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
			return strings.Contains(string(b), "populated 0"), string(b)
		})
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	})
	return f
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if fs := strings.Fields(post); ok && len(fs) > 0 && fs[0] == "cgroup2" {
			if f := strings.Fields(pre); len(f) > 4 {
				return f[4]
			}
		}
	}
	runtest.Unavailable(t, "no cgroup v2 hierarchy mounted")
	return ""
}

// ssUID and ssCgroup pick the owner and the cgroup out of an ss -e
// --cgroup record.
var (
	ssUID    = regexp.MustCompile(`\buid:(\d+)`)
	ssCgroup = regexp.MustCompile(`\bcgroup:(\S+)`)
)

// listener returns the ss record of the listener on addr among recs.
func listener(recs []string, addr string) string {
	for _, r := range recs {
		if strings.Contains(r, " "+addr+" ") {
			return r
		}
	}
	return ""
}

// TestRunOwner: a socket made for a program under mptcpctl run is the
// program's, not the supervisor's: its owner is the program's uid after
// the program dropped privileges (sock_diag shows it, and an `ip rule
// uidrange` rule applies to it), and its cgroup is the program's, the one
// a socket the same program makes without run has.
func TestRunOwner(t *testing.T) {
	t.Parallel()
	busybox := staticBusybox(t)
	setpriv := need(t, "setpriv", "util-linux")
	ctl := binary(t, "mptcpctl")
	tb := netnstest.NewTestbed(t, 1)
	cg := newCgroup(t)
	srv := tb.Links[0].Server4.String()
	dropTo := []string{setpriv, "--reuid=" + nobody, "--regid=" + nobody, "--clear-groups"}

	// Two busybox httpd as nobody in a cgroup of their own: one under run,
	// one without; and the test's own MPTCP listener in its cgroup.
	dir := worldReadableDir(t)
	underRun := net.JoinHostPort(srv, "8090")
	direct := net.JoinHostPort(srv, "8091")
	ours := net.JoinHostPort(srv, "8092")
	var logs syncbuf.Buffer
	for _, argv := range [][]string{
		append(append([]string{ctl, "run"}, dropTo...), busybox, "httpd", "-f", "-p", underRun, "-h", dir),
		append(append([]string{}, dropTo...), busybox, "httpd", "-f", "-p", direct, "-h", dir),
	} {
		cmd := tb.Server.Command(argv[0], argv[1:]...)
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(cg.Fd())
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	tb.Server.Listen("tcp", ours)
	var mptcpRecs, tcpRecs []string
	waitFor(t, "the three listeners", func() (bool, string) {
		mptcpRecs = tb.Server.SSRecords("-M", "-l", "-e", "--cgroup")
		tcpRecs = tb.Server.SSRecords("-t", "-l", "-e", "--cgroup")
		return listener(mptcpRecs, underRun) != "" && listener(tcpRecs, direct) != "" && listener(mptcpRecs, ours) != "",
			strings.Join(append(mptcpRecs, tcpRecs...), "; ") + "; the servers said: " + logs.String()
	})
	runRec, directRec, oursRec := listener(mptcpRecs, underRun), listener(tcpRecs, direct), listener(mptcpRecs, ours)
	if m := ssUID.FindStringSubmatch(runRec); m == nil || m[1] != nobody {
		t.Errorf("the listener made under run is not owned by uid %s: %s", nobody, runRec)
	}
	runCg, directCg, oursCg := ssCgroup.FindStringSubmatch(runRec), ssCgroup.FindStringSubmatch(directRec), ssCgroup.FindStringSubmatch(oursRec)
	switch {
	case runCg == nil || directCg == nil || oursCg == nil:
		t.Errorf("no cgroup in the ss records:\n%s\n%s\n%s", runRec, directRec, oursRec)
	case directCg[1] == oursCg[1]:
		t.Errorf("the program's cgroup is the test's (%s): the test cannot tell them apart", oursCg[1])
	case runCg[1] != directCg[1]:
		t.Errorf("the listener made under run is in cgroup %s, the program's own sockets in %s", runCg[1], directCg[1])
	}

	// uidrange: nobody may not reach the server; root may.
	tb.Client.MustExec("ip", "rule", "add", "uidrange", nobody+"-"+nobody, "prohibit", "pref", "10")
	url := "http://" + net.JoinHostPort(srv, "8090") + "/"
	wget := []string{busybox, "wget", "-q", "-O", "/dev/null", url}
	for _, tt := range []struct {
		name string
		argv []string
		ok   bool
	}{
		{"root under run", append([]string{ctl, "run"}, wget...), true},
		{"nobody without run", append(append([]string{}, dropTo...), wget...), false},
		{"nobody under run", append(append([]string{ctl, "run"}, dropTo...), wget...), false},
	} {
		out, err := tb.Client.Command(tt.argv[0], tt.argv[1:]...).CombinedOutput()
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v %s; want success %v (uidrange %s prohibit)", tt.name, err, out, tt.ok, nobody)
		}
	}
}

// worldReadableDir returns a directory with an index.html that a program
// running as nobody can serve, removed at cleanup.
func worldReadableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mptcpgod-www-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("index\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
