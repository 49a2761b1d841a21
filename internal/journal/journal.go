package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSocket is the journal's native-protocol socket.
const DefaultSocket = "/run/systemd/journal/socket"

// Defaults of Options.
const (
	DefaultIdentifier = "mptcpgod"
	DefaultPrefix     = "MPTCPGOD_"
)

// maxFieldName is the longest field name the journal accepts.
const maxFieldName = 64

// Options configure a Handler.
type Options struct {
	// Socket is the journal's socket; DefaultSocket when empty.
	Socket string
	// Level is the minimum level logged; slog.LevelInfo when nil.
	Level slog.Leveler
	// Identifier is SYSLOG_IDENTIFIER; DefaultIdentifier when empty.
	Identifier string
	// Prefix starts every attribute's field name; DefaultPrefix when
	// empty. It must be a valid field name start: A-Z, 0-9 and "_", not
	// starting with "_".
	Prefix string
	// Fallback, when not nil, handles the records the journal could not
	// take (its socket missing, refusing, full).
	Fallback slog.Handler
}

// Handler is a slog.Handler writing to the journal. It is safe for
// concurrent use; Close closes the socket shared by the handlers derived
// with WithAttrs and WithGroup.
type Handler struct {
	conn     *net.UnixConn
	addr     *net.UnixAddr
	level    slog.Leveler
	ident    string
	prefix   string
	fallback slog.Handler

	// fields are the encoded fields of the WithAttrs attributes.
	fields []byte
	// errno is the ERRNO field from the WithAttrs attributes, if any.
	errno string
	// groups are the open groups, as a field-name prefix ("G1_G2_").
	groups string
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler returns a handler writing to the journal's socket. It opens a
// local datagram socket; the journal's socket need not exist yet.
func NewHandler(opts *Options) (*Handler, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.Level == nil {
		o.Level = slog.LevelInfo
	}
	if o.Identifier == "" {
		o.Identifier = DefaultIdentifier
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !validName(o.Prefix) {
		return nil, fmt.Errorf("journal: prefix %q: not A-Z, 0-9 and _ or starts with _", o.Prefix)
	}
	// An unbound (autobound) socket: each datagram names the journal's
	// socket, so that a restarted journald, with a new socket file, is
	// reached again.
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("journal: open socket: %w", err)
	}
	return &Handler{
		conn:     conn,
		addr:     &net.UnixAddr{Name: o.Socket, Net: "unixgram"},
		level:    o.Level,
		ident:    o.Identifier,
		prefix:   o.Prefix,
		fallback: o.Fallback,
	}, nil
}

// Close closes the handler's socket.
func (h *Handler) Close() error { return h.conn.Close() }

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	b := bytes.NewBuffer(slices.Clip(h.fields))
	for _, a := range attrs {
		h2.appendAttr(b, h.groups, a, &h2.errno)
	}
	h2.fields = b.Bytes()
	if h.fallback != nil {
		h2.fallback = h.fallback.WithAttrs(attrs)
	}
	return &h2
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.groups = h.groups + name + "_"
	if h.fallback != nil {
		h2.fallback = h.fallback.WithGroup(name)
	}
	return &h2
}

// Handle implements slog.Handler: it sends the record as one entry. When
// the journal cannot take it, the record goes to the fallback handler,
// and Handle returns the fallback's error; without a fallback, the
// journal's.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.send(h.encode(r))
	if err == nil {
		return nil
	}
	if h.fallback != nil {
		return h.fallback.Handle(ctx, r)
	}
	return err
}

// encode returns the entry of r in the native protocol.
func (h *Handler) encode(r slog.Record) []byte {
	var b bytes.Buffer
	appendField(&b, "MESSAGE", r.Message)
	appendField(&b, "PRIORITY", strconv.Itoa(Priority(r.Level)))
	appendField(&b, "SYSLOG_IDENTIFIER", h.ident)
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		if f.File != "" {
			appendField(&b, "CODE_FILE", f.File)
			appendField(&b, "CODE_LINE", strconv.Itoa(f.Line))
		}
		if f.Function != "" {
			appendField(&b, "CODE_FUNC", f.Function)
		}
	}
	b.Write(h.fields)
	errno := h.errno
	r.Attrs(func(a slog.Attr) bool {
		h.appendAttr(&b, h.groups, a, &errno)
		return true
	})
	if errno != "" {
		appendField(&b, "ERRNO", errno)
	}
	return b.Bytes()
}

// appendAttr appends the fields of a, in groups (a field-name prefix),
// setting *errno from the first error wrapping a syscall.Errno.
func (h *Handler) appendAttr(b *bytes.Buffer, groups string, a slog.Attr, errno *string) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		attrs := v.Group()
		if len(attrs) == 0 {
			return
		}
		if a.Key != "" {
			groups += a.Key + "_"
		}
		for _, ga := range attrs {
			h.appendAttr(b, groups, ga, errno)
		}
		return
	}
	if a.Key == "" {
		return
	}
	if err, ok := v.Any().(error); ok && *errno == "" {
		var en syscall.Errno
		if errors.As(err, &en) {
			*errno = strconv.Itoa(int(en))
		}
	}
	appendField(b, FieldName(h.prefix, groups+a.Key), text(v))
}

// text is the journal's text of v.
func text(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
		return fmt.Sprint(v.Any())
	default:
		return v.String()
	}
}

// FieldName is the journal field of an attribute whose key, with its
// groups joined by "_", is key: prefix followed by key upper-cased, every
// character other than A-Z, 0-9 and "_" replaced by "_", cut at 64
// characters. FieldName("MPTCPGOD_", "token") is "MPTCPGOD_TOKEN".
func FieldName(prefix, key string) string {
	var sb strings.Builder
	sb.Grow(len(prefix) + len(key))
	sb.WriteString(prefix)
	for _, c := range key {
		switch {
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			sb.WriteRune(c)
		case c >= 'a' && c <= 'z':
			sb.WriteRune(c - 'a' + 'A')
		default:
			sb.WriteByte('_')
		}
	}
	name := sb.String()
	if len(name) > maxFieldName {
		name = name[:maxFieldName]
	}
	return name
}

// validName reports whether s is a journal field name (or a prefix of
// one): A-Z, 0-9 and "_", not starting with "_", at most 64 characters.
func validName(s string) bool {
	if s == "" || s[0] == '_' || len(s) > maxFieldName {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Priority is the syslog priority of a slog level: 7 (debug) below Info,
// 6 (info) below Warn, 4 (warning) below Error, 3 (err) from Error up.
func Priority(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 7
	case l < slog.LevelWarn:
		return 6
	case l < slog.LevelError:
		return 4
	default:
		return 3
	}
}

// appendField appends one field in the native protocol: NAME=VALUE\n, or,
// when the value has a newline, NAME\n, its length as a little-endian
// uint64, the value and \n.
func appendField(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	if !strings.Contains(value, "\n") {
		b.WriteByte('=')
		b.WriteString(value)
		b.WriteByte('\n')
		return
	}
	b.WriteByte('\n')
	b.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(value))))
	b.WriteString(value)
	b.WriteByte('\n')
}

// send writes an entry to the journal: in a datagram, or, when it is too
// large for one, in a sealed memfd passed with SCM_RIGHTS.
func (h *Handler) send(entry []byte) error {
	_, _, err := h.conn.WriteMsgUnix(entry, nil, h.addr)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EMSGSIZE) && !errors.Is(err, unix.ENOBUFS) {
		return fmt.Errorf("journal: send: %w", err)
	}
	fd, err := unix.MemfdCreate("mptcpgod-journal", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("journal: large entry: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd")
	defer f.Close()
	if _, err := f.Write(entry); err != nil {
		return fmt.Errorf("journal: large entry: %w", err)
	}
	// journald takes a memfd only when it is sealed.
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return fmt.Errorf("journal: large entry: seal: %w", err)
	}
	if _, _, err := h.conn.WriteMsgUnix(nil, unix.UnixRights(int(f.Fd())), h.addr); err != nil {
		return fmt.Errorf("journal: send large entry: %w", err)
	}
	return nil
}
