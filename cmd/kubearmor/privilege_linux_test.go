//go:build linux

package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/systemd"
)

// underCaps returns setpriv's arguments to run a command with only caps in
// its bounding set, as systemd's CapabilityBoundingSet= does for root.
func underCaps(t *testing.T, caps []string) []string {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Fatalf("setpriv (util-linux) is not in the guest: %v", err)
	}
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	return []string{setpriv, "--bounding-set=" + set, "--inh-caps=-all", "--"}
}

// TestLeastPrivilege runs the daemon with only the capabilities the unit
// grants it (CapabilityBoundingSet=): it must enforce, alert, pin and serve
// its API as with every capability. Then without each one in turn: each
// must be missed, or the unit grants more than the daemon needs.
func TestLeastPrivilege(t *testing.T) {
	testutils.RequireGuest(t)
	caps := systemd.Capabilities()
	if len(caps) == 0 {
		t.Fatal("kubearmor.service has no CapabilityBoundingSet=")
	}
	work := t.TempDir()
	target := filepath.Join(work, "bin", "true")
	testutils.CopyFile(t, "/bin/busybox", target, 0o755)
	dir := t.TempDir()
	writePolicy(t, dir, "block-target.yaml", hostPolicy("block-target",
		"  process:\n    matchPaths:\n    - path: "+target+"\n  action: Block\n"))
	pins := filepath.Join("/sys/fs/bpf", "kubearmor-caps-test")
	defer os.RemoveAll(pins)

	p := startWrapped(t, underCaps(t, caps), dir, "--bpfPinPath="+pins, "--hostVisibility=process,file,network")
	p.waitLog(t, "enforcer chosen", "enforcer=BPFLSM")
	p.waitNotify(t, "READY=1")
	if errno := execErrno(t, target); errno != syscall.EACCES {
		t.Errorf("with the unit's capabilities (%s), exec of the target: %v, want EACCES", strings.Join(caps, ","), errno)
	}
	a := p.waitAlert(t, "the block", func(a record.Alert) bool { return a.Resource == target })
	if a.PolicyName != "block-target" || a.Action != "Block" {
		t.Errorf("alert %+v", a)
	}
	if _, err := os.Stat(filepath.Join(pins, "links")); err != nil {
		t.Errorf("nothing pinned: %v", err)
	}
	if _, err := os.Stat(p.api); err != nil {
		t.Errorf("no API socket: %v", err)
	}
	p.stop(t)

	// The capabilities enforcement needs: without either, the daemon cannot
	// enforce with BPF-LSM (it exits, or falls back to observe-only and
	// says so). CAP_SYS_PTRACE is for reading /proc of other users'
	// processes (the process tree), which this guest, all root, cannot
	// show. CAP_SYS_ADMIN would stand for both CAP_BPF and CAP_PERFMON, and
	// for much else: the unit must not grant it.
	if slices.Contains(caps, "sys_admin") {
		t.Error("the unit grants CAP_SYS_ADMIN, which the daemon does not need")
	}
	for _, drop := range []string{"bpf", "perfmon"} {
		if !slices.Contains(caps, drop) {
			t.Errorf("the unit does not grant %s, which BPF-LSM enforcement needs", drop)
			continue
		}
		t.Run("without "+drop, func(t *testing.T) {
			fewer := slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == drop })
			p := startWrapped(t, underCaps(t, fewer), dir, "--bpfPinPath="+pins, "--hostVisibility=process,file,network")
			exited := make(chan error, 1)
			go func() { exited <- p.cmd.Wait() }()
		wait:
			for {
				select {
				case err := <-exited:
					if err == nil {
						t.Errorf("the daemon exited cleanly without %s", drop)
					}
					break wait
				case m := <-p.notify:
					if !strings.Contains(m, "READY=1") {
						continue
					}
					if !strings.Contains(m, "observe-only") {
						t.Errorf("without %s the daemon is ready with %q, want it to exit or fall back to observe-only", drop, m)
					}
					p.cmd.Process.Signal(os.Interrupt)
					<-exited
					break wait
				}
			}
			p.mu.Lock()
			log := strings.Join(p.all, "\n")
			p.mu.Unlock()
			t.Logf("without %s, the daemon's last words:\n%s", drop, tail(log, 3))
		})
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
