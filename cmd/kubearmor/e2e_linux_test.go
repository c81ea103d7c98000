//go:build linux

package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kubearmor/kubearmor-host/daemon/api/feeder"
	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/daemon/usernames"
	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/apparmor"
	"github.com/kubearmor/kubearmor-host/enforcer/detect"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/systemd"
)

// guestBinary is where internal/vmtest installs the daemon in the guests.
const guestBinary = "/usr/local/bin/kubearmor"

var binary string // built once by TestMain on the host

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if testutils.InGuest() {
		binary = guestBinary
		return testutils.RunWithLeakCheck(m)
	}
	dir, err := os.MkdirTemp("", "kubearmor-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "kubearmor")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build kubearmor: %v\n%s", err, out)
		return 1
	}
	return testutils.RunWithLeakCheck(m)
}

// proc is a running daemon with its outputs split into channels: alerts
// (JSON lines on stdout), log lines (stderr) and sd_notify datagrams.
type proc struct {
	cmd      *exec.Cmd
	alerts   chan record.Alert
	hostLogs chan record.Log
	logs     chan string
	notify   chan string
	api      string // the local API's socket

	mu  sync.Mutex
	all []string // every log line, for failure messages
}

func startDaemon(t testing.TB, policyDir string, args ...string) *proc {
	t.Helper()
	return startWrapped(t, nil, policyDir, args...)
}

// startWrapped starts the daemon under wrapper (a command and its
// arguments that run the rest, such as setpriv), or directly if nil.
func startWrapped(t testing.TB, wrapper []string, policyDir string, args ...string) *proc {
	t.Helper()
	testutils.RequireRoot(t)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{
		alerts:   make(chan record.Alert, 256),
		hostLogs: make(chan record.Log, 1<<16),
		logs:     make(chan string, 1024),
		notify:   make(chan string, 64),
		api:      filepath.Join(t.TempDir(), "run", "kubearmor.sock"),
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			p.notify <- string(buf[:n])
		}
	}()
	base := []string{"--config=", "--policyDir=" + policyDir, "--hostName=e2e-host",
		"--logTarget=stderr", "--alertTarget=stdout", "--logLevel=debug", "--apiSocket=" + p.api}
	argv := append(append(slices.Clone(wrapper), binary), append(base, args...)...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var kind struct{ Type string }
			if json.Unmarshal(sc.Bytes(), &kind) == nil && kind.Type == record.TypeHostLog {
				var l record.Log
				if err := json.Unmarshal(sc.Bytes(), &l); err == nil {
					select {
					case p.hostLogs <- l:
					default: // a test not reading logs does not stall the daemon
					}
					continue
				}
			}
			var a record.Alert
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				p.log("stdout (not an alert): " + sc.Text())
				continue
			}
			p.alerts <- a
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log(sc.Text())
		}
	}()
	t.Cleanup(func() {
		defer conn.Close()
		if p.cmd.ProcessState == nil {
			p.stop(t)
		}
		readers.Wait()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("daemon log:\n%s", strings.Join(p.all, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

func (p *proc) log(line string) {
	p.mu.Lock()
	p.all = append(p.all, line)
	p.mu.Unlock()
	select {
	case p.logs <- line:
	default:
	}
}

// stop sends SIGINT, as Ctrl-C does, and expects a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Errorf("daemon did not exit within 60s of SIGINT")
		<-done
	}
}

// startWait is how long a test waits for the daemon to start or say
// something: the packaged unit's TimeoutStartSec, so a test allows what
// the service manager allows. Under TCG a start takes 7-10 s
// (BenchmarkStartup).
func startWait(t testing.TB) time.Duration {
	t.Helper()
	d, err := systemd.StartTimeout()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (p *proc) waitLog(t testing.TB, parts ...string) string {
	t.Helper()
	wait := startWait(t)
	deadline := time.After(wait)
	for {
		select {
		case l := <-p.logs:
			if containsAll(l, parts) {
				return l
			}
		case <-deadline:
			t.Fatalf("no log line with %q within %v", parts, wait)
		}
	}
}

func (p *proc) waitNotify(t testing.TB, prefix string) string {
	t.Helper()
	wait := startWait(t)
	deadline := time.After(wait)
	for {
		select {
		case m := <-p.notify:
			for _, l := range strings.Split(m, "\n") {
				if strings.HasPrefix(l, prefix) {
					return m
				}
			}
		case <-deadline:
			t.Fatalf("no sd_notify %q within %v", prefix, wait)
		}
	}
}

func (p *proc) nextAlert(t *testing.T) record.Alert {
	t.Helper()
	return p.waitAlert(t, "any alert", func(record.Alert) bool { return true })
}

// waitAlert skips alerts until one satisfies ok.
func (p *proc) waitAlert(t *testing.T, what string, ok func(record.Alert) bool) record.Alert {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case a := <-p.alerts:
			if ok(a) {
				return a
			}
		case <-deadline:
			t.Fatalf("no alert for %s within 10s", what)
			return record.Alert{}
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func writePolicy(t testing.TB, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func hostPolicy(name, spec string) string {
	return "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: " + name + "\nspec:\n" + spec
}

// execErrno runs argv and returns the errno of a failed exec, 0 when the
// program ran.
func execErrno(t *testing.T, argv ...string) syscall.Errno {
	t.Helper()
	err := exec.Command(argv[0], argv[1:]...).Run()
	var errno syscall.Errno
	var exit *exec.ExitError
	switch {
	case err == nil, errors.As(err, &exit):
		return 0
	case errors.As(err, &errno):
		return errno
	}
	t.Fatalf("run %v: %v", argv, err)
	return 0
}

// TestChoosesEnforcerAndExplains starts the daemon as `make run` does: it
// must say which enforcer it chose and why, tell systemd, and exit cleanly
// on Ctrl-C.
func TestChoosesEnforcerAndExplains(t *testing.T) {
	want := "none"
	if detect.Probe(context.Background()).BPFLSM.Status == detect.Supported {
		want = "BPFLSM"
	}
	if testutils.InGuest() && want != "BPFLSM" {
		t.Fatal("the guest kernel should support BPF-LSM")
	}
	p := startDaemon(t, t.TempDir())
	line := p.waitLog(t, "enforcer chosen", "enforcer="+want, "reason=")
	t.Logf("%s", line)
	status := p.waitNotify(t, "READY=1")
	if !strings.Contains(status, "STATUS=") {
		t.Errorf("READY=1 without STATUS=: %q", status)
	}
	p.stop(t)
	p.waitLog(t, "stopping")
}

// TestHostLogs: with visibility on and logs on stdout, running a program,
// opening a file, and a loopback server and client each produce their Log
// record; with visibility none, none come.
func TestHostLogs(t *testing.T) {
	p := startDaemon(t, t.TempDir(), "--hostVisibility=process,file,network", "--hostLogTarget=stdout")
	p.waitNotify(t, "READY=1")
	dir := t.TempDir()
	file := filepath.Join(dir, "observed")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "true")
	testutils.CopyFile(t, "/bin/true", prog, 0o755)
	self, _ := os.Executable()
	wd, _ := os.Getwd()
	wd, _ = filepath.EvalSymlinks(wd)
	// The guests' initramfs has no passwd file: no name there.
	rootName := usernames.New("/etc/passwd").Name(0)
	cmd := exec.Command(prog)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if f, err := os.Open(file); err != nil {
		t.Fatal(err)
	} else {
		f.Close()
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()

	pid := int32(os.Getpid())
	endpoint := fmt.Sprintf("remoteip=127.0.0.1 port=%d protocol=TCP", port)
	wants := map[string]func(record.Log) bool{
		"exec of the program": func(l record.Log) bool {
			return l.Operation == "Process" && l.Resource == prog && l.ProcessName == prog && l.HostPID == int32(cmd.Process.Pid) &&
				l.HostPPID == pid && l.Source == self && l.Data == "syscall=SYS_EXECVE" && l.Cwd == wd && l.UserName == rootName
		},
		"open of the file": func(l record.Log) bool {
			return l.Operation == "File" && l.Resource == file && l.HostPID == pid && l.Source == self &&
				strings.HasPrefix(l.Data, "syscall=SYS_OPEN flags=O_RDONLY|")
		},
		"bind": func(l record.Log) bool {
			return l.Operation == "Network" && l.Data == "syscall=SYS_BIND" && l.HostPID == pid &&
				strings.HasPrefix(l.Resource, fmt.Sprintf("localip=127.0.0.1 port=%d protocol=", port))
		},
		"connect": func(l record.Log) bool {
			return l.Operation == "Network" && l.Data == "syscall=SYS_CONNECT" && l.Resource == endpoint && l.HostPID == pid
		},
		"accept": func(l record.Log) bool {
			return l.Operation == "Network" && l.Data == "syscall=SYS_ACCEPT" && l.HostPID == pid &&
				l.Resource == fmt.Sprintf("remoteip=127.0.0.1 port=%d protocol=TCP", c.LocalAddr().(*net.TCPAddr).Port)
		},
	}
	deadline := time.After(30 * time.Second)
	for len(wants) > 0 {
		select {
		case l := <-p.hostLogs:
			if l.Type != record.TypeHostLog || l.HostName != "e2e-host" || l.Result != record.ResultPassed || l.UpdatedTime == "" {
				continue
			}
			for what, ok := range wants {
				if ok(l) {
					delete(wants, what)
				}
			}
		case <-deadline:
			t.Fatalf("no Log record within 30s for %v", slices.Collect(maps.Keys(wants)))
		}
	}
	p.stop(t)
	p.waitLog(t, "counters", "telemetry.seen=", "telemetry.lost=0")
}

// TestHostLogsOff: visibility none loads no monitor and logs nothing.
func TestHostLogsOff(t *testing.T) {
	p := startDaemon(t, t.TempDir(), "--hostVisibility=none", "--hostLogTarget=stdout")
	p.waitNotify(t, "READY=1")
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Fatal(err)
	}
	// A log would be on stdout within milliseconds; read what came.
	time.Sleep(time.Second)
	p.stop(t)
	select {
	case l := <-p.hostLogs:
		t.Errorf("visibility none, yet a log: %+v", l)
	default:
	}
}

// TestObserveOnly runs with no LSM (as on a host that refuses BPF-LSM):
// exec events from tracepoints are checked by the reference matcher and
// what would have been blocked is alerted as "Audit (Block)".
func TestObserveOnly(t *testing.T) {
	work := t.TempDir()
	target := filepath.Join(work, "bin", "true") // busybox picks its applet by name
	testutils.CopyFile(t, "/bin/busybox", target, 0o755)
	dir := t.TempDir()
	writePolicy(t, dir, "block-target.yaml", hostPolicy("block-target",
		"  severity: 6\n  message: no\n  process:\n    matchPaths:\n    - path: "+target+"\n  action: Block\n"))
	p := startDaemon(t, dir, "--enforcer=none")
	p.waitLog(t, "enforcer chosen", "enforcer=none")
	p.waitNotify(t, "READY=1")
	if errno := execErrno(t, target); errno != 0 {
		t.Fatalf("observe-only blocked an exec: %v", errno)
	}
	a := p.nextAlert(t)
	if a.PolicyName != "block-target" || a.Severity != "6" || a.Action != "Audit (Block)" || a.Result != record.ResultPassed ||
		a.Enforcer != "eBPF Monitor" || a.Resource != target || a.Operation != "Process" || a.HostName != "e2e-host" || a.Message != "no" {
		t.Errorf("alert %+v", a)
	}
}

// TestPolicyLifecycle is the guest's end-to-end check of enforcement: a
// policy file dropped into the directory blocks within a second, a broken
// file never weakens what is in force, fromSource and Audit rules behave,
// and deleting the file lifts the block.
func TestPolicyLifecycle(t *testing.T) {
	testutils.RequireGuest(t)
	dir := t.TempDir()
	p := startDaemon(t, dir)
	p.waitLog(t, "enforcer chosen", "enforcer=BPFLSM")
	p.waitNotify(t, "READY=1")
	if errno := execErrno(t, "/bin/sleep", "0"); errno != 0 {
		t.Fatalf("sleep blocked before any policy: %v", errno)
	}

	// Block within a second of the file appearing.
	blockFile := writePolicy(t, dir, "block-sleep.yaml", hostPolicy("block-sleep",
		"  severity: 5\n  tags: [e2e]\n  process:\n    matchPaths:\n    - path: /bin/sleep\n  action: Block\n"))
	start := time.Now()
	for execErrno(t, "/bin/sleep", "0") != syscall.EACCES {
		if time.Since(start) > time.Second {
			t.Fatalf("sleep still runs %v after the policy was written", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("blocked %v after the policy file was written", time.Since(start).Round(time.Millisecond))
	a := p.nextAlert(t)
	self, _ := os.Executable()
	if a.PolicyName != "block-sleep" || a.Severity != "5" || a.Action != "Block" || a.Result != record.ResultDenied ||
		a.Enforcer != "BPFLSM" || a.ProcessName != "/bin/sleep" || a.Source != self || a.Tags != "e2e" {
		t.Errorf("alert %+v", a)
	}

	// A broken second file is rejected with file and line; the block stays.
	bad := writePolicy(t, dir, "broken.yaml", hostPolicy("broken",
		"  process:\n    matchPaths:\n    - path: bin/true\n      bogus: 1\n  action: Deny\n"))
	p.waitLog(t, "policy file rejected", bad+":10", "bin/true")
	if errno := execErrno(t, "/bin/sleep", "0"); errno != syscall.EACCES {
		t.Errorf("after a broken file, sleep: errno %v, want EACCES", errno)
	}
	// A broken edit of the file in force keeps its last good version.
	writePolicy(t, dir, "block-sleep.yaml", hostPolicy("block-sleep", "  process:\n    matchPaths:\n    - path: /bin/sleep\n  action: Blok\n"))
	p.waitLog(t, "last good version stays in force", blockFile+":9")
	if errno := execErrno(t, "/bin/sleep", "0"); errno != syscall.EACCES {
		t.Errorf("after a broken edit, sleep: errno %v, want EACCES", errno)
	}
	os.Remove(bad)

	// fromSource: /bin/true is blocked only when env (a copy of busybox at
	// a path of its own) runs it. Audit lets /bin/echo run and alerts.
	env := "/e2e/src/env"
	testutils.CopyFile(t, "/bin/busybox", env, 0o755)
	writePolicy(t, dir, "scoped.yaml", hostPolicy("scoped",
		"  process:\n    matchPaths:\n    - path: /bin/true\n      fromSource:\n      - path: "+env+"\n      action: Block\n"+
			"    - path: /bin/echo\n      severity: 3\n      action: Audit\n"))
	p.waitLog(t, "policy set applied", "scoped.yaml")
	if errno := execErrno(t, "/bin/true"); errno != 0 {
		t.Errorf("true from the test: errno %v, want it to run", errno)
	}
	if errno := execErrno(t, env, "/bin/true"); errno != 0 {
		t.Errorf("env itself: errno %v", errno)
	}
	blocked := p.waitAlert(t, "true run by env", func(a record.Alert) bool { return a.Resource == "/bin/true" })
	if blocked.PolicyName != "scoped" || blocked.Source != env || blocked.Action != "Block" {
		t.Errorf("fromSource alert %+v", blocked)
	}
	out, err := exec.Command(env, "/bin/true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("env /bin/true: %v %s, want a permission error", err, out)
	}
	if errno := execErrno(t, "/bin/echo", "hi"); errno != 0 {
		t.Errorf("echo under an Audit rule: errno %v, want it to run", errno)
	}
	audited := p.waitAlert(t, "echo", func(a record.Alert) bool { return a.Resource == "/bin/echo" })
	if audited.PolicyName != "scoped" || audited.Severity != "3" || audited.Action != "Audit" || audited.Result != record.ResultPassed {
		t.Errorf("audit alert %+v", audited)
	}

	// Deleting the file lifts the block within a second.
	os.Remove(blockFile)
	start = time.Now()
	for execErrno(t, "/bin/sleep", "0") != 0 {
		if time.Since(start) > time.Second {
			t.Fatalf("sleep still blocked %v after the policy file was deleted", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSurvivesKill kills the daemon with SIGKILL: the pinned programs keep
// enforcing with no daemon, a new daemon takes over with no gap, and a
// deliberate stop lifts everything.
func TestSurvivesKill(t *testing.T) {
	testutils.RequireGuest(t)
	dir := t.TempDir()
	pins := fmt.Sprintf("/sys/fs/bpf/kubearmor-e2e-%d", os.Getpid())
	writePolicy(t, dir, "block-sleep.yaml", hostPolicy("block-sleep",
		"  process:\n    matchPaths:\n    - path: /bin/sleep\n  action: Block\n"))
	first := startDaemon(t, dir, "--bpfPinPath="+pins)
	first.waitNotify(t, "READY=1")
	if errno := execErrno(t, "/bin/sleep", "0"); errno != syscall.EACCES {
		t.Fatalf("sleep under the first daemon: %v", errno)
	}
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	if errno := execErrno(t, "/bin/sleep", "0"); errno != syscall.EACCES {
		t.Fatalf("sleep with no daemon: %v, want EACCES from the pinned programs", errno)
	}

	// Exec sleep without pause while the next daemon starts and takes over.
	var stop atomic.Bool
	var tries, slipped atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			tries.Add(1)
			if execErrno(t, "/bin/sleep", "0") != syscall.EACCES {
				slipped.Add(1)
			}
			// Leave the daemon time to start: the guest's vCPUs share
			// one host thread.
			time.Sleep(5 * time.Millisecond)
		}
	}()
	second := startDaemon(t, dir, "--bpfPinPath="+pins)
	second.waitLog(t, "took over from pinned programs")
	second.waitNotify(t, "READY=1")
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	<-done
	if slipped.Load() != 0 {
		t.Errorf("%d of %d execs ran during the takeover", slipped.Load(), tries.Load())
	}
	t.Logf("%d execs during the takeover, all denied", tries.Load())

	// The new daemon is in charge: deleting the policy lifts the block.
	os.Remove(filepath.Join(dir, "block-sleep.yaml"))
	second.waitLog(t, "policy set applied")
	if errno := execErrno(t, "/bin/sleep", "0"); errno != 0 {
		t.Errorf("sleep after the policy was deleted: %v", errno)
	}
	second.stop(t)
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		t.Errorf("pins left after a deliberate stop: %v", err)
	}
}

// TestLocalAPI drives the daemon through its local API, as karmor does:
// with logs going nowhere else, a WatchLogs client sees a program run, a
// WatchAlerts client sees its alert, the summary has the loopback server's
// bind point, and the probe names the enforcer, its reason, each policy
// file's status and the counters.
func TestLocalAPI(t *testing.T) {
	work := t.TempDir()
	prog := filepath.Join(work, "bin", "true") // busybox picks its applet by name
	testutils.CopyFile(t, "/bin/busybox", prog, 0o755)
	dir := t.TempDir()
	good := writePolicy(t, dir, "audit-prog.yaml", hostPolicy("audit-prog",
		"  process:\n    matchPaths:\n    - path: "+prog+"\n  action: Audit\n"))
	broken := writePolicy(t, dir, "broken.yaml", hostPolicy("broken", "  process:\n    matchPaths:\n    - path: relative\n  action: Audit\n"))
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := free.Addr().String()
	free.Close()
	p := startDaemon(t, dir, "--hostVisibility=process,file,network", "--hostLogTarget=none", "--metricsAddress="+metricsAddr)
	p.waitNotify(t, "READY=1")
	fi, err := os.Stat(p.api)
	if err != nil {
		t.Fatalf("no API socket: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("API socket mode %v, want 0600", fi.Mode())
	}
	conn, err := grpc.NewClient("unix://"+p.api, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	logs := feeder.NewLogServiceClient(conn)
	logStream, err := logs.WatchLogs(ctx, &feeder.RequestMessage{Filter: "system"})
	if err != nil {
		t.Fatal(err)
	}
	alertStream, err := logs.WatchAlerts(ctx, &feeder.RequestMessage{Filter: "policy"})
	if err != nil {
		t.Fatal(err)
	}
	// A stream is subscribed when its first message reaches the daemon,
	// not when the call returns: wait until the daemon counts both.
	host := hostpb.NewHostClient(conn)
	waitCounter(t, ctx, host, "api", "log_subscribers", 1)
	waitCounter(t, ctx, host, "api", "alert_subscribers", 1)

	cmd := exec.Command(prog)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	for {
		l, err := logStream.Recv()
		if err != nil {
			t.Fatalf("WatchLogs: %v", err)
		}
		if l.Operation == "Process" && l.Resource == prog && l.HostPID == int32(cmd.Process.Pid) && l.Type == record.TypeHostLog &&
			l.HostName == "e2e-host" && l.Result == record.ResultPassed {
			break
		}
	}
	for {
		a, err := alertStream.Recv()
		if err != nil {
			t.Fatalf("WatchAlerts: %v", err)
		}
		if a.Resource == prog {
			if a.PolicyName != "audit-prog" || a.Action != "Audit" || a.Operation != "Process" || a.Type != record.TypeMatchedHostPolicy {
				t.Errorf("alert over the API: %+v", a)
			}
			break
		}
	}

	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // Go listens with MPTCP by default where it can
	ln, err := lc.Listen(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	port := uint32(ln.Addr().(*net.TCPAddr).Port)
	self, _ := os.Executable()
	var bind *hostpb.NetRow
	for bind == nil {
		s, err := host.Summary(ctx, &hostpb.SummaryRequest{Type: "network"})
		if err != nil {
			t.Fatalf("Summary: %v", err)
		}
		if !s.Observing || len(s.Process) != 0 {
			t.Fatalf("Summary(network): observing %v, %d process rows", s.Observing, len(s.Process))
		}
		for _, r := range s.Bind {
			if r.Port == port && r.Address == "127.0.0.1" {
				bind = r
			}
		}
		if bind == nil {
			select {
			case <-ctx.Done():
				t.Fatalf("no bind row for 127.0.0.1:%d: %v", port, s.Bind)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if bind.Protocol != "TCP" || bind.Command != self || bind.Count != 1 || bind.LastSeenUnixNano == 0 {
		t.Errorf("bind row %+v, want TCP by %s, count 1", bind, self)
	}

	pr, err := host.Probe(ctx, &hostpb.ProbeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Enforcer == "" || pr.EnforcerReason == "" || pr.KernelRelease == "" || pr.PolicyDir != dir || pr.Rules != 1 ||
		pr.Postures.GetFile() != "audit" || !slices.Equal(pr.Visibility, []string{"process", "file", "network"}) {
		t.Errorf("probe: %+v", pr)
	}
	states := map[string]string{}
	for _, f := range pr.PolicyFiles {
		states[f.Path] = f.State
		if f.Path == broken && !strings.Contains(f.Error, broken+":") {
			t.Errorf("broken file's error does not name it with its line: %q", f.Error)
		}
	}
	if states[good] != "active" || states[broken] != "rejected" {
		t.Errorf("policy file states %v, want %s active and %s rejected", states, good, broken)
	}
	if seen := pr.Counter("telemetry", "seen"); seen == 0 {
		t.Errorf("probe counters: telemetry seen 0 after a program ran: %v", pr.Counters)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\nkubearmor_telemetry_seen_total ", "# TYPE kubearmor_api_log_subscribers gauge\n", "\nkubearmor_enforcer_denied_total "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	p.stop(t)
	if _, err := os.Stat(p.api); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("API socket left after the daemon stopped: %v", err)
	}
}

// waitCounter polls the probe until a counter reaches want.
func waitCounter(t testing.TB, ctx context.Context, host hostpb.HostClient, stage, name string, want uint64) {
	t.Helper()
	for {
		pr, err := host.Probe(ctx, &hostpb.ProbeRequest{})
		if err != nil {
			t.Fatalf("Probe: %v", err)
		}
		if pr.Counter(stage, name) >= want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("counter %s/%s never reached %d", stage, name, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestReload is ExecReload's command: kubearmor --reload PID returns only
// once the daemon has rescanned, and fails, naming the file, when a policy
// file was rejected.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	// The watcher would apply the files a minute later: what applies them
	// here is the reload.
	p := startDaemon(t, dir, "--enforcer=none", "--reloadDebounce=1m")
	p.waitNotify(t, "READY=1")
	// The watch's first rescan, which would take a file written before it.
	p.waitLog(t, "policy set unchanged", `reason="watch started"`)
	reload := func() (string, error) {
		out, err := exec.Command(binary, "--config=", "--apiSocket="+p.api, "--reload", strconv.Itoa(p.cmd.Process.Pid)).CombinedOutput()
		return string(out), err
	}
	tests := []struct {
		name, file, body string
		wantErr          bool
		want             string
	}{
		{"good file", "good.yaml", hostPolicy("good", "  process:\n    matchPaths:\n    - path: /bin/true\n  action: Block\n"), false, " in force: 1 rules"},
		{"unchanged", "", "", false, " in force: 1 rules"},
		{"broken file", "broken.yaml", hostPolicy("broken", "  process:\n    matchPaths:\n    - path: bin/true\n  action: Block\n"), true,
			filepath.Join(dir, "broken.yaml") + ": rejected: " + filepath.Join(dir, "broken.yaml") + ":8: spec.process.matchPaths[0].path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.file != "" {
				writePolicy(t, dir, tt.file, tt.body)
			}
			// Reloaded at once, before the watcher's debounce.
			out, err := reload()
			if (err != nil) != tt.wantErr || !strings.Contains(out, tt.want) {
				t.Errorf("kubearmor --reload: %v\n%s\nwant error %v and %q", err, out, tt.wantErr, tt.want)
			}
		})
	}
	p.waitLog(t, "policy set applied", "reason=SIGHUP", "rules=1")

	// The directory replaced by a file: the rescan fails as a whole, and
	// so does the reload; the set in force stays.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := reload(); err == nil || !strings.Contains(out, "could not apply the policy directory") || !strings.Contains(out, " in force: 1 rules") {
		t.Errorf("kubearmor --reload with no policy directory: %v\n%s", err, out)
	}

	// No daemon at that socket: an error, at once.
	out, err := exec.Command(binary, "--config=", "--apiSocket="+filepath.Join(t.TempDir(), "none.sock"), "--reload", "1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not running") {
		t.Errorf("--reload without a daemon: %v: %s", err, out)
	}
}

// dynamicProgram is a dynamically linked program the guest carries with its
// loader and libraries (guestFiles in internal/vmtest/suites.go).
const dynamicProgram = "/opt/dyn/head"

// TestAppArmorEnforcer runs the daemon with the AppArmor enforcer (chosen
// by configuration: the guest has BPF-LSM too), once per alert source. A
// policy file dropped in becomes profiles: a shell started afterwards
// cannot open the blocked file, and the denial comes back as an alert
// naming the policy: from the eBPF path, from the audit log, or from both,
// the two alerts of the one denial linked (same incident, the second
// marked Linked) and the denial counted once. Stopping the daemon removes
// the profiles. The loader run as a program (ld.so PROGRAM) cannot run a
// blocked program either.
func TestAppArmorEnforcer(t *testing.T) {
	testutils.RequireGuest(t)
	for _, source := range []enforcer.AlertSource{enforcer.AlertEBPF, enforcer.AlertAudit, enforcer.AlertBoth} {
		t.Run(string(source), func(t *testing.T) {
			dir, work := t.TempDir(), t.TempDir()
			secret, free := filepath.Join(work, "secret"), filepath.Join(work, "free")
			for _, f := range []string{secret, free} {
				if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := startDaemon(t, dir, "--enforcer=apparmor", "--alertSource="+string(source))
			p.waitLog(t, "enforcer chosen", "enforcer=AppArmor")
			p.waitLog(t, "AppArmor alerts", "alertSource="+string(source))
			p.waitNotify(t, "READY=1")
			writePolicy(t, dir, "aa.yaml", hostPolicy("aa-block",
				"  severity: 7\n  file:\n    matchPaths:\n    - path: "+secret+"\n"+
					"  process:\n    matchPaths:\n    - path: "+dynamicProgram+"\n"+
					"  capabilities:\n    matchCapabilities:\n    - capability: chown\n  action: Block\n"))
			p.waitLog(t, "policy set applied", "rules=3")
			paths := []enforcer.AlertSource{source}
			if source == enforcer.AlertBoth {
				paths = []enforcer.AlertSource{enforcer.AlertEBPF, enforcer.AlertAudit}
			}
			// The test process was running before the profiles and stays
			// unconfined; a shell it starts now is confined.
			cat := func() error { return exec.Command("/bin/sh", "-c", "cat "+secret+" >/dev/null").Run() }
			triggers := []struct {
				what, script, resource, operation string
			}{
				{"open", "cat " + secret + " >/dev/null", secret, "File"},
				{"unlink", "rm -f " + secret, secret, "File"},
				// Root's chown: the capability module allows it, the profile not.
				{"chown", "chown 65534 " + free, "CAP_CHOWN", "Capabilities"},
				// The loader run as a program may not map the blocked one.
				{"loader", "/lib64/ld-linux-x86-64.so.2 " + dynamicProgram + " --version", dynamicProgram, "Process"},
			}
			for _, tr := range triggers {
				denied := time.Now()
				if err := exec.Command("/bin/sh", "-c", tr.script).Run(); err == nil {
					t.Fatalf("a new shell's %s was not refused", tr.what)
				}
				var got []record.Alert
				for range paths {
					a := p.waitAlert(t, "the denied "+tr.what, func(a record.Alert) bool { return a.Resource == tr.resource })
					t.Logf("%s: %s alert %v after the denial: incident %d, linked %v", tr.what, a.AlertSource,
						time.Since(denied).Round(time.Millisecond), a.IncidentID, a.Linked)
					if a.PolicyName != "aa-block" || a.Severity != "7" || a.Action != "Block" || a.Result != record.ResultDenied ||
						a.Enforcer != "AppArmor" || a.Operation != tr.operation || a.IncidentID == 0 {
						t.Errorf("alert %+v", a)
					}
					got = append(got, a)
				}
				for i, a := range got {
					if (source != enforcer.AlertBoth && a.AlertSource != string(source)) || a.Linked != (i > 0) {
						t.Errorf("%s: alert %d of %d: source %q, linked %v", tr.what, i+1, len(got), a.AlertSource, a.Linked)
					}
				}
				if len(got) == 2 {
					// The same second, or the next one in either order: the
					// audit record carries the kernel's time of the denial,
					// which can fall just before a second the eBPF alert's
					// time is just after (seen: 27.999 and 28.006).
					a, b := got[0], got[1]
					if a.AlertSource == b.AlertSource || a.IncidentID != b.IncidentID || a.PID != b.PID || a.Operation != b.Operation ||
						max(a.Timestamp, b.Timestamp)-min(a.Timestamp, b.Timestamp) > 1 {
						t.Errorf("%s: the two paths' alerts are not linked:\n%+v\n%+v", tr.what, a, b)
					}
				}
			}
			// Counted once, whatever the number of paths.
			conn, err := grpc.NewClient("unix://"+p.api, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			pr, err := hostpb.NewHostClient(conn).Probe(t.Context(), &hostpb.ProbeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			n := uint64(len(triggers))
			if got := pr.Counter("enforcer", "denied"); got != n {
				t.Errorf("enforcer denied = %d, want %d", got, n)
			}
			if got, want := pr.Counter("enforcer", "linked"), n*uint64(len(paths)-1); got != want {
				t.Errorf("enforcer linked = %d, want %d", got, want)
			}
			for _, path := range paths {
				if got := pr.Counter("alerts_"+string(path), "delivered"); got != n {
					t.Errorf("alerts_%s delivered = %d, want %d", path, got, n)
				}
			}
			p.stop(t)
			if err := cat(); err != nil {
				t.Errorf("after the daemon stopped, the file: %v (profiles left behind)", err)
			}
		})
	}
}

// TestAppArmorSurvivesKill: AppArmor attaches a profile at exec only, so a
// daemon that dies must leave its profiles loaded (else every program
// started under them would run unconfined from then on). After SIGKILL the
// blocked file stays blocked with no daemon; the next daemon adopts the
// profiles and a changed policy replaces them; a dropped fromSource entry's
// profile is retired, not removed; and `kubearmor --cleanup` after a crash
// removes every profile of ours. Then a switch of enforcer each way: a
// BPF-LSM daemon retires the profiles AppArmor left once its own set is in
// force; an AppArmor daemon keeps the pinned programs (AppArmor does not
// confine what already runs) and says so.
func TestAppArmorSurvivesKill(t *testing.T) {
	testutils.RequireGuest(t)
	dir, work := t.TempDir(), t.TempDir()
	secret := filepath.Join(work, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	pins := fmt.Sprintf("/sys/fs/bpf/kubearmor-aa-%d", os.Getpid())
	args := []string{"--enforcer=apparmor", "--bpfPinPath=" + pins}
	cat := func() error { return exec.Command("/bin/sh", "-c", "cat "+secret+" >/dev/null").Run() }
	ours := func() []string {
		names, err := apparmor.Loaded()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		return names
	}
	writePolicy(t, dir, "aa.yaml", hostPolicy("aa-block",
		"  file:\n    matchPaths:\n    - path: "+secret+"\n"+
			"  process:\n    matchPaths:\n    - path: /bin/sleep\n      fromSource:\n      - path: /bin/busybox\n  action: Block\n"))
	first := startDaemon(t, dir, args...)
	first.waitNotify(t, "READY=1")
	if err := cat(); err == nil {
		t.Fatal("under the first daemon a new shell read the blocked file")
	}
	before := ours()
	if len(before) < 3 { // host, parser, one source
		t.Fatalf("profiles loaded: %v, want the host's, the parser's and a source's", before)
	}
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.cmd.Wait()
	if err := cat(); err == nil {
		t.Fatal("with no daemon the blocked file opened: the profiles went with the daemon")
	}
	if now := ours(); !slices.Equal(now, before) {
		t.Errorf("profiles after SIGKILL %v, want %v", now, before)
	}

	// The next daemon adopts them; a policy without the fromSource rule
	// leaves its profile retired (a program attached to it keeps running
	// under the host's rules), not removed.
	second := startDaemon(t, dir, args...)
	second.waitNotify(t, "READY=1")
	writePolicy(t, dir, "aa.yaml", hostPolicy("aa-block",
		"  file:\n    matchPaths:\n    - path: "+secret+"\n  action: Block\n"))
	second.waitLog(t, "policy set applied", "rules=1")
	if err := cat(); err == nil {
		t.Error("under the second daemon a new shell read the blocked file")
	}
	if now := ours(); !slices.Equal(now, before) {
		t.Errorf("profiles under the second daemon %v, want %v (the source's retired, still loaded)", now, before)
	}
	if err := second.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	second.cmd.Wait()

	out, err := exec.Command(binary, "--config=", "--bpfPinPath="+pins, "--cleanup").CombinedOutput()
	if err != nil {
		t.Fatalf("kubearmor --cleanup: %v\n%s", err, out)
	}
	for _, name := range before {
		if !strings.Contains(string(out), "removed AppArmor profile "+name+"\n") {
			t.Errorf("kubearmor --cleanup did not say it removed %s:\n%s", name, out)
		}
	}
	if now := ours(); len(now) != 0 {
		t.Errorf("profiles after --cleanup: %v", now)
	}
	if err := cat(); err != nil {
		t.Errorf("after --cleanup the file: %v", err)
	}

	// A switch of enforcer: the next daemon's enforcer retires what the
	// other one left, once its own set is in force, and the file stays
	// blocked throughout.
	third := startDaemon(t, dir, args...)
	third.waitNotify(t, "READY=1")
	third.cmd.Process.Kill()
	third.cmd.Wait()
	lsm := startDaemon(t, dir, "--enforcer=bpflsm", "--bpfPinPath="+pins)
	lsm.waitLog(t, "removed the AppArmor profile a previous daemon left")
	lsm.waitNotify(t, "READY=1")
	if now := ours(); len(now) != 0 {
		t.Errorf("profiles under the BPF-LSM daemon: %v", now)
	}
	if err := cat(); err == nil {
		t.Error("under the BPF-LSM daemon a new shell read the blocked file")
	}
	lsm.cmd.Process.Kill()
	lsm.cmd.Wait()
	if _, err := os.Stat(pins); err != nil {
		t.Fatalf("the BPF-LSM daemon's pins after SIGKILL: %v", err)
	}
	// Back to AppArmor: the pinned programs stay (AppArmor does not
	// confine what already runs), said, until --cleanup.
	back := startDaemon(t, dir, args...)
	back.waitLog(t, "pinned BPF-LSM programs keep enforcing")
	back.waitNotify(t, "READY=1")
	if _, err := os.Stat(pins); err != nil {
		t.Errorf("pins under the AppArmor daemon: %v, want them kept", err)
	}
	if err := cat(); err == nil {
		t.Error("back under AppArmor a new shell read the blocked file")
	}
	back.stop(t)
	if now := ours(); len(now) != 0 {
		t.Errorf("profiles after a deliberate stop: %v", now)
	}
	if out, err := exec.Command(binary, "--config=", "--bpfPinPath="+pins, "--cleanup").CombinedOutput(); err != nil {
		t.Fatalf("kubearmor --cleanup: %v\n%s", err, out)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pins after --cleanup: %v", err)
	}
	// The links go with their pins; the kernel releases them a moment
	// later (deferred work).
	for deadline := time.Now().Add(5 * time.Second); cat() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("5 s after --cleanup the BPF-LSM programs still deny")
		}
	}
}
