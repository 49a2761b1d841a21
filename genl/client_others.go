//go:build !linux

package genl

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
)

// errUnsupported is returned by every operation on systems other than Linux.
var errUnsupported = fmt.Errorf("%w: MPTCP path management needs Linux, not %s", ErrUnavailable, runtime.GOOS)

// client is the stub of Client for systems other than Linux.
type client struct{}

func dial(*Config) (*client, error) { return nil, errUnsupported }

func (*client) close() error                               { return errUnsupported }
func (*client) features() Features                         { return Features{} }
func (*client) eventsGroup() uint32                        { return 0 }
func (*client) kernel() Kernel                             { return Kernel{} }
func (*client) addEndpoint(Endpoint) error                 { return errUnsupported }
func (*client) delEndpoint(uint8) error                    { return errUnsupported }
func (*client) delEndpointAddr(netip.Addr) error           { return errUnsupported }
func (*client) endpoint(uint8) (Endpoint, error)           { return Endpoint{}, errUnsupported }
func (*client) endpoints() ([]Endpoint, error)             { return nil, errUnsupported }
func (*client) flushEndpoints() error                      { return errUnsupported }
func (*client) setEndpointFlags(Endpoint) error            { return errUnsupported }
func (*client) limits() (Limits, error)                    { return Limits{}, errUnsupported }
func (*client) setLimits(LimitsUpdate) error               { return errUnsupported }
func (*client) announce(uint32, Endpoint) error            { return errUnsupported }
func (*client) remove(uint32, uint8) error                 { return errUnsupported }
func (*client) connectionAddrs(uint32) ([]Endpoint, error) { return nil, errUnsupported }
func (*client) subscribe() (*subscription, error)          { return nil, errUnsupported }
func (*client) pathManager() (PathManager, error)          { return "", errUnsupported }
func (*client) setPathManager(PathManager) error           { return errUnsupported }
func (*client) enabled() (bool, error)                     { return false, errUnsupported }
func (*client) checksums() (bool, error)                   { return false, errUnsupported }
func (*client) setChecksums(bool) error                    { return errUnsupported }
func (*client) createSubflow(uint32, Endpoint, netip.AddrPort) error {
	return errUnsupported
}
func (*client) destroySubflow(uint32, netip.AddrPort, netip.AddrPort) error {
	return errUnsupported
}
func (*client) setSubflowBackup(uint32, netip.AddrPort, netip.AddrPort, bool) error {
	return errUnsupported
}

// subscription is the stub of Subscription for systems other than Linux.
type subscription struct{}

func (*subscription) receive(context.Context) ([]Event, error) { return nil, errUnsupported }
func (*subscription) setReadBuffer(int) error                  { return errUnsupported }
func (*subscription) readBuffer() (int, error)                 { return 0, errUnsupported }
func (*subscription) close() error                             { return errUnsupported }
