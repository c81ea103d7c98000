package notify

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrStale is wrapped by Heartbeat.Check when a loop has not beaten in time.
var ErrStale = errors.New("heartbeat stale")

// Heartbeat records when a loop (the event reader, the reconcile loop) last
// proved it is making progress. Beat is cheap enough for a hot loop.
type Heartbeat struct {
	name   string
	maxAge time.Duration
	now    func() time.Time
	start  time.Time    // carries the monotonic clock reading
	last   atomic.Int64 // nanoseconds after start of the last Beat
}

// NewHeartbeat returns a heartbeat that counts as beaten now, so a loop gets
// maxAge to start. A loop that can sit idle (a ring buffer reader with no
// events) must wake up and Beat more often than maxAge.
func NewHeartbeat(name string, maxAge time.Duration) *Heartbeat {
	h := &Heartbeat{name: name, maxAge: maxAge, now: time.Now}
	h.start = h.now()
	return h
}

// Beat records progress.
func (h *Heartbeat) Beat() { h.last.Store(int64(h.now().Sub(h.start))) }

// Check returns an error wrapping ErrStale when the last Beat is older than
// maxAge. It has the shape RunWatchdog takes.
func (h *Heartbeat) Check() error {
	age := h.now().Sub(h.start) - time.Duration(h.last.Load())
	if age > h.maxAge {
		return fmt.Errorf("%s: %w: last beat %s ago (limit %s)", h.name, ErrStale, age.Round(time.Millisecond), h.maxAge)
	}
	return nil
}

// RunWatchdog pings systemd's watchdog at half its timeout, but only while
// every check passes: a daemon whose reader or reconcile loop is stuck gets
// restarted by systemd instead of being reported alive. A check that hangs
// stops the pings too, which is the point. It returns nil at once when
// systemd set no watchdog for this process, and nil when ctx is done.
func RunWatchdog(ctx context.Context, n *Notifier, checks ...func() error) error {
	timeout, ok := n.WatchdogInterval()
	if !ok || !n.Enabled() {
		n.logger.Debug("systemd watchdog not enabled for this process")
		return nil
	}
	ticker := time.NewTicker(timeout / 2)
	defer ticker.Stop()
	healthy := true
	for {
		var errs []error
		for _, check := range checks {
			if err := check(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			// Logged on the change only: a stuck loop stays stuck until
			// systemd acts, and one record says why.
			if healthy {
				n.logger.Error("liveness check failed; withholding watchdog ping so systemd restarts the daemon",
					"watchdog_timeout", timeout, "error", err)
			}
			healthy = false
		} else {
			if !healthy {
				n.logger.Info("liveness checks pass again; watchdog pings resumed")
			}
			healthy = true
			n.Watchdog()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
