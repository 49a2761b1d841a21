// Package dist holds what installs mptcpgod on a host, and the tests that
// check it:
//
//   - mptcpgod.service, the hardened systemd unit (Type=notify, watchdog,
//     the system user "mptcpgod" with CAP_NET_ADMIN only);
//   - sysusers.d/mptcpgod.conf, the user and the control-socket group;
//   - nfpm.yaml, deb/ and debversion.sh, the Debian package built by
//     `make deb`;
//   - mptcpgod.toml and completions/, the default configuration and the
//     shell completions of mptcpctl;
//   - grafana/mptcpgod.json and prometheus/, the Grafana dashboard, the
//     alert rules and their unit tests (docs/fleet.md);
//   - kubernetes/, the DaemonSet and its image, a Go module of its own
//     with its tests (see its package doc).
//
// The package has no code of its own. Its tests run systemd-analyze
// (verify, and security with the exposure score held at 1.5 or lower),
// `make install` and `make uninstall` into scratch directories, build the
// Debian package and inspect it with dpkg-deb, check the kernel behaviour
// the unit relies on (CAP_NET_ADMIN alone may write net.mptcp sysctls and
// drive mptcp_pm), and, where systemd-nspawn is available, start the unit
// under a real systemd and probe its sandbox from inside. They decode the
// dashboard strictly into Grafana's schema types, run promtool on the
// rules and their unit tests, and run the daemon in both modes in
// namespaces to check that every series the dashboard and the rules select
// is in its /metrics, with the type the query needs. With CI=true or
// MPTCPGOD_TEST_INSTALL=1 (and root) the package is also installed with
// apt-get and purged again.
package dist
