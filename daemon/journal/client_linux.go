//go:build linux

package journal

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// DefaultSocket is journald's native-protocol socket.
const DefaultSocket = "/run/systemd/journal/socket"

// DefaultIdentifier is the SYSLOG_IDENTIFIER the client sets.
const DefaultIdentifier = "kubearmor"

// sendTimeout bounds how long a wedged journald can hold up a sender; the
// caller counts the error instead of hanging.
const sendTimeout = 2

// Client sends entries to journald. It is safe for concurrent use.
type Client struct {
	socket     string
	identifier string

	mu     sync.RWMutex // Close takes it exclusively; Send shares it
	fd     int
	errors atomic.Uint64
}

// NewClient opens an unbound datagram socket for sending to socket
// (DefaultSocket when ""), tagging entries with identifier
// (DefaultIdentifier when ""). It does not check that journald is running:
// the first Send does.
func NewClient(socket, identifier string) (*Client, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	if identifier == "" {
		identifier = DefaultIdentifier
	}
	// Unconnected, so that a restarted journald (a new socket at the same
	// path) is reached without reconnecting.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("journal socket: %w", err)
	}
	tv := unix.Timeval{Sec: sendTimeout}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("journal socket: set send timeout: %w", err)
	}
	return &Client{socket: socket, identifier: identifier, fd: fd}, nil
}

// Close releases the socket; Send fails afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	if err != nil {
		return fmt.Errorf("close journal socket: %w", err)
	}
	return nil
}

// Errors counts Sends that failed, for the daemon's loss counters.
func (c *Client) Errors() uint64 { return c.errors.Load() }

// Send writes one entry with MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and the
// given fields. Field names must pass ValidFieldName; MESSAGE and PRIORITY
// come from the arguments only, and a SYSLOG_IDENTIFIER field replaces the
// client's. Nothing is sent when a name is invalid. An entry too large for a
// datagram is passed as a sealed memfd, as journald expects.
func (c *Client) Send(message string, priority Priority, fields map[string]string) error {
	if err := c.send(message, priority, fields); err != nil {
		c.errors.Add(1)
		return err
	}
	return nil
}

func (c *Client) send(message string, priority Priority, fields map[string]string) error {
	if priority < PriEmerg || priority > PriDebug {
		return fmt.Errorf("journal send: priority %d out of range 0-7", priority)
	}
	names := make([]string, 0, len(fields))
	size := len(message) + len(c.identifier) + 64
	for name, v := range fields {
		if err := ValidFieldName(name); err != nil {
			return fmt.Errorf("journal send: %w", err)
		}
		if name == "MESSAGE" || name == "PRIORITY" {
			return fmt.Errorf("journal send: field %s is set by Send's arguments", name)
		}
		names = append(names, name)
		size += len(name) + len(v) + 10
	}
	sort.Strings(names) // stable order makes entries comparable in tests

	b := make([]byte, 0, size)
	b = appendField(b, "MESSAGE", message)
	b = appendField(b, "PRIORITY", strconv.Itoa(int(priority)))
	if _, ok := fields["SYSLOG_IDENTIFIER"]; !ok {
		b = appendField(b, "SYSLOG_IDENTIFIER", c.identifier)
	}
	for _, name := range names {
		b = appendField(b, name, fields[name])
	}

	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.fd < 0 {
		return fmt.Errorf("journal send %s: %w", c.socket, os.ErrClosed)
	}
	addr := &unix.SockaddrUnix{Name: c.socket}
	err := unix.Sendmsg(c.fd, b, nil, addr, 0)
	if errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS) {
		err = c.sendMemfd(b, addr)
	}
	if err != nil {
		return fmt.Errorf("journal send %s: %w", c.socket, err)
	}
	return nil
}

// sendMemfd passes the entry as a sealed memfd: journald reads a large entry
// from a descriptor, and the seals prove to it that we cannot change the
// contents while it reads.
func (c *Client) sendMemfd(b []byte, addr *unix.SockaddrUnix) error {
	fd, err := unix.MemfdCreate("journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "journal-entry")
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write memfd: %w", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("seal memfd: %w", err)
	}
	if err := unix.Sendmsg(c.fd, nil, unix.UnixRights(fd), addr, 0); err != nil {
		return fmt.Errorf("pass memfd: %w", err)
	}
	return nil
}
