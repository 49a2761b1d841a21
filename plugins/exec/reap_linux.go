//go:build linux

package exec

import (
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs keeps what it takes to start programs and to find what they left
// behind. Its lock is held while a program starts and while orphans are
// reaped, so that a program just started is never taken for an orphan.
var procs struct {
	sync.Mutex
	// spawnC hands the starts to the spawner, a goroutine locked to a
	// thread of its own that never ends: the kernel sends a child its
	// parent-death signal when the thread that started it ends, not the
	// process.
	spawnC chan spawnRequest
	// leaders are the pids of the programs started and not yet reaped,
	// each the leader of its own process group; groups are the process
	// groups whose members may still be around.
	leaders map[int]bool
	groups  map[int]bool
	// session is the daemon's session id: a child of the daemon in
	// another session is a program's descendant that called setsid.
	session int
}

type spawnRequest struct {
	cmd  *osexec.Cmd
	lim  Limits
	done chan error
}

// start starts cmd from the spawner thread, which has no capability, with
// the resource limits lim and the daemon as the reaper of the orphans its
// program leaves, and registers it.
func start(cmd *osexec.Cmd, lim Limits) error {
	procs.Lock()
	defer procs.Unlock()
	if procs.spawnC == nil {
		if err := becomeSubreaper(); err != nil {
			return err
		}
		sid, err := sessionOf(os.Getpid())
		if err != nil {
			return fmt.Errorf("exec: the daemon's session: %w", err)
		}
		procs.session = sid
		procs.leaders, procs.groups = map[int]bool{}, map[int]bool{}
		procs.spawnC = make(chan spawnRequest)
		go spawner(procs.spawnC)
	}
	done := make(chan error, 1)
	procs.spawnC <- spawnRequest{cmd: cmd, lim: lim, done: done}
	if err := <-done; err != nil {
		return err
	}
	procs.leaders[cmd.Process.Pid] = true
	procs.groups[cmd.Process.Pid] = true
	return nil
}

// spawner starts the children. Its thread drops its privileges first
// (dropPrivileges): every child forked from it starts with none; when they
// cannot all be dropped, it starts none and says why.
func spawner(reqs <-chan spawnRequest) {
	runtime.LockOSThread()
	dropped := dropPrivileges()
	for r := range reqs {
		r.done <- spawnOne(r, dropped)
	}
}

// spawnOne starts one child from the spawner's thread.
func spawnOne(r spawnRequest, dropped error) error {
	if dropped != nil {
		return dropped
	}
	if err := checkDropped(r.cmd.Path); err != nil {
		return err
	}
	if err := r.cmd.Start(); err != nil {
		return err
	}
	if err := limit(r.cmd.Process.Pid, r.lim); err != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		return err
	}
	return nil
}

// reaped forgets the leader pid, reaped by its Wait, then kills and reaps
// the orphans its program may have left.
func reaped(pid int) {
	procs.Lock()
	delete(procs.leaders, pid)
	procs.Unlock()
	reapOrphans()
}

// orphanRounds bounds the rounds of reapOrphans (each round takes one
// generation of a tree of orphans), and orphanWait how long each waits
// for what it killed.
const (
	orphanRounds = 64
	orphanWait   = time.Second
)

// reapOrphans kills and reaps the children of the daemon that programs
// left behind: those in a program's process group, and those that left
// for a session of their own. Killing one makes its children the
// daemon's, so it goes on until a round finds none.
func reapOrphans() {
	procs.Lock()
	defer procs.Unlock()
	for range orphanRounds {
		orphans, seen := orphanChildren()
		for g := range procs.groups {
			if !procs.leaders[g] && !seen[g] {
				delete(procs.groups, g)
			}
		}
		if len(orphans) == 0 {
			return
		}
		for _, pid := range orphans {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		deadline := time.Now().Add(orphanWait)
		for _, pid := range orphans {
			for {
				var ws syscall.WaitStatus
				n, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
				if n == pid || err != nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
}

// orphanChildren returns the daemon's children that programs left behind,
// and the process groups of the daemon's children; procs is locked.
func orphanChildren() ([]int, map[int]bool) {
	var out []int
	seen := map[int]bool{}
	for _, pid := range children() {
		if procs.leaders[pid] {
			continue
		}
		pgid, sid, err := groupOf(pid)
		if err != nil {
			continue // gone
		}
		seen[pgid] = true
		if procs.groups[pgid] || sid != procs.session {
			out = append(out, pid)
		}
	}
	return out, seen
}

// children lists the daemon's children: those of each of its threads.
func children() []int {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(w); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// groupOf returns the process group and the session of pid, from
// /proc/PID/stat.
func groupOf(pid int) (pgid, sid int, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name, in parentheses, may hold anything: the fields
	// after it are "state ppid pgrp session ...".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return 0, 0, errors.New("malformed stat")
	}
	if pgid, err = strconv.Atoi(f[2]); err == nil {
		sid, err = strconv.Atoi(f[3])
	}
	return pgid, sid, err
}

// sessionOf returns the session of pid.
func sessionOf(pid int) (int, error) {
	_, sid, err := groupOf(pid)
	return sid, err
}
