// Package reader reads the kernel's audit records from the audit netlink
// socket and puts the records of one event back together, counting every
// way a record can be lost on this path: the kernel's own lost counter and
// backlog (from AUDIT_GET), gaps in the events' serial numbers, and the
// socket overflowing (ENOBUFS), which the kernel does not count for
// multicast readers.
//
// By default it joins the read-only multicast group, beside auditd and
// journald, which keep working. With Options.Unicast it registers as the
// audit daemon instead, and only if no other live process is registered.
package reader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
	"golang.org/x/sys/unix"
)

// groupReadLog is AUDIT_NLGRP_READLOG, the multicast group of the audit log.
const groupReadLog = 1

// firstRecordType is AUDIT_FIRST_USER_MSG: types below are control
// messages (AUDIT_GET, AUDIT_SET, ...) and netlink's own, but for
// AUDIT_LOGIN, a record the kernel numbers like the others (skipping it
// would show as a gap).
const (
	firstRecordType = 1100
	auditLogin      = 1006
)

// Options say how to read.
type Options struct {
	// Unicast registers the reader as the audit daemon (AUDIT_SET pid),
	// which makes the kernel queue records for it (and count what it must
	// drop); refused when another live process holds the registration.
	Unicast bool
	// ReceiveBuffer sets the socket's receive buffer in bytes
	// (SO_RCVBUFFORCE); 0 keeps the kernel's default (net.core.rmem_default).
	ReceiveBuffer int
	// MaxInFlight bounds the events being reassembled; DefaultMaxInFlight if 0.
	MaxInFlight int
	// Timeout is how long an event waits for its last record; DefaultTimeout if 0.
	Timeout time.Duration
}

// Defaults.
const (
	DefaultMaxInFlight = 64
	DefaultTimeout     = 2 * time.Second
)

// Event is the records of one audit event (one serial number), in order.
type Event struct {
	Serial   uint32
	Time     time.Time
	Messages []*auparse.AuditMessage
}

// Stats counts what the reader received and lost.
type Stats struct {
	Records     uint64 // netlink messages received
	Events      uint64 // events put together and delivered
	Gaps        uint64 // events missing from the serial numbers: lost before the reader saw them
	NoBufs      uint64 // reads that failed with ENOBUFS: the socket overflowed and the kernel dropped records for it
	Malformed   uint64 // records that did not parse
	Undelivered uint64 // events dropped because the consumer was slow
}

// KernelStatus is the kernel's side of the audit path (AUDIT_GET).
type KernelStatus struct {
	Enabled      uint32
	PID          uint32 // the registered audit daemon, 0 if none
	Lost         uint32 // records the kernel dropped (backlog full, rate limit, no memory)
	Backlog      uint32 // records waiting for the audit daemon
	BacklogLimit uint32
	RateLimit    uint32
}

// Reader reads audit records. Run reads; Stats and Status may be called
// from other goroutines.
type Reader struct {
	fd      int                   // the multicast socket records arrive on, or -1
	daemon  *libaudit.AuditClient // for unicast: the registered socket records arrive on
	control *libaudit.AuditClient // AUDIT_GET, apart from the records
	unicast bool
	opts    Options
	buf     []byte

	records, events, gaps, nobufs, malformed, undelivered atomic.Uint64
}

// Open creates the socket and, for unicast, registers it.
func Open(opts Options) (*Reader, error) {
	if opts.MaxInFlight == 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	control, err := libaudit.NewAuditClient(nil)
	if err != nil {
		return nil, fmt.Errorf("open audit control socket: %w", err)
	}
	r := &Reader{control: control, unicast: opts.Unicast, opts: opts, buf: make([]byte, 1<<16)}
	if opts.Unicast {
		r.fd = -1
		if r.daemon, err = libaudit.NewAuditClient(nil); err != nil {
			control.Close()
			return nil, fmt.Errorf("open audit socket: %w", err)
		}
		if err := r.register(); err != nil {
			r.Close()
			return nil, err
		}
		return r, nil
	}
	fd, err := openMulticast(opts.ReceiveBuffer)
	if err != nil {
		control.Close()
		return nil, err
	}
	r.fd = fd
	return r, nil
}

// openMulticast opens a socket in the audit log's multicast group, with a
// receive buffer of bufSize bytes (0: the kernel's default).
func openMulticast(bufSize int) (_ int, err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return -1, fmt.Errorf("open audit multicast socket: %w", err)
	}
	defer func() {
		if err != nil {
			unix.Close(fd) // the local fd: the result is -1 by now
		}
	}()
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (groupReadLog - 1)}); err != nil {
		return -1, fmt.Errorf("join the audit log's multicast group (needs CAP_AUDIT_READ): %w", err)
	}
	if bufSize > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufSize); err != nil {
			return -1, fmt.Errorf("set the audit socket's receive buffer to %d bytes: %w", bufSize, err)
		}
	}
	// Reads wake up this often to notice cancellation and expire events.
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return -1, fmt.Errorf("set the audit socket's read timeout: %w", err)
	}
	return fd, nil
}

// register makes the daemon socket the audit daemon's, unless a live
// process already is: taking over would silently cut auditd off.
func (r *Reader) register() error {
	st, err := r.control.GetStatus()
	if err != nil {
		return fmt.Errorf("audit status: %w", err)
	}
	if st.PID != 0 && st.PID != uint32(os.Getpid()) {
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", st.PID)); err == nil {
			return fmt.Errorf("unicast audit: process %d (%s) is the registered audit daemon; use multicast (the default), or stop it first",
				st.PID, strings.TrimSpace(string(comm)))
		}
	}
	if err := r.daemon.SetPID(libaudit.WaitForReply); err != nil {
		return fmt.Errorf("register as the audit daemon: %w", err)
	}
	return nil
}

// Status asks the kernel for its audit status.
func (r *Reader) Status() (KernelStatus, error) {
	st, err := r.control.GetStatus()
	if err != nil {
		return KernelStatus{}, fmt.Errorf("audit status: %w", err)
	}
	return KernelStatus{Enabled: st.Enabled, PID: st.PID, Lost: st.Lost, Backlog: st.Backlog,
		BacklogLimit: st.BacklogLimit, RateLimit: st.RateLimit}, nil
}

// Stats returns the counters.
func (r *Reader) Stats() Stats {
	return Stats{Records: r.records.Load(), Events: r.events.Load(), Gaps: r.gaps.Load(), NoBufs: r.nobufs.Load(),
		Malformed: r.malformed.Load(), Undelivered: r.undelivered.Load()}
}

// Close closes the sockets; a unicast registration is released.
func (r *Reader) Close() error {
	var err error
	if r.fd >= 0 {
		err = unix.Close(r.fd)
		r.fd = -1
	}
	if r.daemon != nil {
		err = errors.Join(err, r.daemon.Close()) // unregisters
	}
	return errors.Join(err, r.control.Close())
}

// stream receives the reassembler's results.
type stream struct {
	r      *Reader
	events chan<- Event
}

func (s stream) ReassemblyComplete(msgs []*auparse.AuditMessage) {
	if len(msgs) == 0 {
		return
	}
	e := Event{Serial: msgs[0].Sequence, Time: msgs[0].Timestamp, Messages: msgs}
	select {
	case s.events <- e:
		s.r.events.Add(1)
	default:
		s.r.undelivered.Add(1)
	}
}

// maxGap bounds a believable gap: go-libaudit computes gaps in uint32, so
// an event that arrives after a later one (several CPUs log at once) shows
// as a gap of about 2^32.
const maxGap = 1 << 24

func (s stream) EventsLost(n int) {
	if n > 0 && n <= maxGap {
		s.r.gaps.Add(uint64(n))
	}
}

// Run reads records and delivers events until ctx is done. It never waits
// on events: an event the consumer has no room for is counted.
func (r *Reader) Run(ctx context.Context, events chan<- Event) error {
	re, err := libaudit.NewReassembler(r.opts.MaxInFlight, r.opts.Timeout, stream{r, events})
	if err != nil {
		return err
	}
	defer re.Close()
	for ctx.Err() == nil {
		typ, data, err := r.receive()
		switch {
		case errors.Is(err, unix.ENOBUFS):
			r.nobufs.Add(1)
			continue
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			re.Maintain()
			continue
		case err != nil:
			return fmt.Errorf("read audit records: %w", err)
		}
		if typ < firstRecordType && typ != auditLogin {
			continue // netlink replies and audit control messages, not records
		}
		r.records.Add(1)
		if err := re.Push(auparse.AuditMessageType(typ), data); err != nil {
			r.malformed.Add(1)
		}
	}
	return nil
}

// receive reads one record: its type and text (copied).
func (r *Reader) receive() (uint16, []byte, error) {
	if r.unicast {
		msg, err := r.daemon.Receive(true)
		if errors.Is(err, unix.EAGAIN) {
			time.Sleep(10 * time.Millisecond) // go-libaudit's socket has no read timeout
		}
		if err != nil {
			return 0, nil, err
		}
		return uint16(msg.Type), append([]byte(nil), msg.Data...), nil
	}
	n, from, err := unix.Recvfrom(r.fd, r.buf, 0)
	if err != nil {
		return 0, nil, err
	}
	if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
		return 0, nil, nil // not from the kernel: ignored (type 0)
	}
	if n < unix.NLMSG_HDRLEN {
		r.malformed.Add(1)
		return 0, nil, nil
	}
	// One record per message; its length field is not always right
	// (go-libaudit ignores it too), so the datagram's size is.
	typ := binary.NativeEndian.Uint16(r.buf[4:6])
	return typ, append([]byte(nil), r.buf[unix.NLMSG_HDRLEN:n]...), nil
}
