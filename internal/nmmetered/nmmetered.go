package nmmetered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

// NetworkManager's D-Bus names.
const (
	busName     = "org.freedesktop.NetworkManager"
	managerPath = dbus.ObjectPath("/org/freedesktop/NetworkManager")
	getDevice   = "org.freedesktop.NetworkManager.GetDeviceByIpIface"
	deviceIface = "org.freedesktop.NetworkManager.Device"
	propGet     = "org.freedesktop.DBus.Properties.Get"
	// nameHasOwner is the bus's own method.
	nameHasOwner = "org.freedesktop.DBus.NameHasOwner"

	errUnknownDevice  = "org.freedesktop.NetworkManager.UnknownDevice"
	errServiceUnknown = "org.freedesktop.DBus.Error.ServiceUnknown"
	errNameHasNoOwner = "org.freedesktop.DBus.Error.NameHasNoOwner"
)

// Defaults for zero Config fields.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultCacheTTL = 30 * time.Second
)

// Value is NetworkManager's NMMetered: its judgement of a device.
type Value uint32

// NMMetered values.
const (
	Unknown  Value = 0 // NM_METERED_UNKNOWN
	Yes      Value = 1 // NM_METERED_YES: set by the user
	No       Value = 2 // NM_METERED_NO: set by the user
	GuessYes Value = 3 // NM_METERED_GUESS_YES: NetworkManager's guess (a modem, a phone's hotspot)
	GuessNo  Value = 4 // NM_METERED_GUESS_NO
)

var valueNames = []string{"unknown", "yes", "no", "guess-yes", "guess-no"}

// String returns "unknown", "yes", "no", "guess-yes" or "guess-no".
func (v Value) String() string {
	if int(v) < len(valueNames) {
		return valueNames[v]
	}
	return fmt.Sprintf("metered(%d)", uint32(v))
}

// Metered reports whether the value means metered: yes or guess-yes.
func (v Value) Metered() bool { return v == Yes || v == GuessYes }

var (
	// ErrNotRunning is returned when NetworkManager does not answer on
	// the bus, or there is no bus.
	ErrNotRunning = errors.New("nmmetered: NetworkManager is not running")
	// ErrNoDevice is returned when NetworkManager has no device with the
	// interface name.
	ErrNoDevice = errors.New("nmmetered: NetworkManager has no such device")
)

// Config configures a Reader.
type Config struct {
	// Address is the D-Bus address of the bus NetworkManager is on; ""
	// means the system bus.
	Address string
	// Timeout bounds each D-Bus round trip; 0 means DefaultTimeout.
	Timeout time.Duration
	// CacheTTL is how long Metered keeps an answer; 0 means
	// DefaultCacheTTL.
	CacheTTL time.Duration
	// Logger receives the logs (component "nmmetered"); nil discards
	// them.
	Logger *slog.Logger
}

// Reader reads the Metered property of NetworkManager's devices. It
// connects to the bus when first asked and again after the connection
// broke, and never starts NetworkManager (its calls carry
// NO_AUTO_START). Its methods are safe for concurrent use.
type Reader struct {
	addr    string
	timeout time.Duration
	ttl     time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	conn    *dbus.Conn
	cache   map[string]answer
	running *bool // whether NetworkManager answered last time; nil before the first question
}

type answer struct {
	metered bool
	by      string
	at      time.Time
}

// New returns a Reader for cfg; nil means the system bus and the
// defaults. It does not connect yet.
func New(cfg *Config) *Reader {
	if cfg == nil {
		cfg = &Config{}
	}
	r := &Reader{addr: cfg.Address, timeout: cfg.Timeout, ttl: cfg.CacheTTL, log: cfg.Logger, cache: map[string]answer{}}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.ttl <= 0 {
		r.ttl = DefaultCacheTTL
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "nmmetered")
	return r
}

// Device returns NetworkManager's Metered value of the device with the
// interface name ifname. errors.Is(err, ErrNotRunning) when NetworkManager
// is not on the bus (or there is no bus), errors.Is(err, ErrNoDevice) when
// it does not know the device.
func (r *Reader) Device(ctx context.Context, ifname string) (Value, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.device(ctx, ifname)
}

func (r *Reader) device(ctx context.Context, ifname string) (Value, error) {
	conn, err := r.connect(ctx)
	if err != nil {
		return 0, err
	}
	var dev dbus.ObjectPath
	err = conn.Object(busName, managerPath).CallWithContext(ctx, getDevice, dbus.FlagNoAutoStart, ifname).Store(&dev)
	if err != nil {
		return 0, callError("GetDeviceByIpIface "+ifname, err)
	}
	var v dbus.Variant
	err = conn.Object(busName, dev).CallWithContext(ctx, propGet, dbus.FlagNoAutoStart, deviceIface, "Metered").Store(&v)
	if err != nil {
		return 0, callError(fmt.Sprintf("%s Metered of %s", dev, ifname), err)
	}
	m, ok := v.Value().(uint32)
	if !ok {
		return 0, fmt.Errorf("nmmetered: %s Metered of %s: %s, want a uint32", dev, ifname, v.Signature())
	}
	return Value(m), nil
}

// Running reports whether NetworkManager owns its name on the bus: a
// question any client may ask the bus, which needs no view of the
// processes (a sandbox with ProtectProc=invisible hides NetworkManager's).
// errors.Is(err, ErrNotRunning) when there is no bus.
func (r *Reader) Running(ctx context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	conn, err := r.connect(ctx)
	if err != nil {
		return false, err
	}
	var owned bool
	if err := conn.BusObject().CallWithContext(ctx, nameHasOwner, 0, busName).Store(&owned); err != nil {
		return false, fmt.Errorf("nmmetered: NameHasOwner %s: %w", busName, err)
	}
	return owned, nil
}

// connect returns the bus connection, dialling when there is none or it
// broke.
func (r *Reader) connect(ctx context.Context) (*dbus.Conn, error) {
	if r.conn != nil && r.conn.Connected() {
		return r.conn, nil
	}
	if r.conn != nil {
		_ = r.conn.Close()
		r.conn = nil
	}
	var conn *dbus.Conn
	var err error
	if r.addr == "" {
		conn, err = dbus.ConnectSystemBus(dbus.WithContext(ctx))
	} else {
		conn, err = dbus.Connect(r.addr, dbus.WithContext(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: no D-Bus system bus: %w", ErrNotRunning, err)
	}
	r.conn = conn
	return conn, nil
}

// callError maps D-Bus errors to ErrNotRunning and ErrNoDevice.
func callError(what string, err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case errServiceUnknown, errNameHasNoOwner:
			return fmt.Errorf("%w: %s: %w", ErrNotRunning, what, err)
		case errUnknownDevice:
			return fmt.Errorf("%w: %s: %w", ErrNoDevice, what, err)
		}
	}
	return fmt.Errorf("nmmetered: %s: %w", what, err)
}

// Metered answers metered = "auto" for the interface ifname (it is a
// usage.MeteredFunc): NetworkManager's judgement when it runs and knows
// the device ("networkmanager"), else unmetered ("default"). It logs when
// NetworkManager appears or goes away, and keeps an answer for
// Config.CacheTTL.
func (r *Reader) Metered(ifname string) (metered bool, by string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if a, ok := r.cache[ifname]; ok && now.Sub(a.at) < r.ttl {
		return a.metered, a.by
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	v, err := r.device(ctx, ifname)
	a := answer{by: "default", at: now}
	switch {
	case err == nil:
		r.noteRunning(true, nil)
		a.metered, a.by = v.Metered(), "networkmanager"
		r.log.Debug("metered read from networkmanager", "link", ifname, "value", v)
	case errors.Is(err, ErrNoDevice):
		r.noteRunning(true, nil)
		r.log.Info("networkmanager does not manage the link: unmetered", "link", ifname)
	case errors.Is(err, ErrNotRunning):
		r.noteRunning(false, err)
	default:
		r.log.Warn("cannot read metered from networkmanager: unmetered", "link", ifname, "err", err)
	}
	r.cache[ifname] = a
	return a.metered, a.by
}

// noteRunning logs when NetworkManager's presence changes.
func (r *Reader) noteRunning(running bool, err error) {
	if r.running != nil && *r.running == running {
		return
	}
	r.running = &running
	if running {
		r.log.Info("networkmanager runs: links with metered \"auto\" follow its Metered property")
		return
	}
	r.log.Info("networkmanager is not running: links with metered \"auto\" are unmetered", "err", err)
}

// Close closes the bus connection.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		return nil
	}
	err := r.conn.Close()
	r.conn = nil
	return err
}
