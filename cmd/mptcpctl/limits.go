package main

import (
	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/genl"
)

func (a *app) limitsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "limits",
		Short: "Show or set the in-kernel path manager's limits",
		Long: `Show the in-kernel path manager's per-namespace limits (ip mptcp limits):

    subflows           how many subflows a connection may add to its first one
    add_addr_accepted  how many addresses announced by a peer a connection accepts

They apply to kernel-PM connections only. With --json, limits and limits set
print {"subflows": N, "add_addr_accepted": N}, set prints the limits after the
change.`,
		Example: "  mptcpctl limits\n  mptcpctl limits set subflows 4 add-addr-accepted 2",
		Args:    subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.limits(nil)
		},
	}
	c.AddCommand(&cobra.Command{
		Use:     "set [subflows N] [add-addr-accepted N]",
		Short:   "Set one or both limits",
		Long:    `Set one or both limits, each 0..8; the one not given keeps its value.`,
		Example: "  mptcpctl limits set subflows 4\n  mptcpctl limits set subflows 2 add-addr-accepted 8",
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := parseLimits(args)
			if err != nil {
				return err
			}
			return a.limits(&u)
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args)%2 == 1 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var used []string
			for i := 0; i < len(args); i += 2 {
				used = append(used, args[i])
			}
			return unused(limitWords, used), cobra.ShellCompDirectiveNoFileComp
		},
	})
	return c
}

// limits shows the limits, after applying u when it is not nil.
func (a *app) limits(u *genl.LimitsUpdate) error {
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	if u != nil {
		if err := gc.SetLimits(*u); err != nil {
			return kernelError("", err)
		}
		if !a.json {
			return nil
		}
	}
	l, err := gc.Limits()
	if err != nil {
		return kernelError("", err)
	}
	out := limitsOut{Subflows: l.Subflows, AddAddrAccepted: l.AddAddrAccepted}
	if a.json {
		return writeJSON(a.stdout, out)
	}
	return writeLimits(a.stdout, out)
}
