//go:build !linux

package health

import "errors"

// openAddrs fails: only Linux has rtnetlink. New fails before this, as
// sockdiag.Dial does outside Linux.
func openAddrs(int) (addrSource, error) {
	return nil, errors.New("rtnetlink: not Linux")
}
