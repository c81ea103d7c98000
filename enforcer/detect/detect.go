// Package detect probes what this host can enforce with, and chooses the
// enforcer: BPF-LSM when bpf is in the active LSM list and a probe program
// really attaches, else AppArmor when it is enabled, listed and
// apparmor_parser works, else observe-only. Every answer carries a reason a
// person can act on, because "not supported" alone sends admins guessing.
//
// Like cilium/ebpf's features package, a probe has three outcomes:
// Supported, NotSupported (the kernel or system says no) and Inconclusive
// (we could not tell, e.g. without the privileges to load a program).
// Choose is pure, so the selection rules are tested without a kernel.
package detect

import (
	"errors"
	"fmt"
	"strings"
)

// Status is the outcome of probing a feature.
type Status int

const (
	// Inconclusive means the probe could not tell (the zero value: not probed).
	Inconclusive Status = iota
	// Supported means the feature was shown to work.
	Supported
	// NotSupported means the kernel or system refused it.
	NotSupported
)

func (s Status) String() string {
	switch s {
	case Supported:
		return "Supported"
	case NotSupported:
		return "NotSupported"
	default:
		return "Inconclusive"
	}
}

// MarshalText makes a Status readable in JSON and logs.
func (s Status) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// Feature is the probed state of one enforcer.
type Feature struct {
	Status Status
	// Reason explains Status in one sentence, e.g. "bpf is not in the active
	// LSM list (...); add it with the lsm= boot parameter, e.g. lsm=...,bpf".
	Reason string
	// Err is the underlying error, if one decided the status (for errors.Is,
	// e.g. unix.EPERM).
	Err error `json:"-"`
}

// Report is what Probe found.
type Report struct {
	KernelRelease string // uname -r
	// LSMs is the active LSM list from securityfs, in order; nil if unknown,
	// and then LSMError says why.
	LSMs     []string
	LSMError string
	// BTF is whether the kernel exposes its BTF (/sys/kernel/btf/vmlinux),
	// which BPF-LSM programs need.
	BTF bool
	// BPFLSM is whether BPF-LSM programs can be loaded and attached.
	BPFLSM Feature
	// AppArmor is whether AppArmor can enforce: enabled in the kernel, in
	// the active LSM list, and apparmor_parser works.
	AppArmor        Feature
	AppArmorEnabled bool   // /sys/module/apparmor/parameters/enabled is Y
	AppArmorParser  string // first line of apparmor_parser --version, "" if it did not run
	// Notes are things the probe did or noticed on the way, e.g. that it
	// mounted securityfs.
	Notes []string
}

// HasLSM reports whether name is in the active LSM list.
func (r Report) HasLSM(name string) bool {
	for _, l := range r.LSMs {
		if l == name {
			return true
		}
	}
	return false
}

// Enforcer is the mechanism that enforces policies.
type Enforcer int

const (
	// None is observe-only: events are monitored and alerted, nothing is blocked.
	None Enforcer = iota
	// BPFLSM enforces in BPF programs attached to LSM hooks.
	BPFLSM
	// AppArmor enforces through AppArmor profiles.
	AppArmor
)

func (e Enforcer) String() string {
	switch e {
	case BPFLSM:
		return "BPFLSM"
	case AppArmor:
		return "AppArmor"
	default:
		return "none"
	}
}

// MarshalText makes an Enforcer readable in JSON and logs.
func (e Enforcer) MarshalText() ([]byte, error) {
	return []byte(e.String()), nil
}

// Configured enforcer values accepted by Choose (case-insensitive).
const (
	ConfigAuto     = "auto"
	ConfigBPFLSM   = "bpflsm"
	ConfigAppArmor = "apparmor"
	ConfigNone     = "none"
)

// Errors returned by Choose, for errors.Is.
var (
	// ErrUnavailable means the configured enforcer cannot be had here.
	ErrUnavailable = errors.New("enforcer is not available")
	// ErrUnknownEnforcer means the configured value is not one of the Config* values.
	ErrUnknownEnforcer = errors.New("unknown enforcer")
)

// Choice is the enforcer to use and why.
type Choice struct {
	Enforcer Enforcer
	// Reason is a sentence for logs, sd_notify STATUS= and karmor probe,
	// e.g. "BPF-LSM: bpf is in the LSM list and a probe program attached
	// to bprm_check_security".
	Reason string
}

// Choose picks the enforcer for the configured value (auto, bpflsm,
// apparmor or none; "" means auto) from a probe report. auto prefers
// BPF-LSM, then AppArmor, then observe-only. A configured enforcer that is
// not Supported is an error wrapping ErrUnavailable, never a silent
// downgrade.
func Choose(configured string, r Report) (Choice, error) {
	switch strings.ToLower(strings.TrimSpace(configured)) {
	case ConfigAuto, "":
		if r.BPFLSM.Status == Supported {
			return Choice{BPFLSM, "BPF-LSM: " + r.BPFLSM.Reason}, nil
		}
		if r.AppArmor.Status == Supported {
			return Choice{AppArmor, fmt.Sprintf("AppArmor: %s; BPF-LSM is not available: %s",
				r.AppArmor.Reason, reasonOrStatus(r.BPFLSM))}, nil
		}
		return Choice{None, fmt.Sprintf("observe-only, nothing is blocked: BPF-LSM is not available: %s; AppArmor is not available: %s",
			reasonOrStatus(r.BPFLSM), reasonOrStatus(r.AppArmor))}, nil
	case ConfigBPFLSM:
		if r.BPFLSM.Status != Supported {
			return Choice{}, unavailable(ConfigBPFLSM, "BPF-LSM", r.BPFLSM)
		}
		return Choice{BPFLSM, "BPF-LSM (configured): " + r.BPFLSM.Reason}, nil
	case ConfigAppArmor:
		if r.AppArmor.Status != Supported {
			return Choice{}, unavailable(ConfigAppArmor, "AppArmor", r.AppArmor)
		}
		return Choice{AppArmor, "AppArmor (configured): " + r.AppArmor.Reason}, nil
	case ConfigNone:
		return Choice{None, "observe-only, nothing is blocked: enforcement is turned off by configuration (enforcer: none)"}, nil
	default:
		return Choice{}, fmt.Errorf("choose enforcer %q: %w; want one of %s, %s, %s, %s",
			configured, ErrUnknownEnforcer, ConfigAuto, ConfigBPFLSM, ConfigAppArmor, ConfigNone)
	}
}

func unavailable(configured, name string, f Feature) error {
	verb := "is not available"
	if f.Status == Inconclusive {
		verb = "could not be confirmed"
	}
	return fmt.Errorf("choose enforcer %q: %w: %s %s: %s", configured, ErrUnavailable, name, verb, reasonOrStatus(f))
}

func reasonOrStatus(f Feature) string {
	if f.Reason != "" {
		return f.Reason
	}
	return "not probed (" + f.Status.String() + ")"
}
