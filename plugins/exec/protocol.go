package exec

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mptcpgod/mptcpgod/policy"
)

// Version is the protocol version the daemon speaks.
const Version = 1

// MaxLine is the longest line a plugin may write to its standard output,
// newline included; a longer one is a protocol error.
const MaxLine = 1 << 20

// Message types.
const (
	typeHello  = "hello"
	typeKernel = "kernel"
	typeConn   = "conn"
	typeError  = "error"
)

// helloRequest is the daemon's first line.
type helloRequest struct {
	Type    string      `json:"type"`
	Version int         `json:"version"`
	Mode    policy.Mode `json:"mode"`
}

// kernelRequest asks for a kernel-mode plan.
type kernelRequest struct {
	Type string            `json:"type"`
	ID   uint64            `json:"id"`
	View policy.View       `json:"view"`
	Next policy.KernelPlan `json:"next"`
}

// connRequest asks for a connection's plan.
type connRequest struct {
	Type string          `json:"type"`
	ID   uint64          `json:"id"`
	View policy.View     `json:"view"`
	Conn policy.Conn     `json:"conn"`
	Next policy.ConnPlan `json:"next"`
}

// reply is a line from the plugin: the hello reply, an answer or an
// error. Fields that the type does not use are ignored, and so are keys
// the daemon does not know.
type reply struct {
	Type    string          `json:"type"`
	ID      uint64          `json:"id"`
	Version int             `json:"version"`
	Name    string          `json:"name"`
	Plan    json.RawMessage `json:"plan"`
	Message string          `json:"message"`
}

// decodeReply decodes one line the plugin wrote, without its newline.
func decodeReply(line []byte) (reply, error) {
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		return reply{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if r.Type == "" {
		return reply{}, errors.New(`no "type"`)
	}
	return r, nil
}

// decodePlan decodes the plan of an answer into p (a *policy.KernelPlan
// or *policy.ConnPlan) and validates it.
func decodePlan[P interface{ Validate() error }](raw json.RawMessage, p P) error {
	if len(raw) == 0 || string(raw) == "null" {
		return errors.New(`no "plan"`)
	}
	if raw[0] != '{' {
		return errors.New(`"plan" is not an object`)
	}
	if err := json.Unmarshal(raw, p); err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	return p.Validate()
}
