package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mptcpgod/mptcpgod/genl"
)

func (a *app) endpointsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:     "endpoints",
		Aliases: []string{"endpoint"},
		Short:   "Show and change the in-kernel path manager's endpoints",
		Long: `Show and change the in-kernel path manager's endpoints, the local addresses
it uses for kernel-PM connections (ip mptcp endpoint). Without a subcommand,
endpoints shows them all.

With --json, every endpoints subcommand prints a JSON array of endpoints: show
prints what it shows, and add, del, set and flush print the namespace's
endpoints after the change.`,
		Args: subcommandArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.endpointsShow(nil)
		},
	}
	c.AddCommand(
		&cobra.Command{
			Use:   "show [ID]",
			Short: "Show all endpoints, or the one with id ID",
			Long: `Show all endpoints, or the one with id ID.

Columns: ID, ADDRESS, PORT ("-": none), FLAGS (signal, subflow, backup,
fullmesh, implicit, laminar) and DEV, the interface the endpoint is bound to.
With --json and an ID, a single JSON object is printed instead of an array.`,
			Example: "  mptcpctl endpoints show\n  mptcpctl -n ns1 endpoints show 2 --json",
			Args:    maxArgs(1, "an endpoint id"),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.endpointsShow(args)
			},
			ValidArgsFunction: a.completeEndpointRef(false),
		},
		&cobra.Command{
			Use:   "add ADDR [dev IFNAME] [id N] [port P] [signal] [subflow] [backup] [fullmesh] [laminar]",
			Short: "Add an endpoint",
			Long: `Add an endpoint for the local address ADDR (IPv4 or IPv6).

    dev IFNAME  bind it to the interface (recommended: subflows then leave
                through that interface)
    id N        its id, 1..255; the kernel picks one when absent
    port P      the port to announce, 1..65535; needs signal and not subflow
                (the kernel then listens on ADDR:P)
    signal      announce the address to peers (ADD_ADDR)
    subflow     open subflows from the address to the peer
    backup      subflows over the address are backup
    fullmesh    one subflow to every address the peer announced; not with signal
    laminar     a laminar endpoint (Linux 6.18)

The words after ADDR may come in any order, each at most once.`,
			Example: "  mptcpctl endpoints add 192.0.2.1 dev eth0 subflow\n" +
				"  mptcpctl endpoints add 2001:db8::1 dev eth1 id 7 signal port 8080",
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.endpointsAdd(args)
			},
			ValidArgsFunction: a.completeAdd,
		},
		&cobra.Command{
			Use:   "del ID|ADDR",
			Short: "Delete the endpoint with id ID or address ADDR",
			Long: `Delete the endpoint with id ID or address ADDR. The kernel withdraws the
address from kernel-PM connections (RM_ADDR) and closes their subflows over it.
An address that matches several endpoints (with different ports) must be
deleted by id.`,
			Example: "  mptcpctl endpoints del 3\n  mptcpctl endpoints del 192.0.2.1",
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.endpointsDel(args)
			},
			ValidArgsFunction: a.completeEndpointRef(false),
		},
		&cobra.Command{
			Use:   "set ID|ADDR backup|nobackup|fullmesh|nofullmesh",
			Short: "Change an endpoint's backup or fullmesh flag",
			Long: `Change an endpoint's backup or fullmesh flag; the kernel can change no
other flag. The flag not named keeps its value. A backup change is sent to the
peers of existing connections (MP_PRIO). A signal endpoint cannot be fullmesh.`,
			Example: "  mptcpctl endpoints set 3 backup\n  mptcpctl endpoints set 192.0.2.1 nobackup fullmesh",
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.endpointsSet(args)
			},
			ValidArgsFunction: a.completeEndpointRef(true),
		},
		&cobra.Command{
			Use:   "flush",
			Short: "Delete every endpoint",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.endpointsFlush()
			},
		},
	)
	return c
}

// endpointsShow implements endpoints show [ID].
func (a *app) endpointsShow(args []string) error {
	var id uint8
	if len(args) == 1 {
		n, err := parseUint("id", args[0], 1, 255)
		if err != nil {
			return err
		}
		id = uint8(n)
	}
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	if id == 0 {
		return a.printEndpoints(s)
	}
	ep, err := gc.Endpoint(id)
	if err != nil {
		return kernelError(fmt.Sprintf("endpoint %d", id), err)
	}
	names, err := a.ifaceNames(s, []genl.Endpoint{ep})
	if err != nil {
		return err
	}
	out := toEndpointOut(ep, names)
	if a.json {
		return writeJSON(a.stdout, out)
	}
	return writeEndpoints(a.stdout, []endpointOut{out})
}

// printEndpoints prints the namespace's endpoints, sorted by id.
func (a *app) printEndpoints(s *session) error {
	eps, err := a.dumpEndpoints(s)
	if err != nil {
		return err
	}
	names, err := a.ifaceNames(s, eps)
	if err != nil {
		return err
	}
	out := make([]endpointOut, 0, len(eps))
	for _, e := range eps {
		out = append(out, toEndpointOut(e, names))
	}
	if a.json {
		return writeJSON(a.stdout, out)
	}
	return writeEndpoints(a.stdout, out)
}

// dumpEndpoints returns the namespace's endpoints sorted by id.
func (a *app) dumpEndpoints(s *session) ([]genl.Endpoint, error) {
	gc, err := s.genl()
	if err != nil {
		return nil, err
	}
	eps, err := gc.Endpoints()
	if err != nil {
		return nil, kernelError("", err)
	}
	slices.SortFunc(eps, func(x, y genl.Endpoint) int { return int(x.ID) - int(y.ID) })
	return eps, nil
}

// ifaceNames returns a function naming interface indexes; it asks rtnetlink
// only when an endpoint is bound to an interface.
func (a *app) ifaceNames(s *session, eps []genl.Endpoint) (func(int32) string, error) {
	if !slices.ContainsFunc(eps, func(e genl.Endpoint) bool { return e.IfIndex != 0 }) {
		return func(int32) string { return "" }, nil
	}
	f, err := s.ifaces()
	if err != nil {
		return nil, err
	}
	return f.name, nil
}

// afterChange prints the endpoints after a change when --json is given.
func (a *app) afterChange(s *session) error {
	if !a.json {
		return nil
	}
	return a.printEndpoints(s)
}

// endpointsAdd implements endpoints add.
func (a *app) endpointsAdd(args []string) error {
	req, err := parseAdd(args)
	if err != nil {
		return err
	}
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	if req.Endpoint.IfIndex, err = resolveDev(s, req.Dev); err != nil {
		return err
	}
	gc, err := s.genl()
	if err != nil {
		return err
	}
	if err := gc.AddEndpoint(req.Endpoint); err != nil {
		return kernelError(req.Endpoint.Addr.String(), err)
	}
	return a.afterChange(s)
}

// findEndpoint returns the endpoint ref names, from a dump.
func findEndpoint(eps []genl.Endpoint, ref endpointRef) (genl.Endpoint, error) {
	var found []genl.Endpoint
	for _, e := range eps {
		if (ref.Addr.IsValid() && e.Addr.Unmap() == ref.Addr.Unmap()) || (!ref.Addr.IsValid() && e.ID == ref.ID) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		if ref.Addr.IsValid() {
			return genl.Endpoint{}, &refusedError{msg: fmt.Sprintf("no endpoint with address %s", ref.Addr)}
		}
		return genl.Endpoint{}, &refusedError{msg: fmt.Sprintf("no endpoint with id %d", ref.ID)}
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, e := range found {
		ids[i] = fmt.Sprint(e.ID)
	}
	return genl.Endpoint{}, &refusedError{msg: fmt.Sprintf("address %s matches endpoints %s (different ports): give the id", ref.Addr, expected(ids))}
}

// endpointsDel implements endpoints del.
func (a *app) endpointsDel(args []string) error {
	ref, err := parseDel(args)
	if err != nil {
		return err
	}
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	id := ref.ID
	if ref.Addr.IsValid() {
		eps, err := a.dumpEndpoints(s)
		if err != nil {
			return err
		}
		ep, err := findEndpoint(eps, ref)
		if err != nil {
			return err
		}
		id = ep.ID
	}
	if err := gc.DelEndpoint(id); err != nil {
		return kernelError(fmt.Sprintf("endpoint %s", ref), err)
	}
	return a.afterChange(s)
}

// endpointsSet implements endpoints set: a read-modify-write of the backup
// and fullmesh bits, since the kernel sets both from one request.
func (a *app) endpointsSet(args []string) error {
	req, err := parseSet(args)
	if err != nil {
		return err
	}
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	eps, err := a.dumpEndpoints(s)
	if err != nil {
		return err
	}
	ep, err := findEndpoint(eps, req.Ref)
	if err != nil {
		return err
	}
	flags := req.apply(ep.Flags)
	if flags&genl.FlagFullmesh != 0 && ep.Flags&genl.FlagSignal != 0 {
		return &refusedError{msg: fmt.Sprintf("endpoint %d is a signal endpoint: it cannot be fullmesh", ep.ID)}
	}
	change := genl.Endpoint{ID: ep.ID, Flags: flags & (genl.FlagBackup | genl.FlagFullmesh)}
	if err := gc.SetEndpointFlags(change); err != nil {
		return kernelError(fmt.Sprintf("endpoint %s", req.Ref), err)
	}
	return a.afterChange(s)
}

// endpointsFlush implements endpoints flush.
func (a *app) endpointsFlush() error {
	s, gc, err := a.openKernel()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := gc.FlushEndpoints(); err != nil {
		return kernelError("", err)
	}
	return a.afterChange(s)
}

// completeEndpointRef completes an endpoint id or address, then (with
// change) the words of endpoints set.
func (a *app) completeEndpointRef(change bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			if !change {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return unused(setWords, args[1:]), cobra.ShellCompDirectiveNoFileComp
		}
		s, err := a.open()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		defer s.Close()
		eps, err := a.dumpEndpoints(s)
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []cobra.Completion
		for _, e := range eps {
			desc := strings.Join(endpointFlagNames(e.Flags), " ")
			out = append(out,
				cobra.CompletionWithDesc(fmt.Sprint(e.ID), e.Addr.String()+" "+desc),
				cobra.CompletionWithDesc(e.Addr.String(), fmt.Sprintf("id %d %s", e.ID, desc)))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeAdd completes the words of endpoints add, and interface names
// after dev.
func (a *app) completeAdd(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return a.localAddrs()
	}
	switch args[len(args)-1] {
	case "dev":
		s, err := a.open()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		defer s.Close()
		f, err := s.ifaces()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		var out []cobra.Completion
		for _, n := range f.names {
			out = append(out, n)
		}
		slices.Sort(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	case "id", "port":
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return unused(addWords, args[1:]), cobra.ShellCompDirectiveNoFileComp
}

// localAddrs completes the namespace's own addresses, but for loopback and
// link-local ones.
func (a *app) localAddrs() ([]cobra.Completion, cobra.ShellCompDirective) {
	s, err := a.open()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	defer s.Close()
	f, err := s.ifaces()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var addrs []netip.Addr
	for ip := range f.byAddr {
		if !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
			addrs = append(addrs, ip)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	var out []cobra.Completion
	for _, ip := range addrs {
		out = append(out, cobra.CompletionWithDesc(ip.String(), f.name(f.byAddr[ip])))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// unused returns the words not yet in used.
func unused(words, used []string) []cobra.Completion {
	var out []cobra.Completion
	for _, w := range words {
		if !slices.Contains(used, w) {
			out = append(out, w)
		}
	}
	return out
}
