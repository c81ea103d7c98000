//go:build linux

package bpflsm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/detect"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// vmUniverse keeps sources and exec targets apart: a source must be a copy
// of this test binary (it runs an exec server), a target a copy of busybox.
var vmUniverse = universe{
	dirs:    []string{"/", "/a/", "/a/b/", "/a/b/c/", "/bin/", "/src/"},
	files:   []string{"/a/x", "/a/b/x", "/a/b/y", "/a/bx", "/a/b/c/x", "/a/b/c/d/x", "/bin/x", "/z/x", "/src/t"},
	names:   []string{"x", "y"},
	sources: []string{"/src/s1", "/src/s2", "/src/", "/"},
	exes:    []string{"/src/s1", "/src/s2", "/other/exe"},
	kinds:   []policy.Kind{policy.KindProcess},
}

// execServerEnv makes the test binary an exec server (see TestMain): it
// reads paths on stdin, forks and execs each, and answers the errno.
const execServerEnv = "KUBEARMOR_TEST_EXEC_SERVER"

func runExecServer() int {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		path := in.Text()
		errno := 0
		pid, err := syscall.ForkExec(path, []string{"true"}, &syscall.ProcAttr{Env: []string{}})
		if err != nil {
			var e syscall.Errno
			if !errors.As(err, &e) {
				fmt.Fprintf(os.Stderr, "exec server: %v\n", err)
				return 1
			}
			errno = int(e)
		} else {
			var ws syscall.WaitStatus
			if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
				fmt.Fprintf(os.Stderr, "exec server: wait: %v\n", err)
				return 1
			}
		}
		fmt.Println(errno)
	}
	return 0
}

type execServer struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startExecServer(t *testing.T, path string) *execServer {
	t.Helper()
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), execServerEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start exec server %s: %v", path, err)
	}
	s := &execServer{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
	})
	return s
}

// exec asks the server to exec path and returns the errno (0 on success).
func (s *execServer) exec(t *testing.T, path string) syscall.Errno {
	t.Helper()
	if _, err := fmt.Fprintln(s.in, path); err != nil {
		t.Fatalf("exec server: %v", err)
	}
	if !s.out.Scan() {
		t.Fatalf("exec server %s died: %v", s.cmd.Path, s.out.Err())
	}
	n, err := strconv.Atoi(s.out.Text())
	if err != nil {
		t.Fatalf("exec server answered %q", s.out.Text())
	}
	return syscall.Errno(n)
}

// guestTree builds the universe under root on its own tmpfs, with a second
// tmpfs mounted at root/a/b so that paths cross mounts, and starts one exec
// server per executable.
func guestTree(t *testing.T, u universe, root string) map[string]*execServer {
	t.Helper()
	for _, m := range []string{root, root + "/a/b"} {
		if err := os.MkdirAll(m, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", m, "tmpfs", 0, "size=256m"); err != nil {
			t.Fatalf("mount tmpfs on %s: %v", m, err)
		}
		t.Cleanup(func() { unix.Unmount(m, unix.MNT_DETACH) })
	}
	for _, f := range u.files {
		testutils.CopyFile(t, "/bin/busybox", root+f, 0o755)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	servers := map[string]*execServer{}
	for _, e := range u.exes {
		testutils.CopyFile(t, self, root+e, 0o755)
		servers[root+e] = startExecServer(t, root+e)
	}
	return servers
}

func loadEnforcer(t *testing.T) (*Enforcer, <-chan enforcer.Event) {
	t.Helper()
	testutils.RequireGuest(t)
	testutils.RequireRoot(t)
	rep := detect.Probe(context.Background())
	if rep.BPFLSM.Status != detect.Supported {
		t.Fatalf("BPF-LSM is not usable in the guest: %s", rep.BPFLSM.Reason)
	}
	e, err := Load(Options{})
	if err != nil {
		t.Fatalf("load enforcer: %v", err)
	}
	events := make(chan enforcer.Event, 4096)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, events) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("event reader: %v", err)
		}
		if err := e.Close(); err != nil {
			t.Errorf("close enforcer: %v", err)
		}
	})
	return e, events
}

func nextEvent(t *testing.T, events <-chan enforcer.Event) enforcer.Event {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no alert event within 10s")
	}
	return enforcer.Event{}
}

// TestEnforceExecDifferential execs generated targets for real under
// generated rule sets, and holds each outcome and each alert against the
// reference matcher.
func TestEnforceExecDifferential(t *testing.T) {
	e, events := loadEnforcer(t)
	const root = "/kat"
	servers := guestTree(t, vmUniverse, root)
	empty, _ := policy.NewSet(1, policy.Postures{File: policy.PostureAudit}, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	const sets, queries = 60, 20
	seen := map[match.Verdict]int{}
	for i := range sets {
		set := vmUniverse.randomSet(rng, uint64(i+2), root)
		if err := e.Apply(set); err != nil {
			t.Fatalf("apply set %d: %v", i, err)
		}
		m := match.New(set)
		for range queries {
			_, s, o := vmUniverse.randomQuery(rng, root)
			if err := os.Chown(o.Path, int(o.OwnerUID), 0); err != nil {
				t.Fatal(err)
			}
			want := m.Decide(match.OpExec, s, o)
			seen[want.Verdict]++
			errno := servers[s.Exe].exec(t, o.Path)
			if denied := errno == syscall.EACCES; denied != want.Verdict.Denied() || (errno != 0 && !denied) {
				t.Fatalf("set %d: exec %s by %s (owner uid %d): errno %v, matcher %v\nrules:\n%s",
					i, o.Path, s.Exe, o.OwnerUID, errno, want, dumpRules(set))
			}
			if !want.Verdict.Alerted() {
				continue
			}
			ev := nextEvent(t, events)
			if ev.Verdict != want.Verdict || ev.RuleID != want.RuleID || ev.Path != o.Path || ev.Exe != s.Exe ||
				ev.Version != set.Version() || ev.Op != match.OpExec {
				t.Fatalf("set %d: exec %s by %s: alert %+v, want verdict %v rule %d version %d\nrules:\n%s",
					i, o.Path, s.Exe, ev, want.Verdict, want.RuleID, set.Version(), dumpRules(set))
			}
		}
	}
	if err := e.Apply(empty); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		t.Fatalf("unexpected alert %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
	st := e.Stats()
	if st.AlertsLost != 0 || st.Undelivered != 0 || st.Malformed != 0 {
		t.Errorf("events lost: %+v", st)
	}
	t.Logf("%d real execs agree with the matcher: %v; kernel counters %+v", sets*queries, seen, st)
}

// TestPathResolution checks the kernel's path walk on deep and long paths,
// across mounts, through symlinks and at the length limit.
func TestPathResolution(t *testing.T) {
	e, events := loadEnforcer(t)
	const root = "/kapath"
	u := universe{exes: []string{"/src/s1"}}
	servers := guestTree(t, u, root)
	srv := servers[root+"/src/s1"]

	deep := root + strings.Repeat("/d", 300) + "/x"                                       // 300 levels
	long := root + "/" + strings.Repeat("n", 250) + "/" + strings.Repeat("m", 250) + "/x" // long names
	link := root + "/link"                                                                // symlink to deep
	for _, p := range []string{deep, long} {
		testutils.CopyFile(t, "/bin/busybox", p, 0o755)
	}
	if err := os.Symlink(deep, link); err != nil {
		t.Fatal(err)
	}
	rules := []policy.Rule{
		{Kind: policy.KindProcess, Action: policy.ActionAudit, Match: policy.MatchPath, Path: deep},
		{Kind: policy.KindProcess, Action: policy.ActionBlock, Match: policy.MatchDir, Path: root + "/" + strings.Repeat("n", 250) + "/", Recursive: true},
	}
	set := setOf(t, 2, rules...)
	if err := e.Apply(set); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		exec, path string
		errno      syscall.Errno
		rule       uint32
	}{
		{deep, deep, 0, 1},
		{link, deep, 0, 1}, // the kernel decides on the file, not the link
		{long, long, syscall.EACCES, 2},
	} {
		if got := srv.exec(t, tc.exec); got != tc.errno {
			t.Errorf("exec %s: errno %v, want %v", tc.exec, got, tc.errno)
		}
		ev := nextEvent(t, events)
		if ev.Path != tc.path || ev.RuleID != tc.rule || ev.Truncated {
			t.Errorf("exec %s: alert path %q rule %d truncated %v, want %q rule %d", tc.exec, ev.Path, ev.RuleID, ev.Truncated, tc.path, tc.rule)
		}
	}
}

func setOf(t testing.TB, version uint64, rules ...policy.Rule) *policy.Set {
	t.Helper()
	doc := &policy.Document{File: "test.yaml", Line: 1, Name: "test"}
	for i, r := range rules {
		r.Policy = "test"
		r.Origin = policy.Origin{File: "test.yaml", Line: i + 1, Field: fmt.Sprintf("rule[%d]", i)}
		if r.Severity == 0 {
			r.Severity = 1
		}
		doc.Rules = append(doc.Rules, r)
	}
	set, err := policy.NewSet(version, policy.Postures{File: policy.PostureAudit, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}, []*policy.Document{doc})
	if err != nil {
		t.Fatal(err)
	}
	return set
}
