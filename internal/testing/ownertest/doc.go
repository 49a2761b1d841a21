// Package ownertest runs the processes that own MPTCP sockets in tests of
// rules per application: children of the test binary that hold a
// connection open (Dial) or accept connections (Listen) in a network
// namespace, as a given uid and in a given cgroup v2, and the test-owned
// cgroups they run in (NewCgroups). Protocol runs a child that opens a
// plain TCP socket and reports what the kernel made of it, for tests of
// forcing cgroups and users to MPTCP.
//
// A child is the test binary itself: a package that uses Dial, Listen or
// Protocol calls RunChild first in its TestMain, which runs the child when the
// environment asks for one and returns otherwise. The child starts in its cgroup
// (clone3 with CLONE_INTO_CGROUP, so its sockets are never created
// elsewhere), enters the namespace through `ip netns exec`, takes the uid
// and gid as its real, effective and saved ids (every thread), opens its
// socket and reports its address on stdout; it exits when its stdin
// closes, which Stop and the test's cleanup do.
//
// It is for tests only, and needs root.
package ownertest
