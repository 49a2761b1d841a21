package ctlapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/usage"
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
	// MaxEventStreams is how many /v0/events streams users other than
	// root may have open at once, MaxEventStreamsPerUser how many each
	// of them, and RootEventStreams how many more root may open, over
	// MaxEventStreams. A stream of a user other than root ends after
	// IdleTimeout without a decision to send, like an idle connection
	// (with the trailer StreamEndTrailer: idle).
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

// StreamEndTrailer is the HTTP trailer that says why the daemon ended an
// event stream: "idle" when no decision came for IdleTimeout (open a new
// stream to go on).
const StreamEndTrailer = "Mptcpgod-Stream-End"

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
	routes  map[string]route
}

// route is one route: its method, whether it changes state, and what
// serves it.
type route struct {
	method string
	write  bool
	serve  func(h *Handler, w http.ResponseWriter, r *http.Request, arg string) error
}

// routePaths lists the routes, for the 404 answer.
var routePaths = []string{"/v0/status", "/v0/links", "/v0/paths", "/v0/paths/{token}", "/v0/policies",
	"/v0/usage", "/v0/reload", "/v0/events", "/v0/force", "/v0/force/units", "/metrics"}

// NewHandler returns a Handler serving b.
func NewHandler(b Backend, o HandlerOptions) *Handler {
	h := &Handler{b: b, access: o.Access, metrics: o.Metrics, lim: o.Limits.withDefaults(), log: o.Logger, now: o.Now}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.queries = make(chan struct{}, h.lim.MaxQueries)
	h.streams = newGate("event streams", h.lim.MaxEventStreamsPerUser, h.lim.MaxEventStreams, h.lim.RootEventStreams)
	h.routes = map[string]route{
		"/v0/status":      {method: http.MethodGet, serve: (*Handler).status},
		"/v0/links":       {method: http.MethodGet, serve: (*Handler).links},
		"/v0/paths":       {method: http.MethodGet, serve: (*Handler).paths},
		"/v0/paths/":      {method: http.MethodGet, serve: (*Handler).conn},
		"/v0/policies":    {method: http.MethodGet, serve: (*Handler).policies},
		"/v0/usage":       {method: http.MethodGet, serve: (*Handler).usage},
		"/v0/reload":      {method: http.MethodPost, write: true, serve: (*Handler).reload},
		"/v0/events":      {method: http.MethodGet, serve: (*Handler).events},
		"/v0/force":       {method: http.MethodGet, serve: (*Handler).force},
		"/v0/force/units": {method: http.MethodPost, write: true, serve: (*Handler).forceUnit},
		"/metrics":        {method: http.MethodGet, serve: (*Handler).serveMetrics},
	}
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
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg})
}

// writeJSON answers 200 with v.
func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("ctlapi: encode answer: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(append(b, '\n'))
	return err
}

// ServeHTTP implements http.Handler: it finds the route, checks the method,
// the peer's rights and the body's size, and serves.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(h.now().Add(h.lim.WriteTimeout))
	if err := h.serve(w, r); err != nil {
		writeError(w, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	path, arg := r.URL.Path, ""
	rt, ok := h.routes[path]
	if !ok && strings.HasPrefix(path, "/v0/paths/") {
		rt, arg, ok = h.routes["/v0/paths/"], strings.TrimPrefix(path, "/v0/paths/"), true
	}
	if !ok || (path == "/metrics" && h.metrics == nil) {
		return errorf(http.StatusNotFound, "no such route %q (routes: %s)", path, strings.Join(routePaths, ", "))
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		return errorf(http.StatusMethodNotAllowed, "%s %s: method not allowed, use %s", r.Method, path, rt.method)
	}
	p, ok := PeerFromContext(r.Context())
	switch {
	case !ok:
		return errorf(http.StatusForbidden, "no peer credentials: the control socket serves local Unix-socket clients only")
	case rt.write && !h.access.CanWrite(p):
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
	return rt.serve(h, w, r, arg)
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

func (h *Handler) status(w http.ResponseWriter, r *http.Request, _ string) error {
	var st pm.Status
	var info Info
	err := h.query(r, func(ctx context.Context) error {
		var err error
		if st, err = h.b.Status(ctx); err != nil {
			return err
		}
		info, err = h.b.Info(ctx)
		return err
	})
	if err != nil {
		return err
	}
	out := Status{
		Version:    info.Version,
		Mode:       st.Mode,
		Ready:      st.Ready,
		Started:    st.Started,
		ConfigFile: info.ConfigFile,
		Policy: Policy{Name: st.Policy, Chain: nonNil(info.Policy.Chain),
			Rules: nonNil(info.Policy.Rules)},
		Links:        annotate(info.Links, &st),
		Endpoints:    nonNil(st.Endpoints),
		Limits:       st.Limits,
		Connections:  len(st.Conns),
		InFlight:     st.InFlight,
		Queued:       st.Queued,
		Resyncing:    st.Resyncing,
		Counters:     st.Counters,
		RecentErrors: nonNil(st.RecentErrors),
	}
	if !st.Started.IsZero() {
		out.UptimeSeconds = h.now().Sub(st.Started).Seconds()
	}
	return writeJSON(w, out)
}

func (h *Handler) links(w http.ResponseWriter, r *http.Request, _ string) error {
	var st pm.Status
	var info Info
	err := h.query(r, func(ctx context.Context) error {
		var err error
		if st, err = h.b.Status(ctx); err != nil {
			return err
		}
		info, err = h.b.Info(ctx)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, Links{Mode: st.Mode, Links: annotate(info.Links, &st)})
}

func (h *Handler) paths(w http.ResponseWriter, r *http.Request, _ string) error {
	var st pm.Status
	if err := h.query(r, func(ctx context.Context) (err error) {
		st, err = h.b.Status(ctx)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(w, Paths{Mode: st.Mode, Conns: nonNil(st.Conns)})
}

// ParseToken parses a connection token: 1 to 8 hexadecimal digits.
func ParseToken(s string) (uint32, error) {
	if s == "" || len(s) > 8 {
		return 0, fmt.Errorf("ctlapi: invalid token %q: expected 1 to 8 hexadecimal digits", s)
	}
	t, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("ctlapi: invalid token %q: expected 1 to 8 hexadecimal digits", s)
	}
	return uint32(t), nil
}

func (h *Handler) conn(w http.ResponseWriter, r *http.Request, arg string) error {
	token, err := ParseToken(arg)
	if err != nil {
		return errorf(http.StatusBadRequest, "%s", strings.TrimPrefix(err.Error(), "ctlapi: "))
	}
	var cs pm.ConnStatus
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
	return writeJSON(w, Paths{Mode: info.Mode, Conns: []pm.ConnStatus{cs}})
}

func isNotFound(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.code == http.StatusNotFound
}

func (h *Handler) policies(w http.ResponseWriter, _ *http.Request, _ string) error {
	out := Policies{Policies: []policy.Doc{}}
	for _, name := range policy.Names() {
		d, err := policy.Describe(name)
		if err != nil {
			d = policy.Doc{Name: name, Summary: "cannot describe: " + err.Error()}
		}
		if d.Options == nil {
			d.Options = []policy.Option{}
		}
		out.Policies = append(out.Policies, d)
	}
	return writeJSON(w, out)
}

func (h *Handler) usage(w http.ResponseWriter, r *http.Request, _ string) error {
	var rep usage.Report
	if err := h.query(r, func(ctx context.Context) (err error) {
		rep, err = h.b.Usage(ctx)
		return err
	}); err != nil {
		return err
	}
	rep.Links = nonNil(rep.Links)
	return writeJSON(w, rep)
}

// reloadRequest is the body of POST /v0/reload: empty, or a JSON object
// with no fields (fields may be added).
type reloadRequest struct{}

func (h *Handler) reload(w http.ResponseWriter, r *http.Request, _ string) error {
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
	var st pm.Status
	if err := h.query(r, func(ctx context.Context) (err error) {
		st, err = h.b.Status(ctx)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(w, Reload{Policy: st.Policy})
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

func (h *Handler) events(w http.ResponseWriter, r *http.Request, _ string) error {
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
	w.Header().Set("Trailer", StreamEndTrailer)
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
			w.Header().Set(StreamEndTrailer, "idle")
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request, _ string) error {
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

// annotate returns a copy of links with every address's use filled in from
// the engine's state.
func annotate(links []Link, st *pm.Status) []Link {
	out := make([]Link, len(links))
	for i, l := range links {
		l.Addrs = slices.Clone(l.Addrs)
		if l.Addrs == nil {
			l.Addrs = []Addr{}
		}
		for j := range l.Addrs {
			describeUse(&l.Addrs[j], st)
		}
		out[i] = l
	}
	return out
}

// describeUse sets whether and how mptcpgod uses a, or why not.
func describeUse(a *Addr, st *pm.Status) {
	if st.Mode == policy.ModeKernel {
		describeEndpoint(a, st)
		return
	}
	a.Subflows = 0
	var backoff *pm.PathStatus
	wanted := 0
	for i := range st.Conns {
		for j := range st.Conns[i].Paths {
			p := &st.Conns[i].Paths[j]
			if p.Local != a.Addr {
				continue
			}
			for _, s := range p.Subflows {
				if s.Established {
					a.Subflows++
				}
			}
			if p.Desired {
				wanted++
			}
			if p.State == "backoff" && backoff == nil {
				backoff = p
			}
		}
	}
	a.Used = a.Subflows > 0
	switch {
	case !a.Usable && a.Used:
		a.Use = fmt.Sprintf("not usable (%s); %s still on it", a.Reason, plural(a.Subflows, "subflow"))
	case !a.Usable:
		a.Use = "not usable: " + a.Reason
	case a.Used:
		a.Use = plural(a.Subflows, "subflow")
	case backoff != nil:
		a.Use = fmt.Sprintf("wanted; retrying %s after: %s", backoff.Remote, backoff.LastError)
	case wanted > 0:
		a.Use = fmt.Sprintf("wanted by %s, none up yet", plural(wanted, "path"))
	case len(st.Conns) == 0:
		a.Use = "usable; no connections yet"
	default:
		a.Use = "usable; the policy wants no path from it"
	}
}

// describeEndpoint sets a's use from its endpoint (kernel mode).
func describeEndpoint(a *Addr, st *pm.Status) {
	var ep *pm.EndpointStatus
	for i := range st.Endpoints {
		e := &st.Endpoints[i]
		if e.Addr == a.Addr && (ep == nil || e.Owned && !ep.Owned) {
			ep = e
		}
	}
	if ep != nil {
		a.Endpoint = new(*ep)
	}
	a.Used = ep != nil && ep.Owned && ep.Present
	switch {
	case ep == nil && !a.Usable:
		a.Use = "not usable: " + a.Reason
	case ep == nil:
		a.Use = "usable; the policy wants no endpoint for it"
	case ep.Present && !ep.Owned:
		a.Use = fmt.Sprintf("endpoint id %d (%s) is not mptcpgod's; left alone", ep.ID, dashFlags(ep.Flags))
	case ep.Present:
		a.Use = fmt.Sprintf("endpoint id %d (%s)", ep.ID, dashFlags(ep.Flags))
		if ep.State != "ok" {
			a.Use += "; " + endpointState(ep)
		}
	default:
		a.Use = endpointState(ep)
	}
}

// endpointState describes an endpoint that is not as desired.
func endpointState(ep *pm.EndpointStatus) string {
	s := ep.State
	switch {
	case ep.State == "backoff":
		s = fmt.Sprintf("backoff until %s", ep.BackoffUntil.Format(time.TimeOnly))
		if ep.LastError != "" {
			s += ": " + ep.LastError
		}
	case ep.Reason != "":
		s += ": " + ep.Reason
	case ep.LastError != "":
		s += ": " + ep.LastError
	}
	return s
}

func dashFlags(f string) string {
	if f == "" {
		return "no flags"
	}
	return f
}

// plural returns "1 subflow", "2 subflows".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
