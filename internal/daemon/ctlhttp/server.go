//go:build unix

package ctlhttp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/safefile"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Socket is the socket's path; "" means ctlapi.DefaultSocket.
	Socket string
	// Group is the group, by name or number, whose members may read and
	// which owns the socket; "" means root and the daemon's user only.
	Group string
	// Backend answers the requests.
	Backend Backend
	// Metrics, when set, serves GET /metrics.
	Metrics http.Handler
	// Limits bound each request; zero fields mean DefaultLimits'.
	Limits Limits
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server serves the control API on a Unix socket.
type Server struct {
	path    string
	gid     int // -1: no group
	handler *Handler
	lim     Limits
	log     *slog.Logger
	ready   chan struct{}
}

// NewServer checks cfg and returns a Server; Run listens and serves.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("ctlhttp: server: backend: missing")
	}
	s := &Server{path: cfg.Socket, gid: -1, lim: cfg.Limits.withDefaults(), log: cfg.Logger, ready: make(chan struct{})}
	if s.path == "" {
		s.path = ctlapi.DefaultSocket
	}
	if !filepath.IsAbs(s.path) {
		return nil, fmt.Errorf("ctlhttp: server: socket %q: not an absolute path", s.path)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "control")
	access := Access{Owner: uint32(os.Geteuid())}
	if cfg.Group != "" {
		gid, err := LookupGroup(cfg.Group)
		if err != nil {
			return nil, fmt.Errorf("ctlhttp: server: group: %w", err)
		}
		s.gid = int(gid)
		access.Group, access.GroupName = &gid, cfg.Group
	}
	s.handler = NewHandler(cfg.Backend, HandlerOptions{Access: access, Metrics: cfg.Metrics, Limits: cfg.Limits, Logger: s.log})
	return s, nil
}

// Socket returns the socket's path.
func (s *Server) Socket() string { return s.path }

// Ready returns a channel closed once the socket is listening.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Run listens on the socket and serves until ctx is done, then closes the
// listener, gives open requests a moment to finish, removes the socket
// and returns nil. It fails when another daemon serves the socket, or
// when the path exists and is not a socket.
func (s *Server) Run(ctx context.Context) error {
	ln, unlock, err := listen(s.path, s.gid)
	if err != nil {
		return err
	}
	defer unlock()
	// Every connection takes a place of its user: a user other than root
	// cannot hold so many that root's requests find no descriptor or no
	// goroutine left.
	ln = newGatedListener(ln, newGate("connections", s.lim.MaxConnsPerUser, s.lim.MaxConns, s.lim.RootConns),
		func(p Peer, err error) {
			s.log.Info("control connection refused", "uid", p.UID, "pid", p.PID, "reason", err)
		})
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.lim.ReadHeaderTimeout,
		ReadTimeout:       s.lim.ReadTimeout,
		IdleTimeout:       s.lim.IdleTimeout,
		MaxHeaderBytes:    s.lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext: func(c context.Context, conn net.Conn) context.Context {
			gc := conn.(*gatedConn)
			if gc.peerErr != nil {
				s.log.Warn("control connection without credentials", "error", gc.peerErr)
				return c
			}
			return WithPeer(c, gc.peer)
		},
	}
	s.log.Info("control socket listening", "socket", s.path)
	close(s.ready)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("ctlhttp: serve %s: %w", s.path, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-done
	return nil
}

// listen takes the socket's lock, replaces a stale socket file, listens,
// and gives the socket mode 0660 and the group gid (unless -1). The
// returned func releases the lock.
func listen(path string, gid int) (net.Listener, func(), error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("ctlhttp: socket directory: %w", err)
	}
	unlock, err := lock(path + ".lock")
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (net.Listener, func(), error) {
		unlock()
		return nil, nil, err
	}
	if err := removeStale(path); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fail(fmt.Errorf("ctlhttp: listen: %w", err))
	}
	// A socket created with the group's id already has it: a daemon whose
	// sandbox forbids chown (systemd's @privileged) needs no call then.
	if gid >= 0 && !hasGroup(path, gid) {
		if err := os.Chown(path, -1, gid); err != nil {
			_ = ln.Close()
			return fail(fmt.Errorf("ctlhttp: socket %s: give it to group %d: %w", path, gid, err))
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		_ = ln.Close()
		return fail(fmt.Errorf("ctlhttp: socket %s: %w", path, err))
	}
	return ln, unlock, nil
}

// lock takes an exclusive lock on the file at path, creating it without
// following a symbolic link, so that two daemons never replace each
// other's socket. The returned func releases it and removes the file.
func lock(path string) (func(), error) {
	l, err := safefile.Acquire(path)
	var held *safefile.HeldError
	switch {
	case errors.As(err, &held) && held.PID != 0:
		return nil, fmt.Errorf("ctlhttp: another mptcpgod (pid %d) holds %s: is one running already?", held.PID, path)
	case errors.As(err, &held):
		return nil, fmt.Errorf("ctlhttp: another mptcpgod holds %s: is one running already?", path)
	case err != nil:
		return nil, fmt.Errorf("ctlhttp: %w", err)
	}
	return func() { _ = l.Release() }, nil
}

// removeStale removes a socket file at path that nobody serves. It fails
// when someone does, and when the file is not a socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ctlhttp: socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("ctlhttp: %s exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("ctlhttp: %s: another daemon is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("ctlhttp: socket %s: cannot tell whether it is stale: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ctlhttp: remove stale socket %s: %w", path, err)
	}
	return nil
}

// hasGroup reports whether the file at path belongs to the group gid.
func hasGroup(path string, gid int) bool {
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil && int(st.Gid) == gid
}
