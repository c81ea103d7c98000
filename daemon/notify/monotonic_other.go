//go:build !linux

package notify

// monotonicUsec is unavailable: MONOTONIC_USEC is only meaningful to systemd.
func monotonicUsec() (uint64, bool) { return 0, false }
