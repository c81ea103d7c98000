//go:build linux

// Package journaltest is a stand-in for journald's native socket, for
// tests: it receives datagrams (inline or as a sealed memfd, as journald
// does) and decodes them the way journald does, so that tests check what
// was sent rather than how it was built.
package journaltest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Journal listens on a socket of its own.
type Journal struct {
	t    testing.TB
	Path string // the socket, for a client to send to
	conn *net.UnixConn
}

// New listens on a fresh socket, closed when the test ends.
func New(t testing.TB) *Journal {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Journal{t: t, Path: path, conn: conn}
}

// Entry is one received entry, and whether it came as a memfd, with its
// seals.
type Entry struct {
	Fields map[string][]string
	Memfd  bool
	Seals  int
}

// Recv returns the next entry, or false if none came within wait.
func (j *Journal) Recv(wait time.Duration) (Entry, bool) {
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
			return Entry{}, false
		}
		j.t.Fatal(err)
	}
	var e Entry
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
		e.Memfd = true
		if e.Seals, err = unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0); err != nil {
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
	fields, err := ParseNative(data)
	if err != nil {
		j.t.Fatalf("parse %q: %v", data, err)
	}
	e.Fields = fields
	return e, true
}

// ParseNative decodes journald's native protocol: NAME=value lines, and
// NAME, newline, a little-endian 64-bit length, the value, newline.
func ParseNative(b []byte) (map[string][]string, error) {
	m := map[string][]string{}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "=\n")
		if i < 0 {
			return nil, fmt.Errorf("field without = or newline: %q", b)
		}
		name := string(b[:i])
		if b[i] == '=' {
			j := bytes.IndexByte(b[i+1:], '\n')
			if j < 0 {
				return nil, fmt.Errorf("field %s: no terminating newline", name)
			}
			m[name] = append(m[name], string(b[i+1:i+1+j]))
			b = b[i+1+j+1:]
			continue
		}
		b = b[i+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("field %s: short length", name)
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			return nil, fmt.Errorf("field %s: length %d does not fit or lacks newline", name, n)
		}
		m[name] = append(m[name], string(b[:n]))
		b = b[n+1:]
	}
	return m, nil
}
