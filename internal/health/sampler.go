package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
	"github.com/mptcpgod/mptcpgod/pm"
)

// source is the sampler's seam to the kernel: *sockdiag.Client satisfies
// it.
type source interface {
	Subflows(fn func(*sockdiag.Subflow) error) error
	Close() error
}

// addrSource lists the namespace's addresses with the index of the link
// holding each.
type addrSource interface {
	Addrs() (map[netip.Addr]int32, error)
	Close() error
}

// addrRefresh is how often at most the sampler re-reads the namespace's
// addresses to place a subflow that is not bound to a device.
const addrRefresh = time.Second

// Sampler samples the health of a namespace's MPTCP subflows and links.
// Run samples; Updates delivers the reports.
type Sampler struct {
	cfg     Config
	log     *slog.Logger
	src     source
	addrSrc addrSource
	now     func() time.Time
	// after is the timer; tests replace it.
	after func(time.Duration) <-chan time.Time

	updates   chan pm.Health // one slot, latest wins; closed when Run returns
	addrs     map[netip.Addr]int32
	addrsRead time.Time
	buf       []observed
	lastErr   string

	closeOnce sync.Once
	closeErr  error
	running   atomic.Bool
}

// New returns a Sampler for cfg, with a sock_diag socket and an rtnetlink
// handle in cfg.NetNS; Close releases them. It fails on a bad field of cfg
// or when it cannot open them.
func New(cfg Config) (*Sampler, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	src, err := sockdiag.Dial(&sockdiag.Config{
		NetNS:  cfg.NetNS,
		States: sockdiag.StateMask(sockdiag.StateEstablished),
	})
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	as, err := openAddrs(cfg.NetNS)
	if err != nil {
		_ = src.Close()
		return nil, fmt.Errorf("health: %w", err)
	}
	return newSampler(cfg, src, as), nil
}

func newSampler(cfg Config, src source, as addrSource) *Sampler {
	return &Sampler{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "health"),
		src:     src,
		addrSrc: as,
		now:     time.Now,
		after:   time.After,
		updates: make(chan pm.Health, 1),
	}
}

// Updates returns the channel of reports. It holds the latest report not
// yet received; Run closes it when it returns.
func (s *Sampler) Updates() <-chan pm.Health { return s.updates }

// Close releases the sockets. Call it after Run returned.
func (s *Sampler) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.src.Close(), s.addrSrc.Close())
	})
	return s.closeErr
}

// Run samples until ctx is done and returns nil, or returns an error when
// the kernel cannot list MPTCP subflows at all (sockdiag.ErrUnavailable).
// Other errors are logged and the sampling goes on. Run may be called
// once; it closes Updates when it returns.
func (s *Sampler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("health: run: already running or done")
	}
	defer close(s.updates)

	t := newTracker(s.cfg.Stall, s.cfg.Refresh, s.log)
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.after(wait):
		}
		obs, err := s.read()
		if err != nil {
			if errors.Is(err, sockdiag.ErrUnavailable) {
				return fmt.Errorf("health: %w", err)
			}
			if msg := err.Error(); msg != s.lastErr {
				s.lastErr = msg
				s.log.Warn("cannot read the subflows' health", "error", err)
			}
			wait = s.cfg.IdleInterval
			continue
		}
		s.lastErr = ""
		now := s.now()
		rep, emit, deadline := t.update(now, obs)
		if emit {
			s.publish(rep)
		}
		wait = s.cfg.IdleInterval
		if t.active() {
			wait = s.cfg.Interval
		}
		if !deadline.IsZero() {
			// Just past the moment a subflow would cross its threshold.
			wait = min(wait, max(deadline.Sub(now)+time.Millisecond, time.Millisecond))
		}
	}
}

// read dumps the established MPTCP subflows and places each on a link.
func (s *Sampler) read() ([]observed, error) {
	s.buf = s.buf[:0]
	err := s.src.Subflows(func(sf *sockdiag.Subflow) error {
		s.buf = append(s.buf, observed{sf: *sf, ifindex: int32(sf.IfIndex)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range s.buf {
		o := &s.buf[i]
		if o.ifindex == 0 {
			o.ifindex = s.linkOf(o.sf.Local.Addr().Unmap())
		}
	}
	return s.buf, nil
}

// linkOf returns the index of the link holding addr, 0 when none does. It
// re-reads the addresses when addr is unknown, at most every addrRefresh.
func (s *Sampler) linkOf(addr netip.Addr) int32 {
	if idx, ok := s.addrs[addr]; ok {
		return idx
	}
	now := s.now()
	if !s.addrsRead.IsZero() && now.Sub(s.addrsRead) < addrRefresh {
		return 0
	}
	s.addrsRead = now
	m, err := s.addrSrc.Addrs()
	if err != nil {
		s.log.Warn("cannot list the addresses", "error", err)
		return 0
	}
	s.addrs = m
	return m[addr]
}

// publish makes rep the report Updates holds, replacing one not yet
// received.
func (s *Sampler) publish(rep pm.Health) {
	for {
		select {
		case s.updates <- rep:
			return
		default:
		}
		select {
		case <-s.updates:
		default:
		}
	}
}

// hexToken logs a token as eight hex digits.
type hexToken uint32

// LogValue implements slog.LogValuer.
func (t hexToken) LogValue() slog.Value { return slog.StringValue(fmt.Sprintf("%08x", uint32(t))) }
