package apparmor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kubearmor/kubearmor-host/audit/reader"
	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// Name is the Enforcer value of this enforcer's alerts.
const Name = "AppArmor"

// avcWait is how long an event's records are waited for (see Load).
const avcWait = 300 * time.Millisecond

// Options configure Load.
type Options struct {
	Logger *slog.Logger
	Parser string // apparmor_parser; looked up in PATH if empty
}

// Enforcer puts policy sets in force as AppArmor profiles and reports the
// decisions AppArmor logs to the kernel audit log (its AVC records, read
// from the multicast group), attributed to rules by the reference matcher.
type Enforcer struct {
	log      *slog.Logger
	loader   *Loader
	features Features
	keep     bool   // Pin: the profiles outlive the daemon
	lost0    uint32 // the kernel's audit lost counter at Load
	audit    *reader.Reader
	tally    atomic.Pointer[tally]

	decisions, denied, audited, unattributed atomic.Uint64
	undelivered                              atomic.Uint64
}

var _ enforcer.Enforcer = (*Enforcer)(nil)

// tally is the set in force, its matcher, and what each rule decided.
type tally struct {
	*match.Matcher
	counts []ruleCounts // by rule ID; 0 is the default posture
}

type ruleCounts struct{ audited, denied atomic.Uint64 }

// Load finds apparmor_parser and joins the audit log's multicast group,
// which needs CAP_AUDIT_READ; loading profiles needs CAP_MAC_ADMIN.
func Load(opts Options) (*Enforcer, error) {
	e := &Enforcer{log: opts.Logger, loader: &Loader{Parser: opts.Parser}, features: KernelFeatures()}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.loader.Parser == "" {
		p, err := exec.LookPath("apparmor_parser")
		if err != nil {
			return nil, fmt.Errorf("apparmor: %w (install apparmor)", err)
		}
		e.loader.Parser = p
	}
	// An AVC record of a task without an audit context (audit is off
	// unless auditd turned it on) is an event alone, with no end-of-event
	// record: it is complete when the reassembler gives up waiting for more.
	// The records of one event come within one system call, so a short wait
	// loses nothing and keeps alerts prompt (the default would delay each
	// by 2 s).
	r, err := reader.Open(reader.Options{Timeout: avcWait})
	if err != nil {
		return nil, fmt.Errorf("apparmor: its decisions come from the audit log: %w", err)
	}
	e.audit = r
	if st, err := r.Status(); err == nil {
		e.lost0 = st.Lost
	}
	// A previous daemon's profiles keep confining the processes attached
	// to them until the first Apply replaces them.
	if err := e.loader.Adopt(); err != nil {
		e.log.Warn("cannot list the profiles a previous daemon left", "error", err)
	}
	return e, nil
}

// Pin implements the daemon's Pinner: the profiles stay loaded when the
// daemon exits (a restart must not unconfine the processes attached to
// them, which AppArmor attaches at exec only); kubearmor --cleanup
// removes them after a deliberate stop.
func (e *Enforcer) Pin() error {
	e.keep = true
	return nil
}

// Unpin implements the daemon's Pinner: closing removes the profiles.
func (e *Enforcer) Unpin() error {
	e.keep = false
	return nil
}

// Name implements enforcer.Enforcer.
func (e *Enforcer) Name() string { return Name }

// Validate implements enforcer.Enforcer. Rules AppArmor cannot express are
// not errors: Apply reports them.
func (e *Enforcer) Validate(set *policy.Set) error {
	_, err := Compile(set, e.features)
	return err
}

// Apply implements enforcer.Enforcer: every profile is replaced in the
// kernel, each atomically.
func (e *Enforcer) Apply(set *policy.Set) error {
	c, err := Compile(set, e.features)
	if err != nil {
		return err
	}
	for _, l := range c.Limitations {
		e.log.Warn("rule not enforced: a limitation of the AppArmor enforcer", "rule", l.Rule, "at", l.Origin.String(), "reason", l.Reason)
	}
	if err := e.loader.Replace(append(c.Profiles, SelfProfile(e.loader.Parser))); err != nil {
		return err
	}
	e.tally.Store(&tally{Matcher: match.New(set), counts: make([]ruleCounts, set.Len()+1)})
	return nil
}

// Run implements enforcer.Enforcer.
func (e *Enforcer) Run(ctx context.Context, events chan<- enforcer.Event) error {
	records := make(chan reader.Event, 4096)
	done := make(chan error, 1)
	go func() { done <- e.audit.Run(ctx, records) }()
	for {
		select {
		case err := <-done:
			return err
		case rec := <-records:
			for _, m := range rec.Messages {
				if a, ok := parseAVC(m); ok {
					e.decide(a, rec, events)
				}
			}
		}
	}
}

// decide attributes one AppArmor decision to a rule.
func (e *Enforcer) decide(a avc, rec reader.Event, events chan<- enforcer.Event) {
	t := e.tally.Load()
	if t == nil {
		return
	}
	e.decisions.Add(1)
	// The subject: the process's program, read now (it made the call
	// that was decided, and is still there unless it has exited since).
	exe, err := os.Readlink("/proc/" + strconv.FormatUint(uint64(a.PID), 10) + "/exe")
	d := t.Decide(a.Op, match.Subject{Exe: exe, UID: a.FSUID, ExeUnknown: err != nil},
		match.Object{Path: a.Path, OwnerUID: a.OUID, Socket: a.Socket, Capability: a.Cap})
	if !d.Verdict.Alerted() || d.Verdict.Denied() != a.Denied {
		// AppArmor decided what no rule explains the same way: counted,
		// not guessed at.
		e.unattributed.Add(1)
		return
	}
	if int(d.RuleID) < len(t.counts) {
		if a.Denied {
			t.counts[d.RuleID].denied.Add(1)
			e.denied.Add(1)
		} else {
			t.counts[d.RuleID].audited.Add(1)
			e.audited.Add(1)
		}
	}
	out := enforcer.Event{
		Time:     rec.Time,
		Version:  t.Set().Version(),
		RuleID:   d.RuleID,
		Verdict:  d.Verdict,
		Op:       a.Op,
		PID:      a.PID,
		TID:      a.PID,
		UID:      a.FSUID,
		OwnerUID: a.OUID,
		Comm:     a.Comm,
		Path:     a.Path,
		Exe:      exe,
		Res0:     uint32(a.Cap),
	}
	if a.Op == match.OpSocketCreate {
		out.Res0, out.Res1 = uint32(a.Socket.Family), uint32(a.Socket.Type)<<16|uint32(a.Socket.Protocol)
	}
	select {
	case events <- out:
	default:
		e.undelivered.Add(1)
	}
}

// RuleStats implements enforcer.Enforcer. AppArmor logs only what it
// denies or audits: allows are not counted.
func (e *Enforcer) RuleStats() (uint64, []enforcer.RuleCounts) {
	t := e.tally.Load()
	if t == nil {
		return 0, nil
	}
	out := make([]enforcer.RuleCounts, len(t.counts))
	for i := range t.counts {
		out[i] = enforcer.RuleCounts{Audited: t.counts[i].audited.Load(), Denied: t.counts[i].denied.Load()}
	}
	return t.Set().Version(), out
}

// Stats implements enforcer.Enforcer: the audit path's losses are the
// alerts'. Records dropped where the socket overflowed (ENOBUFS) show up
// as gaps in the serial numbers; records the kernel could not queue at all
// (backlog full, rate limit) never got one, and are in its lost counter,
// which counts every audit record of the host, not only ours.
func (e *Enforcer) Stats() enforcer.Stats {
	a := e.audit.Stats()
	lost := a.Gaps
	if st, err := e.audit.Status(); err == nil && st.Lost >= e.lost0 {
		lost += uint64(st.Lost - e.lost0)
	}
	return enforcer.Stats{
		Decisions:    e.decisions.Load(),
		Denied:       e.denied.Load(),
		Audited:      e.audited.Load(),
		AlertsLost:   lost,
		Undelivered:  e.undelivered.Load() + a.Undelivered,
		Malformed:    a.Malformed,
		Unattributed: e.unattributed.Load(),
	}
}

// Close leaves the audit log and, unless pinned, removes the profiles:
// nothing stays enforced after a deliberate stop, as with BPF-LSM.
func (e *Enforcer) Close() error {
	var err error
	if !e.keep {
		err = e.loader.RemoveAll()
	}
	return errors.Join(err, e.audit.Close())
}
