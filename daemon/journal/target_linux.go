//go:build linux

package journal

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Log targets, as the logTarget setting spells them.
const (
	TargetAuto     = "auto"
	TargetJournald = "journald"
	TargetStderr   = "stderr"
)

// LogOptions configures NewLogHandler. Zero fields take the defaults shown.
type LogOptions struct {
	Target     string               // TargetAuto
	Handler    *slog.HandlerOptions // level and source for either handler
	LookupEnv  func(string) (string, bool)
	Stderr     *os.File // os.Stderr
	Socket     string   // DefaultSocket
	Identifier string   // DefaultIdentifier
}

// NewLogHandler returns the daemon's log handler and what to close when
// done: journald when the target is "journald", or "auto" and stderr is
// connected to the journal; otherwise a text handler on stderr. It also says
// which it chose, for the start-up log. An explicit "journald" whose socket
// is missing is an error rather than a silent switch to stderr.
func NewLogHandler(o LogOptions) (slog.Handler, io.Closer, string, error) {
	if o.Target == "" {
		o.Target = TargetAuto
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	useJournal := false
	switch o.Target {
	case TargetJournald:
		fi, err := os.Stat(o.Socket)
		if err != nil {
			return nil, nil, "", fmt.Errorf("log to journald: %w", err)
		}
		if fi.Mode().Type() != os.ModeSocket {
			return nil, nil, "", fmt.Errorf("log to journald: %s is not a socket", o.Socket)
		}
		useJournal = true
	case TargetAuto:
		stream, _ := o.LookupEnv("JOURNAL_STREAM")
		useJournal = StderrIsJournal(stream, o.Stderr)
	case TargetStderr:
	default:
		return nil, nil, "", fmt.Errorf("log target %q: must be %q, %q or %q", o.Target, TargetAuto, TargetJournald, TargetStderr)
	}
	if !useJournal {
		return slog.NewTextHandler(o.Stderr, o.Handler), nopCloser{}, TargetStderr, nil
	}
	c, err := NewClient(o.Socket, o.Identifier)
	if err != nil {
		return nil, nil, "", fmt.Errorf("log to journald: %w", err)
	}
	return NewHandler(c, o.Handler), c, TargetJournald, nil
}

// StderrIsJournal reports whether stderr is the stream systemd connected to
// the journal: $JOURNAL_STREAM holds "<device>:<inode>" of that stream, and
// it is only meaningful if stderr still is it (not redirected by a shell or
// inherited by a child). See systemd.exec(5).
func StderrIsJournal(journalStream string, stderr *os.File) bool {
	devStr, inoStr, ok := strings.Cut(journalStream, ":")
	if !ok || stderr == nil {
		return false
	}
	dev, err1 := strconv.ParseUint(devStr, 10, 64)
	ino, err2 := strconv.ParseUint(inoStr, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	// Stat, not Fd: Fd would switch the file to blocking mode.
	fi, err := stderr.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && st.Ino == ino
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
