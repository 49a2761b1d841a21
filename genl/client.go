package genl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

var (
	// ErrUnavailable means MPTCP cannot be used in the namespace: the kernel
	// has no mptcp_pm family, or net.mptcp.enabled is 0 (see CheckEnabled).
	ErrUnavailable = errors.New("genl: MPTCP is not available")

	// ErrEventsUnsupported means the kernel has no "mptcp_pm_events"
	// multicast group (kernels 5.11 and older).
	ErrEventsUnsupported = errors.New("genl: the kernel has no mptcp_pm_events group")

	// ErrEventsLost means the kernel dropped events because the
	// subscription's receive buffer was full (ENOBUFS). The stream goes on;
	// the caller should re-read the state it keeps from dumps.
	ErrEventsLost = errors.New("genl: events lost: the receive buffer overflowed")

	// ErrNotUserspacePM means a per-connection command named a connection
	// that the in-kernel path manager runs ("userspace PM not selected").
	// Callers use it to tell which path manager a connection has: the path
	// manager is fixed when the connection is created.
	ErrNotUserspacePM = errors.New("genl: the connection is not run by the userspace path manager")

	// ErrAddrIDMismatch means ANNOUNCE or SUBFLOW_CREATE named a local
	// address and id that the connection's address list holds otherwise:
	// the id is another address's, or the address has another id ("did not
	// match address and id"). Re-read the list (ConnectionAddrs) before
	// choosing an id again.
	ErrAddrIDMismatch = errors.New("genl: the address and id do not match the connection's address list")

	// ErrUnsupported means the running kernel lacks a Capability the call
	// needs; the error names it and the Linux release that brings it.
	ErrUnsupported = errors.New("genl: not supported by this kernel")
)

// unsupported returns the error of op on a kernel without capability c.
func unsupported(op string, c Capability, k Kernel) error {
	return fmt.Errorf("genl: %s: %w: %s came with Linux %s; this kernel is %s", op, ErrUnsupported, c.Name, c.Since, k.Release)
}

// Config configures a Client.
type Config struct {
	// NetNS is an open file descriptor of the network namespace to act in;
	// 0 means the network namespace of the calling OS thread. New keeps a
	// duplicate, so the caller may close NetNS afterwards.
	NetNS int
}

// Command is an mptcp_pm command (MPTCP_PM_CMD_*).
type Command uint8

// Commands of the mptcp_pm family.
const (
	CmdAddAddr        Command = 1  // add an in-kernel PM endpoint
	CmdDelAddr        Command = 2  // delete an endpoint
	CmdGetAddr        Command = 3  // get or dump endpoints or a connection's addresses
	CmdFlushAddrs     Command = 4  // delete all endpoints
	CmdSetLimits      Command = 5  // set the in-kernel PM limits
	CmdGetLimits      Command = 6  // get the in-kernel PM limits
	CmdSetFlags       Command = 7  // change an endpoint's or a subflow's flags
	CmdAnnounce       Command = 8  // userspace PM: announce an address (ADD_ADDR)
	CmdRemove         Command = 9  // userspace PM: remove an address (RM_ADDR)
	CmdSubflowCreate  Command = 10 // userspace PM: open a subflow
	CmdSubflowDestroy Command = 11 // userspace PM: close a subflow
)

var commandNames = map[Command]string{
	CmdAddAddr:        "add-addr",
	CmdDelAddr:        "del-addr",
	CmdGetAddr:        "get-addr",
	CmdFlushAddrs:     "flush-addrs",
	CmdSetLimits:      "set-limits",
	CmdGetLimits:      "get-limits",
	CmdSetFlags:       "set-flags",
	CmdAnnounce:       "announce",
	CmdRemove:         "remove",
	CmdSubflowCreate:  "subflow-create",
	CmdSubflowDestroy: "subflow-destroy",
}

// String returns the command's name as in the kernel's netlink spec
// ("add-addr", "subflow-create", ...), or "unknown(N)".
func (c Command) String() string {
	if s, ok := commandNames[c]; ok {
		return s
	}
	return fmt.Sprintf("unknown(%d)", uint8(c))
}

// Features is what the kernel's mptcp_pm family offers, detected once by New.
type Features struct {
	// ID is the family's id, which the kernel assigns when it registers
	// the family: it differs between kernels, so it is always looked up
	// by name.
	ID uint16
	// Version is the family's version.
	Version uint32
	// Commands are the commands the kernel registered, in ascending order.
	Commands []Command
	// Events reports whether the mptcp_pm_events multicast group exists.
	Events bool
}

// Error is an error the kernel returned for a command.
type Error struct {
	// Op names the operation, such as "add endpoint".
	Op string
	// Err is the kernel's errno, a unix.Errno.
	Err error
	// Message is the kernel's extended-ack text; it may be empty.
	Message string
}

// Error returns "genl: <op>: <message>: <errno text>", without the message
// part when the kernel sent none.
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("genl: %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("genl: %s: %s: %v", e.Op, e.Message, e.Err)
}

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Err }

// Is maps the kernel's answer to the os sentinels:
//
//   - os.ErrNotExist: ENOENT, ESRCH, or a message saying the address,
//     subflow or connection was not found ("address not found", "subflow
//     not found", "address with id N not found", "invalid token"); the
//     kernel reports most of these as EINVAL, so the errno alone can't tell.
//   - os.ErrExist: EEXIST, EBUSY (the endpoint id is taken); before 6.2,
//     EINVAL "too many addresses or duplicate one", which also meant a
//     full table.
//   - os.ErrPermission: EPERM, EACCES.
//
// and to this package's sentinels:
//
//   - ErrNotUserspacePM: "userspace PM not selected" (Linux 6.18), or
//     "invalid request; userspace PM not selected" (older kernels).
//   - ErrAddrIDMismatch: "did not match address and id".
//
// Kernel texts are matched here and nowhere else.
func (e *Error) Is(target error) bool {
	switch target {
	case os.ErrNotExist:
		return errnoIn(e.Err, unix.ENOENT, unix.ESRCH) || notFoundMessage(e.Message)
	case os.ErrExist:
		// Before 6.2 every refused endpoint was EINVAL with this text,
		// whether the address or id was taken or the table full.
		return errnoIn(e.Err, unix.EEXIST, unix.EBUSY) ||
			errnoIn(e.Err, unix.EINVAL) && e.Message == "too many addresses or duplicate one"
	case os.ErrPermission:
		return errnoIn(e.Err, unix.EPERM, unix.EACCES)
	case ErrNotUserspacePM:
		// Before 6.15 the text was "invalid request; userspace PM not
		// selected".
		return strings.HasSuffix(e.Message, "userspace PM not selected")
	case ErrAddrIDMismatch:
		return e.Message == "did not match address and id"
	}
	return false
}

func errnoIn(err error, errnos ...unix.Errno) bool {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return false
	}
	return slices.Contains(errnos, errno)
}

// notFoundMessage reports whether an extended-ack text of net/mptcp says
// that the object the command names does not exist.
func notFoundMessage(msg string) bool {
	return strings.HasSuffix(msg, " not found") || msg == "invalid token"
}

// Client is a client of the kernel's mptcp_pm family in one network
// namespace. Its methods may be called from any goroutine.
type Client struct {
	c *client
}

// New opens a generic netlink socket in cfg.NetNS (nil or 0: the calling
// thread's namespace) and detects the mptcp_pm family. If the kernel has no
// such family, the error wraps ErrUnavailable. A namespace with
// net.mptcp.enabled=0 is not an error here; see CheckEnabled.
func New(cfg *Config) (*Client, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	c, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{c: c}, nil
}

// Close closes the client's socket. Subscriptions stay open.
func (c *Client) Close() error { return c.c.close() }

// Features returns what the kernel's mptcp_pm family offers.
func (c *Client) Features() Features {
	f := c.c.features()
	f.Commands = slices.Clone(f.Commands)
	return f
}

// EventsGroup returns the id of the mptcp_pm_events multicast group, 0
// when the kernel has none: a socket that joined it follows the path
// manager (sockdiag's NetlinkSockets tells which ones did).
func (c *Client) EventsGroup() uint32 { return c.c.eventsGroup() }

// Kernel returns the running kernel's release and the capabilities it
// lacks, detected on first use: by the sysctls and commands the kernel
// offers and by probing it where it can be asked, by its release where it
// cannot.
func (c *Client) Kernel() Kernel {
	k := c.c.kernel()
	k.Missing = slices.Clone(k.Missing)
	return k
}

// Supports reports whether the kernel registered cmd.
func (c *Client) Supports(cmd Command) bool {
	return slices.Contains(c.c.features().Commands, cmd)
}

// AddEndpoint adds an in-kernel path-manager endpoint. ep.ID 0 lets the
// kernel choose the id; ep.Port and ep.IfIndex 0 mean none. A laminar
// endpoint on a kernel older than 6.18, which would drop the flag or keep
// it as a meaningless bit, is refused with an error matching
// ErrUnsupported.
func (c *Client) AddEndpoint(ep Endpoint) error {
	if k := c.c.kernel(); ep.Flags&FlagLaminar != 0 && !k.Has(CapLaminar) {
		return unsupported("add endpoint", CapLaminar, k)
	}
	return c.c.addEndpoint(ep)
}

// DelEndpoint deletes the endpoint with the given id (1..255).
func (c *Client) DelEndpoint(id uint8) error { return c.c.delEndpoint(id) }

// DelEndpointAddr removes addr as the id 0 address, the address of the
// initial subflow, from the connections using it (DEL_ADDR with id 0).
func (c *Client) DelEndpointAddr(addr netip.Addr) error { return c.c.delEndpointAddr(addr) }

// Endpoint returns the endpoint with the given id.
func (c *Client) Endpoint(id uint8) (Endpoint, error) { return c.c.endpoint(id) }

// Endpoints returns all endpoints of the namespace.
func (c *Client) Endpoints() ([]Endpoint, error) { return c.c.endpoints() }

// FlushEndpoints deletes all endpoints of the namespace.
func (c *Client) FlushEndpoints() error { return c.c.flushEndpoints() }

// SetEndpointFlags sets an endpoint's changeable flags (backup, fullmesh) to
// ep.Flags. The endpoint is named by ep.Addr (and ep.Port) when ep.Addr is
// valid, else by ep.ID.
func (c *Client) SetEndpointFlags(ep Endpoint) error { return c.c.setEndpointFlags(ep) }

// Limits returns the in-kernel path manager's limits.
func (c *Client) Limits() (Limits, error) { return c.c.limits() }

// SetLimits changes the limits whose field in u is not nil.
func (c *Client) SetLimits(u LimitsUpdate) error { return c.c.setLimits(u) }

// Announce announces ep to the peer of the userspace-PM connection token
// (ADD_ADDR). ep is sent as given: the kernel wants ep.ID != 0 and
// FlagSignal in ep.Flags.
func (c *Client) Announce(token uint32, ep Endpoint) error { return c.c.announce(token, ep) }

// Remove withdraws the local address id from the connection token
// (RM_ADDR); id 0 is the initial subflow's address (6.7+).
func (c *Client) Remove(token uint32, id uint8) error { return c.c.remove(token, id) }

// CreateSubflow opens a subflow of the connection token from local to
// remote. local.ID, local.Flags (backup), local.Port and local.IfIndex are
// optional. Success means only that the SYN was sent; watch for
// EventSubEstablished or EventSubClosed.
func (c *Client) CreateSubflow(token uint32, local Endpoint, remote netip.AddrPort) error {
	return c.c.createSubflow(token, local, remote)
}

// DestroySubflow closes the subflow local→remote of the connection token.
// Both ports are needed; the local port is the one SUB_ESTABLISHED reported.
func (c *Client) DestroySubflow(token uint32, local, remote netip.AddrPort) error {
	return c.c.destroySubflow(token, local, remote)
}

// SetSubflowBackup sets or clears the backup bit of the subflow
// local→remote of the connection token (MP_PRIO).
func (c *Client) SetSubflowBackup(token uint32, local, remote netip.AddrPort, backup bool) error {
	return c.c.setSubflowBackup(token, local, remote, backup)
}

// ConnectionAddrs returns the local address list of the userspace-PM
// connection token. For a kernel-PM connection the kernel answers
// "userspace PM not selected" (ErrNotUserspacePM). Kernels before 6.9
// ignore the token and would answer with the endpoints: there it returns
// an error matching ErrUnsupported without asking.
func (c *Client) ConnectionAddrs(token uint32) ([]Endpoint, error) {
	if k := c.c.kernel(); !k.Has(CapConnAddrDump) {
		return nil, unsupported("dump connection addresses", CapConnAddrDump, k)
	}
	return c.c.connectionAddrs(token)
}

// Subscribe opens a socket of its own in the client's namespace and joins
// the mptcp_pm_events group, which needs CAP_NET_ADMIN (the error then
// matches os.ErrPermission). Without the group it returns
// ErrEventsUnsupported.
func (c *Client) Subscribe() (*Subscription, error) {
	s, err := c.c.subscribe()
	if err != nil {
		return nil, err
	}
	return &Subscription{s: s}, nil
}

// PathManager returns the namespace's path manager from the
// net.mptcp.path_manager sysctl, or from net.mptcp.pm_type on kernels
// older than 6.15.
func (c *Client) PathManager() (PathManager, error) { return c.c.pathManager() }

// SetPathManager sets the namespace's path manager. It affects only
// connections created afterwards.
func (c *Client) SetPathManager(pm PathManager) error { return c.c.setPathManager(pm) }

// Checksums reports the namespace's net.mptcp.checksum_enabled sysctl:
// whether new connections ask for DSS checksums (RFC 8684 §3.3.1; a
// connection uses them when either end asks).
func (c *Client) Checksums() (bool, error) { return c.c.checksums() }

// SetChecksums sets net.mptcp.checksum_enabled. It affects only
// connections created afterwards.
func (c *Client) SetChecksums(on bool) error { return c.c.setChecksums(on) }

// Enabled reports the namespace's net.mptcp.enabled sysctl.
func (c *Client) Enabled() (bool, error) { return c.c.enabled() }

// CheckEnabled returns nil if MPTCP is enabled in the namespace, else an
// error wrapping ErrUnavailable that says how to enable it.
func (c *Client) CheckEnabled() error {
	ok, err := c.Enabled()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: net.mptcp.enabled=0 (sysctl -w net.mptcp.enabled=1)", ErrUnavailable)
	}
	return nil
}

// Subscription receives mptcp_pm events. Receive may be called from one
// goroutine at a time; Close may be called from any.
type Subscription struct {
	s *subscription
}

// Receive blocks until the kernel sends events, then returns them together
// with every event already queued behind them, in the kernel's order, so
// that a burst costs one call. Each datagram takes one read into a buffer
// the subscription reuses; the events returned are values that do not
// refer to it. It returns ctx.Err() when ctx is done, and an error matching
// ErrEventsLost when the kernel dropped events (ENOBUFS); the next call then
// goes on with the stream. An error met after some events were decoded is
// returned by the next call. After Close, it returns an error matching
// net.ErrClosed.
func (s *Subscription) Receive(ctx context.Context) ([]Event, error) { return s.s.receive(ctx) }

// SetReadBuffer sets the socket's receive buffer size; a larger buffer
// loses fewer events in bursts. With CAP_NET_ADMIN the size may exceed
// net.core.rmem_max (SO_RCVBUFFORCE); without, the kernel caps it there.
func (s *Subscription) SetReadBuffer(bytes int) error { return s.s.setReadBuffer(bytes) }

// ReadBuffer returns the size of the socket's receive buffer as the kernel
// reports it: twice what was granted, for its bookkeeping.
func (s *Subscription) ReadBuffer() (int, error) { return s.s.readBuffer() }

// Close closes the subscription's socket.
func (s *Subscription) Close() error { return s.s.close() }
