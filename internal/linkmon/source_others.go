//go:build !linux

package linkmon

import "errors"

// openOS fails: rtnetlink exists only on Linux.
func (m *Monitor) openOS() error {
	return errors.New("linkmon: not supported on this operating system")
}
