//go:build linux

package journal

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/daemon/journal/journaltest"
)

func TestClientSend(t *testing.T) {
	j := journaltest.New(t)
	c, err := NewClient(j.Path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := strings.Repeat("0123456789abcdef", (1<<20)/16+1) // just over 1 MiB
	tests := []struct {
		name      string
		message   string
		priority  Priority
		fields    map[string]string
		want      map[string][]string
		wantMemfd bool
		wantErr   string
	}{
		{
			name: "plain", message: "policy loaded", priority: PriInfo,
			fields: map[string]string{"KUBEARMOR_POLICYNAME": "block-sleep", "KUBEARMOR_SEVERITY": "5"},
			want: map[string][]string{
				"MESSAGE": {"policy loaded"}, "PRIORITY": {"6"}, "SYSLOG_IDENTIFIER": {"kubearmor"},
				"KUBEARMOR_POLICYNAME": {"block-sleep"}, "KUBEARMOR_SEVERITY": {"5"},
			},
		},
		{
			name: "newlines and binary use the length form", message: "line 1\nline 2", priority: PriWarning,
			fields: map[string]string{"DATA": "a\x00b\nc", "EMPTY": ""},
			want: map[string][]string{
				"MESSAGE": {"line 1\nline 2"}, "PRIORITY": {"4"}, "SYSLOG_IDENTIFIER": {"kubearmor"},
				"DATA": {"a\x00b\nc"}, "EMPTY": {""},
			},
		},
		{
			name: "identifier can be replaced per entry", message: "m", priority: PriDebug,
			fields: map[string]string{"SYSLOG_IDENTIFIER": "karmor"},
			want:   map[string][]string{"MESSAGE": {"m"}, "PRIORITY": {"7"}, "SYSLOG_IDENTIFIER": {"karmor"}},
		},
		{
			name: "over 1 MiB goes as a sealed memfd", message: big, priority: PriErr,
			fields:    map[string]string{"KUBEARMOR_DATA": big},
			want:      map[string][]string{"MESSAGE": {big}, "PRIORITY": {"3"}, "SYSLOG_IDENTIFIER": {"kubearmor"}, "KUBEARMOR_DATA": {big}},
			wantMemfd: true,
		},
		{name: "lower-case field", message: "m", fields: map[string]string{"policy": "x"}, wantErr: `journal field name "policy": character 'p'`},
		{name: "trusted field", message: "m", fields: map[string]string{"_PID": "1"}, wantErr: `starts with _`},
		{name: "MESSAGE in fields", message: "m", fields: map[string]string{"MESSAGE": "x"}, wantErr: `field MESSAGE is set by Send's arguments`},
		{name: "bad priority", message: "m", priority: 8, wantErr: `priority 8 out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := c.Errors()
			err := c.Send(tt.message, tt.priority, tt.fields)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want %q", err, tt.wantErr)
				}
				if c.Errors() != before+1 {
					t.Errorf("error not counted")
				}
				if e, ok := j.Recv(50 * time.Millisecond); ok {
					t.Errorf("sent despite the error: %v", e.Fields)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e, ok := j.Recv(2 * time.Second)
			if !ok {
				t.Fatal("nothing received")
			}
			if e.Memfd != tt.wantMemfd {
				t.Errorf("memfd = %v, want %v", e.Memfd, tt.wantMemfd)
			}
			if e.Memfd {
				want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
				if e.Seals&want != want {
					t.Errorf("seals = %#x, want %#x", e.Seals, want)
				}
			}
			if !reflect.DeepEqual(e.Fields, tt.want) {
				if len(tt.message) > 100 {
					t.Errorf("fields differ (sizes: MESSAGE %d)", len(e.Fields["MESSAGE"]))
				} else {
					t.Errorf("fields:\n got %q\nwant %q", e.Fields, tt.want)
				}
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-journald")
	c, err := NewClient(missing, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send("m", PriInfo, nil); !errors.Is(err, syscall.ENOENT) || !strings.HasPrefix(err.Error(), "journal send "+missing+": ") {
		t.Errorf("missing socket: got %v", err)
	}
	if c.Errors() != 1 {
		t.Errorf("Errors() = %d, want 1", c.Errors())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := c.Send("m", PriInfo, nil); !errors.Is(err, os.ErrClosed) {
		t.Errorf("after Close: got %v", err)
	}
}
