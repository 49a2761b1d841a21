package ctlhttp

import (
	"context"
	"errors"
	"net/http"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

// ForceBackend is what a Backend implements to serve /v1/force; a Backend
// without it answers 404.
type ForceBackend interface {
	// Force returns what is forced and whether BPF runs.
	Force(ctx context.Context) (ctlapi.Force, error)
	// ForceUnit forces the unit, or unforces it with off, and keeps that
	// across restarts. The errors wrap ErrInvalid, ErrConflict or
	// ErrUnavailable.
	ForceUnit(ctx context.Context, unit string, off bool) (ctlapi.Force, error)
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

func (h *Handler) force(w http.ResponseWriter, r *http.Request) error {
	fb, err := h.forceBackend()
	if err != nil {
		return err
	}
	var f ctlapi.Force
	if err := h.query(r, func(ctx context.Context) (err error) {
		f, err = fb.Force(ctx)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(w, f)
}

func (h *Handler) forceUnit(w http.ResponseWriter, r *http.Request) error {
	fb, err := h.forceBackend()
	if err != nil {
		return err
	}
	var req ctlapi.ForceRequest
	if err := decodeBody(r.Body, &req); err != nil {
		return err
	}
	var f ctlapi.Force
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
	if req.Off {
		h.log.Info("unit no longer forced, over the control socket", "unit", req.Unit)
	} else {
		h.log.Info("unit forced over the control socket", "unit", req.Unit)
	}
	return writeJSON(w, f)
}
