//go:build linux

package transparent

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// encodeNotif lays n out as SECCOMP_IOCTL_NOTIF_RECV writes it.
func encodeNotif(n seccompNotif) []byte {
	e := binary.NativeEndian
	b := e.AppendUint64(nil, n.ID)
	b = e.AppendUint32(b, n.Pid)
	b = e.AppendUint32(b, n.Flags)
	b = e.AppendUint32(b, uint32(n.Data.Nr))
	b = e.AppendUint32(b, n.Data.Arch)
	b = e.AppendUint64(b, n.Data.InstructionPointer)
	for _, a := range n.Data.Args {
		b = e.AppendUint64(b, a)
	}
	return b
}

func TestDecodeNotif(t *testing.T) {
	t.Parallel()
	want := seccompNotif{ID: 0x1122334455667788, Pid: 4242, Flags: 0,
		Data: seccompData{Nr: unix.SYS_SOCKET, Arch: unix.AUDIT_ARCH_X86_64, InstructionPointer: 0xdead,
			Args: [6]uint64{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_NONBLOCK, unix.IPPROTO_TCP, 4, 5, 6}}}
	b := encodeNotif(want)
	if len(b) != sizeofSeccompNotif {
		t.Fatalf("encoded %d bytes, want %d", len(b), sizeofSeccompNotif)
	}
	got, err := decodeNotif(append(b, 0, 0, 0, 0, 0, 0, 0, 0)) // a newer kernel's longer struct
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(seccompNotif{}, seccompData{})); diff != "" {
		t.Errorf("decodeNotif (-want +got):\n%s", diff)
	}
	call, ok := got.call(unix.AUDIT_ARCH_X86_64, unix.SYS_SOCKET)
	if !ok || call != (socketCall{unix.AF_INET6, unix.SOCK_STREAM | unix.SOCK_NONBLOCK, unix.IPPROTO_TCP}) {
		t.Errorf("call = %+v, %v", call, ok)
	}
	if got, want := call.String(), "socket(AF_INET6, SOCK_STREAM|SOCK_NONBLOCK, IPPROTO_TCP)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, ok := got.call(unix.AUDIT_ARCH_AARCH64, unix.SYS_SOCKET); ok {
		t.Error("call accepted another architecture")
	}
	if _, err := decodeNotif(b[:sizeofSeccompNotif-1]); err == nil {
		t.Error("decodeNotif accepted a short buffer")
	}
}

func TestEncodeResp(t *testing.T) {
	t.Parallel()
	b := make([]byte, 32)
	for i := range b {
		b[i] = 0xff
	}
	encodeResp(b, seccompNotifResp{ID: 7, Val: -1, Error: -int32(unix.EPERM), Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
	e := binary.NativeEndian
	if e.Uint64(b) != 7 || int64(e.Uint64(b[8:])) != -1 || int32(e.Uint32(b[16:])) != -int32(unix.EPERM) ||
		e.Uint32(b[20:]) != unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE || e.Uint64(b[24:]) != 0 {
		t.Errorf("encodeResp wrote % x", b)
	}
}

// statusText is the shape of /proc/PID/status around the lines we read.
const statusText = "Name:\tbusybox\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t812\nPid:\t812\n" +
	"Uid:\t1000\t1000\t1000\t1001\nGid:\t100\t100\t100\t101\nFDSize:\t64\nGroups:\t100 27\n"

func TestParseStatusIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want fsIDs
		err  string
	}{
		{"status", statusText, fsIDs{uid: 1001, gid: 101}, ""},
		{"root", "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", fsIDs{}, ""},
		{"no gid", "Uid:\t0\t0\t0\t0\n", fsIDs{}, "no Uid or Gid line"},
		{"three ids", "Uid:\t0\t0\t0\nGid:\t0\t0\t0\t0\n", fsIDs{}, "want 4 ids"},
		{"not a number", "Uid:\t0\t0\t0\tx\nGid:\t0\t0\t0\t0\n", fsIDs{}, "not a valid id"},
		{"invalid id", "Uid:\t0\t0\t0\t4294967295\nGid:\t0\t0\t0\t0\n", fsIDs{}, "not a valid id"},
		{"too large", "Uid:\t0\t0\t0\t4294967296\nGid:\t0\t0\t0\t0\n", fsIDs{}, "not a valid id"},
		{"empty", "", fsIDs{}, "no Uid or Gid line"},
	}
	for _, tt := range tests {
		got, err := parseStatusIDs([]byte(tt.in))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.err)
		case got != tt.want:
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"6.18.44-fc-v1272", 6, 18, true},
		{"5.14.0-362.el9.x86_64", 5, 14, true},
		{"6.1", 6, 1, true},
		{"5.4-rc1", 5, 4, true},
		{"6", 0, 0, false},
		{"x.1", 0, 0, false},
		{"6.x", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		maj, mnr, err := parseRelease(tt.in)
		if (err == nil) != tt.ok || maj != tt.major || mnr != tt.minor {
			t.Errorf("parseRelease(%q) = %d, %d, %v", tt.in, maj, mnr, err)
		}
	}
}

func TestCheckRelease(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		release string
		ok      bool
	}{
		{"6.18.44-fc-v1272", true},
		{"5.14.0-362.el9.x86_64", true},
		{"5.13.19", false},
		{"4.19.0-27-amd64", false},
		{"weird", false},
	} {
		err := checkRelease(tt.release)
		if (err == nil) != tt.ok {
			t.Errorf("checkRelease(%q) = %v, want ok %v", tt.release, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.release)) {
			t.Errorf("checkRelease(%q) = %v: want ErrUnavailable naming the release", tt.release, err)
		}
	}
	if err := checkRelease("5.10.0"); err == nil || !strings.Contains(err.Error(), "older than 5.14") {
		t.Errorf("checkRelease(5.10.0) = %v, want it to say older than 5.14", err)
	}
}

// FuzzDecodeNotif: any bytes decode without panicking, and what decodes
// encodes back to the same first 80 bytes.
func FuzzDecodeNotif(f *testing.F) {
	f.Add(encodeNotif(seccompNotif{ID: 1, Pid: 2, Data: seccompData{Nr: unix.SYS_SOCKET, Args: [6]uint64{2, 1}}}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeNotif(b)
		if err != nil {
			return
		}
		if got := encodeNotif(n); string(got) != string(b[:sizeofSeccompNotif]) {
			t.Errorf("round trip: % x, want % x", got, b[:sizeofSeccompNotif])
		}
		_, _ = n.call(unix.AUDIT_ARCH_X86_64, unix.SYS_SOCKET)
	})
}

// FuzzParseStatusIDs: any /proc/PID/status text parses without panicking,
// and the ids found are in it.
func FuzzParseStatusIDs(f *testing.F) {
	f.Add([]byte(statusText))
	f.Add([]byte("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := parseStatusIDs(b)
		if err != nil {
			return
		}
		for _, v := range []uint32{ids.uid, ids.gid} {
			if !strings.Contains(string(b), strconv.FormatUint(uint64(v), 10)) {
				t.Errorf("id %d not in the input %q", v, b)
			}
		}
	})
}

// FuzzParseRelease: any release string parses without panicking, to
// non-negative numbers.
func FuzzParseRelease(f *testing.F) {
	f.Add("6.18.44-fc-v1272")
	f.Add("5.14")
	f.Fuzz(func(t *testing.T, s string) {
		maj, mnr, err := parseRelease(s)
		if err == nil && (maj < 0 || mnr < 0) {
			t.Errorf("parseRelease(%q) = %d, %d", s, maj, mnr)
		}
	})
}
