package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
)

func (a *app) linksCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "links",
		Short: "Show the daemon's view of the interfaces and their addresses",
		Long: `Show every network interface as the mptcpgod daemon sees it, and for each of
its addresses whether mptcpgod uses it now and how, or why not:

    LINK     the interface, its kind (wired, wifi, cellular, virtual,
             loopback, unknown) and state: up or down, usable or why not
             (excluded by the [links] configuration), metered
    ADDRESS  each of its addresses
    USED     yes when mptcpgod uses the address now: one of its endpoints
             holds it (kernel mode), or subflows run over it (userspace mode)
    WHY      how it is used ("endpoint id 100 (subflow fullmesh)",
             "2 subflows"), or why not ("not usable: tentative", "backoff
             until 13:00:01: <the kernel's error>", "the policy wants no
             endpoint for it", ...)

Reading needs root or membership of the daemon's group. With --json the answer
of GET /v1/links is printed as is (docs/control-socket.md).`,
		Example: "  mptcpctl links\n  mptcpctl links --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ls, err := ask(cmd.Context(), a, (*ctlapi.Client).Links)
			if err != nil {
				return err
			}
			if a.json {
				return writeJSON(a.stdout, ls)
			}
			return writeLinks(a.stdout, ls)
		},
	}
}

// linkState describes a link: "up, usable, metered".
func linkState(l pmstate.Link) string {
	parts := []string{"down"}
	if l.Up {
		parts[0] = "up"
	}
	switch {
	case l.Usable:
		parts = append(parts, "usable")
	case !l.Up && (l.Reason == "" || l.Reason == "link down"):
	case l.Reason != "":
		parts = append(parts, l.Reason)
	default:
		parts = append(parts, "not usable")
	}
	if l.Metered {
		parts = append(parts, "metered")
	}
	return strings.Join(parts, ", ")
}

// writeLinks prints one row per address, the link's columns on its first.
func writeLinks(w io.Writer, ls *ctlapi.Links) error {
	t := newTable(w)
	fmt.Fprintln(t, "LINK\tKIND\tSTATE\tADDRESS\tUSED\tWHY")
	for _, l := range ls.Links {
		head := fmt.Sprintf("%s\t%s\t%s", l.Name, l.Kind, linkState(l))
		if len(l.Addrs) == 0 {
			fmt.Fprintf(t, "%s\t-\t-\tno addresses\n", head)
			continue
		}
		for i, ad := range l.Addrs {
			if i > 0 {
				head = "\t\t"
			}
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\n", head, ad.Addr, yesNo(ad.Used), dash(ad.Use))
		}
	}
	return t.Flush()
}
