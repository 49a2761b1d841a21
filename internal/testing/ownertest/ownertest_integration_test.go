package ownertest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/testing/runtest"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

// TestSystemSliceShared: two tests use system.slice at once, as
// cmd/mptcpctl's and internal/daemon's do when make test runs their
// packages side by side. The one that came first, and made system.slice
// where there was none, leaves first; it kills and removes only
// its own cgroup: a process in the other's cgroup still answers, and
// system.slice is still there. Once both have left and no other test
// holds the cgroup root's lock, no system.slice a test made is left.
func TestSystemSliceShared(t *testing.T) {
	if os.Geteuid() != 0 {
		runtest.Unavailable(t, "ownertest: needs root to make cgroups")
	}
	root, err := bpf.CgroupRoot()
	if err != nil {
		runtest.Unavailable(t, fmt.Sprintf("ownertest: no cgroup v2: %v", err))
	}
	var slice string
	entered, joined, left := make(chan struct{}), make(chan struct{}), make(chan struct{})
	t.Run("both", func(t *testing.T) {
		t.Run("first", func(t *testing.T) {
			t.Parallel()
			t.Cleanup(func() { close(left) })
			a := SystemSlice(t)
			in, out := cat(t, a.New(fmt.Sprintf("mgt-ownertest-%d-a.service", os.Getpid())))
			close(entered)
			<-joined
			echo(t, in, out, "the first test's process")
		})
		t.Run("second", func(t *testing.T) {
			t.Parallel()
			<-entered
			b := SystemSlice(t)
			slice = b.Top()
			in, out := cat(t, b.New(fmt.Sprintf("mgt-ownertest-%d-b.service", os.Getpid())))
			close(joined)
			<-left
			if _, err := os.Stat(slice); err != nil {
				t.Fatalf("after the first test left: %v", err)
			}
			echo(t, in, out, "after the first test left, the second's process")
		})
	})

	lock, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Logf("another test uses system.slice (%v): not checking its removal", err)
		return
	}
	if _, err := unix.Getxattr(slice, sliceMark, nil); err == nil {
		t.Errorf("%s, made by a test, is left after every test left it", slice)
	}
}

// cat starts cat in the cgroup dir and returns its stdin and stdout.
func cat(t *testing.T, dir string) (io.Writer, *bufio.Reader) {
	t.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command("cat")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Wait()
	})
	return in, bufio.NewReader(out)
}

// echo checks that cat still answers.
func echo(t *testing.T, in io.Writer, out *bufio.Reader, who string) {
	t.Helper()
	if _, err := io.WriteString(in, "ping\n"); err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	if line, err := out.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("%s answered %q, %v; want ping", who, line, err)
	}
}
