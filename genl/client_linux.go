//go:build linux

package genl

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// client is the Linux implementation of Client.
type client struct {
	c      *genetlink.Conn
	family uint16
	feat   Features
	// evGroup is the mptcp_pm_events group id, 0 when the kernel has none.
	evGroup uint32
	// ns is the client's network namespace; nil means "wherever the
	// calling thread is" (tests).
	ns *netNS
	// dialEvents opens the socket of a Subscription.
	dialEvents func() (eventConn, error)

	kernelOnce sync.Once
	kernelInfo Kernel
}

// dial is the Linux implementation of New.
func dial(cfg *Config) (*client, error) {
	ns, err := openNetNS(cfg.NetNS)
	if err != nil {
		return nil, fmt.Errorf("genl: network namespace: %w", err)
	}
	c, err := dialIn(ns)
	if err != nil {
		_ = ns.close()
		return nil, fmt.Errorf("genl: dial generic netlink: %w", err)
	}
	cl, err := newClient(c, ns)
	if err != nil {
		_ = c.Close()
		_ = ns.close()
		return nil, err
	}
	return cl, nil
}

// newClient detects the mptcp_pm family on c. Tests call it with a
// genltest connection and a nil ns.
func newClient(c *genetlink.Conn, ns *netNS) (*client, error) {
	fam, err := getFamily(c, _MPTCP_PM_NAME)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: the kernel has no mptcp_pm family (CONFIG_MPTCP disabled or kernel older than 5.6?)", ErrUnavailable)
		}
		return nil, fmt.Errorf("genl: get family %q: %w", _MPTCP_PM_NAME, err)
	}

	// Best effort: older kernels and test sockets lack these options, and
	// the client works without them (only the extack texts are missing).
	_ = c.SetOption(netlink.ExtendedAcknowledge, true)
	_ = c.SetOption(netlink.GetStrictCheck, true)

	cl := &client{
		c:      c,
		family: fam.id,
		feat: Features{
			ID:       fam.id,
			Version:  fam.version,
			Commands: fam.commands,
		},
		ns: ns,
	}
	for _, g := range fam.groups {
		if g.Name == _MPTCP_PM_EV_GRP {
			cl.evGroup = g.ID
			cl.feat.Events = true
		}
	}
	cl.dialEvents = cl.dialEventConn
	return cl, nil
}

func (c *client) close() error {
	err := c.c.Close()
	if nerr := c.ns.close(); err == nil {
		err = nerr
	}
	return err
}

func (c *client) features() Features { return c.feat }

func (c *client) eventsGroup() uint32 { return c.evGroup }

// kernel detects the kernel's capabilities on first use.
func (c *client) kernel() Kernel {
	c.kernelOnce.Do(func() {
		var u unix.Utsname
		release := ""
		if err := unix.Uname(&u); err == nil {
			release = unix.ByteSliceToString(u.Release[:])
		}
		c.kernelInfo = probes{
			release:  release,
			commands: c.feat.Commands,
			sysctl: func(name string) bool {
				_, err := c.readSysctl(name)
				return err == nil
			},
			connAddrDump: c.probeConnAddrDump,
		}.detect()
	})
	return c.kernelInfo
}

// probeConnAddrDump asks for the address list of connection token 0,
// which no connection has: a kernel that dumps per connection (6.9)
// refuses ("invalid token", EINVAL), an older one ignores the token and
// dumps the endpoints.
func (c *client) probeConnAddrDump() (bool, error) {
	_, err := c.connectionAddrs(0)
	var e *Error
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &e) && errnoIn(e.Err, unix.EINVAL, unix.ENOENT):
		return true, nil
	}
	return false, err
}

// execute sends one request and converts a kernel error into *Error.
func (c *client) execute(op string, cmd uint8, flags netlink.HeaderFlags, encode func(*netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	var b []byte
	if encode != nil {
		ae := netlink.NewAttributeEncoder()
		encode(ae)
		var err error
		b, err = ae.Encode()
		if err != nil {
			return nil, fmt.Errorf("genl: %s: encode request: %w", op, err)
		}
	}
	msgs, err := c.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: _MPTCP_PM_VER},
		Data:   b,
	}, c.family, flags)
	if err != nil {
		return nil, opError(op, err)
	}
	return msgs, nil
}

// opError turns an error of the netlink library into *Error when it
// carries an errno, keeping the kernel's extended-ack text.
func opError(op string, err error) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("genl: %s: %w", op, err)
	}
	e := &Error{Op: op, Err: errno}
	var oerr *netlink.OpError
	if errors.As(err, &oerr) {
		e.Message = oerr.Message
	}
	return e
}

const (
	doFlags   = netlink.Request
	ackFlags  = netlink.Request | netlink.Acknowledge
	dumpFlags = netlink.Request | netlink.Dump
)

func (c *client) addEndpoint(ep Endpoint) error {
	const op = "add endpoint"
	if err := checkEndpoint(ep); err != nil {
		return fmt.Errorf("genl: %s: %w", op, err)
	}
	_, err := c.execute(op, _MPTCP_PM_CMD_ADD_ADDR, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Nested(_MPTCP_PM_ENDPOINT_ADDR, encodeEndpoint(ep))
	})
	return err
}

func (c *client) delEndpoint(id uint8) error {
	const op = "delete endpoint"
	if id == 0 {
		return fmt.Errorf("genl: %s: invalid id 0: endpoint ids are 1..255 (DelEndpointAddr removes the id 0 address)", op)
	}
	_, err := c.execute(op, _MPTCP_PM_CMD_DEL_ADDR, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Nested(_MPTCP_PM_ATTR_ADDR, encodeID(id))
	})
	return err
}

func (c *client) delEndpointAddr(addr netip.Addr) error {
	const op = "delete id 0 address"
	if err := checkAddr("addr", addr); err != nil {
		return fmt.Errorf("genl: %s: %w", op, err)
	}
	_, err := c.execute(op, _MPTCP_PM_CMD_DEL_ADDR, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Nested(_MPTCP_PM_ATTR_ADDR, func(nae *netlink.AttributeEncoder) error {
			nae.Uint8(_MPTCP_PM_ADDR_ATTR_ID, 0)
			encodeAddr(nae, addr)
			return nil
		})
	})
	return err
}

func (c *client) endpoint(id uint8) (Endpoint, error) {
	const op = "get endpoint"
	msgs, err := c.execute(op, _MPTCP_PM_CMD_GET_ADDR, doFlags, func(ae *netlink.AttributeEncoder) {
		ae.Nested(_MPTCP_PM_ATTR_ADDR, encodeID(id))
	})
	if err != nil {
		return Endpoint{}, err
	}
	if len(msgs) != 1 {
		return Endpoint{}, fmt.Errorf("genl: %s: want 1 reply, got %d", op, len(msgs))
	}
	ep, err := parseEndpoint(msgs[0].Data)
	if err != nil {
		return Endpoint{}, fmt.Errorf("genl: %s: %w", op, err)
	}
	return ep, nil
}

func (c *client) endpoints() ([]Endpoint, error) {
	return c.dumpAddrs("dump endpoints", nil)
}

func (c *client) connectionAddrs(token uint32) ([]Endpoint, error) {
	return c.dumpAddrs("dump connection addresses", func(ae *netlink.AttributeEncoder) {
		ae.Uint32(_MPTCP_PM_ATTR_TOKEN, token)
	})
}

func (c *client) dumpAddrs(op string, encode func(*netlink.AttributeEncoder)) ([]Endpoint, error) {
	msgs, err := c.execute(op, _MPTCP_PM_CMD_GET_ADDR, dumpFlags, encode)
	if err != nil {
		return nil, err
	}
	eps := make([]Endpoint, 0, len(msgs))
	for _, m := range msgs {
		ep, err := parseEndpoint(m.Data)
		if err != nil {
			return nil, fmt.Errorf("genl: %s: %w", op, err)
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

func (c *client) flushEndpoints() error {
	_, err := c.execute("flush endpoints", _MPTCP_PM_CMD_FLUSH_ADDRS, ackFlags, nil)
	return err
}

func (c *client) setEndpointFlags(ep Endpoint) error {
	const op = "set endpoint flags"
	if !ep.Addr.IsValid() && ep.ID == 0 {
		return fmt.Errorf("genl: %s: endpoint: neither Addr nor ID is set", op)
	}
	if ep.Addr.IsValid() {
		if err := checkAddr("Addr", ep.Addr); err != nil {
			return fmt.Errorf("genl: %s: %w", op, err)
		}
	}
	_, err := c.execute(op, _MPTCP_PM_CMD_SET_FLAGS, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Nested(_MPTCP_PM_ATTR_ADDR, func(nae *netlink.AttributeEncoder) error {
			if ep.Addr.IsValid() {
				encodeAddr(nae, ep.Addr)
				if ep.Port != 0 {
					nae.Uint16(_MPTCP_PM_ADDR_ATTR_PORT, ep.Port)
				}
			} else {
				nae.Uint8(_MPTCP_PM_ADDR_ATTR_ID, ep.ID)
			}
			nae.Uint32(_MPTCP_PM_ADDR_ATTR_FLAGS, uint32(ep.Flags))
			return nil
		})
	})
	return err
}

func (c *client) limits() (Limits, error) {
	const op = "get limits"
	msgs, err := c.execute(op, _MPTCP_PM_CMD_GET_LIMITS, doFlags, nil)
	if err != nil {
		return Limits{}, err
	}
	if len(msgs) != 1 {
		return Limits{}, fmt.Errorf("genl: %s: want 1 reply, got %d", op, len(msgs))
	}
	l, err := parseLimits(msgs[0].Data)
	if err != nil {
		return Limits{}, fmt.Errorf("genl: %s: %w", op, err)
	}
	return l, nil
}

func (c *client) setLimits(u LimitsUpdate) error {
	_, err := c.execute("set limits", _MPTCP_PM_CMD_SET_LIMITS, ackFlags, u.encode)
	return err
}

func (c *client) announce(token uint32, ep Endpoint) error {
	const op = "announce"
	if err := checkEndpoint(ep); err != nil {
		return fmt.Errorf("genl: %s: %w", op, err)
	}
	_, err := c.execute(op, _MPTCP_PM_CMD_ANNOUNCE, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(_MPTCP_PM_ATTR_TOKEN, token)
		ae.Nested(_MPTCP_PM_ATTR_ADDR, func(nae *netlink.AttributeEncoder) error {
			encodeAddr(nae, ep.Addr)
			nae.Uint8(_MPTCP_PM_ADDR_ATTR_ID, ep.ID)
			if ep.Port != 0 {
				nae.Uint16(_MPTCP_PM_ADDR_ATTR_PORT, ep.Port)
			}
			nae.Uint32(_MPTCP_PM_ADDR_ATTR_FLAGS, uint32(ep.Flags))
			if ep.IfIndex != 0 {
				nae.Int32(_MPTCP_PM_ADDR_ATTR_IF_IDX, ep.IfIndex)
			}
			return nil
		})
	})
	return err
}

func (c *client) remove(token uint32, id uint8) error {
	_, err := c.execute("remove", _MPTCP_PM_CMD_REMOVE, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(_MPTCP_PM_ATTR_TOKEN, token)
		ae.Uint8(_MPTCP_PM_ATTR_LOC_ID, id)
	})
	return err
}

func (c *client) createSubflow(token uint32, local Endpoint, remote netip.AddrPort) error {
	const op = "create subflow"
	if err := checkEndpoint(local); err != nil {
		return fmt.Errorf("genl: %s: local %w", op, err)
	}
	if err := checkPair(local.Addr, remote.Addr()); err != nil {
		return fmt.Errorf("genl: %s: %w", op, err)
	}
	_, err := c.execute(op, _MPTCP_PM_CMD_SUBFLOW_CREATE, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(_MPTCP_PM_ATTR_TOKEN, token)
		ae.Nested(_MPTCP_PM_ATTR_ADDR, func(nae *netlink.AttributeEncoder) error {
			encodeAddr(nae, local.Addr)
			if local.ID != 0 {
				nae.Uint8(_MPTCP_PM_ADDR_ATTR_ID, local.ID)
			}
			if local.Port != 0 {
				nae.Uint16(_MPTCP_PM_ADDR_ATTR_PORT, local.Port)
			}
			if local.Flags != 0 {
				nae.Uint32(_MPTCP_PM_ADDR_ATTR_FLAGS, uint32(local.Flags))
			}
			if local.IfIndex != 0 {
				nae.Int32(_MPTCP_PM_ADDR_ATTR_IF_IDX, local.IfIndex)
			}
			return nil
		})
		ae.Nested(_MPTCP_PM_ATTR_ADDR_REMOTE, encodeAddrPort(remote, nil))
	})
	return err
}

func (c *client) destroySubflow(token uint32, local, remote netip.AddrPort) error {
	const op = "destroy subflow"
	if err := checkPair(local.Addr(), remote.Addr()); err != nil {
		return fmt.Errorf("genl: %s: %w", op, err)
	}
	_, err := c.execute(op, _MPTCP_PM_CMD_SUBFLOW_DESTROY, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(_MPTCP_PM_ATTR_TOKEN, token)
		ae.Nested(_MPTCP_PM_ATTR_ADDR, encodeAddrPort(local, nil))
		ae.Nested(_MPTCP_PM_ATTR_ADDR_REMOTE, encodeAddrPort(remote, nil))
	})
	return err
}

func (c *client) setSubflowBackup(token uint32, local, remote netip.AddrPort, backup bool) error {
	const op = "set subflow backup"
	if err := checkPair(local.Addr(), remote.Addr()); err != nil {
		return fmt.Errorf("genl: %s: %w", op, err)
	}
	var flags EndpointFlags
	if backup {
		flags = FlagBackup
	}
	_, err := c.execute(op, _MPTCP_PM_CMD_SET_FLAGS, ackFlags, func(ae *netlink.AttributeEncoder) {
		ae.Uint32(_MPTCP_PM_ATTR_TOKEN, token)
		ae.Nested(_MPTCP_PM_ATTR_ADDR, encodeAddrPort(local, &flags))
		ae.Nested(_MPTCP_PM_ATTR_ADDR_REMOTE, encodeAddrPort(remote, nil))
	})
	return err
}

// family is what getFamily learns about a generic netlink family.
type family struct {
	id       uint16
	version  uint32
	groups   []genetlink.MulticastGroup
	commands []Command
}

// getFamily asks the generic netlink controller about a family. Unlike
// genetlink.Conn.GetFamily it also decodes the registered operations.
func getFamily(c *genetlink.Conn, name string) (family, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.CTRL_ATTR_FAMILY_NAME, name)
	b, err := ae.Encode()
	if err != nil {
		return family{}, err
	}
	msgs, err := c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: unix.CTRL_CMD_GETFAMILY, Version: 1},
		Data:   b,
	}, unix.GENL_ID_CTRL, netlink.Request)
	if err != nil {
		return family{}, err
	}
	if len(msgs) != 1 {
		return family{}, fmt.Errorf("want 1 reply, got %d", len(msgs))
	}
	return parseFamily(msgs[0].Data)
}

// checkEndpoint validates the parts of ep the kernel cannot be told about
// or that would be silently misread.
func checkEndpoint(ep Endpoint) error {
	if err := checkAddr("Addr", ep.Addr); err != nil {
		return fmt.Errorf("endpoint: %w", err)
	}
	if ep.IfIndex < 0 {
		return fmt.Errorf("endpoint: invalid IfIndex %d: must not be negative", ep.IfIndex)
	}
	return nil
}

func checkAddr(field string, a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("invalid %s: no address", field)
	}
	if a.Zone() != "" {
		return fmt.Errorf("invalid %s %s: zones are not supported (set the interface index instead)", field, a)
	}
	return nil
}

// checkPair validates the local and remote address of a subflow command:
// both valid, of the same family once IPv4-mapped addresses are unmapped.
func checkPair(local, remote netip.Addr) error {
	if err := checkAddr("local address", local); err != nil {
		return err
	}
	if err := checkAddr("remote address", remote); err != nil {
		return err
	}
	if local.Unmap().Is4() != remote.Unmap().Is4() {
		return fmt.Errorf("local address %s and remote address %s are of different families", local, remote)
	}
	return nil
}

// sortedCommands returns the operation ids as Commands, ascending and
// without duplicates.
func sortedCommands(ops []uint32) []Command {
	var cmds []Command
	for _, op := range ops {
		if op > 0 && op <= 255 && !slices.Contains(cmds, Command(op)) {
			cmds = append(cmds, Command(op))
		}
	}
	slices.Sort(cmds)
	return cmds
}
