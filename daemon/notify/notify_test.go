//go:build linux

package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen makes a stand-in for systemd's notify socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// recv returns the next datagram, or "" when none arrives within wait.
func recv(t *testing.T, conn *net.UnixConn, wait time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
		t.Fatal(err)
	}
	return string(buf[:n])
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestMessages(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn := listen(t, sock)
	n := New(envOf(map[string]string{"NOTIFY_SOCKET": sock}), nil)
	if !n.Enabled() {
		t.Fatal("not enabled with NOTIFY_SOCKET set")
	}
	tests := []struct {
		name string
		call func()
		want string
	}{
		{"ready with status", func() { n.Ready("enforcing 3 policies with bpflsm") }, "READY=1\nSTATUS=enforcing 3 policies with bpflsm"},
		{"ready without status", func() { n.Ready("") }, "READY=1"},
		{"status is one line", func() { n.Status("loading\npolicies  from /etc") }, "STATUS=loading policies from /etc"},
		{"stopping", n.Stopping, "STOPPING=1"},
		{"watchdog", n.Watchdog, "WATCHDOG=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.call()
			if got := recv(t, conn, time.Second); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReloadingIsOneDatagramWithMonotonicTime(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn := listen(t, sock)
	n := New(envOf(map[string]string{"NOTIFY_SOCKET": sock}), nil)
	before, _ := monotonicUsec()
	n.Reloading()
	after, _ := monotonicUsec()
	got := recv(t, conn, time.Second)
	m := regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("got %q, want RELOADING=1 and MONOTONIC_USEC in one datagram", got)
	}
	usec, _ := strconv.ParseUint(m[1], 10, 64)
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d not within [%d, %d]", usec, before, after)
	}
	if extra := recv(t, conn, 50*time.Millisecond); extra != "" {
		t.Errorf("unexpected second datagram %q", extra)
	}
}

func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@kubearmor-notify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn := listen(t, name)
	New(envOf(map[string]string{"NOTIFY_SOCKET": name}), nil).Ready("up")
	if got := recv(t, conn, time.Second); got != "READY=1\nSTATUS=up" {
		t.Errorf("got %q", got)
	}
}

func TestNoSocketIsNoOp(t *testing.T) {
	n := New(envOf(nil), nil)
	if n.Enabled() {
		t.Error("enabled without NOTIFY_SOCKET")
	}
	if err := n.Send("READY=1"); err != nil {
		t.Errorf("Send without socket: %v", err)
	}
	n.Ready("x") // must not panic or block
}

func TestErrorsLoggedOnceNeverFatal(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	missing := filepath.Join(t.TempDir(), "gone.sock")
	n := New(envOf(map[string]string{"NOTIFY_SOCKET": missing}), logger)
	n.Ready("a")
	n.Status("b")
	n.Watchdog()
	if c := strings.Count(logs.String(), "sd_notify failed"); c != 1 {
		t.Errorf("logged %d times, want once:\n%s", c, logs.String())
	}
	if err := n.Send("READY=1"); err == nil || !strings.Contains(err.Error(), "notify "+missing+": ") {
		t.Errorf("Send error = %v", err)
	}
}

func TestSendRejects(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	listen(t, sock)
	tests := []struct {
		name, socket string
		state        []string
		wantErr      string
	}{
		{"vsock address", "vsock:2:1234", []string{"READY=1"}, `notify vsock:2:1234: unsupported NOTIFY_SOCKET address`},
		{"newline in a value", sock, []string{"STATUS=a\nb"}, `malformed state "STATUS=a\nb"`},
		{"no equals sign", sock, []string{"READY"}, `malformed state "READY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New(envOf(map[string]string{"NOTIFY_SOCKET": tt.socket}), nil).Send(tt.state...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	tests := []struct {
		name string
		env  map[string]string
		want time.Duration
		ok   bool
	}{
		{"unset", nil, 0, false},
		{"for us", map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": me}, 30 * time.Second, true},
		{"no pid given", map[string]string{"WATCHDOG_USEC": "500000"}, 500 * time.Millisecond, true},
		{"for another process", map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, 0, false},
		{"zero", map[string]string{"WATCHDOG_USEC": "0"}, 0, false},
		{"garbage", map[string]string{"WATCHDOG_USEC": "30s"}, 0, false},
		{"garbage pid", map[string]string{"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "me"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := New(envOf(tt.env), nil).WatchdogInterval()
			if got != tt.want || ok != tt.ok {
				t.Errorf("got (%v, %v), want (%v, %v)", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	clock := time.Unix(1000, 0)
	h := NewHeartbeat("event reader", 10*time.Second)
	h.now = func() time.Time { return clock }
	h.start = clock
	tests := []struct {
		name    string
		advance time.Duration
		beat    bool
		wantErr string
	}{
		{"fresh", 0, false, ""},
		{"within limit", 10 * time.Second, false, ""},
		{"stale", time.Second, false, "event reader: heartbeat stale: last beat 11s ago (limit 10s)"},
		{"beat revives", 0, true, ""},
		{"stale again", 15 * time.Second, false, "event reader: heartbeat stale: last beat 15s ago (limit 10s)"},
	}
	for _, tt := range tests {
		clock = clock.Add(tt.advance)
		if tt.beat {
			h.Beat()
		}
		err := h.Check()
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrStale) {
			t.Errorf("%s: %v does not wrap ErrStale", tt.name, err)
		}
	}
}

func TestRunWatchdogPingsOnlyWhenChecksPass(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn := listen(t, sock)
	var logs bytes.Buffer
	n := New(envOf(map[string]string{
		"NOTIFY_SOCKET": sock,
		"WATCHDOG_USEC": "40000", // 40ms: pings every 20ms
		"WATCHDOG_PID":  strconv.Itoa(os.Getpid()),
	}), slog.New(slog.NewTextHandler(&logs, nil)))

	var readerOK, reconcileOK atomic.Bool
	readerOK.Store(true)
	reconcileOK.Store(true)
	check := func(name string, ok *atomic.Bool) func() error {
		return func() error {
			if !ok.Load() {
				return errors.New(name + " stuck")
			}
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(ctx, n, check("reader", &readerOK), check("reconcile", &reconcileOK)) }()

	for range 3 {
		if got := recv(t, conn, time.Second); got != "WATCHDOG=1" {
			t.Fatalf("healthy: got %q, want WATCHDOG=1", got)
		}
	}
	reconcileOK.Store(false)
	// Drain a ping that may have been in flight when the check turned bad.
	for recv(t, conn, 60*time.Millisecond) != "" {
	}
	if got := recv(t, conn, 150*time.Millisecond); got != "" {
		t.Fatalf("unhealthy: got %q, want no ping", got)
	}
	reconcileOK.Store(true)
	if got := recv(t, conn, time.Second); got != "WATCHDOG=1" {
		t.Fatalf("recovered: got %q, want WATCHDOG=1", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWatchdog returned %v", err)
	}
	if c := strings.Count(logs.String(), "liveness check failed"); c != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", c, logs.String())
	}
	if !strings.Contains(logs.String(), "reconcile stuck") || !strings.Contains(logs.String(), "pings resumed") {
		t.Errorf("logs lack the reason or the recovery:\n%s", logs.String())
	}
}

func TestRunWatchdogWithoutWatchdogReturns(t *testing.T) {
	n := New(envOf(map[string]string{"NOTIFY_SOCKET": "/nonexistent"}), nil)
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(context.Background(), n) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("got %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("RunWatchdog blocked with no watchdog configured")
	}
}
