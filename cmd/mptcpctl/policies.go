package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

func (a *app) policiesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "policies",
		Short: "List the policies compiled into the daemon and their options",
		Long: `List the policies compiled into the mptcpgod daemon, each with what it does
and its options: name, JSON type, default, accepted values, the path manager
the option acts in (MODE: kernel, userspace, or both) and meaning. They are
what [[policy.chain]] entries of the configuration may name (docs/config.md).
When the daemon runs in kernel mode, a first line says that the options of
userspace mode have no effect: the in-kernel path manager opens subflows as
soon as a connection is established, so it cannot defer joins (join_delay).

Reading needs root or membership of the daemon's group. With --json the answer
of GET /v1/policies is printed as is.`,
		Example: "  mptcpctl policies\n  mptcpctl policies --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := ask(cmd.Context(), a, (*ctlapi.Client).Policies)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, ps)
			}
			return writePolicies(a.stdout, ps)
		},
	}
}

// writePolicies prints each policy as a heading line with its summary,
// followed by a table of its options.
func writePolicies(w io.Writer, ps *ctlapi.Policies) error {
	if len(ps.Policies) == 0 {
		_, err := fmt.Fprintln(w, "no policies compiled in")
		return err
	}
	if ps.Mode == pmstate.ModeKernel {
		_, err := fmt.Fprint(w, "mode kernel: options of mode userspace have no effect; the in-kernel path manager\n"+
			"opens subflows as soon as a connection is established and cannot defer joins\n\n")
		if err != nil {
			return err
		}
	}
	for i, p := range ps.Policies {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s: %s\n", p.Name, dash(p.Summary)); err != nil {
			return err
		}
		if len(p.Options) == 0 {
			if _, err := fmt.Fprintln(w, "  no options"); err != nil {
				return err
			}
			continue
		}
		t := newTable(w)
		fmt.Fprintln(t, "  OPTION\tTYPE\tDEFAULT\tVALUES\tMODE\tMEANING")
		for _, o := range p.Options {
			def := "-"
			if o.Default != nil {
				if b, err := json.Marshal(o.Default); err == nil {
					def = string(b)
				}
			}
			mode := string(o.Mode)
			if mode == "" {
				mode = "both"
			}
			fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\t%s\n", o.Name, o.Type, def, dash(strings.Join(o.Values, ",")), mode, o.Help)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	return nil
}
