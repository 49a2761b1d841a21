package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is the version of the usage file this package writes and
// reads.
const stateVersion = 1

// stateFile is the usage file: every link ever accounted, by name.
type stateFile struct {
	Version int `json:"version"`
	// BootID is the kernel's boot id when the file was written.
	BootID string                `json:"boot_id,omitempty"`
	Saved  time.Time             `json:"saved"`
	Links  map[string]*linkState `json:"links"`
}

// linkState is one link's accounting: its current period and usage, and
// the counters it was last sampled at, to count from there.
type linkState struct {
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	UsedBytes   uint64    `json:"used_bytes"`
	// QuotaReached is when the link reached its quota in this period.
	QuotaReached time.Time `json:"quota_reached,omitzero"`
	// IfIndex, RxCounter and TxCounter are the link's interface index and
	// byte counters at Sampled; an IfIndex of 0 counts the next sample's
	// counters from 0 (after a reboot).
	IfIndex   int       `json:"ifindex"`
	RxCounter uint64    `json:"rx_counter"`
	TxCounter uint64    `json:"tx_counter"`
	Sampled   time.Time `json:"sampled"`
}

// decodeState parses a usage file strictly: one JSON object of the known
// version and fields, whose every link has a period that ends after it
// starts.
func decodeState(data []byte) (*stateFile, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var st stateFile
	if err := d.Decode(&st); err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the object")
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", st.Version, stateVersion)
	}
	if st.Links == nil {
		return nil, errors.New("links: missing")
	}
	for name, ls := range st.Links {
		switch {
		case name == "":
			return nil, errors.New("links: empty link name")
		case ls == nil:
			return nil, fmt.Errorf("links[%q]: null", name)
		case ls.PeriodStart.IsZero() || !ls.PeriodEnd.After(ls.PeriodStart):
			return nil, fmt.Errorf("links[%q]: period %s to %s is empty", name,
				ls.PeriodStart.Format(time.RFC3339), ls.PeriodEnd.Format(time.RFC3339))
		case ls.IfIndex < 0:
			return nil, fmt.Errorf("links[%q]: ifindex %d is negative", name, ls.IfIndex)
		}
	}
	return &st, nil
}

// writeAtomic replaces the file at name with data so that a crash at any
// point leaves either the old file or the new one: a temporary file in the
// same directory, written and fsynced, renamed over name, and the
// directory fsynced so the rename itself is durable.
func writeAtomic(name string, data []byte) error {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, making renames in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// setAside renames the file at name to name.corrupt-<UTC time> (with a
// numeric suffix when that exists already) and returns the new name.
func setAside(name string, now time.Time) (string, error) {
	base := name + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	dst := base
	for i := 1; ; i++ {
		_, err := os.Lstat(dst)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", err
		}
		dst = fmt.Sprintf("%s.%d", base, i)
	}
	if err := os.Rename(name, dst); err != nil {
		return "", err
	}
	return dst, syncDir(filepath.Dir(name))
}
