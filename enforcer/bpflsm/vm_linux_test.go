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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
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
// reads command lines on stdin (the program, then its arguments, separated
// by tabs), forks and runs each with /dev/null as its standard files, and
// answers the exec's errno (0 on success) and the exit status.
const execServerEnv = "KUBEARMOR_TEST_EXEC_SERVER"

// execServerNSEnv ("root<TAB>alt") makes an exec server that was started
// in a mount namespace of its own bind-mount root at alt there and run
// itself again under its name below alt: a process that reaches its own
// program, and every program it runs, under another name.
const execServerNSEnv = "KUBEARMOR_TEST_EXEC_NS"

func runExecServer() int {
	if ns := os.Getenv(execServerNSEnv); ns != "" {
		root, alt, _ := strings.Cut(ns, "\t")
		if !strings.HasPrefix(os.Args[0], alt+"/") {
			if err := enterOtherName(root, alt); err != nil {
				fmt.Fprintf(os.Stderr, "exec server: %v\n", err)
				return 1
			}
		}
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "exec server: %v\n", err)
		return 1
	}
	files := []uintptr{null.Fd(), null.Fd(), null.Fd()}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		argv := strings.Split(in.Text(), "\t")
		errno, status := 0, 0
		args := append([]string{"true"}, argv[1:]...)
		if len(argv) > 1 {
			args = argv
		}
		pid, err := syscall.ForkExec(argv[0], args, &syscall.ProcAttr{Env: []string{}, Files: files})
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
			status = ws.ExitStatus()
		}
		fmt.Println(errno, status)
	}
	return 0
}

// enterOtherName makes root visible at alt in the server's own mount
// namespace and execs the server again from there.
func enterOtherName(root, alt string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount(root, alt, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s at %s: %w", root, alt, err)
	}
	rest, ok := strings.CutPrefix(os.Args[0], root+"/")
	if !ok {
		return fmt.Errorf("%s is not below %s", os.Args[0], root)
	}
	self := alt + "/" + rest
	return syscall.Exec(self, append([]string{self}, os.Args[1:]...), os.Environ())
}

type execServer struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startExecServer runs the exec server at path; with alt, in a mount
// namespace of its own where root is also at alt (execServerNSEnv).
func startExecServer(t *testing.T, path, root, alt string) *execServer {
	t.Helper()
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), execServerEnv+"=1")
	if alt != "" {
		cmd.Env = append(cmd.Env, execServerNSEnv+"="+root+"\t"+alt)
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	}
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
	errno, _ := s.run(t, path)
	return errno
}

// run asks the server to run argv (the program, then its arguments) and
// returns the exec's errno and the exit status.
func (s *execServer) run(t *testing.T, argv ...string) (syscall.Errno, int) {
	t.Helper()
	if _, err := fmt.Fprintln(s.in, strings.Join(argv, "\t")); err != nil {
		t.Fatalf("exec server: %v", err)
	}
	if !s.out.Scan() {
		t.Fatalf("exec server %s died: %v", s.cmd.Path, s.out.Err())
	}
	var errno, status int
	if _, err := fmt.Sscan(s.out.Text(), &errno, &status); err != nil {
		t.Fatalf("exec server answered %q: %v", s.out.Text(), err)
	}
	return syscall.Errno(errno), status
}

// guestTree builds the universe under root on its own tmpfs, with a second
// tmpfs mounted at root/a/b so that paths cross mounts: every file a copy of
// target, and one exec server per executable. With alt, each executable also
// has a server in a mount namespace of its own that reaches root at alt
// (others, by the executable's path under root).
func guestTree(t *testing.T, u universe, root, target, alt string) (servers, others map[string]*execServer) {
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
		testutils.CopyFile(t, target, root+f, 0o755)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if alt != "" {
		if err := os.MkdirAll(alt, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	servers, others = map[string]*execServer{}, map[string]*execServer{}
	for _, e := range u.exes {
		testutils.CopyFile(t, self, root+e, 0o755)
		servers[root+e] = startExecServer(t, root+e, "", "")
		if alt != "" {
			others[root+e] = startExecServer(t, root+e, root, alt)
		}
	}
	return servers, others
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
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) { // the whole log: the error keeps its last lines
			for _, l := range ve.Log {
				t.Log(l)
			}
		}
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

// execWay is how a generated exec reaches its target.
type execWay int

const (
	wayDirect    execWay = iota // execve of the target's host path
	wayOtherName                // from a mount namespace where the target, and the caller, are under another name
	wayLoader                   // the dynamic loader run with the target as its program
)

func (w execWay) String() string {
	return [...]string{"exec", "exec by another name", "exec through the loader"}[w]
}

// TestEnforceExecDifferential runs generated targets for real under
// generated rule sets, directly, from a mount namespace that shows them
// under another name, and through the dynamic loader, and holds each
// outcome and each alert against the reference matcher.
func TestEnforceExecDifferential(t *testing.T) {
	e, events := loadEnforcer(t)
	const root, alt = "/kat", "/kat-other"
	servers, others := guestTree(t, vmUniverse, root, dynamicProgram, alt)
	loader := loaderPath(t)
	// The kernel learns the loader as it maps it for a dynamic program.
	if out, err := exec.Command(dynamicProgram, "--version").CombinedOutput(); err != nil {
		t.Fatalf("%s --version: %v\n%s", dynamicProgram, err, out)
	}
	empty, _ := policy.NewSet(1, policy.Postures{File: policy.PostureAudit}, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	const sets, queries = 60, 20
	seen := map[string]int{}
	for i := range sets {
		set := vmUniverse.randomSet(rng, uint64(i+2), root)
		if err := e.Apply(set); err != nil {
			t.Fatalf("apply set %d: %v", i, err)
		}
		m := match.New(set)
		for range queries {
			_, s, o := vmUniverse.randomQuery(rng, root)
			way := execWay(rng.IntN(3))
			if err := os.Chown(o.Path, int(o.OwnerUID), 0); err != nil {
				t.Fatal(err)
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("set %d: %s of %s by %s (owner uid %d): %s\nrules:\n%s", i, way, o.Path, s.Exe, o.OwnerUID,
					fmt.Sprintf(format, args...), dumpRules(set))
			}
			// expect checks the alert of a decision, if it alerts.
			expect := func(want match.Decision, path, exe string, loaded bool) {
				t.Helper()
				if !want.Verdict.Alerted() {
					return
				}
				ev := nextEvent(t, events)
				if ev.Verdict != want.Verdict || ev.RuleID != want.RuleID || ev.Path != path || ev.Exe != exe ||
					ev.Version != set.Version() || ev.Op != match.OpExec || ev.Loaded != loaded {
					fail("alert %+v, want verdict %v rule %d on %s by %s (loaded %v)", ev, want.Verdict, want.RuleID, path, exe, loaded)
				}
			}
			var errno syscall.Errno
			var status int
			switch way {
			case wayDirect:
				errno, status = servers[s.Exe].run(t, o.Path)
			case wayOtherName:
				errno, status = others[s.Exe].run(t, alt+strings.TrimPrefix(o.Path, root))
			case wayLoader:
				errno, status = servers[s.Exe].run(t, loader, o.Path)
			}
			seen[way.String()]++
			want := m.Decide(match.OpExec, s, o)
			if way == wayLoader {
				// The loader's own exec, then the program's mapping by a
				// process that is the loader until then.
				first := m.Decide(match.OpExec, s, match.Object{Path: loader})
				if denied := errno == syscall.EACCES; denied != first.Verdict.Denied() || (errno != 0 && !denied) {
					fail("errno %v, matcher on the loader %v", errno, first)
				}
				expect(first, loader, s.Exe, false)
				if first.Verdict.Denied() {
					seen["loader refused"]++
					continue
				}
				want = m.Decide(match.OpExec, match.Subject{Exe: loader}, o)
				if refused := status == 127; refused != want.Verdict.Denied() || (status != 0 && !refused) {
					fail("exit status %d, matcher %v", status, want)
				}
				expect(want, o.Path, loader, true)
				seen[want.Verdict.String()]++
				continue
			}
			if denied := errno == syscall.EACCES; denied != want.Verdict.Denied() || (errno != 0 && !denied) || status != 0 {
				fail("errno %v status %d, matcher %v", errno, status, want)
			}
			expect(want, o.Path, s.Exe, false)
			seen[want.Verdict.String()]++
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
	servers, _ := guestTree(t, u, root, "/bin/busybox", "")
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
