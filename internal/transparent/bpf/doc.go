// Package bpf makes the TCP sockets of selected processes MPTCP with a BPF
// program on the kernel's update_socket_protocol hook (Linux 6.6 and
// later, with BTF and BPF trampolines).
//
// Every socket(2) call passes its family, type and protocol through
// update_socket_protocol before the socket is created. A BPF_MODIFY_RETURN
// ("fmod_ret") program attached there returns IPPROTO_MPTCP for an
// AF_INET or AF_INET6 stream socket with protocol 0 or IPPROTO_TCP when
// the calling task is selected, and the protocol it was given otherwise.
// A task is selected when its real uid is in the uid map, or when its
// cgroup, or one of the cgroup's ancestors, is in the cgroup map: a
// systemd unit's cgroup selects the unit's processes and every cgroup
// below it.
//
// # Why ancestor cgroup ids
//
// The program walks the calling task's cgroup ancestors with
// bpf_get_current_ancestor_cgroup_id, level 1 to MaxDepth, and looks each
// id up in a hash map. The alternative, a BPF_MAP_TYPE_CGROUP_ARRAY with
// bpf_current_task_under_cgroup, costs one check per selected cgroup on
// every socket() call and holds a reference to each cgroup; the ancestor
// walk costs at most one lookup per level of the caller's own cgroup,
// whatever the number of selected units, and its map holds plain ids
// (the cgroup directory's inode number on cgroup v2), which the daemon
// adds and removes as systemd creates and removes a unit's cgroup. Both
// need cgroup v2, which every systemd of the last years mounts.
//
// # The decision, tested in the kernel
//
// The decision is one instruction sequence, Decision, reading the call's
// arguments from a context of 64-bit slots (family, type, protocol).
// That is the layout of a BPF trampoline's context and of a raw
// tracepoint's, so the same instructions are loaded as the fmod_ret
// program (Attach) and as a raw tracepoint program (NewTester), which
// kernels that refuse tracing programs still load and which
// BPF_PROG_TEST_RUN runs in the calling task's context: the tests run the
// shipped decision, for every case, in the kernel.
//
// # Privileges and kernels that refuse
//
// Loading the fmod_ret program needs CAP_BPF and CAP_PERFMON (or
// CAP_SYS_ADMIN); attaching it needs no more on the kernels we read.
// Some kernels refuse tracing programs whatever the capabilities: a
// kernel locked down by its configuration refuses the load with EPERM
// before the verifier runs. Probe loads and attaches the program with
// empty maps, detaches it, and returns an *UnavailableError that says
// which step failed and why; callers then fall back to another mechanism
// (the seccomp launcher, mptcpctl run).
package bpf
