package sockdiag

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
)

func TestParseNetlinkSocket(t *testing.T) {
	t.Parallel()
	msg := make([]byte, netlinkDiagMsgLen)
	msg[0], msg[2] = afNetlink, 16
	binary.NativeEndian.PutUint32(msg[4:], 4242)
	binary.NativeEndian.PutUint32(msg[16:], 77)
	words := make([]byte, 8)
	binary.NativeEndian.PutUint32(words, 1<<8|1)   // groups 1 and 9
	binary.NativeEndian.PutUint32(words[4:], 1<<1) // group 34
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(netlinkDiagGroups, words)
	ae.Uint32(5, 0) // NETLINK_DIAG_FLAGS, ignored
	attrs, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseNetlinkSocket(append(msg, attrs...))
	if err != nil {
		t.Fatal(err)
	}
	want := &NetlinkSocket{Protocol: 16, PortID: 4242, Inode: 77, Groups: []uint32{1, 9, 34}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseNetlinkSocket (-want +got):\n%s", diff)
	}
	if !got.Joined(9) || got.Joined(2) {
		t.Errorf("Joined(9) %v, Joined(2) %v", got.Joined(9), got.Joined(2))
	}
	if _, err := parseNetlinkSocket(msg[:netlinkDiagMsgLen-1]); err == nil {
		t.Error("a short message parsed")
	}
	if want := encodeNetlinkRequest(16); len(want) != netlinkDiagReqLen || want[0] != afNetlink || want[1] != 16 || want[8] != ndiagShowGroups {
		t.Errorf("request % x", want)
	}
}
