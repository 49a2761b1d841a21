package daemon

import (
	"fmt"
	"slices"

	"github.com/mptcpgod/mptcpgod/internal/force"
	"github.com/mptcpgod/mptcpgod/internal/transparent/bpf"
)

// ForceConfig is the [force] table, checked: the services and users whose
// TCP sockets the BPF mechanism makes MPTCP.
type ForceConfig struct {
	// Units are service unit names, each once.
	Units []string
	// UIDs are real uids, each once.
	UIDs []uint32
}

// fillForce checks the [force] table and sets c.Force from it.
func (c *Config) fillForce(k *checker, f ForceFile) {
	c.Force = ForceConfig{Units: []string{}, UIDs: []uint32{}}
	// The BPF program's maps hold at most bpf.MaxEntries cgroups and as
	// many uids: more could never all be forced.
	if len(f.Units) > bpf.MaxEntries {
		k.fail("force.units", "%d units, more than the %d the BPF program can hold", len(f.Units), bpf.MaxEntries)
		f.Units = nil
	}
	if len(f.UIDs) > bpf.MaxEntries {
		k.fail("force.uids", "%d uids, more than the %d the BPF program can hold", len(f.UIDs), bpf.MaxEntries)
		f.UIDs = nil
	}
	for i, u := range f.Units {
		key := fmt.Sprintf("force.units[%d]", i)
		switch err := force.CheckServiceName(u); {
		case err != nil:
			k.fail(key, "%v", err)
		case slices.Contains(c.Force.Units, u):
			k.fail(key, "%q is listed twice", u)
		default:
			c.Force.Units = append(c.Force.Units, u)
		}
	}
	for i, uid := range f.UIDs {
		key := fmt.Sprintf("force.uids[%d]", i)
		switch {
		case uid == 1<<32-1:
			k.fail(key, "%d is not a valid uid", uid)
		case slices.Contains(c.Force.UIDs, uid):
			k.fail(key, "%d is listed twice", uid)
		default:
			c.Force.UIDs = append(c.Force.UIDs, uid)
		}
	}
}
