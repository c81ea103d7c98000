//go:build linux

package enforcer

import (
	"time"

	"golang.org/x/sys/unix"
)

// BootTime converts CLOCK_BOOTTIME nanoseconds, the clock of BPF event
// timestamps, to wall-clock time.
func BootTime(ns uint64) time.Time {
	var c BootClock
	return c.Time(ns)
}

// bootClockRefresh is how long a BootClock trusts the offset between the
// two clocks: the wall clock can be set or slewed, the boot clock cannot.
const bootClockRefresh = 100 * time.Millisecond

// BootClock converts CLOCK_BOOTTIME nanoseconds to wall-clock time like
// BootTime, but reads the clocks at most every bootClockRefresh instead of
// for every event: a reader of a hundred thousand events a second would
// otherwise spend a system call on each. Not safe for concurrent use; the
// zero value is ready.
type BootClock struct {
	offset time.Duration // wall clock minus boot clock
	taken  time.Time     // when, with its monotonic reading
}

// Time converts ns.
func (c *BootClock) Time(ns uint64) time.Time {
	now := time.Now()
	if c.taken.IsZero() || now.Sub(c.taken) > bootClockRefresh {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
			return now
		}
		c.offset = time.Duration(now.UnixNano() - ts.Nano())
		c.taken = now
	}
	return time.Unix(0, int64(ns)+int64(c.offset))
}
