//go:build linux

package detect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Probe finds out what this host supports. It reads /sys, runs
// apparmor_parser --version, and, when bpf is an active LSM, loads and
// attaches an empty BPF-LSM program for a moment. As root it mounts
// securityfs on /sys/kernel/security if nothing is mounted there (and says
// so in Report.Notes): the daemon needs it mounted anyway.
func Probe(ctx context.Context) Report {
	p := prober{
		sysfs:                 "/sys",
		release:               kernelRelease,
		securityFSMounted:     isMountPoint,
		attachBPFLSM:          attachBPFLSM,
		privileged:            canLoadLSMPrograms,
		apparmorParserVersion: apparmorParserVersion,
	}
	if os.Geteuid() == 0 {
		p.mountSecurityFS = func(dir string) error {
			if err := unix.Mount("securityfs", dir, "securityfs", 0, ""); err != nil {
				return fmt.Errorf("mount securityfs on %s: %w", dir, err)
			}
			return nil
		}
	}
	return p.probe(ctx)
}

func kernelRelease() (string, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}

// isMountPoint reports whether dir is a mount point, from mountinfo.
func isMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Field 5 is the mount point, with spaces escaped as \040.
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == dir {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read mounts: %w", err)
	}
	return false, nil
}

// attachBPFLSM proves BPF-LSM works: load "r0 = 0; exit" (allow) as an
// LSM program for bprm_check_security, attach it, and undo both.
func attachBPFLSM() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:       "kubearmor_probe",
		Type:       ebpf.LSM,
		AttachType: ebpf.AttachLSMMac,
		AttachTo:   probeHook,
		License:    "GPL", // the verifier takes LSM programs only under GPL
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		return &probeError{step: "load", err: err}
	}
	defer prog.Close()
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		return &probeError{step: "attach", err: err}
	}
	if err := l.Close(); err != nil {
		return &probeError{step: "detach", err: err}
	}
	return nil
}

// probeError is a failed step of the BPF-LSM probe. Its message is the
// kernel's errno when there is one: the library's own hints can mislead
// (cilium/ebpf suggests raising MEMLOCK on any EPERM, which kernels since
// 5.11 do not use for BPF memory). Unwrap keeps the full error.
type probeError struct {
	step string
	err  error
}

func (e *probeError) Error() string {
	var errno unix.Errno
	if errors.As(e.err, &errno) {
		return fmt.Sprintf("%s: %v (%s)", e.step, errno, unix.ErrnoName(errno))
	}
	return e.step + ": " + e.err.Error()
}

func (e *probeError) Unwrap() error { return e.err }

// Capability numbers (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// canLoadLSMPrograms reports whether our effective capabilities allow
// loading LSM programs: CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN for both.
func canLoadLSMPrograms() bool {
	caps, err := effectiveCaps()
	if err != nil {
		return os.Geteuid() == 0
	}
	has := func(c uint) bool { return caps&(1<<c) != 0 }
	return (has(capBPF) || has(capSysAdmin)) && (has(capPerfmon) || has(capSysAdmin))
}

func effectiveCaps() (uint64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read capabilities: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parse CapEff %q: %w", v, err)
			}
			return caps, nil
		}
	}
	return 0, errors.New("read capabilities: no CapEff in /proc/self/status")
}

func apparmorParserVersion(ctx context.Context) (string, error) {
	path, err := exec.LookPath("apparmor_parser")
	if err != nil {
		return "", fmt.Errorf("apparmor_parser is not installed (apt-get install apparmor): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return first, nil
}
