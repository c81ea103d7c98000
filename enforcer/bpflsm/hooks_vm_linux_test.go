//go:build linux

package bpflsm

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
)

// hookRoot holds the files the hook tests act on, on a tmpfs of its own.
const hookRoot = "/kahook"

// parseSet parses a policy whose spec body is spec.
func parseSet(t *testing.T, version uint64, postures policy.Postures, spec string) *policy.Set {
	t.Helper()
	y := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: hook-test\nspec:\n" + spec
	docs, err := policy.Parse("hook-test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	set, err := policy.NewSet(version, postures, docs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if err == nil || !errors.As(err, &e) {
		return 0
	}
	return e
}

func openFile(path string, flags int) syscall.Errno {
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o644)
	if err == nil {
		unix.Close(fd)
	}
	return errnoOf(err)
}

// runAs runs a busybox applet from a copy of busybox at exe, so that the
// subject is exe, and returns whether it failed with "Permission denied".
func runAs(t *testing.T, exe string, args ...string) syscall.Errno {
	t.Helper()
	cmd := exec.Command(exe, args...)
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		return 0
	case strings.Contains(string(out), "Permission denied"):
		return syscall.EACCES
	case strings.Contains(string(out), "Operation not permitted"):
		return syscall.EPERM
	}
	t.Fatalf("%s %v: %v\n%s", exe, args, err, out)
	return 0
}

type hookCase struct {
	name     string
	postures policy.Postures // zero: all audit
	spec     string          // the policy's spec body; paths use ROOT
	setup    func(t *testing.T)
	act      func(t *testing.T) syscall.Errno
	errno    syscall.Errno
	// The alert expected, or none if Operation is "".
	operation, action, result, resource string
}

// TestHooks checks each hook for real: the syscall's result and the alert's
// policy, operation, action and result.
func TestHooks(t *testing.T) {
	e, events := loadEnforcer(t)
	for _, m := range []string{hookRoot} {
		if err := os.MkdirAll(m, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", m, "tmpfs", 0, "size=64m"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(m, unix.MNT_DETACH) })
	}
	r := func(p string) string { return hookRoot + p }
	// busybox copies at paths of their own: subjects for fromSource (an
	// applet is picked by the base name).
	for _, name := range []string{"/src/cat", "/src/ls", "/src/x/sh", "/src/nc"} {
		testutils.CopyFile(t, "/bin/busybox", r(name), 0o755)
	}
	write := func(t *testing.T, p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	audit := policy.Postures{File: policy.PostureAudit, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}
	block := policy.Postures{File: policy.PostureBlock, Network: policy.PostureBlock, Capabilities: policy.PostureBlock}
	denied, passed := record.ResultDenied, record.ResultPassed

	// Sockets made before a rule is in force, to test the later hooks.
	var listener *net.TCPListener
	var pending *net.TCPConn
	var preSocket int

	tests := []hookCase{
		{name: "file_open read, Block", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/secret\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/f/secret")) },
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/f/secret"), unix.O_RDONLY) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/f/secret")},
		{name: "file_open, Audit lets it through", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/watched\n  action: Audit\n",
			setup:     func(t *testing.T) { write(t, r("/f/watched")) },
			act:       func(t *testing.T) syscall.Errno { return openFile(r("/f/watched"), unix.O_RDONLY) },
			operation: "File", action: "Audit", result: passed, resource: r("/f/watched")},
		{name: "readOnly: reading passes", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/ro\n      readOnly: true\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/f/ro")) },
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/f/ro"), unix.O_RDONLY) }},
		{name: "readOnly: writing is refused", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/ro\n      readOnly: true\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/f/ro"), unix.O_WRONLY) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/f/ro")},
		{name: "readOnly: appending is refused", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/ro\n      readOnly: true\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/f/ro"), unix.O_WRONLY|unix.O_APPEND) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/f/ro")},
		{name: "ownerOnly: another user's file is refused", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/theirs\n      ownerOnly: true\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/f/theirs")); os.Chown(r("/f/theirs"), 1000, 1000) },
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/f/theirs"), unix.O_RDONLY) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/f/theirs")},
		{name: "ownerOnly: the owner's own file passes", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/mine\n      ownerOnly: true\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/f/mine")) },
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/f/mine"), unix.O_RDONLY) }},
		{name: "matchDirectories recursive, at depth", spec: "  file:\n    matchDirectories:\n    - dir: ROOT/d/\n      recursive: true\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/d/a/b/c/deep")) },
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/d/a/b/c/deep"), unix.O_RDONLY) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/d/a/b/c/deep")},
		{name: "matchDirectories flat: a grandchild passes", spec: "  file:\n    matchDirectories:\n    - dir: ROOT/flat/\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/flat/sub/x")) },
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/flat/sub/x"), unix.O_RDONLY) }},
		{name: "fromSource: only the named program is refused", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/src\n      fromSource:\n      - path: ROOT/src/cat\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/f/src")) },
			act: func(t *testing.T) syscall.Errno {
				if errno := openFile(r("/f/src"), unix.O_RDONLY); errno != 0 {
					t.Errorf("the test itself: %v", errno)
				}
				return runAs(t, r("/src/cat"), r("/f/src"))
			},
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/f/src")},
		{name: "fromSource dir: programs directly in it are refused, deeper ones not", spec: "  file:\n    matchPaths:\n    - path: ROOT/f/dsrc\n      fromSource:\n      - dir: ROOT/src/\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/f/dsrc")) },
			act: func(t *testing.T) syscall.Errno {
				if errno := runAs(t, r("/src/x/sh"), "-c", "read l < "+r("/f/dsrc")); errno != 0 {
					t.Errorf("a shell below the directory, not in it: %v", errno)
				}
				return runAs(t, r("/src/cat"), r("/f/dsrc"))
			},
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/f/dsrc")},
		{name: "file posture: a source's allow-list", postures: block,
			spec:  "  file:\n    matchDirectories:\n    - dir: ROOT/ok/\n      fromSource:\n      - path: ROOT/src/ls\n  action: Allow\n",
			setup: func(t *testing.T) { write(t, r("/ok/x")) },
			act: func(t *testing.T) syscall.Errno {
				if errno := runAs(t, r("/src/ls"), r("/ok/")); errno != 0 {
					t.Errorf("ls of its allowed directory: %v", errno)
				}
				return runAs(t, r("/src/ls"), r("/f/"))
			},
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/f")},
		{name: "matchPatterns: a file glob", spec: "  file:\n    matchPatterns:\n    - pattern: ROOT/g/*/key_*\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/g/alice/key_rsa")); write(t, r("/g/alice/sub/key_rsa")) },
			act: func(t *testing.T) syscall.Errno {
				if errno := openFile(r("/g/alice/sub/key_rsa"), unix.O_RDONLY); errno != 0 {
					t.Errorf("'*' crossed a '/': %v", errno)
				}
				return openFile(r("/g/alice/key_rsa"), unix.O_RDONLY)
			},
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/g/alice/key_rsa")},
		{name: "matchPatterns: a program glob, audited", spec: "  process:\n    matchPatterns:\n    - pattern: ROOT/src/{c,n}?*\n  action: Audit\n",
			act:       func(t *testing.T) syscall.Errno { return errnoOf(exec.Command(r("/src/cat"), "/dev/null").Run()) },
			operation: "Process", action: "Audit", result: passed, resource: r("/src/cat")},
		{name: "unlink of a blocked file", spec: "  file:\n    matchPaths:\n    - path: ROOT/p/keep\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/p/keep")) },
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Unlink(r("/p/keep"))) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/p/keep")},
		{name: "rename away from a blocked name", spec: "  file:\n    matchPaths:\n    - path: ROOT/p/keep\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Rename(r("/p/keep"), r("/p/moved"))) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/p/keep")},
		{name: "rename onto a blocked name", spec: "  file:\n    matchPaths:\n    - path: ROOT/p/target\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/p/other")) },
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Rename(r("/p/other"), r("/p/target"))) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/p/target")},
		{name: "hard link of a blocked file", spec: "  file:\n    matchPaths:\n    - path: ROOT/p/keep\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Link(r("/p/keep"), r("/p/alias"))) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/p/keep")},
		{name: "truncate", spec: "  file:\n    matchPaths:\n    - path: ROOT/p/keep\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Truncate(r("/p/keep"), 0)) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/p/keep")},
		{name: "chmod", spec: "  file:\n    matchPaths:\n    - path: ROOT/p/keep\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Chmod(r("/p/keep"), 0o600)) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/p/keep")},
		{name: "chown", spec: "  file:\n    matchPaths:\n    - path: ROOT/p/keep\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Chown(r("/p/keep"), 1, 1)) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/p/keep")},
		{name: "creating a file in a blocked directory", spec: "  file:\n    matchDirectories:\n    - dir: ROOT/ro/\n  action: Block\n",
			setup: func(t *testing.T) { os.MkdirAll(r("/ro"), 0o755) },
			act:   func(t *testing.T) syscall.Errno { return openFile(r("/ro/new"), unix.O_WRONLY|unix.O_CREAT) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/ro/new")},
		{name: "mkdir in a blocked directory", spec: "  file:\n    matchDirectories:\n    - dir: ROOT/ro/\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Mkdir(r("/ro/sub"), 0o755)) },
			errno: syscall.EACCES, operation: "File", action: "Block", result: denied, resource: r("/ro/sub")},
		{name: "process: execname anywhere", spec: "  process:\n    matchPaths:\n    - execname: nc\n  action: Block\n",
			act:   func(t *testing.T) syscall.Errno { return errnoOf(exec.Command(r("/src/nc"), "-h").Run()) },
			errno: syscall.EACCES, operation: "Process", action: "Block", result: denied, resource: r("/src/nc")},
		{name: "process: ownerOnly", spec: "  process:\n    matchPaths:\n    - path: ROOT/src/ls\n      ownerOnly: true\n  action: Block\n",
			setup: func(t *testing.T) { os.Chown(r("/src/ls"), 1000, 1000) },
			act: func(t *testing.T) syscall.Errno {
				defer os.Chown(r("/src/ls"), 0, 0)
				return errnoOf(exec.Command(r("/src/ls"), "/").Run())
			},
			errno: syscall.EACCES, operation: "Process", action: "Block", result: denied, resource: r("/src/ls")},
		{name: "process posture: a source's allow-list", postures: block,
			spec: "  process:\n    matchPaths:\n    - path: /bin/true\n      fromSource:\n      - path: ROOT/src/x/sh\n  action: Allow\n",
			act: func(t *testing.T) syscall.Errno {
				// This shell may start /bin/true and nothing else.
				if errno := runAs(t, r("/src/x/sh"), "-c", "exec /bin/true"); errno != 0 {
					t.Errorf("the allowed program: %v", errno)
				}
				return runAs(t, r("/src/x/sh"), "-c", "exec /bin/echo hi")
			},
			errno: syscall.EACCES, operation: "Process", action: "Block", result: denied, resource: "/bin/echo"},
		{name: "socket_create, Block udp", spec: "  network:\n    matchProtocols:\n    - protocol: udp\n  action: Block\n",
			act: func(t *testing.T) syscall.Errno {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
				if err == nil {
					unix.Close(fd)
				}
				return errnoOf(err)
			},
			errno: syscall.EACCES, operation: "Network", action: "Block", result: denied, resource: "domain=AF_INET type=SOCK_DGRAM protocol=0"},
		{name: "socket_create, Audit icmp", spec: "  network:\n    matchProtocols:\n    - protocol: icmp\n  action: Audit\n",
			act: func(t *testing.T) syscall.Errno {
				// Raw, not datagram: ping sockets are off by default
				// (net.ipv4.ping_group_range), and the kernel would refuse.
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
				if err == nil {
					unix.Close(fd)
				}
				return errnoOf(err)
			},
			operation: "Network", action: "Audit", result: passed, resource: "domain=AF_INET type=SOCK_RAW protocol=1"},
		{name: "socket_bind, connect and accept, Block tcp",
			setup: func(t *testing.T) {
				var err error
				listener, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				pending, err = net.DialTCP("tcp4", nil, listener.Addr().(*net.TCPAddr))
				if err != nil {
					t.Fatal(err)
				}
			},
			spec: "  network:\n    matchProtocols:\n    - protocol: tcp\n  action: Block\n",
			act: func(t *testing.T) syscall.Errno {
				defer listener.Close()
				defer pending.Close()
				_, err := listener.AcceptTCP()
				return errnoOf(err)
			},
			// Go listens with MPTCP where it can (protocol 262): both are tcp.
			errno: syscall.EACCES, operation: "Network", action: "Block", result: denied, resource: "domain=AF_INET type=SOCK_STREAM protocol="},
		{name: "syscalls: audited by name", spec: "  syscalls:\n    matchSyscalls:\n    - syscall: [getpgid]\n",
			act:       func(t *testing.T) syscall.Errno { _, err := unix.Getpgid(0); return errnoOf(err) },
			operation: "Syscall", action: "Audit", result: passed},
		{name: "syscalls: a relative path is made absolute", spec: "  syscalls:\n    matchPaths:\n    - syscall: [unlinkat, unlink]\n      path: ROOT/sys/\n      recursive: true\n",
			setup: func(t *testing.T) { write(t, r("/sys/a/b/victim")) },
			act: func(t *testing.T) syscall.Errno {
				wd, _ := os.Getwd()
				defer os.Chdir(wd)
				if err := os.Chdir(r("/sys/a")); err != nil {
					t.Fatal(err)
				}
				return errnoOf(unix.Unlinkat(unix.AT_FDCWD, "./b/../b/victim", 0))
			},
			operation: "Syscall", action: "Audit", result: passed, resource: r("/sys/a/")},
		{name: "syscalls: a path relative to a directory descriptor", spec: "  syscalls:\n    matchPaths:\n    - syscall: [mkdirat]\n      path: ROOT/sys/fd/new\n",
			setup: func(t *testing.T) { os.MkdirAll(r("/sys/fd"), 0o755) },
			act: func(t *testing.T) syscall.Errno {
				fd, err := unix.Open(r("/sys/fd"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer unix.Close(fd)
				return errnoOf(unix.Mkdirat(fd, "new", 0o755))
			},
			operation: "Syscall", action: "Audit", result: passed, resource: r("/sys/fd/")},
		{name: "socket_connect, Block tcp on a socket made before the rule",
			setup: func(t *testing.T) {
				var err error
				listener, err = net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				preSocket, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
				if err != nil {
					t.Fatal(err)
				}
			},
			spec: "  network:\n    matchProtocols:\n    - protocol: tcp\n  action: Block\n",
			act: func(t *testing.T) syscall.Errno {
				defer listener.Close()
				defer unix.Close(preSocket)
				addr := listener.Addr().(*net.TCPAddr)
				return errnoOf(unix.Connect(preSocket, &unix.SockaddrInet4{Port: addr.Port, Addr: [4]byte{127, 0, 0, 1}}))
			},
			errno: syscall.EACCES, operation: "Network", action: "Block", result: denied, resource: "domain=AF_INET type=SOCK_STREAM protocol=6"},
		{name: "socket_bind, Block udp on a socket made before the rule",
			setup: func(t *testing.T) {
				var err error
				preSocket, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
				if err != nil {
					t.Fatal(err)
				}
			},
			spec: "  network:\n    matchProtocols:\n    - protocol: udp\n  action: Block\n",
			act: func(t *testing.T) syscall.Errno {
				defer unix.Close(preSocket)
				return errnoOf(unix.Bind(preSocket, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
			},
			errno: syscall.EACCES, operation: "Network", action: "Block", result: denied, resource: "domain=AF_INET type=SOCK_DGRAM protocol=17"},
		{name: "capable: Block chown", spec: "  capabilities:\n    matchCapabilities:\n    - capability: chown\n  action: Block\n",
			setup: func(t *testing.T) { write(t, r("/c/x")) },
			act:   func(t *testing.T) syscall.Errno { return errnoOf(unix.Chown(r("/c/x"), 1000, 1000)) },
			errno: syscall.EPERM, operation: "Capabilities", action: "Block", result: denied, resource: "CAP_CHOWN"},
		{name: "capable: fromSource", spec: "  capabilities:\n    matchCapabilities:\n    - capability: chown\n      fromSource:\n      - path: ROOT/src/x/sh\n  action: Block\n",
			act: func(t *testing.T) syscall.Errno {
				if errno := errnoOf(unix.Chown(r("/c/x"), 1001, 1001)); errno != 0 {
					t.Errorf("the test itself: %v", errno)
				}
				// busybox runs chown inside the shell: the shell is the subject.
				return runAs(t, r("/src/x/sh"), "-c", "chown 1002 "+r("/c/x"))
			},
			errno: syscall.EPERM, operation: "Capabilities", action: "Block", result: denied, resource: "CAP_CHOWN"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			postures := tc.postures
			if postures == (policy.Postures{}) {
				postures = audit
			}
			set := parseSet(t, uint64(100+i), postures, strings.ReplaceAll(tc.spec, "ROOT", hookRoot))
			if err := e.Apply(set); err != nil {
				t.Fatal(err)
			}
			errno := tc.act(t)
			empty, _ := policy.NewSet(uint64(1000+i), audit, nil)
			if err := e.Apply(empty); err != nil {
				t.Fatal(err)
			}
			if errno != tc.errno {
				t.Errorf("errno %v, want %v", errno, tc.errno)
			}
			if tc.operation == "" {
				if ev, ok := waitEvent(events, set.Version(), 300*time.Millisecond); ok {
					t.Errorf("unexpected alert %+v", ev)
				}
				return
			}
			ev, ok := waitEvent(events, set.Version(), 10*time.Second)
			if !ok {
				t.Fatal("no alert")
			}
			a := record.FromEvent(ev, record.Context{Enforcer: Name, Rule: func(v uint64, id uint32) (*policy.Rule, bool) {
				if v != set.Version() {
					return nil, false
				}
				return set.Rule(id)
			}})
			wantPolicy := "hook-test"
			if ev.RuleID == 0 {
				wantPolicy = record.PolicyDefaultPosture
			}
			if a.PolicyName != wantPolicy || a.Operation != tc.operation || a.Action != tc.action || a.Result != tc.result ||
				!strings.HasPrefix(a.Resource, tc.resource) {
				t.Errorf("alert %+v\nwant policy %s operation %s action %s result %s resource %s",
					a, wantPolicy, tc.operation, tc.action, tc.result, tc.resource)
			}
		})
	}
	st := e.Stats()
	if st.AlertsLost != 0 || st.Malformed != 0 || st.Undelivered != 0 {
		t.Errorf("lost alerts: %+v", st)
	}
}

// waitEvent returns the next event decided by policy set version, skipping
// late events of earlier sets.
func waitEvent(events <-chan enforcer.Event, version uint64, d time.Duration) (enforcer.Event, bool) {
	deadline := time.After(d)
	for {
		select {
		case ev := <-events:
			if ev.Version == version {
				return ev, true
			}
		case <-deadline:
			return enforcer.Event{}, false
		}
	}
}
