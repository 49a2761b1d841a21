//go:build linux

package transparent

import (
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// typeFlags are the flags socket(2) accepts in its type argument.
const typeFlags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC

// filterProgram returns the classic-BPF program that traps exactly the
// calls wantsMPTCP accepts, made through the native ABI of architecture
// audit with socket number nr, and allows everything else. Only the low 32
// bits of each argument are read: socket(2) takes ints, and the kernel
// ignores the high bits too.
func filterProgram(audit, nr uint32) []bpf.Instruction {
	// Jump offsets count the instructions skipped; the comments give the
	// index each instruction has and where its branches go.
	return []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: offsetArch, Size: 4},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: audit, SkipFalse: 11}, // → 2 | 13
		/* 2 */ bpf.LoadAbsolute{Off: offsetNr, Size: 4},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: 9}, // → 4 | 13
		/* 4 */ bpf.LoadAbsolute{Off: argLow(0), Size: 4},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_INET, SkipTrue: 1}, // → 7 | 6
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.AF_INET6, SkipFalse: 6}, // → 7 | 13
		/* 7 */ bpf.LoadAbsolute{Off: argLow(1), Size: 4},
		/* 8 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: ^uint32(typeFlags)},
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.SOCK_STREAM, SkipFalse: 3}, // → 10 | 13
		/* 10 */ bpf.LoadAbsolute{Off: argLow(2), Size: 4},
		/* 11 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0, SkipTrue: 2}, // → 14 | 12
		/* 12 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.IPPROTO_TCP, SkipTrue: 1}, // → 14 | 13
		/* 13 */ bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
		/* 14 */ bpf.RetConstant{Val: unix.SECCOMP_RET_USER_NOTIF},
	}
}

// assembleFilter assembles filterProgram for the native architecture into
// the form seccomp(2) takes.
func assembleFilter() ([]unix.SockFilter, error) {
	audit, err := nativeAuditArch()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(filterProgram(audit, unix.SYS_SOCKET))
	if err != nil {
		return nil, fmt.Errorf("transparent: assemble filter: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// socketCall is one socket(2) call as the supervisor sees it.
type socketCall struct {
	family, typ, protocol int32
}

// wantsMPTCP reports whether a socket(2) call is one to answer with an
// MPTCP socket: AF_INET or AF_INET6, SOCK_STREAM with no flag but
// SOCK_NONBLOCK and SOCK_CLOEXEC, protocol 0 or IPPROTO_TCP. The filter
// traps the same calls; the supervisor checks again what the kernel hands
// it.
func (c socketCall) wantsMPTCP() bool {
	return (c.family == unix.AF_INET || c.family == unix.AF_INET6) &&
		c.typ&^typeFlags == unix.SOCK_STREAM &&
		(c.protocol == 0 || c.protocol == unix.IPPROTO_TCP)
}
