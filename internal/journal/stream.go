package journal

import (
	"fmt"
	"os"
	"syscall"
)

// IsStream reports whether f is connected to the journal's stream for
// this process: journalStream, the value of the JOURNAL_STREAM variable
// systemd sets ("DEVICE:INODE"), names f's device and inode. An empty
// journalStream is false: not started by systemd, or the output not the
// journal. A redirected f (to a file, a pipe) is false too.
func IsStream(f *os.File, journalStream string) (bool, error) {
	if journalStream == "" {
		return false, nil
	}
	var dev, ino uint64
	var rest string
	if n, _ := fmt.Sscanf(journalStream, "%d:%d%s", &dev, &ino, &rest); n != 2 {
		return false, fmt.Errorf("journal: JOURNAL_STREAM %q: not DEVICE:INODE", journalStream)
	}
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("journal: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, fmt.Errorf("journal: stat %s: no device and inode", f.Name())
	}
	return st.Dev == dev && st.Ino == ino, nil
}
