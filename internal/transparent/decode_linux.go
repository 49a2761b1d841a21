//go:build linux

package transparent

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// decodeNotif decodes the struct seccomp_notif at the start of b, as
// SECCOMP_IOCTL_NOTIF_RECV wrote it; a newer kernel's longer structure
// keeps our fields at the front.
func decodeNotif(b []byte) (seccompNotif, error) {
	var n seccompNotif
	if len(b) < sizeofSeccompNotif {
		return n, fmt.Errorf("seccomp notification: %d bytes, want at least %d", len(b), sizeofSeccompNotif)
	}
	e := binary.NativeEndian
	n.ID = e.Uint64(b[0:])
	n.Pid = e.Uint32(b[8:])
	n.Flags = e.Uint32(b[12:])
	d := b[16:]
	n.Data.Nr = int32(e.Uint32(d[0:]))
	n.Data.Arch = e.Uint32(d[4:])
	n.Data.InstructionPointer = e.Uint64(d[8:])
	for i := range n.Data.Args {
		n.Data.Args[i] = e.Uint64(d[16+8*i:])
	}
	return n, nil
}

// encodeResp writes r into b (at least sizeofSeccompNotifResp bytes, the
// rest zero) as struct seccomp_notif_resp.
func encodeResp(b []byte, r seccompNotifResp) {
	clear(b)
	e := binary.NativeEndian
	e.PutUint64(b[0:], r.ID)
	e.PutUint64(b[8:], uint64(r.Val))
	e.PutUint32(b[16:], uint32(r.Error))
	e.PutUint32(b[20:], r.Flags)
}

// call returns the socket(2) call a notification reports, if it is one
// made through the native ABI of architecture audit with socket number nr.
// The arguments are C ints: their low 32 bits count, as in the kernel.
func (n seccompNotif) call(audit, nr uint32) (socketCall, bool) {
	if n.Data.Arch != audit || uint32(n.Data.Nr) != nr {
		return socketCall{}, false
	}
	a := n.Data.Args
	return socketCall{family: int32(a[0]), typ: int32(a[1]), protocol: int32(a[2])}, true
}

// fsIDs are a thread's filesystem uid and gid: what a socket it creates
// carries as its owner.
type fsIDs struct {
	uid, gid uint32
}

// parseStatusIDs reads the filesystem uid and gid, the fourth value of the
// "Uid:" and "Gid:" lines, from the text of /proc/PID/status.
func parseStatusIDs(status []byte) (fsIDs, error) {
	var ids fsIDs
	var haveUID, haveGID bool
	for line := range bytes.Lines(status) {
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint32
		switch string(key) {
		case "Uid":
			dst, haveUID = &ids.uid, true
		case "Gid":
			dst, haveGID = &ids.gid, true
		default:
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 4 {
			return fsIDs{}, fmt.Errorf("status line %q: want 4 ids (real, effective, saved, filesystem)", bytes.TrimSpace(line))
		}
		v, err := strconv.ParseUint(string(f[3]), 10, 32)
		if err != nil || v == 1<<32-1 {
			return fsIDs{}, fmt.Errorf("status line %q: filesystem id %q is not a valid id", bytes.TrimSpace(line), f[3])
		}
		*dst = uint32(v)
	}
	if !haveUID || !haveGID {
		return fsIDs{}, fmt.Errorf("status: no Uid or Gid line")
	}
	return ids, nil
}

// parseRelease returns the major and minor version of a kernel release
// such as "6.18.44-fc-v1272".
func parseRelease(release string) (major, minor int, err error) {
	maj, rest, ok := strings.Cut(release, ".")
	if !ok {
		return 0, 0, fmt.Errorf("kernel release %q: want MAJOR.MINOR", release)
	}
	mnr := rest
	for i, c := range rest {
		if c < '0' || c > '9' {
			mnr = rest[:i]
			break
		}
	}
	if major, err = strconv.Atoi(maj); err != nil || major < 0 {
		return 0, 0, fmt.Errorf("kernel release %q: want MAJOR.MINOR", release)
	}
	if minor, err = strconv.Atoi(mnr); err != nil || minor < 0 {
		return 0, 0, fmt.Errorf("kernel release %q: want MAJOR.MINOR", release)
	}
	return major, minor, nil
}
