package ctlapi

import "testing"

// FuzzParseToken: a token ParseToken accepts reads back the same from its
// eight hexadecimal digits.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"3f97be70", "a", "FFFFFFFF", "", "123456789", "0x1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		back, err := ParseToken(strconvHex(tok))
		if err != nil || back != tok {
			t.Fatalf("ParseToken(%q) = %x, which does not round-trip: %x %v", s, tok, back, err)
		}
	})
}

func strconvHex(t uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[t&0xf]
		t >>= 4
	}
	return string(b[:])
}
