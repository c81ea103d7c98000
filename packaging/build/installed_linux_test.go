package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/enforcer/apparmor"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/systemd"
)

// guestDist is where TestSystem puts the packages in the guest.
const guestDist = "/root/dist"

// Paths on the installed system.
const (
	policyFile = "/etc/kubearmor/policies/system-test.yaml"
	pinDir     = "/sys/fs/bpf/kubearmor"
)

// maxExposure bounds `systemd-analyze security`'s score for the unit
// (0 is best, 10 worst; KubeArmor's and Tetragon's units score 9.6
// "UNSAFE"): a change that loosens the sandbox fails here.
const maxExposure = 2.5

// TestInstalledSystem runs in TestSystem's guest, a Debian 12 system with
// systemd as PID 1, and checks the package there as an administrator uses
// it. The steps build on each other: the first failure stops the test.
func TestInstalledSystem(t *testing.T) {
	testutils.RequireGuest(t)
	if exe, _ := os.Readlink("/proc/1/exe"); !strings.HasSuffix(exe, "/systemd") {
		t.Skipf("PID 1 is %q, not systemd: this test runs in TestSystem's Debian guest", exe)
	}
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	step("install", func(t *testing.T) {
		// The README's apt line, from the directory the user downloaded to.
		t.Log(runIn(t, guestDist, "sh", "install.sh"))
		waitFor(t, "the service to be active", startWait(t), func() error {
			return wantProps(map[string]string{"ActiveState": "active", "SubState": "running", "UnitFileState": "enabled"})
		})
		// Type=notify: active means READY=1, sent once policies enforce.
		status := props(t)["StatusText"]
		if !strings.HasPrefix(status, "enforcing ") || !strings.Contains(status, "bpf is in the LSM list") {
			t.Errorf("StatusText = %q, want the daemon enforcing with BPF-LSM", status)
		}
		if fi, err := os.Stat("/etc/kubearmor/policies"); err != nil || fi.Mode() != os.ModeDir|0o750 {
			t.Errorf("/etc/kubearmor/policies: %v, %v; want a 0750 directory", fi.Mode(), err)
		}
		// The API answers on its socket in the unit's RuntimeDirectory.
		probe := runIn(t, "/", "karmor", "probe")
		t.Log(probe)
		if !strings.Contains(probe, "kubearmor 0.1.0,") {
			t.Errorf("karmor probe does not show the packaged daemon, kubearmor 0.1.0")
		}
	})

	step("privileges", func(t *testing.T) {
		status := procStatus(t, mainPID(t))
		want := capMask(t, systemd.Capabilities())
		for _, f := range []string{"CapBnd", "CapEff", "CapPrm"} {
			if status[f] != want {
				t.Errorf("%s = %s, want %s (%v)", f, status[f], want, systemd.Capabilities())
			}
		}
		if status["NoNewPrivs"] != "1" || status["Seccomp"] != "2" {
			t.Errorf("NoNewPrivs = %s, Seccomp = %s; want 1 and 2 (a system call filter)", status["NoNewPrivs"], status["Seccomp"])
		}
	})

	step("sandbox", func(t *testing.T) {
		// The daemon's own view of the file system: what it can write.
		// Each write is tried outside the sandbox too, where it must work,
		// so that a refusal inside is the sandbox's doing.
		pid := strconv.Itoa(mainPID(t))
		inside := func(script string) error {
			out, err := exec.Command("nsenter", "-t", pid, "-m", "--", "sh", "-c", script).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
			}
			return nil
		}
		outside := func(script string) error {
			out, err := exec.Command("sh", "-c", script).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
			}
			return nil
		}
		mkdir := func(dir string) string { return "mkdir " + dir + "/sandbox-probe && rmdir " + dir + "/sandbox-probe" }
		// A value written back as it is: harmless, but a write.
		rewrite := func(f string) string { return "v=$(cat " + f + ") && echo $v > " + f }
		for _, tt := range []struct {
			script   string
			writable bool
		}{
			{mkdir("/etc/kubearmor"), false},
			{mkdir("/usr/bin"), false},
			{mkdir("/var/log"), false},
			{mkdir("/root"), false},
			{rewrite("/sys/module/printk/parameters/time"), false},
			{rewrite("/proc/sys/kernel/printk_ratelimit"), false},
			{mkdir("/var/lib/kubearmor"), true},
			{mkdir("/run/kubearmor"), true},
			{mkdir(pinDir), true},
			{mkdir("/tmp"), true},
		} {
			if err := outside(tt.script); err != nil {
				t.Errorf("outside the sandbox, %s: %v", tt.script, err)
			}
			switch err := inside(tt.script); {
			case tt.writable && err != nil:
				t.Errorf("the daemon cannot: %s: %v", tt.script, err)
			case !tt.writable && err == nil:
				t.Errorf("the daemon can: %s", tt.script)
			}
		}
		// Home directories are hidden: empty to the daemon (nsenter's
		// shell could read them, were they there).
		if err := os.MkdirAll("/home/alice/.ssh", 0o700); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{"/home", "/root"} {
			if err := inside(`test -z "$(ls -A ` + dir + `)"`); err != nil {
				t.Errorf("the daemon sees into %s (ProtectHome=)", dir)
			}
		}
		out, err := exec.Command("systemd-analyze", "security", "--no-pager", "kubearmor.service").CombinedOutput()
		t.Logf("systemd-analyze security kubearmor.service:\n%s", out)
		m := regexp.MustCompile(`Overall exposure level for kubearmor\.service: ([0-9.]+) (\S+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security: no overall exposure level (%v)", err)
		}
		if score, _ := strconv.ParseFloat(string(m[1]), 64); score > maxExposure {
			t.Errorf("exposure %s %s, want at most %.1f", m[1], m[2], maxExposure)
		}
		fmt.Printf("systemd-analyze security kubearmor.service: %s %s\n", m[1], m[2])
	})

	step("policy blocks", func(t *testing.T) {
		testutils.CopyFile(t, "testdata/block-od.yaml", policyFile, 0o644)
		waitFor(t, "od to be blocked", 15*time.Second, func() error { return wantDenied("/usr/bin/od") })
		if err := exec.Command("/usr/bin/nl", "/dev/null").Run(); err != nil {
			t.Errorf("nl, which no rule names: %v", err)
		}
		// The alert in the journal, under the unit, with its fields.
		waitFor(t, "the alert in the journal", 15*time.Second, func() error {
			e, err := journalEntry("KUBEARMOR_POLICYNAME=block-od")
			if err != nil {
				return err
			}
			return wantFields(e, map[string]string{
				"_SYSTEMD_UNIT": "kubearmor.service", "PRIORITY": "4", // severity 5: warning
				"KUBEARMOR_RESOURCE": "/usr/bin/od", "KUBEARMOR_ACTION": "Block", "KUBEARMOR_RESULT": "Permission denied",
			})
		})
	})

	step("reload", func(t *testing.T) {
		testutils.CopyFile(t, "testdata/block-nl.yaml", policyFile, 0o644)
		// systemctl reload returns once the daemon has rescanned (the
		// unit's ExecReload waits for it): the new set is in force.
		runIn(t, "/", "systemctl", "reload", "kubearmor")
		if err := wantDenied("/usr/bin/nl"); err != nil {
			t.Error(err)
		}
		if err := exec.Command("/usr/bin/od", "/dev/null").Run(); err != nil {
			t.Errorf("od, no longer named by any rule: %v", err)
		}
		waitFor(t, "the new policy's alert", 15*time.Second, func() error {
			_, err := journalEntry("KUBEARMOR_POLICYNAME=block-nl", "PRIORITY=2") // severity 9: crit
			return err
		})
		// A broken file fails the reload, which names it; what is in
		// force stays.
		broken := "/etc/kubearmor/policies/broken.yaml"
		testutils.CopyFile(t, "testdata/broken.yaml", broken, 0o644)
		out, err := exec.Command("systemctl", "reload", "kubearmor").CombinedOutput()
		if err == nil {
			t.Errorf("systemctl reload with a broken policy file succeeded: %s", out)
		}
		if _, err := journalEntry("_SYSTEMD_UNIT=kubearmor.service", "MESSAGE="+broken+": rejected: "+broken+
			":9: spec.process.matchPaths[0].path: must be an absolute path starting with '/', got \"usr/bin/nl\""); err != nil {
			t.Errorf("the reload's report: %v\n%s", err, unitLog())
		}
		if err := wantDenied("/usr/bin/nl"); err != nil {
			t.Errorf("with a broken file beside it: %v", err)
		}
		os.Remove(broken)
		runIn(t, "/", "systemctl", "reload", "kubearmor")
	})

	step("kill -9", func(t *testing.T) {
		pid := mainPID(t)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Until systemd restarts it (RestartSec=2s), the pinned programs
		// enforce with no daemon at all.
		waitFor(t, "the daemon to be gone", 5*time.Second, func() error {
			if err := syscall.Kill(pid, 0); err == nil {
				return errors.New("still running")
			}
			return nil
		})
		if err := wantDenied("/usr/bin/nl"); err != nil {
			t.Errorf("with the daemon killed: %v", err)
		}
		state := props(t)
		t.Logf("right after: ActiveState=%s SubState=%s MainPID=%s", state["ActiveState"], state["SubState"], state["MainPID"])
		waitFor(t, "systemd to restart the daemon", startWait(t), func() error {
			return wantProps(map[string]string{"ActiveState": "active", "SubState": "running", "NRestarts": "1"})
		})
		if mainPID(t) == pid {
			t.Error("the same MainPID after the restart")
		}
		if err := wantDenied("/usr/bin/nl"); err != nil {
			t.Errorf("after the restart: %v", err)
		}
	})

	step("process allow-list", func(t *testing.T) {
		// Ordinary programs under a process allow-list that names them,
		// with the posture at block: a shell pipeline, python3, apt's
		// helpers. The dynamic loader run as a program is refused (no rule
		// allows it), and so is a program the list does not name.
		const cfg = "/etc/kubearmor/kubearmor.yaml"
		orig, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg, append(slices.Clone(orig), "\nhostDefaultFilePosture: block\n"...), 0o640); err != nil {
			t.Fatal(err)
		}
		testutils.CopyFile(t, "testdata/allow-list.yaml", policyFile, 0o644)
		runIn(t, "/", "systemctl", "restart", "kubearmor")
		waitFor(t, "the service to be active", startWait(t), func() error {
			return wantProps(map[string]string{"ActiveState": "active", "SubState": "running"})
		})
		for _, argv := range [][]string{
			{"/bin/sh", "-c", "ls / | sort | head -1 | wc -l"},
			{"/usr/bin/python3", "-c", "import subprocess, sys; sys.exit(subprocess.run(['id', '-u'], capture_output=True).returncode)"},
			{"/usr/bin/apt-get", "check"},
			{"/usr/lib/apt/apt-helper", "cat-file", "/etc/hostname"},
		} {
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Errorf("%v under the allow-list: %v\n%s", argv, err, out)
			}
		}
		loader, err := filepath.EvalSymlinks("/lib64/ld-linux-x86-64.so.2")
		if err != nil {
			t.Fatal(err)
		}
		if err := wantDenied(loader); err != nil {
			t.Errorf("the loader run as a program: %v", err)
		}
		testutils.CopyFile(t, "/usr/bin/true", "/tmp/true", 0o755)
		if err := wantDenied("/tmp/true"); err != nil {
			t.Errorf("a program the list does not name: %v", err)
		}
		waitFor(t, "the loader's refusal in the journal", 15*time.Second, func() error {
			e, err := journalEntry("KUBEARMOR_RESOURCE=" + loader)
			if err != nil {
				return err
			}
			return wantFields(e, map[string]string{"KUBEARMOR_POLICYNAME": "DefaultPosture", "KUBEARMOR_ACTION": "Block"})
		})
		if err := os.WriteFile(cfg, orig, 0o640); err != nil {
			t.Fatal(err)
		}
		testutils.CopyFile(t, "testdata/block-nl.yaml", policyFile, 0o644)
		runIn(t, "/", "systemctl", "restart", "kubearmor")
		waitFor(t, "the service to be active again", startWait(t), func() error {
			return wantProps(map[string]string{"ActiveState": "active", "SubState": "running"})
		})
	})

	step("apparmor", func(t *testing.T) {
		// An administrator on an AppArmor host: the enforcer set in the
		// config, and the drop-in the package ships installed as it says.
		if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); strings.TrimSpace(string(b)) != "Y" {
			t.Fatal("AppArmor is not enabled in the guest")
		}
		const cfg, dropIn = "/etc/kubearmor/kubearmor.yaml", "/etc/systemd/system/kubearmor.service.d/apparmor.conf"
		orig, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dropIn), 0o755); err != nil {
			t.Fatal(err)
		}
		// As the drop-in says: the service stopped first, so that its
		// cleanup removes BPF-LSM's pins (an AppArmor daemon leaves them:
		// AppArmor does not confine what already runs).
		runIn(t, "/", "systemctl", "stop", "kubearmor")
		testutils.CopyFile(t, "/usr/share/doc/kubearmor/examples/apparmor.conf", dropIn, 0o644)
		if err := os.WriteFile(cfg, append(slices.Clone(orig), "\nenforcer: apparmor\n"...), 0o640); err != nil {
			t.Fatal(err)
		}
		runIn(t, "/", "systemctl", "daemon-reload")
		runIn(t, "/", "systemctl", "start", "kubearmor")
		waitFor(t, "the service to be active", startWait(t), func() error {
			return wantProps(map[string]string{"ActiveState": "active", "SubState": "running"})
		})
		if status := props(t)["StatusText"]; !strings.HasPrefix(status, "enforcing ") || !strings.Contains(status, "AppArmor") {
			t.Fatalf("StatusText = %q, want the daemon enforcing with AppArmor\n%s", status, unitLog())
		}
		want := capMask(t, append(systemd.Capabilities(), systemd.AppArmorCapabilities()...))
		if got := procStatus(t, mainPID(t))["CapBnd"]; got != want {
			t.Errorf("CapBnd = %s, want %s: the unit's and the drop-in's", got, want)
		}
		if _, err := os.Stat(pinDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s under AppArmor: %v, want it gone (removed when the service stopped)", pinDir, err)
		}
		if p := ourProfiles(t); !slices.Contains(p, "kubearmor-host") {
			t.Errorf("AppArmor profiles %v, want kubearmor-host", p)
		}
		// AppArmor confines programs started from now on: a new shell, and
		// what it runs.
		if err := exec.Command("sh", "-c", "/usr/bin/nl /dev/null").Run(); err == nil {
			t.Error("under AppArmor a new shell ran nl")
		}
		waitFor(t, "the AppArmor alert in the journal", 15*time.Second, func() error {
			e, err := journalEntry("KUBEARMOR_POLICYNAME=block-nl", "KUBEARMOR_ENFORCER=AppArmor")
			if err != nil {
				return err
			}
			return wantFields(e, map[string]string{"_SYSTEMD_UNIT": "kubearmor.service", "KUBEARMOR_ALERTSOURCE": "ebpf",
				"KUBEARMOR_RESOURCE": "/usr/bin/nl", "KUBEARMOR_ACTION": "Block", "KUBEARMOR_RESULT": "Permission denied"})
		})

		// And back, as the drop-in says: stopped first, so that the
		// cleanup removes the profiles with the drop-in's rights (the
		// unit alone cannot write securityfs); then BPF-LSM again.
		runIn(t, "/", "systemctl", "stop", "kubearmor")
		if p := ourProfiles(t); len(p) != 0 {
			t.Errorf("AppArmor profiles after a deliberate stop: %v, want none", p)
		}
		os.Remove(dropIn)
		if err := os.WriteFile(cfg, orig, 0o640); err != nil {
			t.Fatal(err)
		}
		runIn(t, "/", "systemctl", "daemon-reload")
		runIn(t, "/", "systemctl", "start", "kubearmor")
		waitFor(t, "the service to be active", startWait(t), func() error {
			return wantProps(map[string]string{"ActiveState": "active", "SubState": "running"})
		})
		if status := props(t)["StatusText"]; !strings.Contains(status, "bpf is in the LSM list") {
			t.Errorf("StatusText = %q, want BPF-LSM again", status)
		}
		if p := ourProfiles(t); len(p) != 0 {
			t.Errorf("AppArmor profiles under BPF-LSM: %v, want none", p)
		}
		if err := wantDenied("/usr/bin/nl"); err != nil {
			t.Error(err)
		}
	})

	step("remove", func(t *testing.T) {
		runIn(t, "/", "apt-get", "remove", "-y", "kubearmor")
		if _, err := os.Stat("/usr/bin/kubearmor"); err == nil {
			t.Error("/usr/bin/kubearmor is still there")
		}
		if out, _ := exec.Command("systemctl", "is-active", "kubearmor").Output(); strings.TrimSpace(string(out)) == "active" {
			t.Error("the service is still active")
		}
		if _, err := os.Stat(pinDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after remove: %v, want it gone (nothing left enforcing)", pinDir, err)
		}
		if err := exec.Command("/usr/bin/nl", "/dev/null").Run(); err != nil {
			t.Errorf("nl after remove: %v", err)
		}
		for _, f := range []string{"/etc/kubearmor/kubearmor.yaml", policyFile} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("remove must keep the configuration: %v", err)
			}
		}
	})

	step("purge", func(t *testing.T) {
		runIn(t, "/", "apt-get", "purge", "-y", "kubearmor")
		for _, dir := range []string{"/etc/kubearmor", "/var/lib/kubearmor"} {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s after purge: %v, want it gone", dir, err)
			}
		}
	})
}

// runIn runs a command in dir and returns its output, failing t on error.
func runIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\nthe service's log:\n%s", name, strings.Join(args, " "), err, out, unitLog())
	}
	return string(out)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %v\n%s", timeout, what, err, unitLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ourProfiles lists the AppArmor profiles the daemon loaded.
func ourProfiles(t *testing.T) []string {
	names, err := apparmor.Loaded()
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// unitLog is the end of the service's journal, for failures.
func unitLog() string {
	out, _ := exec.Command("journalctl", "-u", "kubearmor", "-n", "40", "--no-pager").CombinedOutput()
	return string(out)
}

// wantDenied runs path and wants exec refused as BPF-LSM refuses it: EACCES.
func wantDenied(path string) error {
	err := exec.Command(path, "/dev/null").Run()
	if !errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("exec %s: %v, want EACCES", path, err)
	}
	return nil
}

// unitProps is systemctl show of the service, by property.
func unitProps() (map[string]string, error) {
	out, err := exec.Command("systemctl", "show", "kubearmor.service").Output()
	if err != nil {
		return nil, fmt.Errorf("systemctl show: %w", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// startWait is how long a step waits for the service to become active: as
// long as systemd itself would (the unit's TimeoutStartSec, after its
// RestartSec), so the test never gives up on a start that the unit allows.
func startWait(t *testing.T) time.Duration {
	t.Helper()
	p := props(t)
	var total time.Duration
	for _, key := range []string{"TimeoutStartUSec", "RestartUSec"} {
		d, err := systemd.ParseTimespan(p[key])
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		total += d
	}
	return total + 5*time.Second
}

func props(t *testing.T) map[string]string {
	t.Helper()
	m, err := unitProps()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func wantProps(want map[string]string) error {
	got, err := unitProps()
	if err != nil {
		return err
	}
	return wantFields(got, want)
}

func wantFields(got, want map[string]string) error {
	var diffs []string
	for k, v := range want {
		if got[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s=%q, want %q", k, got[k], v))
		}
	}
	if diffs != nil {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

func mainPID(t *testing.T) int {
	t.Helper()
	pid, err := strconv.Atoi(props(t)["MainPID"])
	if err != nil || pid == 0 {
		t.Fatalf("MainPID: %d, %v", pid, err)
	}
	return pid
}

// journalEntry returns the newest journal entry matching every FIELD=value.
func journalEntry(matches ...string) (map[string]string, error) {
	out, err := exec.Command("journalctl", append([]string{"-o", "json", "-r", "-n", "1", "--no-pager"}, matches...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("journalctl %v: %w", matches, err)
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return nil, fmt.Errorf("no journal entry with %v", matches)
	}
	var e map[string]any
	if err := json.Unmarshal(out, &e); err != nil {
		return nil, fmt.Errorf("journalctl %v: %w", matches, err)
	}
	m := map[string]string{}
	for k, v := range e {
		m[k] = fmt.Sprint(v)
	}
	return m, nil
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// capMask is /proc/<pid>/status's hex mask of the named capabilities.
func capMask(t *testing.T, names []string) string {
	t.Helper()
	bits := map[string]uint{"sys_ptrace": 19, "mac_admin": 33, "audit_read": 37, "perfmon": 38, "bpf": 39}
	var mask uint64
	for _, n := range names {
		b, ok := bits[n]
		if !ok {
			t.Fatalf("capMask: add %s", n)
		}
		mask |= 1 << b
	}
	return fmt.Sprintf("%016x", mask)
}
