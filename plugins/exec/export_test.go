package exec

import "time"

// SetGrace sets how long Close waits after SIGTERM, for tests.
func SetGrace(p *Exec, d time.Duration) { p.grace = d }

// SetTimeout sets how long p waits for an answer, beyond MaxTimeout, for
// tests whose plugin fails in another way than by its time: a 1 MiB line
// can take more than MaxTimeout to get through a pipe on a loaded
// machine. Call it before p starts.
func SetTimeout(p *Exec, d time.Duration) { p.cfg.Timeout = d }

// KillChild kills the running child as the policy does when it fails, for
// tests.
func KillChild(p *Exec) {
	p.mu.Lock()
	c := p.cur
	p.mu.Unlock()
	if c != nil {
		c.kill()
	}
}
