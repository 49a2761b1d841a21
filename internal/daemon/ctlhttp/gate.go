package ctlhttp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

// noCredentials counts the connections whose peer's credentials could not
// be read (the handler refuses their requests), as one user.
const noCredentials = ^uint32(0)

// gate admits a bounded number of things (connections, event streams) per
// user: every user but root at most perUser, all of them together at most
// shared, and root up to reserved more, its own, so that no other user
// can take root's turn.
type gate struct {
	what                      string // "connections", "event streams"
	perUser, shared, reserved int

	mu     sync.Mutex
	byUser map[uint32]int
	others int // held by users other than root
	root   int
}

func newGate(what string, perUser, shared, reserved int) *gate {
	return &gate{what: what, perUser: perUser, shared: shared, reserved: reserved, byUser: map[uint32]int{}}
}

// admit takes a place for uid and returns nil, or says why there is none.
func (g *gate) admit(uid uint32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if uid == 0 {
		// Root takes a shared place when there is one, else one of its
		// own.
		if g.others+g.root >= g.shared+g.reserved {
			return fmt.Errorf("too many %s open (%d)", g.what, g.others+g.root)
		}
		g.root++
		return nil
	}
	switch {
	case g.byUser[uid] >= g.perUser:
		return fmt.Errorf("too many %s of uid %d open (at most %d per user)", g.what, uid, g.perUser)
	case g.others >= g.shared || g.others+g.root >= g.shared+g.reserved:
		return fmt.Errorf("too many %s open (at most %d for users other than root)", g.what, g.shared)
	}
	g.byUser[uid]++
	g.others++
	return nil
}

// release gives back a place of uid.
func (g *gate) release(uid uint32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if uid == 0 {
		g.root--
		return
	}
	g.others--
	if g.byUser[uid]--; g.byUser[uid] == 0 {
		delete(g.byUser, uid)
	}
}

// gatedListener admits each connection through a gate by its peer's uid.
// A connection refused gets an HTTP answer saying why (429) and is closed;
// Accept goes on with the next one.
type gatedListener struct {
	net.Listener
	gate    *gate
	refused func(p Peer, err error)
	// refusing holds a place per refusal being answered: beyond it,
	// refused connections are closed without an answer.
	refusing chan struct{}
}

// maxRefusing bounds the refusals answered at once, and refusalTime how
// long each may take: a flood of connections must not hold descriptors
// waiting for slow clients.
const (
	maxRefusing = 64
	refusalTime = time.Second
)

func newGatedListener(ln net.Listener, g *gate, refused func(Peer, error)) *gatedListener {
	return &gatedListener{Listener: ln, gate: g, refused: refused, refusing: make(chan struct{}, maxRefusing)}
}

// gatedConn is an admitted connection; its place is given back once, at
// the first Close.
type gatedConn struct {
	net.Conn
	peer    Peer
	peerErr error
	gate    *gate
	once    sync.Once
}

// Accept implements net.Listener.
func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, perr := peerOf(c)
		uid := p.UID
		if perr != nil {
			uid = noCredentials
		}
		if err := l.gate.admit(uid); err != nil {
			l.refused(p, err)
			select {
			case l.refusing <- struct{}{}:
				go func() {
					refuse(c, uid, err)
					<-l.refusing
				}()
			default:
				_ = c.Close()
			}
			continue
		}
		return &gatedConn{Conn: c, peer: p, peerErr: perr, gate: l.gate}, nil
	}
}

// Close implements net.Conn.
func (c *gatedConn) Close() error {
	c.once.Do(func() {
		uid := c.peer.UID
		if c.peerErr != nil {
			uid = noCredentials
		}
		c.gate.release(uid)
	})
	return c.Conn.Close()
}

// refuse reads the request's head (so that the client, still writing it,
// gets the answer rather than a broken pipe), answers 429 with the reason
// and closes the connection, all within refusalTime.
func refuse(c net.Conn, uid uint32, reason error) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(refusalTime))
	br := bufio.NewReaderSize(io.LimitReader(c, 8<<10), 512)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil || len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
	}
	msg := reason.Error()
	if uid != 0 {
		msg += "; root has places of its own"
	}
	body, _ := json.Marshal(ctlapi.ErrorBody{Error: msg})
	body = append(body, '\n')
	_, _ = fmt.Fprintf(c, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"+
		"Content-Length: %d\r\n\r\n%s", len(body), body)
}
