//go:build linux

package journal

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeJournal is a stand-in for journald's native socket.
type fakeJournal struct {
	t    *testing.T
	path string
	conn *net.UnixConn
}

func newFakeJournal(t *testing.T) *fakeJournal {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fakeJournal{t: t, path: path, conn: conn}
}

// entry is one received entry, and whether it came as a memfd.
type entry struct {
	fields map[string][]string
	memfd  bool
	seals  int
}

func (j *fakeJournal) recv(wait time.Duration) (entry, bool) {
	j.t.Helper()
	buf := make([]byte, 256<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	if err := j.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		j.t.Fatal(err)
	}
	n, oobn, _, _, err := j.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return entry{}, false
		}
		j.t.Fatal(err)
	}
	var e entry
	data := buf[:n]
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			j.t.Fatalf("control messages: %v %v", msgs, err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			j.t.Fatalf("rights: %v %v", fds, err)
		}
		f := os.NewFile(uintptr(fds[0]), "memfd")
		defer f.Close()
		e.memfd = true
		if e.seals, err = unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0); err != nil {
			j.t.Fatalf("F_GET_SEALS: %v", err)
		}
		fi, err := f.Stat()
		if err != nil {
			j.t.Fatal(err)
		}
		// The offset is shared with the sender's descriptor: read from 0.
		if data, err = io.ReadAll(io.NewSectionReader(f, 0, fi.Size())); err != nil {
			j.t.Fatal(err)
		}
	}
	fields, err := parseNative(data)
	if err != nil {
		j.t.Fatalf("parse %q: %v", data, err)
	}
	e.fields = fields
	return e, true
}

func TestClientSend(t *testing.T) {
	j := newFakeJournal(t)
	c, err := NewClient(j.path, "")
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
				if e, ok := j.recv(50 * time.Millisecond); ok {
					t.Errorf("sent despite the error: %v", e.fields)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			e, ok := j.recv(2 * time.Second)
			if !ok {
				t.Fatal("nothing received")
			}
			if e.memfd != tt.wantMemfd {
				t.Errorf("memfd = %v, want %v", e.memfd, tt.wantMemfd)
			}
			if e.memfd {
				want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
				if e.seals&want != want {
					t.Errorf("seals = %#x, want %#x", e.seals, want)
				}
			}
			if !reflect.DeepEqual(e.fields, tt.want) {
				if len(tt.message) > 100 {
					t.Errorf("fields differ (sizes: MESSAGE %d)", len(e.fields["MESSAGE"]))
				} else {
					t.Errorf("fields:\n got %q\nwant %q", e.fields, tt.want)
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
