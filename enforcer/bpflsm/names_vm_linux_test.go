//go:build linux

package bpflsm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
)

// namesRoot holds the files TestOtherNames protects, on a tmpfs of its own
// in the host's mount namespace: their host paths are namesRoot/...
const namesRoot = "/kanames"

// memfdExecEnv makes the test binary copy the program named by its value
// into a memfd and run it from there (see TestMain); it exits 0 when the
// program ran, and otherwise prints the exec's errno and exits 3.
const memfdExecEnv = "KUBEARMOR_TEST_MEMFD_EXEC"

func runMemfdExec(program string) int {
	data, err := os.ReadFile(program)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fd, err := unix.MemfdCreate("payload", 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := unix.Write(fd, data); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Through /proc/self/fd, the kernel opens the memfd itself: the exec is
	// of the memfd's file, as with fexecve.
	err = syscall.Exec(fmt.Sprintf("/proc/self/fd/%d", fd), []string{"true"}, nil)
	fmt.Println(int(errnoOf(err)))
	return 3
}

// asNobody makes a command run as the unprivileged user the tests act as:
// no capabilities, as a local user on Debian's default settings.
func asNobody() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}

// outcome runs a command and says how it ended: nil, or the error with its
// output.
func outcome(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dynamicProgram is a dynamically linked program the guest carries with its
// loader and libraries (guestFiles in internal/vmtest/suites.go).
const dynamicProgram = "/opt/dyn/head"

// loaderPath is the dynamic loader as the guest has it.
func loaderPath(t *testing.T) string {
	t.Helper()
	p, err := filepath.EvalSymlinks("/lib64/ld-linux-x86-64.so.2")
	if err != nil {
		t.Fatalf("the guest has no dynamic loader: %v", err)
	}
	return p
}

// overlayScript mounts an overlay of lower at dir/m in a new user and mount
// namespace and runs (or reads, for a file not named true) name in it.
func overlayScript(lower, dir, name string) string {
	run := dir + "/m" + name
	if name != "/true" {
		run = "cat " + run
	}
	return fmt.Sprintf("mkdir -p %[1]s/up %[1]s/work %[1]s/m && unshare -Urm sh -c 'mount -t overlay overlay -o lowerdir=%[2]s,upperdir=%[1]s/up,workdir=%[1]s/work %[1]s/m && %[3]s'",
		dir, lower, run)
}

type nameCase struct {
	name      string
	postures  policy.Postures // zero: all audit
	spec      string          // ROOT is namesRoot
	userns    UserNS          // what the enforcer does with user namespaces meanwhile (zero: allow)
	act       func(t *testing.T) (string, error)
	denied    bool   // the act must fail
	deniedMsg string // and say so in its output (default "Permission denied")
	// The alert: its resource, process and policy; data it must contain.
	resource, process, policy, data string
	operation, action               string
}

// TestOtherNames checks that rules hold for a program or file reached under
// another name: through a bind mount or an overlay in a user namespace, a
// chroot, the dynamic loader, a memfd, anonymous memory; and that user
// namespaces can be refused. Each acts as an unprivileged user where the
// way needs no privilege, and checks the alert names the host's path.
func TestOtherNames(t *testing.T) {
	e, events := loadEnforcer(t)
	audit := policy.Postures{File: policy.PostureAudit, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}
	if err := os.MkdirAll(namesRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", namesRoot, "tmpfs", 0, "size=64m,mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(namesRoot, unix.MNT_DETACH) })
	r := func(p string) string { return namesRoot + p }
	testutils.CopyFile(t, "/bin/busybox", r("/bin/true"), 0o755)
	testutils.CopyFile(t, "/bin/busybox", r("/bin/sh"), 0o755)
	if err := os.MkdirAll(r("/f"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r("/f/secret"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory nobody may work in.
	if err := os.Mkdir(r("/u"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(r("/u"), 0o777|os.ModeSticky); err != nil { // not the umask's
		t.Fatal(err)
	}
	// A chroot that shows the protected directory by a host bind mount.
	for _, d := range []string{"/jail/bin", "/jail/lib"} {
		if err := os.MkdirAll(r(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(r("/bin"), r("/jail/bin"), "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		t.Fatalf("the guest has no overlay file system (the harness loads the module): %v\n%s", err, fs)
	}
	loader := loaderPath(t)
	// A library nobody wrote: a copy of the loader's libc, the user's own.
	libc, err := filepath.EvalSymlinks("/lib/x86_64-linux-gnu/libc.so.6")
	if err != nil {
		t.Fatalf("the guest has no libc beside its loader: %v", err)
	}
	testutils.CopyFile(t, libc, r("/u/preload.so"), 0o755)
	if err := os.Chown(r("/u/preload.so"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// An overlay's upper layer, the user's, holding a file a rule protects.
	for _, d := range []string{"/u/o4", "/u/o4/up", "/u/o4/work", "/u/o4/m"} {
		if err := os.Mkdir(r(d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(r(d), 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(r("/u/o4/up/victim"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(r("/u/o4/up/victim"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	block := policy.Postures{File: policy.PostureBlock, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}
	// The kernel learns the loader as it maps it for a dynamic program.
	if out, err := exec.Command(dynamicProgram, "--version").CombinedOutput(); err != nil {
		t.Fatalf("%s --version: %v\n%s", dynamicProgram, err, out)
	}
	sh := func(script string) func(t *testing.T) (string, error) {
		return func(t *testing.T) (string, error) {
			cmd := exec.Command(r("/bin/sh"), "-c", script)
			cmd.SysProcAttr = asNobody()
			return outcome(cmd)
		}
	}
	blockTrue := "  process:\n    matchPaths:\n    - path: ROOT/bin/true\n  action: Block\n"
	blockSecret := "  file:\n    matchPaths:\n    - path: ROOT/f/secret\n  action: Block\n"
	tests := []nameCase{
		{name: "exec through a bind mount in a user namespace", spec: blockTrue,
			act:    sh("mkdir -p " + r("/u/b") + " && unshare -Urm sh -c 'mount --bind " + r("/bin") + " " + r("/u/b") + " && " + r("/u/b/true") + "'"),
			denied: true, operation: "Process", action: "Block", resource: r("/bin/true"), process: r("/bin/true")},
		{name: "read through a bind mount in a user namespace", spec: blockSecret,
			act:    sh("mkdir -p " + r("/u/c") + " && unshare -Urm sh -c 'mount --bind " + r("/f") + " " + r("/u/c") + " && cat " + r("/u/c/secret") + "'"),
			denied: true, operation: "File", action: "Block", resource: r("/f/secret"), process: r("/bin/sh")},
		{name: "exec through an overlay in a user namespace", spec: blockTrue,
			act:    sh(overlayScript(r("/bin"), r("/u/o1"), "/true")),
			denied: true, operation: "Process", action: "Block", resource: r("/bin/true"), process: r("/bin/true")},
		{name: "read through an overlay in a user namespace", spec: blockSecret,
			act:    sh(overlayScript(r("/f"), r("/u/o2"), "/secret")),
			denied: true, operation: "File", action: "Block", resource: r("/f/secret"), process: r("/bin/sh")},
		{name: "unlink through an overlay in a user namespace, of its upper layer's file",
			spec: "  file:\n    matchPaths:\n    - path: ROOT/u/o4/up/victim\n  action: Block\n",
			act: sh(fmt.Sprintf("unshare -Urm sh -c 'mount -t overlay overlay -o lowerdir=%[2]s,upperdir=%[1]s/up,workdir=%[1]s/work %[1]s/m && rm %[1]s/m/victim'",
				r("/u/o4"), r("/f"))),
			denied: true, operation: "File", action: "Block", resource: r("/u/o4/up/victim")},
		{name: "exec in a chroot that bind-mounts the program", spec: blockTrue,
			act: func(t *testing.T) (string, error) {
				return outcome(exec.Command("chroot", r("/jail"), "/bin/true"))
			},
			denied: true, operation: "Process", action: "Block", resource: r("/bin/true"), process: r("/bin/true")},
		{name: "the loader runs a blocked program", spec: "  process:\n    matchPaths:\n    - path: " + dynamicProgram + "\n  action: Block\n",
			act: func(t *testing.T) (string, error) {
				cmd := exec.Command(loader, dynamicProgram, "--version")
				cmd.SysProcAttr = asNobody()
				return outcome(cmd)
			},
			denied: true, deniedMsg: "failed to map segment", operation: "Process", action: "Block",
			resource: dynamicProgram, process: dynamicProgram, data: "loaded-by=" + loader},
		{name: "a program the loader runs is itself for fromSource",
			spec: "  file:\n    matchPaths:\n    - path: ROOT/f/secret\n      fromSource:\n      - path: " + dynamicProgram + "\n  action: Block\n",
			act: func(t *testing.T) (string, error) {
				cmd := exec.Command(loader, dynamicProgram, r("/f/secret"))
				cmd.SysProcAttr = asNobody()
				return outcome(cmd)
			},
			denied: true, operation: "File", action: "Block", resource: r("/f/secret"), process: dynamicProgram},
		{name: "filelessExec: a program run from a memfd", spec: "  presets:\n  - name: filelessExec\n    action: Block\n",
			act: func(t *testing.T) (string, error) {
				cmd := exec.Command("/proc/self/exe")
				cmd.Env = []string{memfdExecEnv + "=/bin/busybox"}
				cmd.SysProcAttr = asNobody()
				out, err := outcome(cmd)
				if strings.TrimSpace(out) == "13" {
					out += " Permission denied"
				}
				return out, err
			},
			denied: true, operation: "Process", action: "Block", resource: "memfd:payload", data: "path=no-host-path"},
		{name: "anonymousMapExec: mmap of anonymous executable memory", spec: "  presets:\n  - name: anonymousMapExec\n    action: Block\n",
			act: func(t *testing.T) (string, error) {
				_, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				if err != nil {
					return "Permission denied", err
				}
				return "", nil
			},
			denied: true, operation: "Process", action: "Block", resource: "anonymous memory",
			data: "call=mmap prot=PROT_READ|PROT_WRITE|PROT_EXEC flags=MAP_PRIVATE|MAP_ANONYMOUS"},
		{name: "anonymousMapExec: mprotect making anonymous memory executable", spec: "  presets:\n  - name: anonymousMapExec\n    action: Audit\n",
			act: func(t *testing.T) (string, error) {
				b, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				if err != nil {
					return "", err
				}
				defer unix.Munmap(b)
				return "", unix.Mprotect(b, unix.PROT_READ|unix.PROT_EXEC)
			},
			operation: "Process", action: "Audit", resource: "anonymous memory", data: "call=mprotect prot=PROT_READ|PROT_EXEC flags=MAP_PRIVATE"},
		{name: "listing a directory of an overlay in a user namespace", spec: blockSecret,
			act: sh(fmt.Sprintf("mkdir -p %[1]s/up %[1]s/work %[1]s/m && unshare -Urm sh -c 'mount -t overlay overlay -o lowerdir=%[2]s,upperdir=%[1]s/up,workdir=%[1]s/work %[1]s/m && ls %[1]s/m'",
				r("/u/o3"), r("/f")))},
		{name: "anonymousMapExec: a private file mapping made writable and executable",
			spec: "  presets:\n  - name: anonymousMapExec\n    action: Block\n",
			act: func(t *testing.T) (string, error) {
				fd, err := unix.Open("/bin/busybox", unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					return "", err
				}
				defer unix.Close(fd)
				b, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
				if err != nil {
					return "", err
				}
				defer unix.Munmap(b)
				if err := unix.Mprotect(b, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC); err != nil {
					return "Permission denied", err
				}
				return "", nil
			},
			denied: true, operation: "Process", action: "Block", resource: "anonymous memory",
			data: "call=mprotect prot=PROT_READ|PROT_WRITE|PROT_EXEC flags=MAP_PRIVATE"},
		{name: "a process allow-list refuses a library a user wrote", postures: block,
			spec: "  process:\n    matchDirectories:\n    - dir: /opt/dyn/\n  action: Allow\n",
			act: func(t *testing.T) (string, error) {
				cmd := exec.Command(dynamicProgram, "--version")
				cmd.Env = []string{"LD_PRELOAD=" + r("/u/preload.so")}
				cmd.SysProcAttr = asNobody()
				out, err := outcome(cmd)
				if err == nil && strings.Contains(out, "cannot be preloaded") {
					err = errors.New("the preload was refused")
				}
				return out, err
			},
			denied: true, deniedMsg: "cannot be preloaded", operation: "Process", action: "Block",
			resource: r("/u/preload.so"), process: dynamicProgram, policy: record.PolicyDefaultPosture},
		{name: "an unprivileged user namespace, refused", userns: UserNSBlock,
			spec: "  file:\n    matchPaths:\n    - path: ROOT/f/unused\n  action: Block\n",
			act:  sh("unshare -U true"), denied: true, deniedMsg: "Operation not permitted",
			operation: "Process", action: "Block", resource: "user namespace", process: r("/bin/sh"), policy: record.PolicyUserNamespaces},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			postures := tc.postures
			if postures == (policy.Postures{}) {
				postures = audit
			}
			set := parseSet(t, uint64(300+i), postures, strings.ReplaceAll(tc.spec, "ROOT", namesRoot))
			if err := e.Apply(set); err != nil {
				t.Fatal(err)
			}
			if err := e.SetUserNamespaces(tc.userns); err != nil {
				t.Fatal(err)
			}
			out, err := tc.act(t)
			if err := e.SetUserNamespaces(UserNSAllow); err != nil {
				t.Fatal(err)
			}
			empty, _ := policy.NewSet(uint64(1300+i), audit, nil)
			if err := e.Apply(empty); err != nil {
				t.Fatal(err)
			}
			msg := tc.deniedMsg
			if msg == "" {
				msg = "Permission denied"
			}
			switch {
			case tc.denied && err == nil:
				t.Errorf("it ran:\n%s", out)
			case tc.denied && !strings.Contains(out, msg):
				t.Errorf("%v, not %q:\n%s", err, msg, out)
			case !tc.denied && err != nil:
				t.Errorf("%v\n%s", err, out)
			}
			if tc.operation == "" {
				if ev, ok := waitEvent(events, set.Version(), 300*time.Millisecond); ok {
					t.Errorf("unexpected alert %+v", ev)
				}
				return
			}
			ev, ok := waitEvent(events, set.Version(), 10*time.Second)
			if !ok {
				t.Fatalf("no alert; the act said (%v):\n%s", err, out)
			}
			a := record.FromEvent(ev, record.Context{Enforcer: Name, Rule: func(v uint64, id uint32) (*policy.Rule, bool) {
				if v != set.Version() {
					return nil, false
				}
				return set.Rule(id)
			}})
			want := tc.policy
			if want == "" {
				want = "hook-test"
			}
			if a.PolicyName != want || a.Operation != tc.operation || a.Action != tc.action || a.Resource != tc.resource ||
				(tc.process != "" && a.ProcessName != tc.process) || !strings.Contains(a.Data, tc.data) {
				t.Errorf("alert %+v\nwant policy %s operation %s action %s resource %s process %s data %q",
					a, want, tc.operation, tc.action, tc.resource, tc.process, tc.data)
			}
		})
	}
	st := e.Stats()
	if st.AlertsLost != 0 || st.Malformed != 0 || st.Undelivered != 0 {
		t.Errorf("lost alerts: %+v", st)
	}
}
