// Package cgroups maps cgroup v2 ids, as sock_diag reports a socket's
// cgroup (package sockdiag, Connection.CgroupID), to their paths in the
// hierarchy ("/system.slice/backup.service"), for rules that select
// connections by systemd unit (policy.Match.Unit).
//
// # How an id becomes a path
//
// A cgroup's id is the inode number of its directory in cgroupfs. A
// Resolver walks the hierarchy once from its mount point (bpf.CgroupRoot
// finds it: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
// system), reads every directory's inode number with fstatat, keeps the
// id → path map, and watches every directory with inotify for
// subdirectories created, removed or renamed. Each lookup first applies
// the queued events (one read of the inotify descriptor when nothing
// happened): a cgroup created is recorded with what it already holds, a
// cgroup removed is forgotten, and a rename or a lost event (the queue
// overflowed) walks the whole hierarchy again. So a lookup of a known or
// new cgroup costs a map access and that read, never a walk.
//
// An id still unknown after that walks again when it is above the
// highest id the last walk saw (the kernel allocates ids in increasing
// order, so it is a cgroup the watches missed, or every cgroup when
// inotify is unavailable), and otherwise only when the last walk is
// older than RewalkAfter, so that lookups of cgroups already removed do
// not walk the tree for every connection.
//
// The alternative, open_by_handle_at(2) with the id as a kernfs file
// handle and readlink of the descriptor, finds one cgroup in a few
// system calls whatever the size of the tree, but needs
// CAP_DAC_READ_SEARCH, which the daemon's unit does not grant (its only
// capability is CAP_NET_ADMIN, and ProtectControlGroups= leaves cgroupfs
// readable): the walk and the watches need only read access. A walk
// costs a few system calls per cgroup; BenchmarkResolve measures the
// three (docs/performance.md). A Resolver holds one inotify watch per
// cgroup, within fs.inotify.max_user_watches (where a watch cannot be
// added, cgroups created below it are found by the walk).
package cgroups
