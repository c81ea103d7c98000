//go:build linux

package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

func TestMain(m *testing.M) {
	os.Exit(testutils.RunWithLeakCheck(m))
}

// start loads a monitor and collects its events until the returned stop is
// called, which detaches it, drains it and returns what arrived and the
// final counts.
func start(t *testing.T, opts Options, queue int, slow time.Duration) (*Monitor, func() ([]Event, Stats)) {
	t.Helper()
	testutils.RequireRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	m, err := Load(opts)
	testutils.RequireFeature(t, "tracing programs (tp_btf)", err)
	out := make(chan Event, queue)
	var got []Event
	var wg sync.WaitGroup
	collected := make(chan struct{})
	go func() {
		for ev := range out {
			got = append(got, ev)
			time.Sleep(slow)
		}
		close(collected)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	var runErr error
	wg.Go(func() { runErr = m.Run(ctx, out) })
	return m, func() ([]Event, Stats) {
		if err := m.Detach(); err != nil {
			t.Error(err)
		}
		wg.Wait()
		cancel()
		close(out)
		<-collected
		if runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
		st := m.Stats()
		if err := m.Close(); err != nil {
			t.Error(err)
		}
		return got, st
	}
}

func TestObserve(t *testing.T) {
	begun := time.Now()
	_, stop := start(t, Options{Kinds: Process | File | Network}, 1<<16, 0)
	dir := t.TempDir()
	file := filepath.Join(dir, "observed")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	true_, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	true_, _ = filepath.EvalSymlinks(true_)
	cmd := exec.Command(true_)
	// In dir, and on a terminal of its own: the exec event carries both.
	cmd.Dir, _ = filepath.EvalSymlinks(dir)
	tty, pts := openPTY(t)
	cmd.Stdin = pts
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	child := uint32(cmd.Process.Pid)
	if f, err := os.Open(file); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	if _, err := os.Open(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open %s: %v", missing, err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort(c.LocalAddr().String())
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()
	ln.Close()
	time.Sleep(100 * time.Millisecond) // the child's exit is reported after wait returns
	events, st := stop()

	self := uint32(os.Getpid())
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	// Go listens with MPTCP where the kernel has it, TCP otherwise.
	stream := func(e Event) bool {
		return e.Family == unix.AF_INET && e.SockType == unix.SOCK_STREAM &&
			(e.Protocol == unix.IPPROTO_TCP || e.Protocol == unix.IPPROTO_MPTCP)
	}
	tests := []struct {
		name string
		want func(e Event) bool
	}{
		{"exec of true by the child", func(e Event) bool {
			return e.Type == Exec && e.PID == child && e.PPID == self && e.Path == true_ && e.UID == 0 &&
				e.Cwd == cmd.Dir && e.TTY == tty &&
				!e.Time.Before(begun) && e.Time.Before(time.Now()) // boot clock turned into wall time
		}},
		{"exit of the child", func(e Event) bool { return e.Type == Exit && e.PID == child && e.Ret == 0 }},
		{"fork of the child", func(e Event) bool { return e.Type == Fork && e.PID == child && e.PPID == self && e.UID == 0 }},
		{"open of the file, read-only", func(e Event) bool {
			return e.Type == Open && e.PID == self && e.Path == file && e.Ret >= 0 && e.OpenFlags&unix.O_ACCMODE == unix.O_RDONLY
		}},
		{"failed open of a missing file", func(e Event) bool {
			return e.Type == Open && e.PID == self && e.Path == missing && e.Ret == -int32(unix.ENOENT)
		}},
		{"bind of the server", func(e Event) bool {
			return e.Type == Bind && e.PID == self && e.Ret == 0 && e.Local == server && stream(e)
		}},
		{"listen of the server", func(e Event) bool {
			return e.Type == Listen && e.PID == self && e.Ret == 0 && e.Local == server && stream(e)
		}},
		{"connect of the client", func(e Event) bool {
			return e.Type == Connect && e.PID == self && (e.Ret == 0 || e.Ret == -int32(unix.EINPROGRESS)) &&
				e.Remote == server && e.Protocol == unix.IPPROTO_TCP
		}},
		{"accept of the server", func(e Event) bool {
			return e.Type == Accept && e.PID == self && e.Ret >= 0 && e.Local == server && e.Remote == client
		}},
	}
	for _, tt := range tests {
		found := false
		for _, e := range events {
			if tt.want(e) {
				found = true
				break
			}
		}
		if !found {
			var ours []Event
			for _, e := range events {
				if e.PID == self || e.PID == child {
					ours = append(ours, e)
				}
			}
			t.Errorf("no event for %s among the test's %d: %+v", tt.name, len(ours), ours)
		}
	}
	if st.Seen != st.Delivered+st.Lost() {
		t.Errorf("seen %d, delivered %d + lost %d: %+v", st.Seen, st.Delivered, st.Lost(), st)
	}
}

// TestNothingObserved: hostVisibility none loads nothing and sends nothing.
func TestNothingObserved(t *testing.T) {
	m, stop := start(t, Options{}, 16, 0)
	links := len(m.links)
	if f, err := os.Open("/proc/self/stat"); err == nil {
		f.Close()
	}
	if err := exec.Command("true").Run(); err != nil {
		t.Fatal(err)
	}
	if got, st := stop(); len(got) != 0 || links != 0 || st != (Stats{}) {
		t.Errorf("with no kinds: %d events, %d links, %+v", len(got), links, st)
	}
}

// TestLossAccounting floods opens past a one-page ring buffer, and past a
// rate limit, and checks that what was delivered plus what each counter
// says was dropped is exactly what the generator did.
func TestLossAccounting(t *testing.T) {
	const n = 100000
	tests := []struct {
		name  string
		opts  Options
		queue int
		slow  time.Duration // per event, in the consumer
		check func(t *testing.T, s Stats)
	}{
		{"small ring", Options{RingSize: uint32(os.Getpagesize())}, 1 << 20, 0, func(t *testing.T, s Stats) {
			if s.RingFull == 0 {
				t.Errorf("a one-page ring never filled: %+v", s)
			}
		}},
		{"rate limit", Options{RatePerCPU: 1000, BurstPerCPU: 100}, 1 << 20, 0, func(t *testing.T, s Stats) {
			if s.Throttled == 0 {
				t.Errorf("1,000 events/s per CPU never throttled: %+v", s)
			}
		}},
		{"slow consumer", Options{}, 16, time.Millisecond, func(t *testing.T, s Stats) {
			if s.QueueFull == 0 {
				t.Errorf("a 16-event queue read at 1,000 events/s never filled: %+v", s)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Kinds = File
			opts.Only = uint32(os.Getpid())
			file := filepath.Join(t.TempDir(), "flood")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			_, stop := start(t, opts, tt.queue, tt.slow)
			for range n {
				fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Fatal(err)
				}
				unix.Close(fd)
			}
			events, s := stop()
			var flood uint64
			for _, e := range events {
				if e.Path == file {
					flood++
				}
			}
			// Every event the kernel produced is delivered or counted.
			if s.Seen != s.Delivered+s.Lost() {
				t.Errorf("seen %d != delivered %d + lost %d: %+v", s.Seen, s.Delivered, s.Lost(), s)
			}
			// And what it saw is what the generator did: this process
			// opens nothing else meanwhile.
			if uint64(len(events)) != s.Delivered || flood != s.Delivered || s.Seen != n {
				t.Errorf("generated %d opens; the kernel saw %d, %d were delivered, the consumer read %d, %d of them the generator's",
					n, s.Seen, s.Delivered, len(events), flood)
			}
			tt.check(t, s)
			t.Logf("%d generated: %d delivered to the queue, %d read by the consumer, lost %+v", n, s.Delivered, len(events), s)
		})
	}
}

// TestBurstBound: the kernel refills an idle CPU's bucket after a minute,
// so a burst above a minute's rate is refused before anything loads.
func TestBurstBound(t *testing.T) {
	_, err := Load(Options{Kinds: File, RatePerCPU: 10, BurstPerCPU: 601})
	if err == nil || !strings.Contains(err.Error(), "more than a minute") {
		t.Errorf("burst 601 at 10/s: %v, want it refused", err)
	}
}

// openPTY opens a new pseudo-terminal and returns the kernel's name for its
// terminal side ("pts3", as tty_struct.name has it) and that side, open.
func openPTY(t *testing.T) (string, *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminals here (devpts): %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("pts%d", n), pts
}
