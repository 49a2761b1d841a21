package ctlapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/mptcpgod/mptcpgod/policy"
)

// FuzzRequest feeds the handler arbitrary methods, paths and bodies from
// a root peer: every answer is one of the documented codes, and every
// error answer is the documented JSON.
func FuzzRequest(f *testing.F) {
	f.Add("POST", "/v0/reload", []byte("{}"))
	f.Add("POST", "/v0/reload", []byte(`{"force":true}`))
	f.Add("GET", "/v0/paths/3f97be70", []byte(nil))
	f.Add("GET", "/v0/paths/", []byte(nil))
	f.Add("GET", "/v0/status", []byte("x"))
	b := &fakeBackend{st: userspaceStatus(), info: testInfo(policy.ModeUserspace), feed: NewFeed(0)}
	h := NewHandler(b, HandlerOptions{})
	codes := []int{200, 400, 403, 404, 405, 413, 422}
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if method == http.MethodGet && path == "/v0/events" {
			return // a stream: it ends with its client
		}
		u, err := url.Parse("http://mptcpgod" + path)
		if err != nil || method == "" {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/", bytes.NewReader(body))
		req.Method, req.URL = method, u
		req = req.WithContext(WithPeer(req.Context(), Peer{UID: 0}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !slices.Contains(codes, rec.Code) {
			t.Fatalf("%s %q: status %d: %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code != 200 {
			var eb errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("%s %q: %d with body %q", method, path, rec.Code, rec.Body)
			}
		}
	})
}

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
