package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// The JSON output of every command is one of the types below. Their field
// names are a stable, documented interface (docs/mptcpctl.md): snake_case,
// addresses as strings, flags as arrays of names, tokens as 8 hex digits.
// Add fields; never rename or remove one.

// endpointOut is one in-kernel path-manager endpoint.
type endpointOut struct {
	ID      uint8    `json:"id"`
	Address string   `json:"address"`
	Port    uint16   `json:"port"`    // 0: none
	Flags   []string `json:"flags"`   // signal, subflow, backup, fullmesh, implicit, laminar
	Dev     string   `json:"dev"`     // "" when not bound to an interface
	IfIndex int32    `json:"ifindex"` // 0 when not bound to an interface
}

// limitsOut is the in-kernel path manager's limits.
type limitsOut struct {
	Subflows        uint32 `json:"subflows"`
	AddAddrAccepted uint32 `json:"add_addr_accepted"`
}

// pmOut is the namespace's path manager.
type pmOut struct {
	PathManager string `json:"path_manager"` // kernel or userspace
}

// connectionOut is one MPTCP connection.
type connectionOut struct {
	Token         string `json:"token"`
	Local         string `json:"local"`
	Remote        string `json:"remote"`
	State         string `json:"state"`
	Subflows      int    `json:"subflows"` // all subflows, the initial one included
	Fallback      bool   `json:"fallback"` // fell back to plain TCP
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`
	PathManager   string `json:"path_manager"` // kernel, userspace or unknown
}

// subflowGroupOut is one connection with its subflows.
type subflowGroupOut struct {
	Token       string       `json:"token"`
	Local       string       `json:"local"`  // "" if the connection is gone
	Remote      string       `json:"remote"` // "" if the connection is gone
	PathManager string       `json:"path_manager"`
	Subflows    []subflowOut `json:"subflows"`
}

// subflowOut is one subflow (a TCP socket of an MPTCP connection).
type subflowOut struct {
	Local         string   `json:"local"`
	Remote        string   `json:"remote"`
	Dev           string   `json:"dev"`
	IfIndex       int32    `json:"ifindex"`
	LocalID       uint8    `json:"local_id"`
	RemoteID      uint8    `json:"remote_id"`
	Backup        bool     `json:"backup"` // either side asked for backup
	State         string   `json:"state"`
	RTTMicros     uint32   `json:"rtt_us"`
	BytesSent     uint64   `json:"bytes_sent"`
	BytesAcked    uint64   `json:"bytes_acked"`
	BytesReceived uint64   `json:"bytes_received"`
	Flags         []string `json:"flags"`
	RemoteToken   string   `json:"remote_token"` // "" when the kernel shows none
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// newTable returns the tabwriter all tables use.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// endpointFlagNames returns the names of f's bits, never nil.
func endpointFlagNames(f genl.EndpointFlags) []string {
	if f == 0 {
		return []string{}
	}
	return strings.Fields(f.String())
}

// dash returns s, or "-" when s is empty, for table cells.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// yesNo formats a boolean table cell.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// toEndpointOut converts an endpoint, naming its interface.
func toEndpointOut(e genl.Endpoint, names func(int32) string) endpointOut {
	return endpointOut{
		ID:      e.ID,
		Address: e.Addr.String(),
		Port:    e.Port,
		Flags:   endpointFlagNames(e.Flags),
		Dev:     names(e.IfIndex),
		IfIndex: e.IfIndex,
	}
}

// writeEndpoints prints endpoints as a table.
func writeEndpoints(w io.Writer, eps []endpointOut) error {
	t := newTable(w)
	fmt.Fprintln(t, "ID\tADDRESS\tPORT\tFLAGS\tDEV")
	for _, e := range eps {
		port := "-"
		if e.Port != 0 {
			port = fmt.Sprint(e.Port)
		}
		fmt.Fprintf(t, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.Address, port, dash(strings.Join(e.Flags, ",")), dash(e.Dev))
	}
	return t.Flush()
}

// writeLimits prints limits as a table.
func writeLimits(w io.Writer, l limitsOut) error {
	t := newTable(w)
	fmt.Fprintln(t, "SUBFLOWS\tADD_ADDR_ACCEPTED")
	fmt.Fprintf(t, "%d\t%d\n", l.Subflows, l.AddAddrAccepted)
	return t.Flush()
}

// writeConnections prints connections as a table.
func writeConnections(w io.Writer, cs []connectionOut) error {
	t := newTable(w)
	fmt.Fprintln(t, "TOKEN\tLOCAL\tREMOTE\tSTATE\tSUBFLOWS\tFALLBACK\tSENT\tRECEIVED\tPM")
	for _, c := range cs {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%s\n", c.Token, c.Local, c.Remote, c.State,
			c.Subflows, yesNo(c.Fallback), c.BytesSent, c.BytesReceived, c.PathManager)
	}
	return t.Flush()
}

// writeSubflows prints each connection as a heading line followed by a
// table of its subflows; groups are separated by a blank line.
func writeSubflows(w io.Writer, gs []subflowGroupOut) error {
	for i, g := range gs {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		head := "token " + g.Token
		if g.Local != "" {
			head += "  " + g.Local + " → " + g.Remote
		}
		head += fmt.Sprintf("  pm %s  %d subflow", g.PathManager, len(g.Subflows))
		if len(g.Subflows) != 1 {
			head += "s"
		}
		if _, err := fmt.Fprintln(w, head); err != nil {
			return err
		}
		if len(g.Subflows) == 0 {
			continue
		}
		t := newTable(w)
		fmt.Fprintln(t, "  LOCAL → REMOTE\tDEV\tIDS\tBACKUP\tSTATE\tRTT\tSENT\tACKED\tRECEIVED\tFLAGS")
		for _, s := range g.Subflows {
			fmt.Fprintf(t, "  %s → %s\t%s\t%d/%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n",
				s.Local, s.Remote, dash(s.Dev), s.LocalID, s.RemoteID, yesNo(s.Backup), s.State,
				formatRTT(s.RTTMicros), s.BytesSent, s.BytesAcked, s.BytesReceived, dash(subflowLetters(s.Flags)))
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// formatRTT formats a round-trip time in microseconds as milliseconds.
func formatRTT(us uint32) string {
	return fmt.Sprintf("%.3fms", float64(us)/1000)
}

// subflowFlags are the MPTCP_SUBFLOW_FLAG_* bits in order, with their JSON
// names and the letters ss prints for them.
var subflowFlags = []struct {
	bit    sockdiag.SubflowFlags
	name   string
	letter byte
}{
	{sockdiag.SubflowMCapRemote, "mp_capable_remote", 'M'},
	{sockdiag.SubflowMCapLocal, "mp_capable_local", 'm'},
	{sockdiag.SubflowJoinRemote, "join_remote", 'J'},
	{sockdiag.SubflowJoinLocal, "join_local", 'j'},
	{sockdiag.SubflowBackupRemote, "backup_remote", 'B'},
	{sockdiag.SubflowBackupLocal, "backup_local", 'b'},
	{sockdiag.SubflowFullyEstablished, "fully_established", 'e'},
	{sockdiag.SubflowConnected, "connected", 'c'},
	{sockdiag.SubflowMapValid, "map_valid", 'v'},
}

// subflowFlagNames returns the names of the set bits of f, never nil.
func subflowFlagNames(f sockdiag.SubflowFlags) []string {
	names := []string{}
	for _, sf := range subflowFlags {
		if f&sf.bit != 0 {
			names = append(names, sf.name)
			f &^= sf.bit
		}
	}
	if f != 0 {
		names = append(names, fmt.Sprintf("0x%x", uint32(f)))
	}
	return names
}

// subflowLetters returns the ss letters for flag names, as ss -ti prints
// them after "flags:"; unknown bits are left out.
func subflowLetters(names []string) string {
	var b strings.Builder
	for _, n := range names {
		for _, sf := range subflowFlags {
			if sf.name == n {
				b.WriteByte(sf.letter)
			}
		}
	}
	return b.String()
}

// tcpStates names the TCP states as include/net/tcp_states.h orders them.
var tcpStates = []string{
	1:  "established",
	2:  "syn-sent",
	3:  "syn-recv",
	4:  "fin-wait-1",
	5:  "fin-wait-2",
	6:  "time-wait",
	7:  "close",
	8:  "close-wait",
	9:  "last-ack",
	10: "listen",
	11: "closing",
	12: "new-syn-recv",
}

// stateName returns the name of TCP state s.
func stateName(s uint8) string {
	if int(s) < len(tcpStates) && tcpStates[s] != "" {
		return tcpStates[s]
	}
	return fmt.Sprintf("unknown(%d)", s)
}
