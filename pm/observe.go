package pm

import (
	"net/netip"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

// observe hands d to Config.Observe.
func (e *Engine) observe(d pmstate.Decision) {
	if e.cfg.Observe != nil {
		e.cfg.Observe(d)
	}
}

// actionDecision describes the outcome of r's command at now.
func (e *Engine) actionDecision(r *result, now time.Time) pmstate.Decision {
	c := &r.cmd
	d := pmstate.Decision{Time: now, Kind: pmstate.DecisionAction, Op: c.op.name(), Token: c.token}
	if !c.sent.IsZero() {
		d.Took = now.Sub(c.sent)
	}
	if !c.trigger.IsZero() {
		d.Latency = now.Sub(c.trigger)
	}
	if r.err != nil {
		d.Error = r.err.Error()
	}
	switch c.op {
	case opCreateSubflow:
		d.Local, d.Remote, d.Backup = netip.AddrPortFrom(c.path.local, 0), c.remote, c.backup
	case opDestroySubflow:
		d.Local, d.Remote = c.local, c.remote
	case opSetSubflowBackup:
		d.Local, d.Remote, d.Backup = c.local, c.remote, c.backup
	case opAddEndpoint, opSetEndpointFlags, opAnnounce:
		d.ID, d.Addr, d.Flags = c.ep.ID, c.ep.Addr, c.ep.Flags.String()
	case opDelEndpoint, opRemove:
		d.ID, d.Addr = c.id, c.ep.Addr
	}
	return d
}
