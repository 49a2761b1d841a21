package pm

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgod/mptcpgod/genl"
	"github.com/mptcpgod/mptcpgod/policy"
)

// changeableFlags are the endpoint flags SET_FLAGS can change in place.
const changeableFlags = genl.FlagBackup | genl.FlagFullmesh

// kernelState is the engine's state in kernel mode.
type kernelState struct {
	lane lane
	// wake is when a backoff of kernel mode runs out.
	wake wake
	// actual is the kernel's endpoint list, as last dumped and changed by
	// our commands since.
	actual []genl.Endpoint
	limits genl.Limits
	// changed: what Status reports of kernel mode (limits, endpoints)
	// may have changed since the loop last posted it.
	changed bool
	// needDump: re-read endpoints and limits before acting.
	needDump  bool
	dumpRetry retry
	plan      policy.KernelPlan
	retries   map[netip.AddrPort]*retry
	limRetry  retry
	// found are the limits when the engine started; set holds the values
	// it last set, nil for a limit it never changed (WithdrawOnExit puts
	// back those the kernel still has at the engine's value).
	found genl.Limits
	set   genl.LimitsUpdate
	// notes say why a desired endpoint is not in the kernel; refused
	// lists those whose address is not usable, as of the latest plan.
	notes   map[netip.AddrPort]string
	refused []netip.AddrPort
	// leftOut is what the endpoint cap left out last time, for logging
	// changes only.
	leftOut string
	// noLaminar is set once the lack of laminar endpoints was logged.
	noLaminar bool
	// trigger is when the earliest input arrived that kernel mode has not
	// finished acting on.
	trigger time.Time
	// repair is the subflow repair's state.
	repair repairState
}

// wantEndpoint is a desired endpoint, resolved.
type wantEndpoint struct {
	ep  genl.Endpoint // ID 0
	dev string
	key netip.AddrPort
}

func epKey(ep genl.Endpoint) netip.AddrPort { return netip.AddrPortFrom(ep.Addr, ep.Port) }

// owned reports whether ep is mptcpgod's: its id is in the owned range
// and the kernel did not create it.
func (e *Engine) owned(ep genl.Endpoint) bool {
	return e.cfg.OwnedIDs.Contains(ep.ID) && ep.Flags&genl.FlagImplicit == 0
}

func (k *kernelState) retry(key netip.AddrPort) *retry { return k.retries[key] }

func (k *kernelState) retryFor(key netip.AddrPort) *retry {
	r := k.retries[key]
	if r == nil {
		r = &retry{}
		k.retries[key] = r
	}
	return r
}

// endpointFlags maps a policy endpoint to kernel flags.
func endpointFlags(p policy.Endpoint) genl.EndpointFlags {
	var f genl.EndpointFlags
	for _, b := range []struct {
		on bool
		f  genl.EndpointFlags
	}{{p.Signal, genl.FlagSignal}, {p.Subflow, genl.FlagSubflow}, {p.Backup, genl.FlagBackup},
		{p.Fullmesh, genl.FlagFullmesh}, {p.Laminar, genl.FlagLaminar}} {
		if b.on {
			f |= b.f
		}
	}
	return f
}

// wants resolves the plan's endpoints: device index, usability, and
// duplicates. Endpoints it drops get a note; those whose address is not
// a usable address of this host are refused, counted and logged once.
func (e *Engine) wants(plan policy.KernelPlan) []wantEndpoint {
	k := &e.kernelMode
	out := make([]wantEndpoint, 0, len(plan.Endpoints))
	var refused []netip.AddrPort
	defer func() { e.keepKernelRefusals(refused) }()
	for _, p := range plan.Endpoints {
		addr := p.Addr.Unmap()
		key := netip.AddrPortFrom(addr, p.Port)
		if !addr.IsValid() || slices.ContainsFunc(out, func(w wantEndpoint) bool { return w.key == key }) {
			continue
		}
		if why := e.localRefusal(addr); why != "" {
			k.notes[key] = why
			refused = append(refused, key)
			continue
		}
		la := e.addrs[addr]
		w := wantEndpoint{key: key, dev: p.Dev, ep: genl.Endpoint{Addr: addr, Port: p.Port, Flags: endpointFlags(p)}}
		if w.ep.Flags&genl.FlagLaminar != 0 && !e.cfg.Kernel.Has(genl.CapLaminar) {
			// The best the kernel allows: the endpoint without the flag.
			w.ep.Flags &^= genl.FlagLaminar
			if !k.noLaminar {
				k.noLaminar = true
				e.log.Warn("laminar endpoints came with Linux "+genl.CapLaminar.Since+"; adding them without the flag",
					"release", e.cfg.Kernel.Release, "addr", addr)
			}
		}
		w.ep.IfIndex = e.devIndex(p.Dev, p.IfIndex)
		if w.ep.IfIndex == 0 {
			w.ep.IfIndex, w.dev = la.IfIndex, la.Link
		}
		out = append(out, w)
	}
	return out
}

// keepKernelRefusals stores the endpoints of the latest plan the engine
// refused, and counts and logs, once, those that are new.
func (e *Engine) keepKernelRefusals(refused []netip.AddrPort) {
	k := &e.kernelMode
	for _, key := range refused {
		if slices.Contains(k.refused, key) {
			continue
		}
		e.counters.planRefused[itemEndpoint]++
		e.warnOnce("plan refused", "policy", e.policy.Name(), "item", itemEndpoint, "addr", key.Addr(),
			"reason", k.notes[key])
	}
	k.refused = refused
}

// reconcileKernel diffs the policy's kernel plan against the kernel's
// endpoints and limits and queues the commands that close the gap: limits,
// deletes, flag changes, replacements (delete then add), adds.
func (e *Engine) reconcileKernel() {
	k := &e.kernelMode
	if !e.haveHost {
		return
	}
	if k.lane.busy {
		k.lane.dirty = true
		return
	}
	k.lane.dirty = false
	now := e.now()
	k.lane.queue = k.lane.queue[:0]
	if k.needDump {
		if k.dumpRetry.waiting(now) {
			e.setWake(&k.wake, k.dumpRetry.until)
			return
		}
		k.lane.queue = append(k.lane.queue, command{op: opDumpKernel, trigger: k.trigger})
		e.runnable.push(&k.lane)
		return
	}
	v := e.view
	v.Now = now
	plan := e.policy.Kernel(v, policy.KernelPlan{})
	e.capLimits(&plan)
	k.plan = plan
	clear(k.notes)
	var next time.Time
	wait := func(r *retry) bool {
		if r.waiting(now) {
			next = earliest(next, r.until)
			return true
		}
		return false
	}

	var lim, dels, flags, repl, adds []command
	var lu genl.LimitsUpdate
	if s := plan.Limits.Subflows; s != nil && *s != k.limits.Subflows {
		lu.Subflows = new(*s)
	}
	if a := plan.Limits.AddAddrAccepted; a != nil && *a != k.limits.AddAddrAccepted {
		lu.AddAddrAccepted = new(*a)
	}
	if (lu.Subflows != nil || lu.AddAddrAccepted != nil) && !wait(&k.limRetry) {
		lim = append(lim, command{op: opSetLimits, limits: lu})
	}

	wants := e.wants(plan)
	have := make([]int, len(wants)) // index in actual, or -1
	matched := make([]bool, len(k.actual))
	for i, w := range wants {
		have[i] = slices.IndexFunc(k.actual, func(a genl.Endpoint) bool { return e.owned(a) && epKey(a) == w.key })
		if have[i] >= 0 {
			matched[have[i]] = true
		}
	}
	count := len(k.actual)
	var used idSet
	for i, a := range k.actual {
		used.add(a.ID)
		if !e.owned(a) || matched[i] || wait(k.retry(epKey(a))) {
			continue
		}
		dels = append(dels, command{op: opDelEndpoint, id: a.ID, ep: a})
		count--
	}
	var leftOut []string
	for i, w := range wants {
		if j := have[i]; j >= 0 {
			a := k.actual[j]
			want := w.ep
			want.ID = a.ID
			switch {
			case a.Flags&^changeableFlags != want.Flags&^changeableFlags || a.IfIndex != want.IfIndex:
				if !wait(k.retry(w.key)) {
					repl = append(repl, command{op: opDelEndpoint, id: a.ID, ep: a}, command{op: opAddEndpoint, ep: want})
				}
			case a.Flags&changeableFlags != want.Flags&changeableFlags:
				if !wait(k.retry(w.key)) {
					flags = append(flags, command{op: opSetEndpointFlags, ep: want})
				}
			}
			continue
		}
		if f, ok := e.foreignAt(w.ep.Addr); ok && f.Flags&genl.FlagImplicit == 0 {
			k.notes[w.key] = fmt.Sprintf("address taken by endpoint id %d, not mptcpgod's", f.ID)
			e.warnForeign(f)
			continue
		} else if ok && w.ep.Port == 0 {
			// The kernel's implicit endpoint holds the address (a port of
			// ours would not clash with it): replaced by the wanted one.
			k.notes[w.key] = fmt.Sprintf("replacing the kernel's implicit endpoint id %d", f.ID)
			if !wait(k.retry(w.key)) {
				repl = append(repl, e.replaceImplicit(f, w.ep, &used)...)
			}
			continue
		}
		if count >= genl.MaxLimit {
			k.notes[w.key] = fmt.Sprintf("left out: the kernel keeps at most %d endpoints", genl.MaxLimit)
			leftOut = append(leftOut, w.key.String())
			continue
		}
		count++
		if wait(k.retry(w.key)) {
			continue
		}
		id := e.repairID(w.key, &used)
		if id == 0 {
			id = e.freeID(&used)
		}
		if id == 0 {
			k.notes[w.key] = fmt.Sprintf("no free endpoint id in %s", e.cfg.OwnedIDs)
			continue
		}
		want := w.ep
		want.ID = id
		adds = append(adds, command{op: opAddEndpoint, ep: want})
	}
	if s := strings.Join(leftOut, " "); s != k.leftOut {
		k.leftOut = s
		if s != "" {
			e.log.Warn("endpoints left out: the kernel keeps at most 8 endpoints, foreign ones included",
				"left_out", s, "endpoints", len(k.actual))
		}
	}
	queued := func(key netip.AddrPort) bool {
		for _, part := range [][]command{flags, repl} {
			if slices.ContainsFunc(part, func(c command) bool { return epKey(c.ep) == key }) {
				return true
			}
		}
		return k.retry(key).waiting(now)
	}
	rep := e.repairCommands(wants, have, queued)
	for _, part := range [][]command{lim, dels, flags, repl, rep, adds} {
		k.lane.queue = append(k.lane.queue, part...)
	}
	stamp(k.lane.queue, k.trigger)
	e.setWake(&k.wake, next)
	if len(k.lane.queue) > 0 {
		e.runnable.push(&k.lane)
	}
}

// capLimits lowers the plan's add_addr_accepted to
// Config.AddAddrAcceptedMax, and asks for that when the plan leaves the
// limit alone but the kernel's is higher.
func (e *Engine) capLimits(plan *policy.KernelPlan) {
	m := e.cfg.AddAddrAcceptedMax
	if m == nil {
		return
	}
	a := plan.Limits.AddAddrAccepted
	if (a != nil && *a > *m) || (a == nil && e.kernelMode.limits.AddAddrAccepted > *m) {
		plan.Limits.AddAddrAccepted = new(*m)
	}
}

// foreignAt returns the endpoint that is not mptcpgod's and has addr.
func (e *Engine) foreignAt(addr netip.Addr) (genl.Endpoint, bool) {
	for _, a := range e.kernelMode.actual {
		if !e.owned(a) && a.Addr.Unmap() == addr {
			return a, true
		}
	}
	return genl.Endpoint{}, false
}

// replaceImplicit returns the commands that replace f, an endpoint the
// kernel created implicitly (a subflow used an address without an
// endpoint: a peer's announce it followed, a join it accepted), by want,
// an endpoint of the same address. With f's id in the owned range, one
// add without an id, which the kernel takes as the replacement of the
// implicit endpoint: it keeps the id, which makes the endpoint
// mptcpgod's, and closes no subflow. Otherwise the implicit endpoint is
// deleted, which closes its subflows, and want added with an owned id,
// which the kernel tries at once on every connection.
func (e *Engine) replaceImplicit(f, want genl.Endpoint, used *idSet) []command {
	if e.cfg.OwnedIDs.Contains(f.ID) {
		want.ID = 0
		return []command{{op: opAddEndpoint, ep: want, implicit: f.ID}}
	}
	want.ID = e.freeID(used)
	if want.ID == 0 {
		e.kernelMode.notes[epKey(want)] = fmt.Sprintf("no free endpoint id in %s", e.cfg.OwnedIDs)
		return nil
	}
	return []command{{op: opDelEndpoint, id: f.ID, ep: f, implicit: f.ID}, {op: opAddEndpoint, ep: want}}
}

// freeID returns the lowest owned id not in used, and adds it, or 0.
func (e *Engine) freeID(used *idSet) uint8 {
	for id := int(e.cfg.OwnedIDs.Min); id <= int(e.cfg.OwnedIDs.Max); id++ {
		if !used.has(uint8(id)) {
			used.add(uint8(id))
			return uint8(id)
		}
	}
	return 0
}

// warnForeign warns, once per endpoint, that a foreign endpoint holds an
// address the policy wants, and says how to fix it.
func (e *Engine) warnForeign(f genl.Endpoint) {
	args := []any{"id", f.ID, "addr", f.Addr, "flags", f.Flags.String()}
	var msg string
	switch {
	case f.Flags&(genl.FlagSubflow|genl.FlagSignal) == genl.FlagSubflow && f.ID < e.cfg.OwnedIDs.Min:
		msg = "a foreign endpoint, likely added by NetworkManager, holds an address mptcpgod wants; mptcpgod leaves it alone"
		args = append(args, "fix", "nmcli connection modify <conn> connection.mptcp-flags disabled (or set it to match mptcpgod's policy)",
			"then", fmt.Sprintf("ip mptcp endpoint delete id %d", f.ID))
	default:
		msg = "a foreign endpoint, added by another path manager (mptcpd, NetworkManager or by hand), holds an address mptcpgod wants; mptcpgod leaves it alone"
		args = append(args, "fix", "systemctl disable --now mptcp.service (mptcpd), or nmcli connection modify <conn> connection.mptcp-flags disabled (NetworkManager)",
			"then", fmt.Sprintf("ip mptcp endpoint delete id %d", f.ID))
	}
	e.warnOnce(msg, args...)
}

// kernelResult applies the result of a kernel-mode command.
func (e *Engine) kernelResult(r *result) {
	k := &e.kernelMode
	k.lane.busy, k.changed = false, true
	c := &r.cmd
	now := e.now()
	if r.err != nil {
		var rt *retry
		switch c.op {
		case opSetLimits:
			rt = &k.limRetry
		case opDumpKernel:
			rt = &k.dumpRetry
		default:
			rt = k.retryFor(epKey(c.ep))
		}
		until := e.fail(rt, now, r.err.Error())
		lvl := slog.LevelWarn
		if rt.fails > 1 {
			lvl = slog.LevelDebug
		}
		e.log.Log(e.ctx, lvl, c.op.String()+" failed", append(kernelAttrs(c),
			"error", r.err, "failures", rt.fails, "retry_in", until.Sub(now).Round(time.Millisecond))...)
		if errors.Is(r.err, os.ErrExist) || errors.Is(r.err, os.ErrNotExist) {
			k.needDump = true
		}
		k.lane.queue = k.lane.queue[:0]
		e.kernelDirty = true
		return
	}
	switch c.op {
	case opAddEndpoint:
		ep := c.ep
		if c.implicit != 0 {
			// The kernel replaced its implicit endpoint in place: read
			// the endpoints again to be sure of the id.
			ep.ID = c.implicit
			k.actual = slices.DeleteFunc(k.actual, func(a genl.Endpoint) bool { return a.ID == c.implicit })
			k.needDump, e.kernelDirty = true, true
			e.log.Info("the kernel's implicit endpoint replaced by mptcpgod's", kernelAttrs(c)...)
		}
		k.actual = append(k.actual, ep)
		delete(k.retries, epKey(ep))
		switch {
		case c.repair:
			e.repaired(ep)
		case c.implicit == 0:
			e.log.Info("endpoint added", kernelAttrs(c)...)
		}
		e.repairAdded(ep, now)
	case opDelEndpoint:
		k.actual = slices.DeleteFunc(k.actual, func(a genl.Endpoint) bool { return a.ID == c.id })
		delete(k.retries, epKey(c.ep))
		switch {
		case c.implicit != 0:
			e.kernelDirty = true // its note goes with it
			e.log.Info("the kernel's implicit endpoint deleted, to be replaced by mptcpgod's", kernelAttrs(c)...)
		case c.repair:
			e.log.Debug("endpoint deleted to repair it", kernelAttrs(c)...)
		default:
			e.repairDeleted(c.ep)
			e.log.Info("endpoint deleted", kernelAttrs(c)...)
		}
	case opSetEndpointFlags:
		if i := slices.IndexFunc(k.actual, func(a genl.Endpoint) bool { return a.ID == c.ep.ID }); i >= 0 {
			k.actual[i].Flags = k.actual[i].Flags&^changeableFlags | c.ep.Flags&changeableFlags
		}
		delete(k.retries, epKey(c.ep))
		e.log.Info("endpoint flags set", kernelAttrs(c)...)
	case opSetLimits:
		if s := c.limits.Subflows; s != nil {
			k.limits.Subflows = *s
			k.set.Subflows = new(*s)
		}
		if a := c.limits.AddAddrAccepted; a != nil {
			k.limits.AddAddrAccepted = *a
			k.set.AddAddrAccepted = new(*a)
		}
		k.limRetry = retry{}
		e.log.Info("limits set", "subflows", k.limits.Subflows, "add_addr_accepted", k.limits.AddAddrAccepted)
	case opDumpKernel:
		k.actual, k.limits = r.eps, r.limits
		k.needDump, k.dumpRetry = false, retry{}
		e.kernelDirty = true
	}
	if k.lane.dirty {
		e.kernelDirty = true
	} else if len(k.lane.queue) > 0 {
		e.runnable.push(&k.lane)
	}
}

func kernelAttrs(c *command) []any {
	switch c.op {
	case opSetLimits:
		var attrs []any
		if s := c.limits.Subflows; s != nil {
			attrs = append(attrs, "subflows", *s)
		}
		if a := c.limits.AddAddrAccepted; a != nil {
			attrs = append(attrs, "add_addr_accepted", *a)
		}
		return attrs
	case opDumpKernel:
		return nil
	}
	attrs := []any{"id", c.ep.ID, "addr", c.ep.Addr}
	if c.ep.Port != 0 {
		attrs = append(attrs, "port", c.ep.Port)
	}
	return append(attrs, "flags", c.ep.Flags.String(), "ifindex", c.ep.IfIndex)
}

// withdraw puts back the limits the engine changed (restoreLimits) and
// deletes the owned endpoints, giving up after withdrawTimeout. It keeps
// the endpoints whose address carries a subflow of a live connection:
// deleting an endpoint makes the kernel close the subflows from its
// address, the initial one included, and stopping the daemon must leave
// connections alone. The kept endpoints are adopted by the next run.
func (e *Engine) withdraw(k Kernel) {
	done := make(chan struct{})
	known := slices.Clone(e.kernelMode.actual)
	found, set := e.kernelMode.found, e.kernelMode.set
	go func() {
		defer close(done)
		e.restoreLimits(k, found, set)
		eps, err := k.Endpoints()
		if err != nil {
			e.log.Warn("cannot list endpoints to withdraw them; using the last known list", "error", err)
			eps = known
		}
		inUse, err := e.subflowAddrs()
		if err != nil {
			e.log.Warn("cannot list connections; keeping every endpoint so that none is cut", "error", err)
			return
		}
		for _, ep := range eps {
			if !e.owned(ep) {
				continue
			}
			if n := inUse[ep.Addr]; n > 0 {
				e.log.Info("endpoint kept: it carries live subflows", "id", ep.ID, "addr", ep.Addr, "subflows", n)
				continue
			}
			if err := k.DelEndpoint(ep.ID); err != nil && !errors.Is(err, os.ErrNotExist) {
				e.log.Warn("cannot withdraw endpoint", "id", ep.ID, "addr", ep.Addr, "error", err)
				continue
			}
			e.log.Info("endpoint withdrawn", "id", ep.ID, "addr", ep.Addr)
		}
	}()
	t := time.NewTimer(withdrawTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		e.log.Warn("gave up withdrawing endpoints", "after", withdrawTimeout)
	}
}

// restoreLimits puts back the limits the engine set (set) to what they
// were at start (found), each one that the kernel still has at the
// engine's value: a later change by someone else stays.
func (e *Engine) restoreLimits(k Kernel, found genl.Limits, set genl.LimitsUpdate) {
	if set.Subflows == nil && set.AddAddrAccepted == nil {
		return
	}
	cur, err := k.Limits()
	if err != nil {
		e.log.Warn("cannot read the limits to put them back", "error", err)
		return
	}
	var u genl.LimitsUpdate
	var attrs []any
	if s := set.Subflows; s != nil && cur.Subflows == *s && *s != found.Subflows {
		u.Subflows = new(found.Subflows)
		attrs = append(attrs, "subflows", found.Subflows)
	}
	if a := set.AddAddrAccepted; a != nil && cur.AddAddrAccepted == *a && *a != found.AddAddrAccepted {
		u.AddAddrAccepted = new(found.AddAddrAccepted)
		attrs = append(attrs, "add_addr_accepted", found.AddAddrAccepted)
	}
	if len(attrs) == 0 {
		return
	}
	if err := k.SetLimits(u); err != nil {
		e.log.Warn("cannot put the limits back", append(attrs, "error", err)...)
		return
	}
	e.log.Info("limits put back", attrs...)
}

// subflowAddrs counts the live subflows by local address, from
// Config.Conns; without a lister no address is known to be in use.
func (e *Engine) subflowAddrs() (map[netip.Addr]int, error) {
	inUse := map[netip.Addr]int{}
	if e.cfg.Conns == nil {
		return inUse, nil
	}
	conns, err := e.cfg.Conns.ListConns()
	if err != nil {
		return nil, err
	}
	for _, c := range conns {
		for _, sf := range c.Subflows {
			inUse[sf.Local.Addr().Unmap()]++
		}
		if len(c.Subflows) == 0 {
			inUse[c.Local.Addr().Unmap()]++
		}
	}
	return inUse, nil
}

// withdrawTimeout bounds withdraw.
const withdrawTimeout = 2 * time.Second
