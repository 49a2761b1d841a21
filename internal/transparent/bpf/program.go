package bpf

import (
	"github.com/cilium/ebpf/asm"
)

// Socket constants of the decision; x/sys/unix has them, but the
// decision is written against the kernel ABI, which fixes them.
const (
	afInet      = 2   // AF_INET
	afInet6     = 10  // AF_INET6
	sockStream  = 1   // SOCK_STREAM
	sockTypeMsk = 0xf // SOCK_TYPE_MASK: the type without SOCK_NONBLOCK, SOCK_CLOEXEC
	ipprotoTCP  = 6   // IPPROTO_TCP
	// IPProtoMPTCP is IPPROTO_MPTCP, what a selected call's protocol
	// becomes.
	IPProtoMPTCP = 262
)

// MaxDepth is the deepest cgroup level the decision looks at: a cgroup
// selects the tasks of cgroups at most MaxDepth levels below the root.
// systemd's system services sit at level 2 (system.slice/NAME.service),
// a user's at level 5 or 6.
const MaxDepth = 16

// Map names, as the decision refers to them.
const (
	uidMapName    = "mptcp_uids"
	cgroupMapName = "mptcp_cgroups"
)

// MaxEntries bounds each map: the cgroups and the uids that may be
// selected at once.
const MaxEntries = 1024

// Labels of the decision.
const (
	labelFamilyOK   = "family_ok"
	labelProtocolOK = "protocol_ok"
	labelKeep       = "keep"
	labelMPTCP      = "mptcp"
)

// Decision returns the instructions that decide one socket() call. R1
// points at a context of 64-bit slots holding the call's family (slot 0),
// type (slot 1) and protocol (slot 2), each an int in the low 32 bits;
// the instructions return IPProtoMPTCP when the call is an AF_INET or
// AF_INET6 stream socket (type & 0xf == SOCK_STREAM, flags ignored) with
// protocol 0 or IPPROTO_TCP and the calling task is selected (its real
// uid in the uid map, or its cgroup or an ancestor's id in the cgroup
// map), and the protocol unchanged otherwise. The maps are referenced by
// name (uidMapName, cgroupMapName), to be associated before loading.
//
// The upper 32 bits of a slot are not read: the trampoline saves whole
// registers, and the calling convention leaves the upper half of an int
// argument undefined.
func Decision() asm.Instructions {
	insns := asm.Instructions{
		// R6 keeps the context across helper calls.
		asm.Mov.Reg(asm.R6, asm.R1),

		// Family: AF_INET or AF_INET6.
		asm.LoadMem(asm.R2, asm.R6, 0, asm.DWord),
		asm.JEq.Imm32(asm.R2, afInet, labelFamilyOK),
		asm.JNE.Imm32(asm.R2, afInet6, labelKeep),
		// Type: SOCK_STREAM, whatever the flags.
		asm.LoadMem(asm.R2, asm.R6, 8, asm.DWord).WithSymbol(labelFamilyOK),
		asm.And.Imm32(asm.R2, sockTypeMsk),
		asm.JNE.Imm32(asm.R2, sockStream, labelKeep),
		// Protocol: 0 or IPPROTO_TCP.
		asm.LoadMem(asm.R2, asm.R6, 16, asm.DWord),
		asm.JEq.Imm32(asm.R2, 0, labelProtocolOK),
		asm.JNE.Imm32(asm.R2, ipprotoTCP, labelKeep),

		// The real uid: the low 32 bits of bpf_get_current_uid_gid.
		asm.FnGetCurrentUidGid.Call().WithSymbol(labelProtocolOK),
		asm.StoreMem(asm.RFP, -4, asm.R0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference(uidMapName),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, labelMPTCP),
	}
	// The cgroup and its ancestors, from level 1 down; the helper
	// returns 0 past the task's own level. Unrolled: no loop for the
	// verifier to bound.
	for level := int32(1); level <= MaxDepth; level++ {
		insns = append(insns,
			asm.Mov.Imm(asm.R1, level),
			asm.FnGetCurrentAncestorCgroupId.Call(),
			asm.JEq.Imm(asm.R0, 0, labelKeep),
			asm.StoreMem(asm.RFP, -16, asm.R0, asm.DWord),
			asm.LoadMapPtr(asm.R1, 0).WithReference(cgroupMapName),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -16),
			asm.FnMapLookupElem.Call(),
			asm.JNE.Imm(asm.R0, 0, labelMPTCP),
		)
	}
	return append(insns,
		// Not selected: the protocol as given.
		asm.LoadMem(asm.R0, asm.R6, 16, asm.DWord).WithSymbol(labelKeep),
		asm.Mov.Reg32(asm.R0, asm.R0),
		asm.Return(),
		asm.Mov.Imm(asm.R0, IPProtoMPTCP).WithSymbol(labelMPTCP),
		asm.Return(),
	)
}
