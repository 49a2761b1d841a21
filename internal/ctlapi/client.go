package ctlapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"

	"github.com/mptcpgod/mptcpgod/internal/usage"
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
	var eb errorBody
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

// Status returns the daemon's status (GET /v0/status).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	return get[Status](ctx, c, http.MethodGet, "/v0/status", nil)
}

// Links returns the daemon's view of the interfaces (GET /v0/links).
func (c *Client) Links(ctx context.Context) (*Links, error) {
	return get[Links](ctx, c, http.MethodGet, "/v0/links", nil)
}

// Paths returns every connection's paths (GET /v0/paths).
func (c *Client) Paths(ctx context.Context) (*Paths, error) {
	return get[Paths](ctx, c, http.MethodGet, "/v0/paths", nil)
}

// Conn returns the paths of the connection token (GET /v0/paths/TOKEN);
// errors.Is(err, ErrNotFound) when the daemon does not track it.
func (c *Client) Conn(ctx context.Context, token uint32) (*Paths, error) {
	return get[Paths](ctx, c, http.MethodGet, "/v0/paths/"+strconv.FormatUint(uint64(token), 16), nil)
}

// Policies returns the policies compiled into the daemon (GET
// /v0/policies).
func (c *Client) Policies(ctx context.Context) (*Policies, error) {
	return get[Policies](ctx, c, http.MethodGet, "/v0/policies", nil)
}

// Usage returns the traffic accounting of the metered links (GET
// /v0/usage); errors.Is(err, ErrNotFound) when the daemon accounts no
// link.
func (c *Client) Usage(ctx context.Context) (*usage.Report, error) {
	return get[usage.Report](ctx, c, http.MethodGet, "/v0/usage", nil)
}

// Reload makes the daemon read its configuration file again (POST
// /v0/reload); a refused configuration is a *StatusError with the file's
// errors.
func (c *Client) Reload(ctx context.Context) (*Reload, error) {
	return get[Reload](ctx, c, http.MethodPost, "/v0/reload", []byte("{}"))
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

// EventStream is an open GET /v0/events.
type EventStream struct {
	resp *http.Response
	dec  *json.Decoder
}

// Events opens the stream of the engine's decisions; it returns once the
// daemon has subscribed the client. Close it, or cancel ctx, to stop.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v0/events", nil)
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
