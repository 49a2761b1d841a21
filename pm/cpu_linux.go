//go:build linux

package pm

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// cpuClock measures the CPU time of the calling goroutine between start
// and stop: it keeps the goroutine on its thread meanwhile and reads the
// thread's CPU clock, so that the time the thread waited for a CPU, on a
// busy machine, is not counted.
type cpuClock struct{ at time.Duration }

func (c *cpuClock) start() {
	runtime.LockOSThread()
	c.at = threadCPU()
}

func (c *cpuClock) stop() time.Duration {
	d := threadCPU() - c.at
	runtime.UnlockOSThread()
	return d
}

// threadCPU returns the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
