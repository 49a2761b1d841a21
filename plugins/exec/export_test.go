package exec

import "time"

// SetGrace sets how long Close waits after SIGTERM, for tests.
func SetGrace(p *Exec, d time.Duration) { p.grace = d }

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
