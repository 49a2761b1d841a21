//go:build linux

package transparent

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// vmInput lays d out as the kernel has struct seccomp_data in memory
// (native byte order), then turns each 32-bit word big endian: classic BPF
// in seccomp loads native words, x/net/bpf's VM loads network-order ones,
// so the VM then reads at every offset the value the kernel reads.
func vmInput(d seccompData) []byte {
	b := make([]byte, sizeofSeccompData)
	e := binary.NativeEndian
	e.PutUint32(b[0:], uint32(d.Nr))
	e.PutUint32(b[4:], d.Arch)
	e.PutUint64(b[8:], d.InstructionPointer)
	for i, a := range d.Args {
		e.PutUint64(b[16+8*i:], a)
	}
	for i := 0; i < len(b); i += 4 {
		binary.BigEndian.PutUint32(b[i:], e.Uint32(b[i:]))
	}
	return b
}

// runFilter runs the native filter on d in x/net/bpf's VM.
func runFilter(t testing.TB, d seccompData) uint32 {
	t.Helper()
	audit, err := nativeAuditArch()
	if err != nil {
		t.Skip(err)
	}
	vm, err := bpf.NewVM(filterProgram(audit, unix.SYS_SOCKET))
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	ret, err := vm.Run(vmInput(d))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return uint32(ret)
}

// socketData is a native socket(2) call.
func socketData(family, typ, protocol uint64) seccompData {
	audit, _ := nativeAuditArch()
	return seccompData{Nr: unix.SYS_SOCKET, Arch: audit, Args: [6]uint64{family, typ, protocol}}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	audit, err := nativeAuditArch()
	if err != nil {
		t.Skip(err)
	}
	const (
		trap  = unix.SECCOMP_RET_USER_NOTIF
		allow = unix.SECCOMP_RET_ALLOW
	)
	other := seccompData{Nr: unix.SYS_CONNECT, Arch: audit, Args: [6]uint64{unix.AF_INET, unix.SOCK_STREAM}}
	foreign := socketData(unix.AF_INET, unix.SOCK_STREAM, 0)
	foreign.Arch = unix.AUDIT_ARCH_I386
	x32 := socketData(unix.AF_INET, unix.SOCK_STREAM, 0)
	x32.Nr |= 0x40000000 // __X32_SYSCALL_BIT: same arch value, other ABI
	tests := []struct {
		name string
		in   seccompData
		want uint32
	}{
		{"inet stream 0", socketData(unix.AF_INET, unix.SOCK_STREAM, 0), trap},
		{"inet6 stream tcp", socketData(unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_TCP), trap},
		{"nonblock", socketData(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0), trap},
		{"cloexec", socketData(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0), trap},
		{"both flags tcp", socketData(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP), trap},
		{"high bits ignored as by the kernel", socketData(1<<32|unix.AF_INET, 1<<40|unix.SOCK_STREAM, 1<<33), trap},
		{"already mptcp", socketData(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP), allow},
		{"udp", socketData(unix.AF_INET, unix.SOCK_DGRAM, 0), allow},
		{"seqpacket", socketData(unix.AF_INET, unix.SOCK_SEQPACKET, 0), allow},
		{"raw", socketData(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_TCP), allow},
		{"unix stream", socketData(unix.AF_UNIX, unix.SOCK_STREAM, 0), allow},
		{"netlink", socketData(unix.AF_NETLINK, unix.SOCK_RAW, 0), allow},
		{"packet", socketData(unix.AF_PACKET, unix.SOCK_STREAM, 0), allow},
		{"unknown type flag", socketData(unix.AF_INET, unix.SOCK_STREAM|0x100, 0), allow},
		{"sctp", socketData(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP), allow},
		{"other syscall", other, allow},
		{"other arch", foreign, allow},
		{"x32 abi", x32, allow},
	}
	for _, tt := range tests {
		if got := runFilter(t, tt.in); got != tt.want {
			t.Errorf("%s: filter returned %#x, want %#x", tt.name, got, tt.want)
		}
	}
}

// TestFilterAssembles: the program assembles and fits seccomp's limits.
func TestFilterAssembles(t *testing.T) {
	t.Parallel()
	prog, err := assembleFilter()
	if err != nil {
		t.Skip(err)
	}
	if len(prog) == 0 || len(prog) > 4096 {
		t.Fatalf("filter has %d instructions", len(prog))
	}
}

// FuzzFilter: the filter traps exactly the calls the supervisor answers
// with MPTCP (socketCall.wantsMPTCP), for any arguments.
func FuzzFilter(f *testing.F) {
	f.Add(uint64(unix.AF_INET), uint64(unix.SOCK_STREAM), uint64(0), false)
	f.Add(uint64(unix.AF_INET6), uint64(unix.SOCK_STREAM|unix.SOCK_CLOEXEC), uint64(unix.IPPROTO_TCP), false)
	f.Add(uint64(unix.AF_INET), uint64(unix.SOCK_DGRAM), uint64(0), false)
	f.Add(uint64(unix.AF_INET), uint64(unix.SOCK_STREAM), uint64(unix.IPPROTO_MPTCP), true)
	f.Fuzz(func(t *testing.T, family, typ, protocol uint64, otherCall bool) {
		d := socketData(family, typ, protocol)
		if otherCall {
			d.Nr = unix.SYS_BIND
		}
		audit, err := nativeAuditArch()
		if err != nil {
			t.Skip(err)
		}
		n := seccompNotif{Data: d}
		call, ok := n.call(audit, unix.SYS_SOCKET)
		want := uint32(unix.SECCOMP_RET_ALLOW)
		if ok && call.wantsMPTCP() {
			want = unix.SECCOMP_RET_USER_NOTIF
		}
		if got := runFilter(t, d); got != want {
			t.Errorf("socket(%#x, %#x, %#x) other=%v: filter %#x, supervisor's choice %#x", family, typ, protocol, otherCall, got, want)
		}
	})
}
