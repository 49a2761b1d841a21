package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
)

func (a *app) reloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Make the daemon read its configuration file again",
		Long: `Make the mptcpgod daemon read its configuration file again and apply it, as
systemctl reload mptcpgod (SIGHUP) does: the policies decide for every
connection at once, existing ones included; the [links] filters and the log
level change. A file with errors is refused with the errors, one per line as
mptcpgod --check-config prints them, and the running configuration stays (exit
status 1). Keys that take effect only at the next start are logged by the
daemon.

Reloading needs root: the daemon checks the caller's uid. With --json the
answer of POST /v1/reload is printed: {"policy": "..."}, the policy in force
after the reload.`,
		Example: "  sudo mptcpctl reload",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := ask(cmd.Context(), a, (*ctlapi.Client).Reload)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, r)
			}
			return writeReload(a.stdout, r)
		},
	}
}

// writeReload prints the outcome of a reload.
func writeReload(w io.Writer, r *ctlapi.Reload) error {
	_, err := fmt.Fprintf(w, "reloaded; policy %s\n", r.Policy)
	return err
}
