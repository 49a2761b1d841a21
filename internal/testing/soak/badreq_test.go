//go:build linux

package soak_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// badRequest is a request the control socket must refuse with code; code
// 0 means a client that never completes its request, which the daemon
// must simply survive.
type badRequest struct {
	name string
	raw  string
	code int
}

// badRequests are what the soak sends to the control socket in a loop.
var badRequests = []badRequest{
	{"malformed JSON", "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\": [1,", http.StatusBadRequest},
	{"JSON not an object", "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]", http.StatusBadRequest},
	{"unknown field", "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"bogus\": 1}", http.StatusBadRequest},
	{"unknown route", "GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusNotFound},
	{"unknown version", "GET /v9/status HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusNotFound},
	{"bad token", "GET /v1/paths/xyz HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusBadRequest},
	{"untracked token", "GET /v1/paths/1 HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusNotFound},
	{"wrong method", "DELETE /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusMethodNotAllowed},
	{"big body", "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n" + strings.Repeat("{", 4096), http.StatusRequestEntityTooLarge},
	{"big headers", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Junk: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
	{"garbage request line", "\x00\x01 not http at all\r\n\r\n", http.StatusBadRequest},
	{"half-open: partial headers", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Partial", 0},
	{"half-open: partial body", "POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"", 0},
	{"half-open: nothing", "", 0},
}

// badStats count the bad requests.
type badStats struct {
	sent, answered, unreachable, goodOK atomic.Int64

	mu    sync.Mutex
	wrong []string
}

// record notes an unexpected answer.
func (b *badStats) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.wrong) < 20 {
		b.wrong = append(b.wrong, fmt.Sprintf(format, args...))
	}
}

// unexpected returns the unexpected answers recorded (at most 20).
func (b *badStats) unexpected() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.wrong...)
}

// badLoop sends bad requests to the daemon's socket until ctx is done,
// each followed now and then by a good GET /v1/status, and returns a
// function that waits for it. Requests to a daemon that is being
// restarted count as unreachable, not as failures.
func badLoop(ctx context.Context, d *daemon, b *badStats) (wait func()) {
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				req := badRequests[i%len(badRequests)]
				sendBad(ctx, d.ctl.Socket, req, b)
				if i%len(badRequests) == 0 {
					if _, err := d.status(); err == nil {
						b.goodOK.Add(1)
					}
				}
			}
		})
	}
	return wg.Wait
}

// sendBad sends one bad request and checks the answer's code.
func sendBad(ctx context.Context, sock string, req badRequest, b *badStats) {
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "unix", sock)
	if err != nil {
		b.unreachable.Add(1)
		time.Sleep(10 * time.Millisecond)
		return
	}
	defer c.Close()
	b.sent.Add(1)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req.raw)); err != nil {
		// The server may refuse a big request before reading it all
		// and close; the answer may still be there to read.
		if req.code == 0 {
			return
		}
	}
	if req.code == 0 {
		// A half-open client: hold the connection a moment, then go.
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		b.unreachable.Add(1)
		return
	}
	_ = resp.Body.Close()
	b.answered.Add(1)
	if resp.StatusCode != req.code {
		b.record("%s: answered %d, want %d", req.name, resp.StatusCode, req.code)
	}
}
