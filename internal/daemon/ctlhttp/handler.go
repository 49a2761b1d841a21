package ctlhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/pm"
	"github.com/mptcpgod/mptcpgod/policy"
)

// Limits bound what one request may cost. Zero fields mean the defaults
// of DefaultLimits.
type Limits struct {
	// ReadHeaderTimeout is how long a client has to send its request
	// line and headers; ReadTimeout bounds the whole request, body
	// included.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout bounds writing an answer, and each line of an event
	// stream.
	WriteTimeout time.Duration
	// IdleTimeout closes kept-alive connections without a new request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
	// MaxBody bounds a request body.
	MaxBody int64
	// QueryTimeout bounds each question to the engine; MaxQueries is
	// how many may wait for it at once.
	QueryTimeout time.Duration
	MaxQueries   int
	// ReloadTimeout bounds a reload.
	ReloadTimeout time.Duration
	// MaxEventStreams is how many /v1/events streams users other than
	// root may have open at once, MaxEventStreamsPerUser how many each
	// of them, and RootEventStreams how many more root may open, over
	// MaxEventStreams. A stream of a user other than root ends after
	// IdleTimeout without a decision to send, like an idle connection
	// (with the trailer ctlapi.StreamEndTrailer: idle).
	MaxEventStreams        int
	MaxEventStreamsPerUser int
	RootEventStreams       int
	// MaxConns is how many connections users other than root may have
	// open at once, MaxConnsPerUser how many each of them, and RootConns
	// how many more root may open, over MaxConns; a connection beyond
	// them is answered 429 and closed.
	MaxConns        int
	MaxConnsPerUser int
	RootConns       int
}

// DefaultLimits are the limits of a zero Limits.
var DefaultLimits = Limits{
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      10 * time.Second,
	IdleTimeout:       60 * time.Second,
	MaxHeaderBytes:    8 << 10,
	MaxBody:           64 << 10,
	QueryTimeout:      2 * time.Second,
	MaxQueries:        4,
	ReloadTimeout:     30 * time.Second,

	MaxEventStreams:        32,
	MaxEventStreamsPerUser: 4,
	RootEventStreams:       8,
	MaxConns:               64,
	MaxConnsPerUser:        16,
	RootConns:              16,
}

// withDefaults returns l with zero fields set from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	or := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	or(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	or(&l.ReadTimeout, d.ReadTimeout)
	or(&l.WriteTimeout, d.WriteTimeout)
	or(&l.IdleTimeout, d.IdleTimeout)
	or(&l.QueryTimeout, d.QueryTimeout)
	or(&l.ReloadTimeout, d.ReloadTimeout)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxBody <= 0 {
		l.MaxBody = d.MaxBody
	}
	if l.MaxQueries <= 0 {
		l.MaxQueries = d.MaxQueries
	}
	for _, v := range []struct {
		p *int
		d int
	}{
		{&l.MaxEventStreams, d.MaxEventStreams}, {&l.MaxEventStreamsPerUser, d.MaxEventStreamsPerUser},
		{&l.RootEventStreams, d.RootEventStreams}, {&l.MaxConns, d.MaxConns},
		{&l.MaxConnsPerUser, d.MaxConnsPerUser}, {&l.RootConns, d.RootConns},
	} {
		if *v.p <= 0 {
			*v.p = v.d
		}
	}
	return l
}

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	// Access decides who may read and who may change state.
	Access Access
	// Metrics, when set, serves GET /metrics.
	Metrics http.Handler
	// Limits bound each request.
	Limits Limits
	// Logger receives refusals and failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock for uptimes; nil means time.Now.
	Now func() time.Time
}

// Handler serves the control API over a Backend. Requests must carry the
// peer's credentials in their context (WithPeer; Server does that), or
// they are refused.
type Handler struct {
	b       Backend
	access  Access
	metrics http.Handler
	lim     Limits
	log     *slog.Logger
	now     func() time.Time
	queries chan struct{}
	streams *gate
	mux     *http.ServeMux
}

// routes are the Handler's routes: the method and pattern, whether the
// route changes state, and what serves it. The 404 answer lists them.
var routes = []struct {
	method, pattern string
	write           bool
	serve           func(h *Handler, w http.ResponseWriter, r *http.Request) error
}{
	{http.MethodGet, "/v1/status", false, (*Handler).status},
	{http.MethodGet, "/v1/links", false, (*Handler).links},
	{http.MethodGet, "/v1/paths", false, (*Handler).paths},
	{http.MethodGet, "/v1/paths/{token}", false, (*Handler).conn},
	{http.MethodGet, "/v1/policies", false, (*Handler).policies},
	{http.MethodGet, "/v1/usage", false, (*Handler).usage},
	{http.MethodPost, "/v1/reload", true, (*Handler).reload},
	{http.MethodGet, "/v1/events", false, (*Handler).events},
	{http.MethodGet, "/v1/force", false, (*Handler).force},
	{http.MethodPost, "/v1/force/units", true, (*Handler).forceUnit},
	{http.MethodGet, "/metrics", false, (*Handler).serveMetrics},
}

// NewHandler returns a Handler serving b.
func NewHandler(b Backend, o HandlerOptions) *Handler {
	h := &Handler{b: b, access: o.Access, metrics: o.Metrics, lim: o.Limits.withDefaults(), log: o.Logger, now: o.Now,
		mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.queries = make(chan struct{}, h.lim.MaxQueries)
	h.streams = newGate("event streams", h.lim.MaxEventStreamsPerUser, h.lim.MaxEventStreams, h.lim.RootEventStreams)
	var paths []string
	for _, rt := range routes {
		paths = append(paths, rt.pattern)
		if rt.pattern == "/metrics" && h.metrics == nil {
			continue
		}
		h.mux.Handle(rt.method+" "+rt.pattern, h.route(rt.write, rt.serve))
		// Any other method: 405, in JSON, naming the right one.
		h.mux.Handle(rt.pattern, h.fail(func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", rt.method)
			return errorf(http.StatusMethodNotAllowed, "%s %s: method not allowed, use %s", r.Method, r.URL.Path, rt.method)
		}))
	}
	h.mux.Handle("/", h.fail(func(_ http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no such route %q (routes: %s)", r.URL.Path, strings.Join(paths, ", "))
	}))
	return h
}

// httpError is an error answer: a status code and the message.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError answers with err as JSON, with its status code.
func writeError(w http.ResponseWriter, err error) {
	code, msg := http.StatusInternalServerError, err.Error()
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ctlapi.ErrorBody{Error: msg})
}

// writeJSON answers 200 with v.
func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ctlhttp: encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(append(b, '\n'))
	return err
}

// ServeHTTP implements http.Handler: it bounds the time to write the
// answer and routes the request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(h.now().Add(h.lim.WriteTimeout))
	h.mux.ServeHTTP(w, r)
}

// fail serves fn, answering its error.
func (h *Handler) fail(fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, err)
		}
	})
}

// route serves fn once the peer's rights and the body's size are checked;
// write routes need the right to change state.
func (h *Handler) route(write bool, fn func(h *Handler, w http.ResponseWriter, r *http.Request) error) http.Handler {
	return h.fail(func(w http.ResponseWriter, r *http.Request) error {
		path := r.URL.Path
		p, ok := PeerFromContext(r.Context())
		switch {
		case !ok:
			return errorf(http.StatusForbidden, "no peer credentials: the control socket serves local Unix-socket clients only")
		case write && !h.access.CanWrite(p):
			h.log.Info("control request refused", "path", path, "uid", p.UID, "pid", p.PID)
			return errorf(http.StatusForbidden, "%s changes the daemon's state and needs root (uid 0); you are uid %d", path, p.UID)
		case !h.access.CanRead(p):
			h.log.Info("control request refused", "path", path, "uid", p.UID, "pid", p.PID)
			return errorf(http.StatusForbidden, "reading the daemon's state needs root or membership of %s; you are uid %d", h.access.groupName(), p.UID)
		}
		if r.ContentLength > h.lim.MaxBody {
			return errorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is too large (at most %d)", r.ContentLength, h.lim.MaxBody)
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.lim.MaxBody)
		return fn(h, w, r)
	})
}

// query runs fn with the query timeout, at most MaxQueries at a time, and
// turns the engine's failures into answers.
func (h *Handler) query(r *http.Request, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(r.Context(), h.lim.QueryTimeout)
	defer cancel()
	select {
	case h.queries <- struct{}{}:
		defer func() { <-h.queries }()
	case <-ctx.Done():
		return errorf(http.StatusServiceUnavailable, "the engine is busy: %d queries waited %v for it", h.lim.MaxQueries, h.lim.QueryTimeout)
	}
	return h.engineError(fn(ctx))
}

// engineError turns an error of the Backend into an answer.
func (h *Handler) engineError(err error) error {
	var he *httpError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &he):
		return err
	case errors.Is(err, context.DeadlineExceeded):
		h.log.Warn("the engine did not answer a control query in time", "timeout", h.lim.QueryTimeout)
		return errorf(http.StatusServiceUnavailable, "the engine did not answer within %v", h.lim.QueryTimeout)
	case errors.Is(err, pm.ErrNotRunning):
		return errorf(http.StatusServiceUnavailable, "the engine is not running")
	case errors.Is(err, pm.ErrNoConn), errors.Is(err, ErrUsageOff):
		return errorf(http.StatusNotFound, "%v", err)
	}
	return err
}

// engineAndInfo asks the backend for the engine's status and its own
// facts.
func (h *Handler) engineAndInfo(r *http.Request) (pmstate.Status, Info, error) {
	var st pmstate.Status
	var info Info
	err := h.query(r, func(ctx context.Context) error {
		var err error
		if st, err = h.b.Status(ctx); err != nil {
			return err
		}
		info, err = h.b.Info(ctx)
		return err
	})
	return st, info, err
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) error {
	st, info, err := h.engineAndInfo(r)
	if err != nil {
		return err
	}
	out := ctlapi.Status{
		Version:      info.Version,
		Mode:         st.Mode,
		Ready:        st.Ready,
		Started:      st.Started,
		ConfigFile:   info.ConfigFile,
		Kernel:       ctlapi.Kernel{Release: info.Kernel.Release, Missing: nonNil(info.Kernel.Missing)},
		Policy:       wirePolicy(st.Policy, info.Policy),
		Links:        annotate(info.Links, &st),
		Endpoints:    nonNil(st.Endpoints),
		Limits:       st.Limits,
		Connections:  st.Connections,
		Paths:        st.Paths,
		InFlight:     st.InFlight,
		Queued:       st.Queued,
		Resyncing:    st.Resyncing,
		Counters:     st.Counters,
		RecentErrors: nonNil(st.RecentErrors),
		Mitigation:   info.Mitigation,
	}
	if out.Mitigation.MappingErrors == nil {
		out.Mitigation.MappingErrors = map[string]uint64{}
	}
	if out.Paths == nil {
		out.Paths = map[pmstate.PathState]int{}
	}
	if !st.Started.IsZero() {
		out.UptimeSeconds = h.now().Sub(st.Started).Seconds()
	}
	return writeJSON(w, out)
}

func (h *Handler) links(w http.ResponseWriter, r *http.Request) error {
	st, info, err := h.engineAndInfo(r)
	if err != nil {
		return err
	}
	return writeJSON(w, ctlapi.Links{Mode: st.Mode, Links: annotate(info.Links, &st)})
}

// pathsQuery reads the query of GET /v1/paths: from (a token), limit, peer
// (an address or a prefix).
func pathsQuery(r *http.Request) (pmstate.ConnQuery, error) {
	var q pmstate.ConnQuery
	v := r.URL.Query()
	for k := range v {
		switch k {
		case "from", "limit", "peer":
		default:
			return q, errorf(http.StatusBadRequest, "unknown query parameter %q (from, limit, peer)", k)
		}
	}
	if s := v.Get("from"); s != "" {
		t, err := ctlapi.ParseToken(s)
		if err != nil {
			return q, errorf(http.StatusBadRequest, "from: %v", err)
		}
		q.From = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > pmstate.MaxConnLimit {
			return q, errorf(http.StatusBadRequest, "limit: %q is not a number from 1 to %d", s, pmstate.MaxConnLimit)
		}
		q.Limit = n
	}
	if s := v.Get("peer"); s != "" {
		p, err := ctlapi.ParsePeer(s)
		if err != nil {
			return q, errorf(http.StatusBadRequest, "peer: %q is not an address or a prefix such as 192.0.2.0/24", s)
		}
		q.Peer = p
	}
	return q, nil
}

func (h *Handler) paths(w http.ResponseWriter, r *http.Request) error {
	q, err := pathsQuery(r)
	if err != nil {
		return err
	}
	var st pmstate.Status
	var page pmstate.ConnPage
	if err := h.query(r, func(ctx context.Context) (err error) {
		if st, err = h.b.Status(ctx); err != nil {
			return err
		}
		page, err = h.b.Conns(ctx, q)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(w, ctlapi.Paths{Mode: st.Mode, Conns: nonNil(page.Conns), Next: page.Next})
}

func (h *Handler) conn(w http.ResponseWriter, r *http.Request) error {
	token, err := ctlapi.ParseToken(r.PathValue("token"))
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	var cs pmstate.Conn
	var info Info
	err = h.query(r, func(ctx context.Context) error {
		var err error
		if cs, err = h.b.Conn(ctx, token); err != nil {
			return err
		}
		info, err = h.b.Info(ctx)
		return err
	})
	if errors.Is(err, pm.ErrNoConn) || isNotFound(err) {
		return errorf(http.StatusNotFound, "the daemon tracks no connection with token %08x", token)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, ctlapi.Paths{Mode: info.Mode, Conns: []pmstate.Conn{cs}})
}

func isNotFound(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.code == http.StatusNotFound
}

func (h *Handler) policies(w http.ResponseWriter, r *http.Request) error {
	info, err := h.b.Info(r.Context())
	if err != nil {
		return h.engineError(err)
	}
	out := ctlapi.Policies{Mode: info.Mode, Policies: []ctlapi.PolicyDoc{}}
	for _, name := range policy.Names() {
		d, err := policy.Describe(name)
		if err != nil {
			d = policy.Doc{Name: name, Summary: "cannot describe: " + err.Error()}
		}
		out.Policies = append(out.Policies, wirePolicyDoc(d))
	}
	return writeJSON(w, out)
}

func (h *Handler) usage(w http.ResponseWriter, r *http.Request) error {
	var out ctlapi.Usage
	if err := h.query(r, func(ctx context.Context) error {
		rep, err := h.b.Usage(ctx)
		out = wireUsage(rep)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(w, out)
}

// reloadRequest is the body of POST /v1/reload: empty, or a JSON object
// with no fields (fields may be added).
type reloadRequest struct{}

func (h *Handler) reload(w http.ResponseWriter, r *http.Request) error {
	if err := decodeBody(r.Body, &reloadRequest{}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.lim.ReloadTimeout)
	defer cancel()
	if err := h.b.Reload(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pm.ErrNotRunning) {
			return h.engineError(err)
		}
		h.log.Warn("reload over the control socket refused", "error", err)
		return errorf(http.StatusUnprocessableEntity, "reload refused, the running configuration stays: %v", err)
	}
	var st pmstate.Status
	if err := h.query(r, func(ctx context.Context) (err error) {
		st, err = h.b.Status(ctx)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(w, ctlapi.Reload{Policy: st.Policy})
}

// decodeBody decodes a JSON object strictly into v; an empty body leaves v
// alone.
func decodeBody(body io.Reader, v any) error {
	data, err := io.ReadAll(body)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errorf(http.StatusRequestEntityTooLarge, "request body is too large (at most %d bytes)", tooLarge.Limit)
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "reading the request body: %v", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	if d.More() {
		return errorf(http.StatusBadRequest, "malformed JSON body: data after the object")
	}
	return nil
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request) error {
	p, _ := PeerFromContext(r.Context())
	if err := h.streams.admit(p.UID); err != nil {
		h.log.Info("event stream refused", "uid", p.UID, "pid", p.PID, "reason", err)
		if p.UID == 0 {
			return errorf(http.StatusTooManyRequests, "%v", err)
		}
		return errorf(http.StatusTooManyRequests, "%v; root has streams of its own", err)
	}
	defer h.streams.release(p.UID)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	evs, err := h.b.Events(ctx)
	if err != nil {
		return h.engineError(err)
	}
	// A stream of a user other than root ends when it has had nothing to
	// send for IdleTimeout, as an idle connection does, so that streams
	// nobody needs do not hold their places for ever.
	var idle *time.Timer
	var idleC <-chan time.Time
	if p.UID != 0 {
		idle = time.NewTimer(h.lim.IdleTimeout)
		defer idle.Stop()
		idleC = idle.C
	}
	rc := http.NewResponseController(w)
	// The stream outlives ReadTimeout; a client that goes away is noticed
	// by the server's read of the connection, which cancels ctx.
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Trailer", ctlapi.StreamEndTrailer)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return nil
			}
			_ = rc.SetWriteDeadline(h.now().Add(h.lim.WriteTimeout))
			if err := enc.Encode(ev); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
			if idle != nil {
				idle.Reset(h.lim.IdleTimeout)
			}
		case <-idleC:
			_ = rc.SetWriteDeadline(h.now().Add(h.lim.WriteTimeout))
			w.Header().Set(ctlapi.StreamEndTrailer, "idle")
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	h.metrics.ServeHTTP(w, r)
	return nil
}

// nonNil returns s, or an empty slice for nil, so that JSON shows [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
