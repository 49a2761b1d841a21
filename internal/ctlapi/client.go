package ctlapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// ErrNotFound matches the errors of requests for something the daemon
// does not have (404): a connection it does not track. They are
// *NotFoundError.
var ErrNotFound = errors.New("ctlapi: not found")

// ErrNotRunning is wrapped by a DialError when nothing listens on the
// socket: the daemon is not running.
var ErrNotRunning = errors.New("ctlapi: mptcpgod is not running")

// DialError is a failure to reach the daemon's socket.
type DialError struct {
	Socket string
	Err    error
}

// Error says what failed and asks whether the daemon runs.
func (e *DialError) Error() string {
	return fmt.Sprintf("ctlapi: cannot reach mptcpgod at %s: %v: is mptcpgod running?", e.Socket, e.Err)
}

// Unwrap returns the dial error.
func (e *DialError) Unwrap() error { return e.Err }

// Is reports ErrNotRunning for a socket that does not exist or that
// nobody listens on.
func (e *DialError) Is(target error) bool {
	return target == ErrNotRunning && (errors.Is(e.Err, fs.ErrNotExist) || errors.Is(e.Err, syscall.ECONNREFUSED))
}

// AccessDeniedError is the daemon's refusal (403), with its reason.
type AccessDeniedError struct {
	Message string
}

func (e *AccessDeniedError) Error() string { return "ctlapi: access denied: " + e.Message }

// NotFoundError is the daemon's answer (404) for something it does not
// have, with its reason; errors.Is(err, ErrNotFound) holds.
type NotFoundError struct {
	Message string
}

func (e *NotFoundError) Error() string { return "ctlapi: not found: " + e.Message }

// Is reports ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// StatusError is an error answer other than 403 and 404.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("ctlapi: %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Client talks to the daemon over its control socket. The zero Client
// uses DefaultSocket. Every method takes ctx first; cancel it to give up.
type Client struct {
	// Socket is the daemon's socket; "" means DefaultSocket.
	Socket string
	// Dial, when set, opens the connections instead of dialling Socket.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	once sync.Once
	hc   *http.Client
}

// maxAnswer bounds the size of an answer the client reads.
const maxAnswer = 64 << 20

func (c *Client) socket() string {
	if c.Socket == "" {
		return DefaultSocket
	}
	return c.Socket
}

func (c *Client) client() *http.Client {
	c.once.Do(func() {
		sock := c.socket()
		dial := c.Dial
		if dial == nil {
			var d net.Dialer
			dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", sock)
			}
		}
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := dial(ctx, network, addr)
				if err != nil {
					return nil, &DialError{Socket: sock, Err: err}
				}
				return conn, nil
			},
			MaxIdleConns: 1,
		}}
	})
	return c.hc
}

// do sends a request for path and returns the answer when it is 200.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://mptcpgod"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("ctlapi: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client().Do(req)
	if err != nil {
		var de *DialError
		if errors.As(err, &de) {
			return nil, de
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ctlapi: %s %s: %w", method, path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if err := json.Unmarshal(data, &eb); err != nil || eb.Error == "" {
		eb.Error = string(bytes.TrimSpace(data))
	}
	switch resp.StatusCode {
	case http.StatusForbidden:
		return nil, &AccessDeniedError{Message: eb.Error}
	case http.StatusNotFound:
		return nil, &NotFoundError{Message: eb.Error}
	}
	return nil, &StatusError{Code: resp.StatusCode, Message: eb.Error}
}

// get decodes the JSON answer of method path into a new T.
func get[T any](ctx context.Context, c *Client, method, path string, body []byte) (*T, error) {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	v := new(T)
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(v); err != nil {
		return nil, fmt.Errorf("ctlapi: %s %s: decode answer: %w", method, path, err)
	}
	return v, nil
}

// Status returns the daemon's status (GET /v1/status).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	return get[Status](ctx, c, http.MethodGet, "/v1/status", nil)
}

// Links returns the daemon's view of the interfaces (GET /v1/links).
func (c *Client) Links(ctx context.Context) (*Links, error) {
	return get[Links](ctx, c, http.MethodGet, "/v1/links", nil)
}

// Paths returns a page of the connections' paths (GET /v1/paths); its
// Next is the From of the next page, 0 on the last.
func (c *Client) Paths(ctx context.Context, q PathsQuery) (*Paths, error) {
	v := url.Values{}
	if q.From != 0 {
		v.Set("from", strconv.FormatUint(uint64(q.From), 16))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Peer.IsValid() {
		v.Set("peer", q.Peer.String())
	}
	path := "/v1/paths"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	return get[Paths](ctx, c, http.MethodGet, path, nil)
}

// AllConns yields every connection q selects, page by page (GET
// /v1/paths), from q.From on; an error ends it. The pages are answered one
// by one, so a connection that comes or goes meanwhile may be missed or
// not.
func (c *Client) AllConns(ctx context.Context, q PathsQuery) iter.Seq2[pmstate.Conn, error] {
	return func(yield func(pmstate.Conn, error) bool) {
		for {
			p, err := c.Paths(ctx, q)
			if err != nil {
				yield(pmstate.Conn{}, err)
				return
			}
			for _, conn := range p.Conns {
				if !yield(conn, nil) {
					return
				}
			}
			if p.Next == 0 {
				return
			}
			q.From = p.Next
		}
	}
}

// Conn returns the paths of the connection token (GET /v1/paths/TOKEN);
// errors.Is(err, ErrNotFound) when the daemon does not track it.
func (c *Client) Conn(ctx context.Context, token uint32) (*Paths, error) {
	return get[Paths](ctx, c, http.MethodGet, "/v1/paths/"+strconv.FormatUint(uint64(token), 16), nil)
}

// Policies returns the policies compiled into the daemon (GET
// /v1/policies).
func (c *Client) Policies(ctx context.Context) (*Policies, error) {
	return get[Policies](ctx, c, http.MethodGet, "/v1/policies", nil)
}

// Usage returns the traffic accounting of the metered links (GET
// /v1/usage); errors.Is(err, ErrNotFound) when the daemon accounts no
// link.
func (c *Client) Usage(ctx context.Context) (*Usage, error) {
	return get[Usage](ctx, c, http.MethodGet, "/v1/usage", nil)
}

// Reload makes the daemon read its configuration file again (POST
// /v1/reload); a refused configuration is a *StatusError with the file's
// errors.
func (c *Client) Reload(ctx context.Context) (*Reload, error) {
	return get[Reload](ctx, c, http.MethodPost, "/v1/reload", []byte("{}"))
}

// Metrics returns the Prometheus text exposition (GET /metrics).
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("ctlapi: GET /metrics: %w", err)
	}
	return b, nil
}

// ErrStreamIdle is returned by EventStream.Next when the daemon ended the
// stream because it had nothing to send for a while (streams of users
// other than root end when idle): open a new one to go on.
var ErrStreamIdle = errors.New("ctlapi: the daemon ended the idle event stream")

// StreamEndTrailer is the HTTP trailer that says why the daemon ended an
// event stream: "idle" when no decision came for the daemon's idle
// timeout (open a new stream to go on).
const StreamEndTrailer = "Mptcpgod-Stream-End"

// EventStream is an open GET /v1/events.
type EventStream struct {
	resp *http.Response
	dec  *json.Decoder
}

// Events opens the stream of the engine's decisions; it returns once the
// daemon has subscribed the client. Close it, or cancel ctx, to stop.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/events", nil)
	if err != nil {
		return nil, err
	}
	return &EventStream{resp: resp, dec: json.NewDecoder(resp.Body)}, nil
}

// Next returns the next event; io.EOF when the daemon closed the stream,
// ErrStreamIdle when it ended it for being idle.
func (s *EventStream) Next() (Event, error) {
	var ev Event
	if err := s.dec.Decode(&ev); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		// The trailer is read with the end of the body.
		if errors.Is(err, io.EOF) && s.resp.Trailer.Get(StreamEndTrailer) == "idle" {
			err = ErrStreamIdle
		}
		return Event{}, err
	}
	return ev, nil
}

// Close closes the stream.
func (s *EventStream) Close() error { return s.resp.Body.Close() }

// ParseToken parses a connection token: 1 to 8 hexadecimal digits.
func ParseToken(s string) (uint32, error) {
	if s == "" || len(s) > 8 {
		return 0, fmt.Errorf("invalid token %q: expected 1 to 8 hexadecimal digits", s)
	}
	t, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid token %q: expected 1 to 8 hexadecimal digits", s)
	}
	return uint32(t), nil
}
