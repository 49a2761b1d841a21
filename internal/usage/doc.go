// Package usage counts the traffic of metered links the way a carrier
// bills it, per accounting period, and keeps the count across counter
// resets, link re-creation, daemon restarts and reboots.
//
// # Counting
//
// The traffic of a link is what its interface counters say (bytes
// received plus bytes sent), sampled by Update or Poll. Each sample adds
// the difference to the previous one. A counter that went down, or a link
// that came back with another interface index (it was created again), is
// counted from 0; so are all counters after a reboot, recognised by the
// kernel's boot id. A link seen for the first time is counted from that
// first sample on: what it carried before is not known to belong to the
// period.
//
// # Periods
//
// A period is a day, a week or a month, starting on a reset day at a reset
// time in a time zone (LinkQuota.PeriodAt). When a period ends the usage
// starts again from 0; the bytes of the sampling interval that crosses the
// boundary count in the new period, so a period is never undercounted.
// At the quota a link is reported OverQuota, logged once at
// warning level and counted in Link.QuotaReachedTotal; the cost-aware
// policy then withdraws its paths or makes them backup.
//
// # Persistence
//
// The usage lives in usage.json in the state directory
// (/var/lib/mptcpgod by default), written atomically: a temporary file in
// the same directory is written and fsynced, renamed over usage.json, and
// the directory fsynced. The file keeps each link's period, its usage and
// the counters of its last sample, so a restarted daemon counts what
// passed while it was down. A file that does not parse is never silently
// replaced: it is renamed to usage.json.corrupt-<UTC time>, logged at
// error level and reported in Report.Notices, and the counting starts
// from 0.
//
// # Configuration
//
// Per link, by interface-name glob (LinkQuota, File): metered (yes, no,
// auto), cost per GB, quota, period, reset day, reset time and time zone.
// These are facts of the link and its contract, so they sit in the
// daemon's usage table, not in a policy's options; the daemon passes
// them to the policies through policy.Link (Annotate). With metered
// "auto", Config.Auto (nmmetered.Reader.Metered) asks NetworkManager.
package usage
