// Package journal is a [log/slog] handler that writes native systemd
// journal entries: one datagram per record to the journal's socket, in the
// native journal protocol, so that every attribute becomes a field that
// journalctl can match on.
//
// A record becomes these fields:
//
//	MESSAGE            the record's message
//	PRIORITY           the syslog priority of its level: 7 (debug) below
//	                   Info, 6 (info) below Warn, 4 (warning) below Error,
//	                   3 (err) from Error up
//	SYSLOG_IDENTIFIER  Options.Identifier ("mptcpgod" by default)
//	CODE_FILE, CODE_LINE, CODE_FUNC
//	                   where the record was logged, when it has a PC
//	ERRNO              the errno of an attribute whose error wraps a
//	                   syscall.Errno (the first such attribute)
//	PREFIX_GROUP_KEY   every attribute, named by [FieldName]: the prefix
//	                   (Options.Prefix, "MPTCPGOD_" by default), the groups
//	                   it is in and its key joined with "_", upper-cased,
//	                   every character but A-Z, 0-9 and "_" replaced by "_",
//	                   at most 64 characters
//
// Values are text: strings as they are, durations as "1.5s", times in
// RFC 3339 with nanoseconds, errors by their Error text, anything else by
// fmt; slog.LogValuer values are resolved first. An attribute repeated
// (with With and again in the record) gives the field twice, which the
// journal keeps as two values of one field.
//
// An entry too large for a datagram is sent as a sealed memfd, as
// sd_journal_send does. When the journal cannot be reached the record goes
// to Options.Fallback, if set, so that a journald restart loses fields but
// not messages.
//
// # Why not a library
//
// The systemd project's github.com/systemd/slog-journal (v0.1.2;
// TestSlogJournal shows the first two points):
//
//   - returns nil when the journal's socket does not exist, as while
//     journald restarts: the entry is lost, and no fallback can take it
//     (docs/logging.md promises text on stderr);
//   - writes an attribute's key as the field name, which journald drops
//     unless it is already A-Z, 0-9 and "_"; its ReplaceAttr and
//     ReplaceGroup hooks cannot give docs/logging.md's names, since neither
//     knows whether an attribute is in an inline group: a group's name
//     comes before the prefix (PATH_MPTCPGOD_LOCAL, not
//     MPTCPGOD_PATH_LOCAL);
//   - sends to /run/systemd/journal/socket only, so that the daemon's
//     tests cannot point it at a stand-in journal;
//   - writes durations and times as microseconds, no ERRNO, a
//     SYSLOG_TIMESTAMP of Unix microseconds, and the SYSLOG_IDENTIFIER of
//     argv[0].
//
// Wrapped to mend the names, values and ERRNO, it would be left with the
// sending, the part that loses entries. go-systemd's journal.Send takes the
// fields as a map (a field cannot be given twice) and has the same fixed
// socket; mptcpgod uses its StderrIsJournalStream to tell whether stderr
// is the journal's stream.
package journal
