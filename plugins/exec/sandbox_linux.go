//go:build linux

package exec

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// The children are forked by the spawner (reap_linux.go), a goroutine
// locked to a thread of its own for the daemon's life, and a child starts
// with the credentials of the thread that forked it: capabilities,
// securebits and no_new_privs are a thread's. The spawner's thread drops
// them all once, before its first fork, and the rest of the daemon keeps
// its CAP_NET_ADMIN.

// Linux constants syscall lacks (include/uapi/linux/prctl.h, capability.h,
// securebits.h, asm-generic/resource.h).
const (
	prSetChildSubreaper   = 36
	prGetSecurebits       = 27
	prSetNoNewPrivs       = 38
	prCapAmbient          = 47
	prCapAmbientClearAll  = 4
	linuxCapabilityV3     = 0x20080522
	lastCap               = 63 // beyond the kernel's last: PR_CAPBSET_DROP of an unknown one is EINVAL
	rlimitNproc           = 6
	secbitNoRoot          = 1 << 0
	secbitNoRootLocked    = 1 << 1
	secbitNoSetuidFixup   = 1 << 2
	secbitNoSetuidLocked  = 1 << 3
	secbitKeepCapsLocked  = 1 << 5
	secbitNoAmbientRaise  = 1 << 6
	secbitNoAmbientLocked = 1 << 7
)

// sysProcAttr puts the child in a process group of its own and has the
// kernel kill it when the daemon's spawner thread, and so the daemon, dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// limit sets the resource limits of the started child pid, soft and
// hard, so that it cannot raise them: those of lim that are not 0, and no
// core dumps. They take hold as the program starts, before it asks the
// daemon anything.
func limit(pid int, lim Limits) error {
	for _, l := range []struct {
		name     string
		resource int
		v        uint64
	}{
		{"core", syscall.RLIMIT_CORE, 0},
		{"memory", syscall.RLIMIT_DATA, lim.Memory},
		{"open files", syscall.RLIMIT_NOFILE, lim.OpenFiles},
		{"processes", rlimitNproc, lim.Processes},
	} {
		if l.v == 0 && l.resource != syscall.RLIMIT_CORE {
			continue
		}
		r := syscall.Rlimit{Cur: l.v, Max: l.v}
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(l.resource),
			uintptr(unsafe.Pointer(&r)), 0, 0, 0); errno != 0 {
			return fmt.Errorf("exec: limit the program's %s to %d: %w", l.name, l.v, errno)
		}
	}
	return nil
}

// dropPrivileges leaves the calling thread, and what it forks and
// executes, no capability:
// no_new_privs (no setuid bit or file capability gives any back), no
// ambient capability, and as far as the daemon's own privileges allow
// (CAP_SETPCAP; the unit's seccomp filter may refuse capset), an empty
// bounding set, securebits that give uid 0 no capability, and empty
// capability sets. The first two always succeed for a process that may
// run at all, and are what the hardened unit's non-root daemon needs: its
// program then execs with no capability.
func dropPrivileges() error {
	if err := prctl(prSetNoNewPrivs, 1); err != nil {
		return fmt.Errorf("exec: no_new_privs: %w", err)
	}
	if err := prctl(prCapAmbient, prCapAmbientClearAll); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("exec: clear the ambient capabilities: %w", err)
	}
	for c := 0; c <= lastCap; c++ {
		if err := prctl(syscall.PR_CAPBSET_DROP, uintptr(c)); errors.Is(err, syscall.EINVAL) {
			break // past the kernel's last capability
		} else if errors.Is(err, syscall.EPERM) {
			break // no CAP_SETPCAP: the bounding set stays
		}
	}
	// Locked, so that nothing the program runs can turn them off; these
	// need CAP_SETPCAP too.
	_ = prctl(syscall.PR_SET_SECUREBITS, secbitNoRoot|secbitNoRootLocked|secbitNoSetuidFixup|secbitNoSetuidLocked|
		secbitKeepCapsLocked|secbitNoAmbientRaise|secbitNoAmbientLocked)
	hdr := struct {
		version uint32
		pid     int32
	}{linuxCapabilityV3, 0}
	var data [2]struct{ effective, permitted, inheritable uint32 }
	if _, _, errno := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); errno != 0 &&
		errno != syscall.EPERM {
		return fmt.Errorf("exec: capset: %w", errno)
	}
	return nil
}

// checkDropped refuses to execute path from the calling thread when it
// could have a capability:
// an ambient one left; uid 0 whose capabilities the thread could not take
// away (no CAP_SETPCAP for the securebits and the bounding set); or a
// permitted one left (the unit's seccomp filter may refuse capset) with a
// program that has file capabilities, which no_new_privs caps at the
// permitted set.
func checkDropped(path string) error {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return fmt.Errorf("exec: read the thread's capabilities: %w", err)
	}
	caps := map[string]uint64{}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		if caps[k], err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
			return fmt.Errorf("exec: read the thread's capabilities: %s: %w", k, err)
		}
	}
	bits, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetSecurebits, 0, 0)
	switch {
	case errno != 0:
		return fmt.Errorf("exec: read the securebits: %w", errno)
	case caps["CapAmb"] != 0:
		return fmt.Errorf("exec: ambient capabilities %#x left", caps["CapAmb"])
	case syscall.Geteuid() == 0 && bits&secbitNoRoot == 0 && caps["CapBnd"] != 0:
		return fmt.Errorf("exec: uid 0 without CAP_SETPCAP: the program would get the capabilities %#x; "+
			"run mptcpgod as a user of its own (the systemd unit does)", caps["CapBnd"])
	case caps["CapPrm"] != 0:
		if _, err := syscall.Getxattr(path, "security.capability", nil); err == nil {
			return fmt.Errorf("exec: %s has file capabilities, and the capabilities %#x could not be dropped", path, caps["CapPrm"])
		}
	}
	return nil
}

func prctl(option int, arg uintptr) error {
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, uintptr(option), arg, 0, 0, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// becomeSubreaper makes the daemon the reaper of its children's orphans:
// a process a program left behind by leaving its process group (setsid)
// and losing its parent becomes the daemon's child, which reapOrphans
// finds and kills.
func becomeSubreaper() error {
	if err := prctl(prSetChildSubreaper, 1); err != nil {
		return fmt.Errorf("exec: become the reaper of orphaned descendants: %w", err)
	}
	return nil
}
