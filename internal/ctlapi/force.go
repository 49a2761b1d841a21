package ctlapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// Force is GET /v0/force: what the daemon forces with the BPF mechanism,
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
}

// ForceRequest is the body of POST /v0/force/units.
type ForceRequest struct {
	// Unit is the service, NAME.service.
	Unit string `json:"unit"`
	// Off unforces it instead.
	Off bool `json:"off,omitempty"`
}

// ForceBackend is what a Backend implements to serve /v0/force; a
// Backend without it answers 404.
type ForceBackend interface {
	// Force returns what is forced and whether BPF runs.
	Force(ctx context.Context) (Force, error)
	// ForceUnit forces the unit, or unforces it with off, and keeps
	// that across restarts. The errors wrap ErrInvalid, ErrConflict or
	// ErrUnavailable.
	ForceUnit(ctx context.Context, unit string, off bool) (Force, error)
}

// Errors of a ForceBackend, answered 400, 409 and 503.
var (
	ErrInvalid     = errors.New("invalid request")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("unavailable")
)

func (h *Handler) forceBackend() (ForceBackend, error) {
	fb, ok := h.b.(ForceBackend)
	if !ok {
		return nil, errorf(http.StatusNotFound, "this daemon does not force units")
	}
	return fb, nil
}

func (h *Handler) force(w http.ResponseWriter, r *http.Request, _ string) error {
	fb, err := h.forceBackend()
	if err != nil {
		return err
	}
	var f Force
	if err := h.query(r, func(ctx context.Context) (err error) {
		f, err = fb.Force(ctx)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(w, f)
}

func (h *Handler) forceUnit(w http.ResponseWriter, r *http.Request, _ string) error {
	fb, err := h.forceBackend()
	if err != nil {
		return err
	}
	var req ForceRequest
	if err := decodeBody(r.Body, &req); err != nil {
		return err
	}
	var f Force
	err = h.query(r, func(ctx context.Context) (err error) {
		f, err = fb.ForceUnit(ctx, req.Unit, req.Off)
		return err
	})
	switch {
	case errors.Is(err, ErrInvalid):
		return errorf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, ErrConflict):
		return errorf(http.StatusConflict, "%v", err)
	case errors.Is(err, ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, "%v", err)
	case err != nil:
		return err
	}
	h.log.Info("unit forced over the control socket", "unit", req.Unit, "off", req.Off)
	return writeJSON(w, f)
}

// Force returns what the daemon forces with BPF (GET /v0/force);
// errors.Is(err, ErrNotFound) when the daemon does not force units.
func (c *Client) Force(ctx context.Context) (*Force, error) {
	return get[Force](ctx, c, http.MethodGet, "/v0/force", nil)
}

// ForceUnit forces the service unit with BPF, or unforces it with off
// (POST /v0/force/units); needs root. A refusal is a *StatusError with
// code 400 (bad name), 409 (already forced, not forced, or forced by the
// configuration) or 503 (BPF unavailable, with the reason).
func (c *Client) ForceUnit(ctx context.Context, unit string, off bool) (*Force, error) {
	body, err := json.Marshal(ForceRequest{Unit: unit, Off: off})
	if err != nil {
		return nil, err
	}
	return get[Force](ctx, c, http.MethodPost, "/v0/force/units", body)
}
