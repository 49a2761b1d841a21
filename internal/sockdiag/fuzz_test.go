package sockdiag

import (
	"testing"

	"github.com/mdlayher/netlink"
)

// The real-* seeds under testdata/fuzz come from TestCaptureSeeds; the
// f.Add seeds cover edges the kernel does not send.

func FuzzParseDiagMsg(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, inetDiagMsgLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, attrs, err := parseDiagMsg(b)
		if err != nil {
			return
		}
		if !m.Local.Addr().IsValid() || !m.Remote.Addr().IsValid() {
			t.Fatalf("parseDiagMsg: invalid address in %+v", m)
		}
		if len(attrs) != len(b)-inetDiagMsgLen {
			t.Fatalf("parseDiagMsg: %d attribute bytes of %d", len(attrs), len(b))
		}
	})
}

func FuzzParseConnection(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConnection(b)
		if err != nil {
			return
		}
		if c.Token != c.Info.Token {
			t.Fatalf("parseConnection: token %08x, info token %08x", c.Token, c.Info.Token)
		}
	})
}

func FuzzParseSubflow(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, ok, err := parseSubflow(b)
		if (err != nil || !ok) && sf != (Subflow{}) {
			t.Fatalf("parseSubflow: ok %v, err %v, but returned %+v", ok, err, sf)
		}
	})
}

// FuzzParseTCPSocket: a reply that decodes is a plain TCP socket or an
// MPTCP subflow, never both nor neither.
func FuzzParseTCPSocket(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok, err := parseTCPSocket(b)
		if (err != nil || !ok) && s != (TCPSocket{}) {
			t.Fatalf("parseTCPSocket: ok %v, err %v, but returned %+v", ok, err, s)
		}
		_, subflow, serr := parseSubflow(b)
		if (err == nil) != (serr == nil) {
			t.Fatalf("parseTCPSocket: err %v, parseSubflow: err %v", err, serr)
		}
		if err == nil && ok == subflow {
			t.Fatalf("parseTCPSocket: ok %v, parseSubflow: ok %v", ok, subflow)
		}
	})
}

func FuzzParseULPInfo(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return
		}
		var sf Subflow
		_, _ = parseULPInfo(ad, &sf)
	})
}

func FuzzParseMPTCPInfo(f *testing.F) {
	f.Add([]byte{})
	f.Add(fullMPTCPInfo()[:48])
	f.Fuzz(func(t *testing.T, b []byte) {
		if got := parseMPTCPInfo(b); got.Size != len(b) {
			t.Fatalf("parseMPTCPInfo: Size %d, want %d", got.Size, len(b))
		}
	})
}

func FuzzParseTCPInfo(f *testing.F) {
	f.Add([]byte{})
	f.Add(fullTCPInfo()[:104])
	f.Fuzz(func(t *testing.T, b []byte) {
		if got := parseTCPInfo(b); got.Size != len(b) {
			t.Fatalf("parseTCPInfo: Size %d, want %d", got.Size, len(b))
		}
	})
}

func FuzzParseNetlinkSocket(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, netlinkDiagMsgLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseNetlinkSocket(b)
		if err != nil {
			return
		}
		for i, g := range s.Groups {
			if g == 0 || (i > 0 && g <= s.Groups[i-1]) {
				t.Fatalf("parseNetlinkSocket: groups %v are not ascending group ids", s.Groups)
			}
		}
	})
}
