package ctlhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

// FuzzRequest feeds the handler arbitrary methods, paths and bodies from
// a root peer: every answer is one of the documented codes, and every
// error answer is the documented JSON.
func FuzzRequest(f *testing.F) {
	f.Add("POST", "/v1/reload", []byte("{}"))
	f.Add("POST", "/v1/reload", []byte(`{"force":true}`))
	f.Add("GET", "/v1/paths/3f97be70", []byte(nil))
	f.Add("GET", "/v1/paths/", []byte(nil))
	f.Add("GET", "/v1/status", []byte("x"))
	b := newFake(userspaceStatus())
	h := NewHandler(b, HandlerOptions{})
	codes := []int{200, 400, 403, 404, 405, 413, 422}
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		if method == http.MethodGet && path == "/v1/events" {
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
			var eb ctlapi.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
				t.Fatalf("%s %q: %d with body %q", method, path, rec.Code, rec.Body)
			}
		}
	})
}
