// Command mptcpgod is the Multipath TCP path-manager daemon: it decides
// which paths every MPTCP connection of the host's network namespace uses
// and tells the kernel, in the in-kernel or the userspace path-manager
// mode.
//
//	mptcpgod [--config FILE] [--log-level LEVEL]
//	mptcpgod --check-config [--config FILE]
//	mptcpgod --version
//
// The configuration is TOML, /etc/mptcpgod/mptcpgod.toml by default
// (docs/config.md documents every key; without the file at the default
// path mptcpgod runs with the defaults). It is decoded strictly: an
// unknown key or a bad value is an error naming the line and the key.
// --check-config checks the file, including each policy's options, prints
// "config ok" and exits 0, or prints the errors and exits 2.
//
// SIGHUP reloads the configuration: the new policy applies to existing
// connections too; a file that does not check out is refused, logged, and
// the running configuration stays. SIGINT and SIGTERM stop the daemon,
// which withdraws the endpoints it owns in kernel mode (kernel
// withdraw_on_exit) and leaves connections alone.
//
// Logs go at the level of --log-level, else of log_level. When standard
// error is the journal (systemd's JOURNAL_STREAM names it) they are native
// journal entries whose attributes are fields, MPTCPGOD_TOKEN and the like
// (docs/logging.md); otherwise text on standard error. With NOTIFY_SOCKET set, mptcpgod tells systemd when it
// is ready, reloading and stopping (Type=notify).
//
// Exit status: 0 after a stop by signal, 1 when the daemon fails, 2 on bad
// usage or a bad configuration.
package main
