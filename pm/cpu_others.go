//go:build !linux

package pm

import "time"

// cpuClock measures the time between start and stop; Linux measures the
// thread's CPU time instead (cpu_linux.go).
type cpuClock struct{ at time.Time }

func (c *cpuClock) start() { c.at = time.Now() }

func (c *cpuClock) stop() time.Duration { return time.Since(c.at) }
