// Package policytest holds the test support that the tests of the policy
// plugins (plugins/...) share.
//
// Configuration: RunConfigs runs a table of one-line JSON configurations
// (ConfigCase), each a parallel subtest named by its configuration, and
// compares the error text or the decoded configuration with the wanted
// one; Configured decodes through policy.New and the built policy's
// Config method, as the daemon does. Defaults reads a policy's documented
// option defaults (policy.Describe), and FuzzConfig fuzzes a policy's
// configuration: policy.New must not panic, its errors must name the
// policy, and what it accepts goes to the fuzz target's own checks.
//
// Views: Host holds the links and addresses of a view; its methods return
// changed copies, so the cases of a table share one base host. Local is
// the usable address of a link, Chain builds a chain of policies as the
// engine runs them, and NetOpts lets cmp compare the netip values in
// plans and views. Addr, AddrPort and ErrString are the small helpers
// every table needs.
//
// It is for tests only; no plugin imports it outside its tests. Package
// policy's own tests, in package policy, cannot import it (it imports
// policy) and keep their helpers in policy/helpers_test.go.
package policytest
