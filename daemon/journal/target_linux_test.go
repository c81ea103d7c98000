//go:build linux

package journal

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kubearmor/kubearmor-host/daemon/journal/journaltest"
)

// streamOf returns the JOURNAL_STREAM value systemd would set for f.
func streamOf(t *testing.T, f *os.File) string {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func tempFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestStderrIsJournal(t *testing.T) {
	stderr := tempFile(t, "stderr")
	other := tempFile(t, "other")
	tests := []struct {
		name, stream string
		want         bool
	}{
		{"same device and inode", streamOf(t, stderr), true},
		{"another file (stderr redirected)", streamOf(t, other), false},
		{"unset", "", false},
		{"garbage", "abc:def", false},
		{"no colon", "12345", false},
	}
	for _, tt := range tests {
		if got := StderrIsJournal(tt.stream, stderr); got != tt.want {
			t.Errorf("%s: StderrIsJournal(%q) = %v, want %v", tt.name, tt.stream, got, tt.want)
		}
	}
}

func TestNewLogHandler(t *testing.T) {
	j := journaltest.New(t)
	stderr := tempFile(t, "stderr")
	matching := map[string]string{"JOURNAL_STREAM": streamOf(t, stderr)}
	tests := []struct {
		name    string
		target  string
		env     map[string]string
		socket  string
		want    string
		wantErr string
	}{
		{name: "auto on the journal stream", target: "auto", env: matching, want: TargetJournald},
		{name: "empty target is auto", target: "", env: matching, want: TargetJournald},
		{name: "auto without JOURNAL_STREAM", target: "auto", want: TargetStderr},
		{name: "auto with a stale JOURNAL_STREAM", target: "auto", env: map[string]string{"JOURNAL_STREAM": "1:1"}, want: TargetStderr},
		{name: "explicit journald", target: "journald", want: TargetJournald},
		{name: "explicit stderr beats the journal stream", target: "stderr", env: matching, want: TargetStderr},
		{name: "explicit journald without journald", target: "journald", socket: "/nonexistent/socket", wantErr: "log to journald: stat /nonexistent/socket: no such file or directory"},
		{name: "explicit journald on a non-socket", target: "journald", socket: stderr.Name(), wantErr: "is not a socket"},
		{name: "unknown target", target: "syslog", wantErr: `log target "syslog": must be "auto", "journald" or "stderr"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socket := tt.socket
			if socket == "" {
				socket = j.Path
			}
			h, closer, got, err := NewLogHandler(LogOptions{
				Target:    tt.target,
				LookupEnv: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok },
				Stderr:    stderr,
				Socket:    socket,
				Handler:   &slog.HandlerOptions{Level: slog.LevelDebug},
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closer.Close()
			if got != tt.want {
				t.Fatalf("chose %s, want %s", got, tt.want)
			}
			slog.New(h).Debug("probe", "policy_file", "a.yaml")
			if got == TargetJournald {
				e, ok := j.Recv(2e9)
				if !ok || e.Fields["MESSAGE"][0] != "probe" || e.Fields["POLICY_FILE"][0] != "a.yaml" || e.Fields["PRIORITY"][0] != "7" {
					t.Errorf("journald got %v", e.Fields)
				}
				return
			}
			data, err := os.ReadFile(stderr.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "msg=probe policy_file=a.yaml") {
				t.Errorf("stderr got %q", data)
			}
		})
	}
}
