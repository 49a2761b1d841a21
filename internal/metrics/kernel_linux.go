//go:build linux

package metrics

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/mptcpgod/mptcpgod/internal/sockdiag"
)

// The kernel's metrics, read at each scrape.
var (
	kernelConns = prometheus.NewDesc("mptcpgod_kernel_connections",
		"MPTCP connections in the namespace, listeners left out (sock_diag).", nil, nil)
	kernelSubflows = prometheus.NewDesc("mptcpgod_kernel_subflows",
		"Established MPTCP subflows in the namespace by the link they use: the one they are bound to, else the one holding their local address (sock_diag).", []string{"link"}, nil)
	kernelExt = prometheus.NewDesc("mptcpgod_kernel_mptcpext_total",
		"The kernel's MPTcpExt counters of the namespace (/proc/net/netstat), by name.", []string{"name"}, nil)
	kernelExtGauge = prometheus.NewDesc("mptcpgod_kernel_mptcpext",
		"The kernel's MPTcpExt values that are not counters (MPCurrEstab: connections established now), by name.", []string{"name"}, nil)
)

// mptcpExtGauges are the MPTcpExt values that go down as well as up.
var mptcpExtGauges = map[string]bool{"MPCurrEstab": true}

// kernelCollector exports what the kernel knows of the namespace.
type kernelCollector struct {
	mu      sync.Mutex // one scrape at a time uses the sockets
	conns   *sockdiag.Client
	subs    *sockdiag.Client
	rtnl    *netlink.Handle
	netstat *os.File
	log     *slog.Logger
}

var _ prometheus.Collector = (*kernelCollector)(nil)

// newKernelCollector opens sock_diag, rtnetlink and /proc/net/netstat in
// the namespace netns (0: the calling thread's).
func newKernelCollector(fd int, log *slog.Logger) (_ *kernelCollector, err error) {
	k := &kernelCollector{log: log}
	defer func() {
		if err != nil {
			_ = k.close()
		}
	}()
	if k.conns, err = sockdiag.Dial(&sockdiag.Config{NetNS: fd}); err != nil {
		return nil, fmt.Errorf("metrics: sock_diag: %w", err)
	}
	est := sockdiag.StateMask(sockdiag.StateEstablished)
	if k.subs, err = sockdiag.Dial(&sockdiag.Config{NetNS: fd, States: est}); err != nil {
		return nil, fmt.Errorf("metrics: sock_diag: %w", err)
	}
	if fd == 0 {
		k.rtnl, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		k.rtnl, err = netlink.NewHandleAt(netns.NsHandle(fd), unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("metrics: rtnetlink: %w", err)
	}
	err = inNetNS(fd, func() error {
		var err error
		k.netstat, err = os.Open("/proc/thread-self/net/netstat")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: netstat: %w", err)
	}
	return k, nil
}

func (k *kernelCollector) close() error {
	var errs []error
	if k.conns != nil {
		errs = append(errs, k.conns.Close())
	}
	if k.subs != nil {
		errs = append(errs, k.subs.Close())
	}
	if k.rtnl != nil {
		k.rtnl.Close()
	}
	if k.netstat != nil {
		errs = append(errs, k.netstat.Close())
	}
	return errors.Join(errs...)
}

// Describe implements prometheus.Collector.
func (k *kernelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- kernelConns
	ch <- kernelSubflows
	ch <- kernelExt
	ch <- kernelExtGauge
}

// Collect implements prometheus.Collector.
func (k *kernelCollector) Collect(ch chan<- prometheus.Metric) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	if err := k.conns.Connections(func(*sockdiag.Connection) error { n++; return nil }); err != nil {
		ch <- prometheus.NewInvalidMetric(kernelConns, fmt.Errorf("metrics: sock_diag connections: %w", err))
	} else {
		ch <- prometheus.MustNewConstMetric(kernelConns, prometheus.GaugeValue, float64(n))
	}
	if err := k.collectSubflows(ch); err != nil {
		ch <- prometheus.NewInvalidMetric(kernelSubflows, err)
	}
	ext, err := k.mptcpExt()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(kernelExt, err)
		return
	}
	for name, v := range ext {
		if mptcpExtGauges[name] {
			ch <- prometheus.MustNewConstMetric(kernelExtGauge, prometheus.GaugeValue, float64(v), name)
		} else {
			ch <- prometheus.MustNewConstMetric(kernelExt, prometheus.CounterValue, float64(v), name)
		}
	}
}

// collectSubflows counts the established subflows by link.
func (k *kernelCollector) collectSubflows(ch chan<- prometheus.Metric) error {
	names, byAddr, err := k.interfaces()
	if err != nil {
		return err
	}
	counts := map[string]int{}
	err = k.subs.Subflows(func(sf *sockdiag.Subflow) error {
		idx := int(sf.IfIndex)
		if idx == 0 {
			idx = byAddr[sf.Local.Addr().Unmap()]
		}
		name := names[idx]
		if name == "" {
			name = "unknown"
		}
		counts[name]++
		return nil
	})
	if err != nil {
		return fmt.Errorf("metrics: sock_diag subflows: %w", err)
	}
	for name, n := range counts {
		ch <- prometheus.MustNewConstMetric(kernelSubflows, prometheus.GaugeValue, float64(n), name)
	}
	return nil
}

// interfaces returns the namespace's interface names by index and the
// index of the interface holding each address. A dump a concurrent change
// interrupted is retried, then used as it is.
func (k *kernelCollector) interfaces() (map[int]string, map[netip.Addr]int, error) {
	var links []netlink.Link
	var addrs []netlink.Addr
	var err error
	for range 3 {
		if links, err = k.rtnl.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, nil, fmt.Errorf("metrics: list links: %w", err)
	}
	for range 3 {
		if addrs, err = k.rtnl.AddrList(nil, netlink.FAMILY_ALL); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, nil, fmt.Errorf("metrics: list addresses: %w", err)
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	byAddr := make(map[netip.Addr]int, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			byAddr[ip.Unmap()] = a.LinkIndex
		}
	}
	return names, byAddr, nil
}

// mptcpExt reads the MPTcpExt section of the namespace's netstat.
func (k *kernelCollector) mptcpExt() (map[string]uint64, error) {
	if _, err := k.netstat.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("metrics: netstat: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(k.netstat, maxNetstat+1))
	if err != nil {
		return nil, fmt.Errorf("metrics: netstat: %w", err)
	}
	ns, err := ParseNetstat(data)
	if err != nil {
		return nil, err
	}
	ext, ok := ns["MPTcpExt"]
	if !ok {
		return nil, errors.New("metrics: netstat: no MPTcpExt section: is MPTCP enabled (CONFIG_MPTCP)?")
	}
	return ext, nil
}

// inNetNS runs fn on a locked OS thread inside the namespace fd (0: where
// the caller is), and moves the thread back. It switches only when the
// thread is elsewhere: setns needs CAP_SYS_ADMIN, which a daemon running
// with CAP_NET_ADMIN alone lacks, in its own namespace too.
func inNetNS(fd int, fn func() error) error {
	runtime.LockOSThread()
	if fd == 0 {
		defer runtime.UnlockOSThread()
		return fn()
	}
	cur, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open the thread's network namespace: %w", err)
	}
	defer unix.Close(cur)
	var a, b unix.Stat_t
	if err := unix.Fstat(cur, &a); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	if err := unix.Fstat(fd, &b); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	if a.Dev == b.Dev && a.Ino == b.Ino {
		defer runtime.UnlockOSThread()
		return fn()
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter the network namespace: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(cur, unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the other namespace: leave it locked so
		// that the runtime ends it with this goroutine.
		return errors.Join(ferr, fmt.Errorf("return to the network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}
