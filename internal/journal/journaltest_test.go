package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// field is one field of an entry, in the order written.
type field struct{ Name, Value string }

// standIn is a stand-in journal: a datagram socket in a test directory.
type standIn struct {
	t    *testing.T
	path string
	conn *net.UnixConn
	// viaFD is whether the last entry came in a memfd.
	viaFD bool
}

// newStandIn listens on a socket in t.TempDir().
func newStandIn(t *testing.T) *standIn {
	t.Helper()
	s, err := listenStandIn(filepath.Join(t.TempDir(), "socket"))
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	t.Cleanup(func() { s.conn.Close() })
	return s
}

// listenStandIn listens on a socket at path; the standIn has no test, so
// only receive may be used.
func listenStandIn(path string) (*standIn, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &standIn{path: path, conn: conn}, nil
}

// next returns the next entry; it fails the test after a second without
// one (the entries are sent before next is called).
func (s *standIn) next() []field {
	s.t.Helper()
	fields, err := s.receive()
	if err != nil {
		s.t.Fatalf("stand-in journal: %v", err)
	}
	return fields
}

// receive returns the next entry, read from the datagram or from the
// memfd it carries, or an error after a second without one.
func (s *standIn) receive() ([]field, error) {
	if err := s.conn.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	data := buf[:n]
	s.viaFD = oobn > 0
	if oobn > 0 {
		if data, err = readRights(oob[:oobn]); err != nil {
			return nil, err
		}
	}
	fields, err := parseEntry(data)
	if err != nil {
		return nil, fmt.Errorf("%w\n%q", err, data)
	}
	return fields, nil
}

// none fails the test if an entry arrives within a short while.
func (s *standIn) none() {
	s.t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		s.t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	if n, err := s.conn.Read(buf); err == nil {
		s.t.Errorf("stand-in journal got an entry, want none: %q", buf[:n])
	}
}

// readRights reads the file whose descriptor oob carries, as journald
// does with a sealed memfd.
func readRights(oob []byte) ([]byte, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("control message: %v (%d messages)", err, len(msgs))
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("rights: %v (%d fds)", err, len(fds))
	}
	f := os.NewFile(uintptr(fds[0]), "memfd")
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("seals: %w", err)
	}
	if want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL; seals&want != want {
		return nil, fmt.Errorf("memfd seals %#x, want %#x", seals, want)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// parseEntry decodes an entry in the native journal protocol.
func parseEntry(b []byte) ([]field, error) {
	var fields []field
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errors.New("entry does not end with a newline")
		}
		line := b[:nl]
		if name, value, ok := bytes.Cut(line, []byte("=")); ok {
			fields = append(fields, field{string(name), string(value)})
			b = b[nl+1:]
			continue
		}
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("field %q: no length", line)
		}
		size := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < size+1 || b[size] != '\n' {
			return nil, fmt.Errorf("field %q: %d bytes and a newline do not follow", line, size)
		}
		fields = append(fields, field{string(line), string(b[:size])})
		b = b[size+1:]
	}
	return fields, nil
}
