// Package notify tells systemd about the daemon's state with the sd_notify
// protocol: one datagram of KEY=VALUE lines to the unix socket named by
// $NOTIFY_SOCKET.
//
// It is best effort and honest. Outside a Type=notify service every call is
// a no-op; a failed send is logged once and never stops the daemon; READY=1
// is the caller's promise that policies are enforced, and WATCHDOG=1 is sent
// only while every registered liveness check passes (RunWatchdog).
package notify

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Notifier sends state changes to systemd. Its methods are safe for
// concurrent use; the zero value is not usable, use New.
type Notifier struct {
	socket   string        // $NOTIFY_SOCKET, "" when not under a notify service
	watchdog time.Duration // 0 when systemd watches no process or another one
	logger   *slog.Logger
	warned   atomic.Bool // the first send error is logged, later ones are not
}

// New reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID through lookupEnv
// (os.LookupEnv in the daemon). A nil logger discards.
func New(lookupEnv func(string) (string, bool), logger *slog.Logger) *Notifier {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	n := &Notifier{logger: logger}
	n.socket, _ = lookupEnv("NOTIFY_SOCKET")
	n.watchdog = watchdogFromEnv(lookupEnv, os.Getpid())
	return n
}

// watchdogFromEnv follows sd_watchdog_enabled(3): WATCHDOG_USEC is the
// timeout, and WATCHDOG_PID, when set, must name this process (a child that
// inherited the environment must not think it is watched).
func watchdogFromEnv(lookupEnv func(string) (string, bool), pid int) time.Duration {
	s, ok := lookupEnv("WATCHDOG_USEC")
	if !ok {
		return 0
	}
	usec, err := strconv.ParseUint(s, 10, 63)
	if err != nil || usec == 0 {
		return 0
	}
	if p, ok := lookupEnv("WATCHDOG_PID"); ok && p != "" {
		if wp, err := strconv.Atoi(p); err != nil || wp != pid {
			return 0
		}
	}
	return time.Duration(usec) * time.Microsecond
}

// Enabled reports whether there is a service manager to notify.
func (n *Notifier) Enabled() bool { return n.socket != "" }

// Ready says start-up (or a reload) is complete: policies are enforced. The
// status is shown by `systemctl status`.
func (n *Notifier) Ready(status string) {
	if status == "" {
		n.notify("READY=1")
		return
	}
	n.notify("READY=1", "STATUS="+oneLine(status))
}

// Status updates the free-form status line shown by `systemctl status`.
func (n *Notifier) Status(status string) { n.notify("STATUS=" + oneLine(status)) }

// Reloading says a reload has started; call Ready when it is done. The
// timestamp lets systemd 253+ tell this reload from an earlier one, and it
// must travel in the same datagram as RELOADING=1.
func (n *Notifier) Reloading() {
	state := []string{"RELOADING=1"}
	if usec, ok := monotonicUsec(); ok {
		state = append(state, "MONOTONIC_USEC="+strconv.FormatUint(usec, 10))
	}
	n.notify(state...)
}

// Stopping says shutdown has begun.
func (n *Notifier) Stopping() { n.notify("STOPPING=1") }

// Watchdog pings the service watchdog. Call it only after a real liveness
// check; RunWatchdog does that.
func (n *Notifier) Watchdog() { n.notify("WATCHDOG=1") }

// WatchdogInterval returns systemd's watchdog timeout for this process, and
// false when there is none.
func (n *Notifier) WatchdogInterval() (time.Duration, bool) {
	return n.watchdog, n.watchdog > 0
}

// notify sends and logs the first failure; the daemon keeps running without
// a service manager's view of it rather than stopping over it.
func (n *Notifier) notify(state ...string) {
	if err := n.Send(state...); err != nil && n.warned.CompareAndSwap(false, true) {
		n.logger.Warn("sd_notify failed; further notify errors are not logged",
			"socket", n.socket, "state", strings.Join(state, " "), "error", err)
	}
}

// Send writes the state lines as one datagram and returns any error. It does
// nothing when NOTIFY_SOCKET is unset.
func (n *Notifier) Send(state ...string) error {
	if n.socket == "" {
		return nil
	}
	// Only filesystem and abstract ("@") sockets: systemd 252 supports no
	// other kind; newer ones also accept vsock, which this daemon never gets.
	if !strings.HasPrefix(n.socket, "/") && !strings.HasPrefix(n.socket, "@") {
		return fmt.Errorf("notify %s: unsupported NOTIFY_SOCKET address", n.socket)
	}
	for _, s := range state {
		if strings.ContainsRune(s, '\n') || !strings.Contains(s, "=") {
			return fmt.Errorf("notify %s: malformed state %q", n.socket, s)
		}
	}
	// A fresh socket per message: it survives systemd re-executing itself,
	// and messages are rare (start, reload, stop, a ping every few seconds).
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.socket, err)
	}
	defer conn.Close()
	msg := strings.Join(state, "\n")
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify %s: %w", n.socket, err)
	}
	return nil
}

// oneLine keeps a status to a single line, which the protocol requires.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
