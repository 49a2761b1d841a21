package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/mptcpgod/mptcpgod/internal/daemon/ctlhttp"
	"github.com/mptcpgod/mptcpgod/internal/nmmetered"
	"github.com/mptcpgod/mptcpgod/internal/usage"
)

// fillUsage checks the [usage] table and sets c from it; every bad key is
// an error at its line ("usage.links[0].quota").
func (c *Config) fillUsage(k *checker, f usage.File) {
	links := f.Links
	f.Links = nil
	cfg, interval, err := f.Config()
	if err != nil {
		k.failAt("usage.", strings.TrimPrefix(err.Error(), "usage: "))
	}
	for i, lf := range links {
		q, err := lf.LinkQuota()
		if err != nil {
			k.failAt(fmt.Sprintf("usage.links[%d].", i), err.Error())
			continue
		}
		cfg.Links = append(cfg.Links, q)
	}
	c.Usage, c.UsageInterval = cfg, interval
}

// failAt records msg, "KEY: REASON" with KEY relative to prefix, as an
// error at prefix+KEY.
func (k *checker) failAt(prefix, msg string) {
	key, reason, ok := strings.Cut(msg, ": ")
	if !ok {
		key, reason = "", msg
	}
	k.errs = append(k.errs, k.c.errorAt(strings.TrimSuffix(prefix+key, "."), errors.New(reason)))
}

// accounting is the daemon's traffic accounting of metered links (nil
// when [usage] lists no link) and the NetworkManager reader that answers
// metered = "auto" (nil when no link asks).
type accounting struct {
	acct     *usage.Accounting
	nm       *nmmetered.Reader
	interval time.Duration
	log      *slog.Logger
}

// newAccounting returns the accounting cfg describes, or nil when it
// accounts no link.
func newAccounting(cfg *Config, log *slog.Logger) (*accounting, error) {
	if len(cfg.Usage.Links) == 0 {
		return nil, nil
	}
	a := &accounting{interval: cfg.UsageInterval, log: log}
	ucfg := cfg.Usage
	ucfg.Logger = log
	if slices.ContainsFunc(ucfg.Links, func(q usage.LinkQuota) bool { return q.Metered == usage.MeteredAuto }) {
		a.nm = nmmetered.New(&nmmetered.Config{Logger: log})
		ucfg.Auto = a.nm.Metered
	}
	acct, err := usage.New(ucfg)
	if err != nil {
		a.close()
		return nil, fmt.Errorf("daemon: %w", err)
	}
	a.acct = acct
	return a, nil
}

// poll samples the counters of the accounted links in m's state; a read
// or write failure is logged at debug level, the counting goes on.
func (a *accounting) poll(m usage.Source) []usage.Link {
	links, err := a.acct.Poll(m)
	if err != nil {
		a.log.Debug("usage sampling", "error", err)
	}
	return links
}

// ticker returns a ticker of the sampling interval and its channel; the
// channel is nil (never ready) without accounting.
func (a *accounting) ticker() (*time.Ticker, <-chan time.Time) {
	if a == nil {
		return nil, nil
	}
	t := time.NewTicker(a.interval)
	return t, t.C
}

// close writes the usage file and closes the NetworkManager reader.
func (a *accounting) close() error {
	var errs []error
	if a.acct != nil {
		errs = append(errs, a.acct.Close())
	}
	if a.nm != nil {
		errs = append(errs, a.nm.Close())
	}
	return errors.Join(errs...)
}

// reloadUsage applies the [usage] links of cfg to the running accounting
// and warns about what needs a restart; d.mu is held.
func (d *Daemon) reloadUsage(old, cfg *Config) {
	switch {
	case d.usage == nil && len(cfg.Usage.Links) > 0:
		d.log.Warn("config change needs a restart to take effect", "key", "usage.links",
			"reason", "usage accounting was off at start")
		return
	case d.usage == nil:
		return
	}
	if len(cfg.Usage.Links) == 0 {
		d.log.Warn("config change needs a restart to take effect", "key", "usage.links",
			"reason", "turning usage accounting off; the old links stay accounted")
	} else if !reflect.DeepEqual(old.Usage.Links, cfg.Usage.Links) {
		if err := d.usage.acct.Reconfigure(cfg.Usage.Links); err != nil {
			d.log.Warn("usage links not reconfigured", "error", err)
		} else {
			d.log.Info("usage links reconfigured", "links", len(cfg.Usage.Links))
		}
	}
	needsNM := slices.ContainsFunc(cfg.Usage.Links, func(q usage.LinkQuota) bool { return q.Metered == usage.MeteredAuto })
	if needsNM && d.usage.nm == nil {
		d.log.Warn("config change needs a restart to take effect", "key", "usage.links.metered",
			"reason", `metered = "auto" asks NetworkManager, which is connected only when configured at start`)
	}
}

// usageRestartKeys names the [usage] keys a running daemon cannot apply.
func usageRestartKeys(old, cfg *Config) []string {
	var keys []string
	if old.Usage.StateDir != cfg.Usage.StateDir {
		keys = append(keys, "usage.state_dir")
	}
	if old.UsageInterval != cfg.UsageInterval {
		keys = append(keys, "usage.interval")
	}
	if old.Usage.SaveInterval != cfg.Usage.SaveInterval {
		keys = append(keys, "usage.save_interval")
	}
	return keys
}

// Usage implements ctlhttp.Backend: the accounting's report, or
// ctlhttp.ErrUsageOff.
func (c *control) Usage(context.Context) (usage.Report, error) {
	if c.acct == nil {
		return usage.Report{}, ctlhttp.ErrUsageOff
	}
	return c.acct.Report(), nil
}
