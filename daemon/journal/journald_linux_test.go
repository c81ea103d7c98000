//go:build linux

package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// journaldScript runs systemd-journald in a private mount namespace with
// fresh tmpfs over /run/systemd and /run/log, so it touches nothing on the
// host and needs no systemd as PID 1. The test reaches its socket and files
// through /proc/<pid>/root, which resolves paths in that namespace.
const journaldScript = `set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run/systemd
mount -t tmpfs tmpfs /run/log
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
mount --bind "$1" /etc/systemd/journald.conf
mkdir -p /run/systemd/journal
exec "$2"
`

// No kernel log, no audit socket, no forwarding: the test journald must not
// compete with anything else on the machine. No rate limit: tests burst.
const journaldConf = `[Journal]
Storage=volatile
ReadKMsg=no
Audit=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitBurst=0
`

// startJournald starts a private journald and returns its socket path and
// journal directory, or skips with the reason it cannot.
func startJournald(t *testing.T) (socket, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real journald test: needs root to mount tmpfs in a private mount namespace")
	}
	bin := ""
	for _, p := range []string{"/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("real journald test: systemd-journald not installed (apt-get install systemd)")
	}
	for _, tool := range []string{"unshare", "journalctl", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("real journald test: %s not found: %v", tool, err)
		}
	}
	if _, err := os.Stat("/etc/systemd/journald.conf"); err != nil {
		t.Skipf("real journald test: no /etc/systemd/journald.conf to bind over: %v", err)
	}
	conf := filepath.Join(t.TempDir(), "journald.conf")
	if err := os.WriteFile(conf, []byte(journaldConf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("unshare", "--mount", "sh", "-c", journaldScript, "sh", conf, bin)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Skipf("real journald test: start unshare: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// unshare and sh exec, so the pid is journald's.
	root := fmt.Sprintf("/proc/%d/root", cmd.Process.Pid)
	socket = root + "/run/systemd/journal/socket"
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(socket); err == nil && fi.Mode().Type() == os.ModeSocket {
			break
		}
		select {
		case err := <-exited:
			t.Skipf("real journald test: journald exited before opening its socket (%v): %s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("journald did not create %s within 10s: %s", socket, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return socket, root + "/run/log/journal"
}

// readBack returns the entries journalctl shows for field=value, waiting for
// want of them to arrive.
func readBack(t *testing.T, dir, match string, want int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command("journalctl", "-D", dir, "-o", "json", "--all", "--no-pager", match).Output()
		if err != nil {
			t.Fatalf("journalctl: %v", err)
		}
		var entries []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var e map[string]any
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("journalctl json: %v", err)
			}
			entries = append(entries, e)
		}
		if len(entries) >= want || time.Now().After(deadline) {
			return entries
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealJournald(t *testing.T) {
	socket, dir := startJournald(t)
	c, err := NewClient(socket, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := fmt.Sprintf("%d", time.Now().UnixNano())
	big := strings.Repeat("x", 1<<20+17) // over 1 MiB: only fits as a memfd

	if err := c.Send("kubearmor blocked /usr/bin/sleep", PriWarning, map[string]string{
		"KUBEARMOR_TEST_ID":    id,
		"KUBEARMOR_POLICYNAME": "block-sleep",
		"KUBEARMOR_DATA":       "multi\nline",
	}); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := c.Send("big entry", PriInfo, map[string]string{"KUBEARMOR_TEST_ID": id, "KUBEARMOR_BIG": big}); err != nil {
		t.Fatalf("send memfd: %v", err)
	}
	slog.New(NewHandler(c, nil)).With("kubearmor_test_id", id).Error("reload failed", "policy_file", "/etc/kubearmor/policies/a.yaml")

	entries := readBack(t, dir, "KUBEARMOR_TEST_ID="+id, 3)
	if len(entries) != 3 {
		t.Fatalf("journalctl returned %d entries, want 3: %v", len(entries), entries)
	}
	want := []map[string]string{
		{"MESSAGE": "kubearmor blocked /usr/bin/sleep", "PRIORITY": "4", "SYSLOG_IDENTIFIER": "kubearmor",
			"KUBEARMOR_POLICYNAME": "block-sleep", "KUBEARMOR_DATA": "multi\nline", "_TRANSPORT": "journal"},
		{"MESSAGE": "big entry", "PRIORITY": "6", "KUBEARMOR_BIG": big, "_TRANSPORT": "journal"},
		{"MESSAGE": "reload failed", "PRIORITY": "3", "SYSLOG_IDENTIFIER": "kubearmor",
			"POLICY_FILE": "/etc/kubearmor/policies/a.yaml", "_TRANSPORT": "journal"},
	}
	for i, w := range want {
		for k, v := range w {
			got, _ := entries[i][k].(string)
			if got != v {
				if len(v) > 100 {
					t.Errorf("entry %d: %s has %d bytes, want %d", i, k, len(got), len(v))
				} else {
					t.Errorf("entry %d: %s = %q, want %q", i, k, got, v)
				}
			}
		}
	}
	if pid := fmt.Sprint(os.Getpid()); entries[0]["_PID"] != pid {
		t.Errorf("_PID = %v, want %s (journald's trusted sender pid)", entries[0]["_PID"], pid)
	}
}
