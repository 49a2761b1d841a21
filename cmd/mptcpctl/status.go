package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the daemon's state: mode, policy, links, endpoints, counters, errors",
		Long: `Show the mptcpgod daemon's state, from its control socket:

    the daemon's version, mode (kernel or userspace), whether it is ready,
    and its uptime; the configuration file; the kernel's release and the
    capabilities it lacks, each with the Linux release that brings it and
    what mptcpgod does without it; the policy in force with its
    default chain and rules; the links with their kind and whether they are
    up, usable and metered; the endpoints (kernel mode: mptcpgod's own, the
    desired ones and any foreign ones, with their state); the number of
    connections it manages (userspace mode), their paths by state (as
    mptcpctl paths names the states) and the commands in flight; its
    counters, deferred joins included; the mitigation of the kernel's
    corruption on joins ([mitigation]: DSS checksums, the minimum age of a
    connection before a join; kernel mode cannot defer joins) and the
    kernel's data mapping errors since the daemon started (DSSNotMatching,
    DataCsumErr, MP_FAIL, MP_RST sent); the last kernel commands that
    failed, with the kernel's words.

The daemon answers it from counts it keeps, whatever the number of
connections. Reading needs root or membership of the daemon's group
(mptcpgod). With
--json the answer of GET /v1/status is printed as is (docs/control-socket.md).`,
		Example: "  mptcpctl status\n  mptcpctl status --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := ask(cmd.Context(), a, (*ctlapi.Client).Status)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, st)
			}
			return writeStatus(a.stdout, localStatus(st))
		},
	}
}

// localStatus returns st with its times in the local zone.
func localStatus(st *ctlapi.Status) *ctlapi.Status {
	out := *st
	out.Started = localTime(st.Started)
	out.RecentErrors = slices.Clone(st.RecentErrors)
	for i := range out.RecentErrors {
		out.RecentErrors[i].Time = localTime(out.RecentErrors[i].Time)
	}
	out.Mitigation.Checked = localTime(st.Mitigation.Checked)
	out.Endpoints = slices.Clone(st.Endpoints)
	for i := range out.Endpoints {
		out.Endpoints[i].BackoffUntil = localTime(out.Endpoints[i].BackoffUntil)
	}
	return &out
}

// writeStatus prints the status: a summary, then tables of links,
// endpoints and recent errors.
func writeStatus(w io.Writer, st *ctlapi.Status) error {
	var b bytes.Buffer
	ready := "not ready"
	if st.Ready {
		ready = "ready"
	}
	fmt.Fprintf(&b, "mptcpgod %s, mode %s, %s, up %s (since %s)\n", st.Version, st.Mode, ready,
		(time.Duration(st.UptimeSeconds) * time.Second).String(), formatTime(st.Started))
	fmt.Fprintf(&b, "config    %s\n", dash(st.ConfigFile))
	fmt.Fprintf(&b, "kernel    %s", dash(st.Kernel.Release))
	if n := len(st.Kernel.Missing); n > 0 {
		fmt.Fprintf(&b, ", lacks %d capabilities (below)", n)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "policy    %s\n", st.Policy.Name)
	fmt.Fprintf(&b, "  chain   %s\n", formatChain(st.Policy.Chain))
	for i, r := range st.Policy.Rules {
		fmt.Fprintf(&b, "  rule %d  %s: %s\n", i, formatMatch(r), formatChain(r.Chain))
	}
	conns := fmt.Sprintf("%d managed", st.Connections)
	if st.Mode == pmstate.ModeKernel {
		conns = "run by the in-kernel path manager"
	}
	fmt.Fprintf(&b, "conns     %s; commands %d in flight, %d queued", conns, st.InFlight, st.Queued)
	if st.Resyncing {
		b.WriteString("; resynchronising")
	}
	b.WriteString("\n")
	if st.Mode != pmstate.ModeKernel {
		fmt.Fprintf(&b, "paths     %s\n", formatCounts(st.Paths))
	}
	if l := st.Limits; l != nil {
		fmt.Fprintf(&b, "limits    subflows %d%s, add_addr_accepted %d%s", l.Subflows, want(l.WantSubflows),
			l.AddAddrAccepted, want(l.WantAddAddrAccepted))
		if l.LastError != "" {
			b.WriteString("; last error: " + l.LastError)
		}
		b.WriteString("\n")
	}
	c := st.Counters
	fmt.Fprintf(&b, "actions   %s\n", formatCounts(c.Actions))
	fmt.Fprintf(&b, "failures  %s\n", formatCounts(c.Failures))
	fmt.Fprintf(&b, "events    %s in %d batches; resyncs %d, backoffs %d\n", formatCounts(c.Events), c.EventBatches,
		c.Resyncs, c.Backoffs)
	if st.Mode == pmstate.ModeKernel {
		fmt.Fprintf(&b, "repairs   %d (endpoints replaced), given up %d (connections)\n",
			c.EndpointRepairs, c.RepairsGivenUp)
	} else {
		fmt.Fprintf(&b, "peers     announced addresses refused %s, given up %d\n", formatCounts(c.PeerAddrsRefused),
			c.PeerAddrsGivenUp)
		d := c.Deferral
		fmt.Fprintf(&b, "deferred  %d connections; released by time %d, by bytes %d; ended before their joins %d\n",
			d.Held, d.ReleasedTime, d.ReleasedBytes, d.EndedHeld)
	}
	fmt.Fprintf(&b, "plans     refused %s\n", formatCounts(c.PlansRefused))
	writeMitigation(&b, st.Mitigation)

	if len(st.Kernel.Missing) > 0 {
		b.WriteString("\n")
		t := newTable(&b)
		fmt.Fprintln(t, "KERNEL LACKS\tSINCE\tMPTCPGOD")
		for _, c := range st.Kernel.Missing {
			fmt.Fprintf(t, "%s\tLinux %s\t%s\n", c.Name, c.Since, c.Without)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}

	b.WriteString("\n")
	t := newTable(&b)
	fmt.Fprintln(t, "LINK\tKIND\tUP\tUSABLE\tMETERED\tADDRESSES\tREASON")
	for _, l := range st.Links {
		var addrs []string
		for _, ad := range l.Addrs {
			addrs = append(addrs, ad.Addr.String())
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, l.Kind, yesNo(l.Up), yesNo(l.Usable), yesNo(l.Metered),
			dash(strings.Join(addrs, ",")), dash(l.Reason))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(st.Endpoints) > 0 {
		b.WriteString("\n")
		t = newTable(&b)
		fmt.Fprintln(t, "ID\tADDRESS\tDEV\tFLAGS\tWANT\tOWNED\tSTATE\tWHY")
		for _, e := range st.Endpoints {
			id := "-"
			if e.ID != 0 {
				id = fmt.Sprint(e.ID)
			}
			addr := e.Addr.String()
			if e.Port != 0 {
				addr += fmt.Sprintf(" port %d", e.Port)
			}
			why := cmp.Or(e.Reason, e.LastError)
			if e.State == pmstate.EndpointBackoff {
				why = fmt.Sprintf("retry at %s: %s", formatTime(e.BackoffUntil), e.LastError)
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, addr, dash(e.Dev), dash(commas(e.Flags)),
				dash(commas(e.WantFlags)), yesNo(e.Owned), e.State, dash(why))
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	b.WriteString("\n")
	if len(st.RecentErrors) == 0 {
		b.WriteString("no recent errors\n")
	} else {
		t = newTable(&b)
		fmt.Fprintln(t, "TIME\tOP\tTOKEN\tON\tERROR")
		for _, e := range st.RecentErrors {
			token := "-"
			if e.Token != 0 {
				token = formatToken(e.Token)
			}
			on := formatAddr(e.Addr)
			if e.Remote.IsValid() {
				on = formatAddr(e.Local.Addr()) + " → " + e.Remote.String()
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\n", formatTime(e.Time), e.Op, token, on, e.Error)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// want formats a wanted limit: " (want N)", "" when left alone or met.
func want(p *uint32) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(" (want %d)", *p)
}

// formatCounts formats counters as "12 (create_subflow 10, announce 2)",
// the largest first.
func formatCounts[K ~string, V int | uint64](m map[K]V) string {
	var total V
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(x, y K) int { return cmp.Or(cmp.Compare(m[y], m[x]), cmp.Compare(x, y)) })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		total += m[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

// formatChain formats a chain as "fullmesh | backup-cellular{"x":1}".
func formatChain(specs []ctlapi.PolicySpec) string {
	if len(specs) == 0 {
		return "-"
	}
	parts := make([]string, len(specs))
	for i, s := range specs {
		parts[i] = s.Name
		if len(s.Config) > 0 && string(s.Config) != "null" {
			var buf bytes.Buffer
			if json.Compact(&buf, s.Config) == nil {
				parts[i] += buf.String()
			} else {
				parts[i] += string(s.Config)
			}
		}
	}
	return strings.Join(parts, " | ")
}

// formatMatch formats a rule's match: "peer 203.0.113.0/24 port 443 side
// client", or "any connection".
func formatMatch(m ctlapi.PolicyRule) string {
	var parts []string
	if m.PeerPrefix.IsValid() {
		parts = append(parts, "peer "+m.PeerPrefix.String())
	}
	if m.PeerPort != 0 {
		parts = append(parts, fmt.Sprintf("peer port %d", m.PeerPort))
	}
	if m.LocalPort != 0 {
		parts = append(parts, fmt.Sprintf("local port %d", m.LocalPort))
	}
	if m.Side != "" {
		parts = append(parts, "side "+string(m.Side))
	}
	if m.Unit != "" {
		parts = append(parts, "unit "+m.Unit)
	}
	if m.UID != nil {
		parts = append(parts, fmt.Sprintf("uid %d", *m.UID))
	}
	if len(parts) == 0 {
		return "any connection"
	}
	return strings.Join(parts, " ")
}

// commas turns "subflow fullmesh" into "subflow,fullmesh".
func commas(flags string) string { return strings.Join(strings.Fields(flags), ",") }

// writeMitigation prints the mitigation of the kernel's corruption on joins
// and the kernel's mapping errors since the daemon started.
func writeMitigation(b *bytes.Buffer, m ctlapi.Mitigation) {
	csum := "off"
	if m.Checksums {
		csum = "on"
	}
	fmt.Fprintf(b, "mitigate  checksums %s (config %s); ", csum, dash(m.ChecksumsConfig))
	if m.CanDefer {
		fmt.Fprintf(b, "no join before a connection is %s old\n", m.MinJoinAge)
	} else {
		b.WriteString("joins cannot be deferred in kernel mode\n")
	}
	switch {
	case m.Error != "":
		fmt.Fprintf(b, "mapping   errors unknown: %s\n", m.Error)
	case m.Checked.IsZero():
		b.WriteString("mapping   errors not read yet\n")
	default:
		errs := mappingErrors(m.MappingErrors)
		if len(errs) == 0 {
			errs = []string{"none"}
		}
		fmt.Fprintf(b, "mapping   errors since start: %s (read %s)\n", strings.Join(errs, ", "), formatTime(m.Checked))
	}
}

// mappingErrors lists the mapping errors that happened, by name: "DSSNotMatching 2".
func mappingErrors(counts map[string]uint64) []string {
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if v := counts[k]; v > 0 {
			errs = append(errs, fmt.Sprintf("%s %d", k, v))
		}
	}
	return errs
}
