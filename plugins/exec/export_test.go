package exec

import "time"

// SetGrace sets how long Close waits after SIGTERM, for tests.
func SetGrace(p *Exec, d time.Duration) { p.grace = d }
