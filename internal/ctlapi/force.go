package ctlapi

import (
	"context"
	"encoding/json"
	"net/http"
)

// Force is GET /v1/force: what the daemon forces with the BPF mechanism,
// and whether that mechanism runs here.
type Force struct {
	// BPF says whether the BPF mechanism runs, and why not.
	BPF Mechanism `json:"bpf"`
	// Units are the forced services, from the configuration and from
	// mptcpctl force.
	Units []ForcedUnit `json:"units"`
	// UIDs are the forced users ([force] uids).
	UIDs []uint32 `json:"uids"`
}

// Mechanism is whether a mechanism is available, and why not.
type Mechanism struct {
	Available bool `json:"available"`
	// Reason says why it is unavailable, with the fix; "" when
	// available.
	Reason string `json:"reason,omitempty"`
}

// Where a forced unit comes from.
const (
	// SourceConfig: the configuration file's [force] units.
	SourceConfig = "config"
	// SourceControl: mptcpctl force unit, kept in the state directory.
	SourceControl = "mptcpctl"
)

// ForcedUnit is one service the daemon forces.
type ForcedUnit struct {
	Unit string `json:"unit"`
	// Source is SourceConfig or SourceControl.
	Source string `json:"source"`
	// Cgroup is the unit's cgroup directory; CgroupID its id, 0 while
	// the cgroup does not exist (the unit is not running).
	Cgroup   string `json:"cgroup"`
	CgroupID uint64 `json:"cgroup_id"`
	// Selected reports that the unit's cgroup is in the BPF program's map
	// now.
	Selected bool `json:"selected"`
	// TCPSockets counts the plain TCP sockets of a selected unit's
	// cgroup and those below it: sockets it opened before it was
	// selected (it ran before it was forced, or before the daemon put
	// its cgroup in the map), which stay TCP until the service opens
	// them again. Sockets systemd passes to a socket-activated service
	// are systemd's, in its own cgroup, and not counted.
	TCPSockets int `json:"tcp_sockets,omitempty"`
}

// ForceRequest is the body of POST /v1/force/units.
type ForceRequest struct {
	// Unit is the service, NAME.service.
	Unit string `json:"unit"`
	// Off unforces it instead.
	Off bool `json:"off,omitempty"`
}

// Force returns what the daemon forces with BPF (GET /v1/force);
// errors.Is(err, ErrNotFound) when the daemon does not force units.
func (c *Client) Force(ctx context.Context) (*Force, error) {
	return get[Force](ctx, c, http.MethodGet, "/v1/force", nil)
}

// ForceUnit forces the service unit with BPF, or unforces it with off
// (POST /v1/force/units); needs root. A refusal is a *StatusError with
// code 400 (bad name), 409 (already forced, not forced, or forced by the
// configuration) or 503 (BPF unavailable, with the reason).
func (c *Client) ForceUnit(ctx context.Context, unit string, off bool) (*Force, error) {
	body, err := json.Marshal(ForceRequest{Unit: unit, Off: off})
	if err != nil {
		return nil, err
	}
	return get[Force](ctx, c, http.MethodPost, "/v1/force/units", body)
}
