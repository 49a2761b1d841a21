// Package metrics exposes mptcpgod's Prometheus metrics (client_golang):
// the engine's counters and state, read from pm.Status at each scrape; the
// latency from a kernel event, host change or policy swap to the action
// it caused, fed by pm.Config.Observe; and the kernel's view of the daemon's
// network namespace, read at each scrape: the MPTCP connections and the
// subflows per link (sock_diag) and the MPTcpExt counters of
// /proc/net/netstat, read by name (ParseNetstat).
//
// Metrics.Handler serves them; the daemon mounts it at /metrics on its
// control socket and, when configured, on a TCP address (Serve).
// docs/control-socket.md lists every metric.
package metrics
