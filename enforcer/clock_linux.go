//go:build linux

package enforcer

import (
	"time"

	"golang.org/x/sys/unix"
)

// BootTime converts CLOCK_BOOTTIME nanoseconds, the clock of BPF event
// timestamps, to wall-clock time.
func BootTime(ns uint64) time.Time {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return now
	}
	return now.Add(-time.Duration(uint64(ts.Nano()) - ns))
}
