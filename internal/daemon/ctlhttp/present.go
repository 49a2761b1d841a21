package ctlhttp

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/ctlapi"
	"github.com/mptcpgod/mptcpgod/internal/pmstate"
	"github.com/mptcpgod/mptcpgod/internal/usage"
	"github.com/mptcpgod/mptcpgod/policy"
)

// annotate returns a copy of links with every address's use filled in from
// the engine's status.
func annotate(links []pmstate.Link, st *pmstate.Status) []pmstate.Link {
	out := make([]pmstate.Link, len(links))
	for i, l := range links {
		l.Addrs = slices.Clone(l.Addrs)
		if l.Addrs == nil {
			l.Addrs = []pmstate.Addr{}
		}
		for j := range l.Addrs {
			describeUse(&l.Addrs[j], st)
		}
		out[i] = l
	}
	return out
}

// describeUse sets whether and how mptcpgod uses a, or why not.
func describeUse(a *pmstate.Addr, st *pmstate.Status) {
	if st.Mode == pmstate.ModeKernel {
		describeEndpoint(a, st)
		return
	}
	var use pmstate.AddrUse
	if i := slices.IndexFunc(st.Addrs, func(u pmstate.AddrUse) bool { return u.Addr == a.Addr }); i >= 0 {
		use = st.Addrs[i]
	}
	a.Subflows = use.Subflows
	a.Used = a.Subflows > 0
	switch {
	case !a.Usable && a.Used:
		a.Use = fmt.Sprintf("not usable (%s); %s still on it", a.Reason, plural(a.Subflows, "subflow"))
	case !a.Usable:
		a.Use = "not usable: " + a.Reason
	case a.Used:
		a.Use = plural(a.Subflows, "subflow")
	case use.Backoff > 0 && use.LastFailure != nil:
		a.Use = fmt.Sprintf("wanted; retrying %s after: %s", use.LastFailure.Remote, use.LastFailure.Error)
	case use.Backoff > 0:
		a.Use = fmt.Sprintf("wanted; %s in backoff", plural(use.Backoff, "path"))
	case use.Wanted > 0:
		a.Use = fmt.Sprintf("wanted by %s, none up yet", plural(use.Wanted, "path"))
	case st.Connections == 0:
		a.Use = "usable; no connections yet"
	default:
		a.Use = "usable; the policy wants no path from it"
	}
}

// describeEndpoint sets a's use from its endpoint (kernel mode).
func describeEndpoint(a *pmstate.Addr, st *pmstate.Status) {
	var ep *pmstate.Endpoint
	for i := range st.Endpoints {
		e := &st.Endpoints[i]
		if e.Addr == a.Addr && (ep == nil || e.Owned && !ep.Owned) {
			ep = e
		}
	}
	if ep != nil {
		a.Endpoint = new(*ep)
	}
	a.Used = ep != nil && ep.Owned && ep.Present
	switch {
	case ep == nil && !a.Usable:
		a.Use = "not usable: " + a.Reason
	case ep == nil:
		a.Use = "usable; the policy wants no endpoint for it"
	case ep.Present && !ep.Owned:
		a.Use = fmt.Sprintf("endpoint id %d (%s) is not mptcpgod's; left alone", ep.ID, dashFlags(ep.Flags))
	case ep.Present:
		a.Use = fmt.Sprintf("endpoint id %d (%s)", ep.ID, dashFlags(ep.Flags))
		if ep.State != pmstate.EndpointOK {
			a.Use += "; " + endpointState(ep)
		}
	default:
		a.Use = endpointState(ep)
	}
}

// endpointState describes an endpoint that is not as desired.
func endpointState(ep *pmstate.Endpoint) string {
	s := string(ep.State)
	switch {
	case ep.State == pmstate.EndpointBackoff:
		s = fmt.Sprintf("backoff until %s", ep.BackoffUntil.Format(time.TimeOnly))
		if ep.LastError != "" {
			s += ": " + ep.LastError
		}
	case ep.Reason != "":
		s += ": " + ep.Reason
	case ep.LastError != "":
		s += ": " + ep.LastError
	}
	return s
}

func dashFlags(f string) string {
	if f == "" {
		return "no flags"
	}
	return f
}

// plural returns "1 subflow", "2 subflows".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// wirePolicy is the policy in force, name as the engine has it and the
// configuration cfg, as the wire carries it.
func wirePolicy(name string, cfg policy.Config) ctlapi.Policy {
	out := ctlapi.Policy{Name: name, Chain: wireChain(cfg.Chain), Rules: []ctlapi.PolicyRule{}}
	for _, r := range cfg.Rules {
		wr := ctlapi.PolicyRule{PeerPrefix: r.PeerPrefix, PeerPort: r.PeerPort, LocalPort: r.LocalPort,
			Unit: r.Unit, UID: r.UID, Chain: wireChain(r.Chain)}
		if r.Side != policy.SideAny {
			wr.Side = pmstate.Side(r.Side.String())
		}
		out.Rules = append(out.Rules, wr)
	}
	return out
}

func wireChain(specs []policy.Spec) []ctlapi.PolicySpec {
	out := make([]ctlapi.PolicySpec, len(specs))
	for i, s := range specs {
		out[i] = ctlapi.PolicySpec{Name: s.Name, Config: s.Config}
	}
	return out
}

// wirePolicyDoc is d as the wire carries it.
func wirePolicyDoc(d policy.Doc) ctlapi.PolicyDoc {
	out := ctlapi.PolicyDoc{Name: d.Name, Summary: d.Summary, Options: make([]ctlapi.PolicyOption, len(d.Options))}
	for i, o := range d.Options {
		out.Options[i] = ctlapi.PolicyOption{Name: o.Name, Type: o.Type, Default: o.Default, Values: o.Values,
			Mode: pmstate.Mode(o.Mode), Help: o.Help}
	}
	return out
}

// wireUsage is rep as the wire carries it.
func wireUsage(rep usage.Report) ctlapi.Usage {
	out := ctlapi.Usage{Now: rep.Now, StateFile: rep.StateFile, Saved: rep.Saved, Notices: rep.Notices,
		Links: make([]ctlapi.UsageLink, len(rep.Links))}
	for i, l := range rep.Links {
		out.Links[i] = ctlapi.UsageLink{Name: l.Name, IfIndex: l.IfIndex, Present: l.Present, Metered: l.Metered,
			MeteredBy: l.MeteredBy, UsedBytes: l.UsedBytes, QuotaBytes: l.QuotaBytes, RemainingBytes: l.RemainingBytes,
			OverQuota: l.OverQuota, QuotaReachedAt: l.QuotaReachedAt, Period: string(l.Period), PeriodStart: l.PeriodStart,
			PeriodEnd: l.PeriodEnd, CostPerGB: l.CostPerGB, Cost: l.Cost, QuotaReachedTotal: l.QuotaReachedTotal,
			Sampled: l.Sampled}
	}
	return out
}
