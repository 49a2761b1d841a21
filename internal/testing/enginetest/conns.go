package enginetest

import (
	"context"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/pm"
)

// Conns returns every connection e tracks, in token order, page by page
// (pm.Engine.Conns).
func Conns(ctx context.Context, e *pm.Engine) ([]pmstate.Conn, error) {
	var out []pmstate.Conn
	q := pmstate.ConnQuery{Limit: pmstate.MaxConnLimit}
	for {
		p, err := e.Conns(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Conns...)
		if p.Next == 0 {
			return out, nil
		}
		q.From = p.Next
	}
}

// State is an engine's Status with every connection.
type State struct {
	pmstate.Status
	Conns []pmstate.Conn
}

// Status returns e's Status and every connection (Conns).
func Status(ctx context.Context, e *pm.Engine) (State, error) {
	st, err := e.Status(ctx)
	if err != nil {
		return State{}, err
	}
	conns, err := Conns(ctx, e)
	if err != nil {
		return State{}, err
	}
	return State{Status: st, Conns: conns}, nil
}
