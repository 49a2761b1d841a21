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
package journal
