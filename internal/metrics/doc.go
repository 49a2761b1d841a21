// Package metrics exposes mptcpgod's Prometheus metrics (client_golang):
// the engine's counters and state, read from pm.Status at each scrape; the
// latency from a kernel event, host change or policy swap to the action
// it caused, and the backup paths made active or backup again, fed by
// pm.Config.Observe; the links, their usable addresses and their changes,
// fed by the link monitor's states (SetHost); the exec policies' programs
// (PluginSource) and the metered links' usage (UsageSource), asked at
// each scrape; and the kernel's view of the daemon's
// network namespace, read at each scrape: the MPTCP connections and the
// subflows per link (sock_diag) and the MPTcpExt counters of
// /proc/net/netstat, read by name (ParseNetstat).
//
// Metrics.Handler serves them; the daemon mounts it at /metrics on its
// control socket and, when configured, on a TCP address (Serve).
// docs/control-socket.md lists every metric.
package metrics
