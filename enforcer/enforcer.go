// Package enforcer defines what every enforcer does for the daemon: check a
// policy set without touching the kernel, put it in force in one step, and
// report the decisions it makes. The implementations live in sub-packages:
// bpflsm (the kernel decides in LSM hooks) and observe (no LSM: exec events
// from tracepoints are checked by the reference matcher and only audited);
// apparmor (AppArmor profiles; its decisions seen by package denials at the
// LSM entry points, or read from the audit log) is the fallback. Package
// detect chooses between them.
package enforcer

import (
	"context"
	"time"

	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// Enforcer puts policy sets in force and reports decisions. Validate, Apply,
// Stats and Close are called from the daemon's one reconcile goroutine; Run
// runs in its own goroutine and only reads events.
type Enforcer interface {
	// Name is the Enforcer value of alerts: "BPFLSM", "AppArmor" or
	// "eBPF Monitor" for observe-only.
	Name() string
	// Validate checks that every rule of set can be enforced, without
	// touching the kernel. Errors are *policy.Error values naming the rule.
	Validate(set *policy.Set) error
	// Apply replaces the rules in force with set, atomically: an operation
	// is decided either by the old set or by the new one.
	Apply(set *policy.Set) error
	// Run delivers decisions to events until ctx is done. It never blocks
	// on a slow consumer for long: what it cannot deliver it counts.
	Run(ctx context.Context, events chan<- Event) error
	// Stats returns the enforcer's counters.
	Stats() Stats
	// RuleStats returns, for the policy set in force, the decisions of
	// each rule, indexed by rule ID; index 0 counts default-posture
	// decisions.
	RuleStats() (version uint64, counts []RuleCounts)
	Close() error
}

// Event is one alerting decision: Audit, Block or a posture verdict.
type Event struct {
	Time     time.Time
	Version  uint64 // policy set version that decided
	RuleID   uint32 // 0 for posture verdicts
	Verdict  match.Verdict
	Observed bool // decided by the matcher on an observed event, not enforced
	Op       match.Op
	PID      uint32 // thread group (process) ID
	TID      uint32
	PPID     uint32
	UID      uint32
	OwnerUID uint32
	Comm     string
	Path     string // the object
	Exe      string // the subject's executable
	// Truncated says the decision was taken as for an unresolvable path:
	// the object's path did not fit, scratch space was busy, or the policy
	// generation was replaced while deciding.
	Truncated bool
	// ExeTruncated says the subject's executable path did not fit.
	ExeTruncated bool
	// NoHostPath says no host mount shows the object (a memfd, a file on a
	// mount only a private namespace has): Path is its name there.
	NoHostPath bool
	// ExeNoHostPath says the same of the subject's executable.
	ExeNoHostPath bool
	// Loaded says the exec was decided where a dynamic loader mapped the
	// program, not at an execve.
	Loaded bool
	// Res0 and Res1 describe a non-path object: the capability number, or
	// the socket family and (type << 16 | protocol), or for anonymous
	// memory made executable the protection and the mmap flags (or the
	// mapping's vm_flags, for mprotect).
	Res0, Res1 uint32
	// Source is the alert path that reported the decision, for an
	// enforcer that has more than one (AppArmor); "" for the others.
	Source AlertSource
	// Incident numbers the decision among those of the enforcer's run;
	// when two alert paths report it (AlertBoth), both events carry the
	// same number and the second is Linked. 0: not numbered.
	Incident uint64
	// Linked says another event already reported this decision: it is the
	// same incident seen by the other alert path, not a second one.
	Linked bool
}

// AlertSource says where an AppArmor enforcer's alerts come from. BPF-LSM
// decisions are reported by the programs that make them; AppArmor's are
// read either at the exit of the kernel's LSM entry points (eBPF) or from
// the kernel audit log (AppArmor's AVC records; the experimental path), or
// both, to compare them.
type AlertSource string

// Alert sources.
const (
	AlertEBPF  AlertSource = "ebpf"
	AlertAudit AlertSource = "audit"
	AlertBoth  AlertSource = "both"
)

// Has says whether s includes path p (AlertEBPF or AlertAudit).
func (s AlertSource) Has(p AlertSource) bool { return s == p || s == AlertBoth }

// RuleCounts are the decisions one rule made.
type RuleCounts struct {
	Allowed, Audited, Denied uint64
}

// Stats are counters an enforcer keeps. Every way to lose an event has one.
type Stats struct {
	Decisions      uint64 // hook calls that consulted a policy
	Denied         uint64
	Audited        uint64
	AlertsLost     uint64 // the kernel could not queue an alert (ring buffer full)
	EventsLost     uint64 // observed events the kernel could not queue
	PathsTruncated uint64
	ScratchBusy    uint64
	Torn           uint64 // decisions whose policy generation was rewritten meanwhile (decided as unresolvable)
	Cached         uint64 // path decisions made from the directory cache, without a walk from the root
	Undelivered    uint64 // decoded events dropped because the consumer was slow
	Malformed      uint64 // records that did not decode
	UnknownCaller  uint64 // observed execs whose calling program was not known
	TableFull      uint64 // processes not tracked because the process table was full
	Unattributed   uint64 // decisions the kernel reported that no rule explains (AppArmor)
	// MountsCut counts searches for a mount's canonical host mount that
	// met more mounts of one file system than they look at, and took the
	// best of those they saw (BPF-LSM).
	MountsCut uint64
	// Linked counts events that reported a decision another alert path
	// had already reported (AlertBoth): not incidents of their own.
	Linked uint64
	// By alert path, for an enforcer with more than one: what each
	// delivered and lost (AlertsLost is their sum).
	Paths map[AlertSource]PathStats
}

// PathStats are one alert path's counts.
type PathStats struct {
	Delivered uint64 // reports handed to the enforcer
	Lost      uint64 // reports known to be lost before that
}
