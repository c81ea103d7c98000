package reader

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2"
	"github.com/elastic/go-libaudit/v2/auparse"
	"github.com/elastic/go-libaudit/v2/rule"
	"github.com/elastic/go-libaudit/v2/rule/flags"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// The test binary is also the helper process the tests start: holderEnv
// makes it hold the unicast registration until killed (see
// TestUnicastRefusedWhenHeld), readEnv open a file readCountEnv times.
const (
	holderEnv    = "KUBEARMOR_AUDIT_TEST_HOLDER"
	readEnv      = "KUBEARMOR_AUDIT_TEST_READ"
	readCountEnv = "KUBEARMOR_AUDIT_TEST_READ_COUNT"
)

func TestMain(m *testing.M) {
	if file := os.Getenv(readEnv); file != "" {
		var n int
		fmt.Sscan(os.Getenv(readCountEnv), &n)
		for range n {
			f, err := os.Open(file)
			if err != nil {
				fmt.Println(err)
				os.Exit(1)
			}
			f.Close()
		}
		return
	}
	if os.Getenv(holderEnv) == "1" {
		r, err := Open(Options{Unicast: true})
		if err != nil {
			fmt.Println("holder:", err)
			os.Exit(1)
		}
		defer r.Close()
		fmt.Println("registered")
		time.Sleep(time.Minute)
		return
	}
	os.Exit(m.Run())
}

// watched sets the host up for a test: audit enabled (as it was after),
// a watch rule on a new file with a key of its own (removed after). It
// returns the file and the key.
func watched(t *testing.T) (string, string) {
	t.Helper()
	testutils.RequireRoot(t)
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Skipf("no audit netlink here: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	st, err := c.GetStatus()
	if err != nil {
		t.Fatalf("audit status: %v", err)
	}
	if st.Enabled == 2 {
		t.Skip("audit configuration is immutable (-e 2) until reboot")
	}
	if st.Enabled == 0 {
		if err := c.SetEnabled(true, libaudit.WaitForReply); err != nil {
			t.Fatalf("enable audit: %v", err)
		}
		t.Cleanup(func() { c.SetEnabled(false, libaudit.WaitForReply) })
	}
	file := filepath.Join(t.TempDir(), "watched")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("kubearmor-test-%d", time.Now().UnixNano())
	r, err := flags.Parse(fmt.Sprintf("-w %s -p r -k %s", file, key))
	if err != nil {
		t.Fatal(err)
	}
	wire, err := rule.Build(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddRule(wire); err != nil {
		t.Fatalf("add audit rule: %v", err)
	}
	t.Cleanup(func() {
		if err := c.DeleteRule(wire); err != nil {
			t.Errorf("delete audit rule: %v", err)
		}
	})
	return file, key
}

// reads opens file n times, in a new process: the kernel audits the
// system calls only of tasks forked after audit was enabled.
func reads(t *testing.T, file string, n int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), readEnv+"="+file, fmt.Sprintf("%s=%d", readCountEnv, n))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reader process: %v: %s", err, out)
	}
}

// collector runs r and keeps the events with key.
type collector struct {
	mu     sync.Mutex
	events []Event
	done   chan error
	cancel context.CancelFunc
}

func collect(t *testing.T, r *Reader, key string) *collector {
	ctx, cancel := context.WithCancel(t.Context())
	c := &collector{done: make(chan error, 1), cancel: cancel}
	events := make(chan Event, 1<<14)
	go func() { c.done <- r.Run(ctx, events) }()
	go func() {
		for e := range events {
			if hasKey(e, key) {
				c.mu.Lock()
				c.events = append(c.events, e)
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-c.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		close(events)
	})
	return c
}

// wait returns the events once done says they are enough, or after 10 s.
func (c *collector) wait(done func([]Event) bool) []Event {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]Event(nil), c.events...)
		c.mu.Unlock()
		if done(got) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasKey(e Event, key string) bool {
	for _, m := range e.Messages {
		if m.RecordType == auparse.AUDIT_SYSCALL && strings.Contains(m.RawData, `key="`+key+`"`) {
			return true
		}
	}
	return false
}

// TestReceive: every open of the watched file arrives as one event, its
// SYSCALL and PATH records together, with nothing counted lost.
func TestReceive(t *testing.T) {
	for _, unicast := range []bool{false, true} {
		t.Run(map[bool]string{false: "multicast", true: "unicast"}[unicast], func(t *testing.T) {
			file, key := watched(t)
			r, err := Open(Options{Unicast: unicast})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c := collect(t, r, key)
			reads(t, file, 20)
			got := c.wait(func(e []Event) bool { return len(e) >= 20 })
			if len(got) != 20 {
				t.Fatalf("%d events with key %s, want 20; stats %+v", len(got), key, r.Stats())
			}
			e := got[0]
			var types []string
			for _, m := range e.Messages {
				types = append(types, m.RecordType.String())
				if m.Sequence != e.Serial {
					t.Errorf("record %s has serial %d in event %d", m.RecordType, m.Sequence, e.Serial)
				}
			}
			if joined := strings.Join(types, " "); !strings.Contains(joined, "SYSCALL") || !strings.Contains(joined, "PATH") {
				t.Errorf("event records %s, want SYSCALL and PATH", joined)
			}
			if st := r.Stats(); st.Gaps != 0 || st.NoBufs != 0 || st.Malformed != 0 || st.Undelivered != 0 {
				t.Errorf("losses counted on a quiet read: %+v", st)
			}
			ks, err := r.Status()
			if err != nil || ks.Enabled != 1 {
				t.Errorf("kernel status %+v, %v", ks, err)
			}
			if unicast && ks.PID != uint32(os.Getpid()) {
				t.Errorf("registered audit PID %d, want this process %d", ks.PID, os.Getpid())
			}
		})
	}
}

// TestOverflow lets the socket overflow: records are generated while the
// reader does not read. The reader reports ENOBUFS, and the events that
// were dropped show up as a gap in the serial numbers once the next one
// arrives: every event is either delivered or counted.
func TestOverflow(t *testing.T) {
	file, key := watched(t)
	r, err := Open(Options{ReceiveBuffer: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const n = 5000
	reads(t, file, n) // nobody reads: the socket fills up and drops
	c := collect(t, r, key)
	time.Sleep(200 * time.Millisecond) // what was queued is read
	reads(t, file, 1)                  // its serial shows the gap
	got := c.wait(func(e []Event) bool { return uint64(len(e))+r.Stats().Gaps >= n+1 })
	st := r.Stats()
	t.Logf("generated %d, delivered %d, stats %+v", n+1, len(got), st)
	if st.NoBufs == 0 {
		t.Error("no ENOBUFS counted, though the socket overflowed")
	}
	if st.Gaps == 0 {
		t.Error("no gap counted, though events were dropped")
	}
	// Other events on the host (the rule change, anyone's) may add to the
	// gaps, never take away.
	if uint64(len(got))+st.Gaps < n+1 {
		t.Errorf("delivered %d + counted lost %d < generated %d: a loss went uncounted", len(got), st.Gaps, n+1)
	}
	if len(got) == 0 || got[len(got)-1].Serial < got[0].Serial {
		t.Errorf("events out of order or none: %d", len(got))
	}
}

// TestUnicastRefusedWhenHeld: another live process holds the audit
// registration (as auditd does): unicast is refused, naming it, and the
// holder keeps it.
func TestUnicastRefusedWhenHeld(t *testing.T) {
	watched(t)
	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), holderEnv+"=1")
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	line := make([]byte, 64)
	if n, _ := out.Read(line); !strings.HasPrefix(string(line[:n]), "registered") {
		t.Fatalf("holder: %q", line[:n])
	}
	_, err = Open(Options{Unicast: true})
	want := fmt.Sprintf("process %d (%s) is the registered audit daemon", holder.Process.Pid, filepath.Base(os.Args[0])[:min(15, len(filepath.Base(os.Args[0])))])
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open(unicast) with a holder: %v, want %q", err, want)
	}
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.GetStatus(); err != nil || st.PID != uint32(holder.Process.Pid) {
		t.Errorf("registered PID %d (%v), want the holder's %d", st.PID, err, holder.Process.Pid)
	}
}
