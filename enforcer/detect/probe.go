package detect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// prober holds where and how Probe looks, so the decisions can be tested
// against a fake /sys and fake kernel calls.
type prober struct {
	sysfs string // normally /sys
	// release returns uname -r.
	release func() (string, error)
	// mountSecurityFS mounts securityfs on dir; nil if we may not.
	mountSecurityFS func(dir string) error
	// securityFSMounted reports whether something is mounted on dir.
	securityFSMounted func(dir string) (bool, error)
	// attachBPFLSM loads and attaches a trivial BPF-LSM program, then
	// detaches and unloads it.
	attachBPFLSM func() error
	// privileged reports whether we may load BPF-LSM programs.
	privileged func() bool
	// apparmorParserVersion runs apparmor_parser --version.
	apparmorParserVersion func(ctx context.Context) (string, error)
}

// probeHook is the LSM hook the probe program attaches to: every exec
// passes it, and returning 0 allows, so the probe changes nothing.
const probeHook = "bprm_check_security"

func (p prober) probe(ctx context.Context) Report {
	var r Report
	if rel, err := p.release(); err == nil {
		r.KernelRelease = rel
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("uname: %v", err))
	}
	p.readLSMs(&r)
	_, err := os.Stat(filepath.Join(p.sysfs, "kernel/btf/vmlinux"))
	r.BTF = err == nil
	r.BPFLSM = p.probeBPFLSM(ctx, r)
	p.probeAppArmor(ctx, &r)
	return r
}

// readLSMs fills the active LSM list, mounting securityfs if needed and
// allowed.
func (p prober) readLSMs(r *Report) {
	secDir := filepath.Join(p.sysfs, "kernel/security")
	lsmFile := filepath.Join(secDir, "lsm")
	data, err := os.ReadFile(lsmFile)
	if errors.Is(err, fs.ErrNotExist) {
		mounted, merr := p.securityFSMounted(secDir)
		switch {
		case merr != nil:
			r.LSMError = fmt.Sprintf("read %s: %v; and cannot tell whether securityfs is mounted: %v", lsmFile, err, merr)
			return
		case mounted:
			r.LSMError = fmt.Sprintf("securityfs is mounted on %s but has no lsm file: the kernel has no LSM support (CONFIG_SECURITY)", secDir)
			return
		case p.mountSecurityFS == nil:
			r.LSMError = fmt.Sprintf("securityfs is not mounted on %s, and only root may mount it (mount -t securityfs securityfs %s)", secDir, secDir)
			return
		}
		if merr := p.mountSecurityFS(secDir); merr != nil {
			r.LSMError = fmt.Sprintf("securityfs is not mounted on %s, and mounting it failed: %v", secDir, merr)
			return
		}
		r.Notes = append(r.Notes, fmt.Sprintf("securityfs was not mounted; mounted it on %s", secDir))
		data, err = os.ReadFile(lsmFile)
	}
	if err != nil {
		r.LSMError = fmt.Sprintf("read the active LSM list: %v", err)
		return
	}
	r.LSMs = parseLSMs(string(data))
	if r.LSMs == nil {
		r.LSMs = []string{} // known and empty
	}
}

// parseLSMs splits the securityfs lsm file ("lockdown,capability,bpf").
func parseLSMs(s string) []string {
	var lsms []string
	for _, l := range strings.Split(strings.TrimSpace(s), ",") {
		if l = strings.TrimSpace(l); l != "" {
			lsms = append(lsms, l)
		}
	}
	return lsms
}

func (p prober) probeBPFLSM(ctx context.Context, r Report) Feature {
	switch {
	case r.LSMs == nil:
		return Feature{Status: Inconclusive, Reason: "cannot tell whether bpf is an active LSM: " + r.LSMError}
	case !r.HasLSM("bpf"):
		list := strings.Join(r.LSMs, ",")
		return Feature{Status: NotSupported, Reason: fmt.Sprintf(
			"bpf is not in the active LSM list (%s); add it with the lsm= boot parameter, e.g. lsm=%s",
			list, strings.TrimPrefix(list+",bpf", ","))}
	case !r.BTF:
		return Feature{Status: NotSupported, Reason: fmt.Sprintf(
			"bpf is in the LSM list, but the kernel has no BTF (%s), which BPF-LSM programs need to attach",
			filepath.Join(p.sysfs, "kernel/btf/vmlinux"))}
	}
	if err := ctx.Err(); err != nil {
		return Feature{Status: Inconclusive, Reason: "probe cancelled: " + err.Error(), Err: err}
	}
	err := p.attachBPFLSM()
	switch {
	case err == nil:
		return Feature{Status: Supported, Reason: "bpf is in the LSM list and a probe program attached to " + probeHook}
	case !p.privileged():
		return Feature{Status: Inconclusive, Err: err, Reason: fmt.Sprintf(
			"bpf is in the LSM list, but probing needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN): %v", err)}
	default:
		return Feature{Status: NotSupported, Err: err, Reason: fmt.Sprintf(
			"bpf is in the LSM list, but the kernel refused a probe program on %s: %v", probeHook, err)}
	}
}

func (p prober) probeAppArmor(ctx context.Context, r *Report) {
	var problems []string
	uncertain := 0 // problems that leave the answer open

	enabledFile := filepath.Join(p.sysfs, "module/apparmor/parameters/enabled")
	data, err := os.ReadFile(enabledFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		problems = append(problems, fmt.Sprintf("AppArmor is not built into this kernel (no %s)", enabledFile))
	case err != nil:
		problems = append(problems, fmt.Sprintf("cannot tell whether AppArmor is enabled: %v", err))
		uncertain++
	case strings.TrimSpace(string(data)) == "Y":
		r.AppArmorEnabled = true
	default:
		problems = append(problems, fmt.Sprintf("AppArmor is disabled (%s is %q; it needs apparmor in lsm= and no apparmor=0)",
			enabledFile, strings.TrimSpace(string(data))))
	}

	switch {
	case r.LSMs == nil:
		problems = append(problems, "cannot tell whether apparmor is an active LSM: "+r.LSMError)
		uncertain++
	case !r.HasLSM("apparmor"):
		list := strings.Join(r.LSMs, ",")
		problems = append(problems, fmt.Sprintf("apparmor is not in the active LSM list (%s); add it with the lsm= boot parameter", list))
	}

	version, err := p.apparmorParserVersion(ctx)
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		r.AppArmorParser = version
	}

	switch {
	case len(problems) == 0:
		r.AppArmor = Feature{Status: Supported, Reason: fmt.Sprintf(
			"AppArmor is enabled and in the LSM list, and apparmor_parser works (%s)", version)}
	case uncertain == len(problems):
		r.AppArmor = Feature{Status: Inconclusive, Reason: strings.Join(problems, "; ")}
	default:
		r.AppArmor = Feature{Status: NotSupported, Reason: strings.Join(problems, "; ")}
	}
}
