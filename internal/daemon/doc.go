// Package daemon is mptcpgod put together: it reads the configuration file,
// and runs the link monitor, the kernel's event stream and the path-manager
// engine (package pm) as tasks of one network namespace.
//
// # Configuration
//
// Parse decodes a TOML file strictly into the defaults (File, DefaultFile)
// and checks every value: an unknown key or a bad value is an *Error that
// names the file, the line and the key,
//
//	/etc/mptcpgod/mptcpgod.toml:12: unknown key "polcy"
//	/etc/mptcpgod/mptcpgod.toml:7: key "engine.workers": 0 is not in 1..64
//
// BuildPolicy builds the policies; each decodes its own options, and its
// errors are located at the option they name. docs/config.md documents
// every key.
//
// # Running
//
// New opens the kernel interfaces of the namespace (genl, sock_diag,
// rtnetlink), fails clearly when MPTCP is disabled, resolves mode "auto"
// from net.mptcp.path_manager (or sets the sysctl when asked), and builds
// the engine. Run runs the tasks under one errgroup until its context is
// done: the link monitor feeds the engine the host's links and addresses,
// the event subscription feeds it the kernel's events, and sock_diag lists
// existing connections when the engine adopts them or resynchronises.
// With rules by unit or uid, the engine's workers look up each new
// connection's owner (owners.go): its socket's uid and cgroup id from a
// sock_diag socket of its own, and the cgroup's path from the cgroup v2
// hierarchy (package cgroups), both opened at the first lookup.
// The control socket ([control], package ctlhttp; its wire types are
// ctlapi's) serves the engine's state, the links, the compiled-in
// policies, reloads and the engine's decisions to mptcpctl; the metrics
// ([metrics], package metrics) are served on it and, when configured, on
// a TCP address.
// With [usage] links, the traffic of metered links is counted (package
// usage) at every change of the links and every [usage] interval, and the
// engine's view of the links carries their metered flag, cost, quota and
// usage, which the cost-aware policy acts on; the control socket serves
// the accounting (GET /v1/usage) and the metrics export it.
// Ready is closed, and systemd told READY=1, once the engine has adopted
// and reconciled what exists, the control socket listens, and forcing has
// synced once (the BPF program attached, when something is forced and the
// kernel allows it). Reload swaps the policy, the link filters
// and the [usage] links of a running daemon; a configuration that does not build is refused and
// the old one stays.
package daemon
