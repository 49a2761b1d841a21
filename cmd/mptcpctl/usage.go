package main

import (
	"fmt"
	"io"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

func (a *app) usageCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "usage",
		Short: "Show the traffic of the metered links in their accounting periods",
		Long: `Show the traffic the daemon counted on the links of its [usage] table
(docs/config.md): per link whether it is metered and who said so, the bytes
used in the current accounting period, the quota and what is left of it, the
cost so far and when the period ends. A link that reached its quota is marked
over quota; the cost-aware policy then takes it out of use. Notices, such as a
corrupt usage file that was set aside, come first.

The counts survive daemon restarts and reboots (the usage file in [usage]
state_dir). When no [usage] links are configured the daemon says that usage
accounting is off.

Reading needs root or membership of the daemon's group. With --json the answer
of GET /v1/usage is printed as is.`,
		Example: "  mptcpctl usage\n  mptcpctl usage --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := ask(cmd.Context(), a, (*ctlapi.Client).Usage)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, rep)
			}
			return writeUsage(a.stdout, rep)
		},
	}
}

// writeUsage prints the report: the notices, then one line per link with
// sizes in SI units (as quotas are written).
func writeUsage(w io.Writer, rep *ctlapi.Usage) error {
	for _, n := range rep.Notices {
		if _, err := fmt.Fprintf(w, "notice: %s\n", n); err != nil {
			return err
		}
	}
	t := newTable(w)
	fmt.Fprintln(t, "LINK\tMETERED\tUSED\tQUOTA\tREMAINING\tPERIOD END\tCOST")
	for _, l := range rep.Links {
		name := l.Name
		if !l.Present {
			name += " (absent)"
		}
		metered := yesNo(l.Metered)
		if l.MeteredBy != "config" {
			metered += " (" + l.MeteredBy + ")"
		}
		quota, remaining := "-", "-"
		if l.RemainingBytes != nil {
			quota, remaining = humanize.Bytes(l.QuotaBytes), humanize.Bytes(*l.RemainingBytes)
		}
		if l.OverQuota {
			remaining += " (reached)"
		}
		cost := "-"
		if l.CostPerGB > 0 {
			cost = fmt.Sprintf("%.2f", l.Cost)
		}
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, metered, humanize.Bytes(l.UsedBytes), quota, remaining,
			l.PeriodEnd.Format("2006-01-02 15:04 MST"), cost)
	}
	return t.Flush()
}
