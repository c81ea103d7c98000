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
	"github.com/kubearmor/kubearmor-host/enforcer/denials"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// Name is the Enforcer value of this enforcer's alerts.
const Name = "AppArmor"

// pathQueue is how many reports each alert path can queue for attribution.
const pathQueue = 1 << 15

// avcWait is how long an event's records are waited for (see Load).
const avcWait = 300 * time.Millisecond

// Options configure Load.
type Options struct {
	Logger *slog.Logger
	Parser string // apparmor_parser; looked up in PATH if empty
	// Source is where alerts come from (enforcer.AlertEBPF if empty).
	Source enforcer.AlertSource
}

// Enforcer puts policy sets in force as AppArmor profiles and reports the
// decisions AppArmor makes, seen at the exit of the kernel's LSM entry
// points (package denials), or read from the AVC records AppArmor writes to
// the audit log (the multicast group), or both; the reference matcher
// attributes each to a rule.
type Enforcer struct {
	log      *slog.Logger
	loader   *Loader
	features Features
	keep     bool   // Pin: the profiles outlive the daemon
	lost0    uint32 // the kernel's audit lost counter at Load
	source   enforcer.AlertSource
	audit    *reader.Reader   // nil unless source has audit
	watcher  *denials.Watcher // nil unless source has ebpf
	tally    atomic.Pointer[tally]
	links    *linker // owned by Run

	decisions, denied, audited, unattributed atomic.Uint64
	undelivered, linked                      atomic.Uint64
	fromAudit, fromEBPF                      atomic.Uint64
}

var _ enforcer.Enforcer = (*Enforcer)(nil)

// tally is the set in force, its matcher, and what each rule decided.
type tally struct {
	*match.Matcher
	counts []ruleCounts // by rule ID; 0 is the default posture
}

type ruleCounts struct{ audited, denied atomic.Uint64 }

// Load finds apparmor_parser, checks that profiles can be loaded
// (CAP_MAC_ADMIN, a writable securityfs), and opens the alert paths: the
// denial programs (tracing programs: CAP_BPF and CAP_PERFMON) and the audit
// log's multicast group (CAP_AUDIT_READ). A path that cannot open gives way
// to the other, said loudly; enforcement does not depend on either.
func Load(opts Options) (*Enforcer, error) {
	e := &Enforcer{log: opts.Logger, loader: &Loader{Parser: opts.Parser}, features: KernelFeatures(),
		source: opts.Source, links: newLinker()}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.source == "" {
		e.source = enforcer.AlertEBPF
	}
	if e.loader.Parser == "" {
		p, err := exec.LookPath("apparmor_parser")
		if err != nil {
			return nil, fmt.Errorf("apparmor: %w (install apparmor)", err)
		}
		e.loader.Parser = p
	}
	// Without these every Apply would fail: said now, so that the daemon
	// can choose otherwise (auto falls back to observe-only).
	if err := CanLoad(); err != nil {
		return nil, fmt.Errorf("apparmor: %w", err)
	}
	if e.source.Has(enforcer.AlertEBPF) {
		w, err := denials.Load(denials.Options{Logger: e.log, Ignore: uint32(os.Getpid())})
		switch {
		case err == nil:
			e.watcher = w
		case e.source == enforcer.AlertBoth:
			e.log.Warn("alertSource both: the eBPF alert path cannot load, alerts come from the audit log alone", "error", err)
			e.source = enforcer.AlertAudit
		default:
			e.log.Warn("alertSource ebpf: the eBPF alert path cannot load, alerts come from the audit log instead", "error", err)
			e.source = enforcer.AlertAudit
		}
	}
	if e.source.Has(enforcer.AlertAudit) {
		// Enforcement does not depend on an alert path: one that cannot
		// open is said, not fatal.
		if err := e.openAudit(); err != nil && e.watcher != nil {
			e.log.Error("the audit alert path cannot open: alerts come from the eBPF path alone", "error", err)
			e.source = enforcer.AlertEBPF
		} else if err != nil {
			e.log.Error("no alert path: AppArmor enforces, but its decisions are not reported", "error", err)
			e.source = ""
		}
	}
	// A previous daemon's profiles keep confining the processes attached
	// to them until the first Apply replaces them.
	if err := e.loader.Adopt(); err != nil {
		e.log.Warn("cannot list the profiles a previous daemon left", "error", err)
	}
	return e, nil
}

// openAudit joins the audit log's multicast group.
func (e *Enforcer) openAudit() error {
	// An AVC record of a task without an audit context (audit is off
	// unless auditd turned it on) is an event alone, with no end-of-event
	// record: it is complete when the reassembler gives up waiting for more.
	// The records of one event come within one system call, so a short wait
	// loses nothing and keeps alerts prompt (the default would delay each
	// by 2 s).
	r, err := reader.Open(reader.Options{Timeout: avcWait})
	if err != nil {
		return fmt.Errorf("apparmor: alerts from the audit log: %w", err)
	}
	e.audit = r
	if st, err := r.Status(); err == nil {
		e.lost0 = st.Lost
	}
	return nil
}

// Source is where the alerts come from, after Load's fallback.
func (e *Enforcer) Source() enforcer.AlertSource { return e.source }

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
	// One line per way around, naming its rules: the same few reasons
	// hold for most rules of a large set.
	for _, g := range groupByReason(c.Partial) {
		e.log.Warn("rules enforced in part: a way around them AppArmor cannot close", "reason", g.reason, "rules", g.rules)
	}
	if !e.source.Has(enforcer.AlertAudit) {
		for _, l := range unseenAudits(set) {
			e.log.Warn("rule enforced without alerts: a limitation of alertSource ebpf under AppArmor", "rule", l.Rule, "at", l.Origin.String(), "reason", l.Reason)
		}
	}
	if err := e.loader.Replace(append(c.Profiles, SelfProfile(e.loader.Parser))); err != nil {
		return err
	}
	e.tally.Store(&tally{Matcher: match.New(set), counts: make([]ruleCounts, set.Len()+1)})
	return nil
}

type reasonGroup struct {
	reason string
	rules  []string // "ID (origin)"
}

// groupByReason gathers limitations by reason, in order of first mention.
func groupByReason(ls []Limitation) []reasonGroup {
	var out []reasonGroup
	at := map[string]int{}
	for _, l := range ls {
		i, ok := at[l.Reason]
		if !ok {
			i = len(out)
			at[l.Reason] = i
			out = append(out, reasonGroup{reason: l.Reason})
		}
		out[i].rules = append(out[i].rules, fmt.Sprintf("%d (%s)", l.Rule, l.Origin))
	}
	return out
}

// unseenAudits lists the rules whose decisions the eBPF path cannot see:
// it sees refusals, and an Audit rule allows.
func unseenAudits(set *policy.Set) []Limitation {
	var out []Limitation
	for r := range set.Rules() {
		if r.Action == policy.ActionAudit {
			out = append(out, Limitation{Rule: r.ID, Origin: r.Origin,
				Reason: "an Audit rule allows, and AppArmor's audited allows are seen only in the audit log (alertSource audit or both)"})
		}
	}
	return out
}

// Run implements enforcer.Enforcer: it reads both paths, as configured.
func (e *Enforcer) Run(ctx context.Context, events chan<- enforcer.Event) error {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	running := 0
	// The readers stop before Run returns: Close must not release what
	// one is still reading.
	defer func() {
		cancel()
		for ; running > 0; running-- {
			<-done
		}
	}()
	// Deep queues between the paths' readers and attribution (the
	// matcher per report), which a flood outruns before the rings do; what
	// does not fit is counted by the reader that dropped it.
	var records chan reader.Event
	var refusals chan denials.Denial
	if e.audit != nil {
		records = make(chan reader.Event, pathQueue)
		running++
		go func() { done <- e.audit.Run(ctx, records) }()
	}
	if e.watcher != nil {
		refusals = make(chan denials.Denial, pathQueue)
		running++
		go func() { done <- e.watcher.Run(ctx, refusals) }()
	}
	if running == 0 {
		<-ctx.Done() // no alert path (said at Load): nothing to read
		return nil
	}
	for {
		select {
		case err := <-done:
			// One path ended: the other must not go on alone unnoticed.
			running--
			return err
		case rec := <-records:
			for _, m := range rec.Messages {
				if a, ok := parseAVC(m); ok {
					e.fromAudit.Add(1)
					e.decide(fromAVC(a, rec.Time), events)
				}
			}
		case d := <-refusals:
			e.fromEBPF.Add(1)
			e.decide(fromDenial(d), events)
		}
	}
}

// decision is one alert path's report, in the terms of the matcher.
type decision struct {
	report
	ev         enforcer.Event // what the report says, before attribution
	path2      string         // a link's or rename's new name (eBPF path; the audit path names the side refused)
	exeUnknown bool
	socket     policy.Socket
	cap        policy.Capability
}

// fromAVC reads an AVC record. Its subject is the process's program, read
// now (it made the call that was decided, and is still there unless it
// has exited since).
func fromAVC(a avc, at time.Time) decision {
	exe, err := os.Readlink("/proc/" + strconv.FormatUint(uint64(a.PID), 10) + "/exe")
	d := decision{
		ev: enforcer.Event{Time: at, Op: a.Op, PID: a.PID, TID: a.PID, UID: a.FSUID, OwnerUID: a.OUID,
			Comm: a.Comm, Path: a.Path, Exe: exe, Source: enforcer.AlertAudit},
		exeUnknown: err != nil, socket: a.Socket, cap: a.Cap,
	}
	d.report = report{key: keyOf(a.Op, a.PID, a.Path, a.Denied, a.Cap, a.Socket), source: enforcer.AlertAudit, at: at}
	return d
}

// fromDenial reads a refusal the eBPF path saw: the kernel read the
// subject's program when it refused.
func fromDenial(r denials.Denial) decision {
	d := decision{
		ev: enforcer.Event{Time: r.Time, Op: r.Op, PID: r.PID, TID: r.TID, PPID: r.PPID, UID: r.UID, OwnerUID: r.OwnerUID,
			Comm: r.Comm, Path: r.Path, Exe: r.Exe, Truncated: r.Truncated, ExeTruncated: r.ExeTruncated,
			Source: enforcer.AlertEBPF},
		path2: r.Path2, exeUnknown: r.ExeTruncated, socket: r.Socket, cap: r.Cap,
	}
	d.report = report{key: keyOf(r.Op, r.PID, r.Path, true, r.Cap, r.Socket), source: enforcer.AlertEBPF, at: r.Time}
	return d
}

func keyOf(op match.Op, pid uint32, path string, denied bool, c policy.Capability, s policy.Socket) linkKey {
	k := linkKey{op: op, pid: pid, object: path, denied: denied}
	switch op {
	case match.OpCapable:
		k.res0 = uint32(c)
	case match.OpSocketCreate:
		k.res0, k.res1 = uint32(s.Family), uint32(s.Type)<<16|uint32(s.Protocol)
	}
	return k
}

// decide attributes one decision to a rule and sends its alert. With both
// paths on, the second report of a decision is sent linked to the first
// and counted once.
func (e *Enforcer) decide(d decision, events chan<- enforcer.Event) {
	t := e.tally.Load()
	if t == nil {
		return
	}
	now := time.Now()
	both := e.source == enforcer.AlertBoth
	if both {
		if first := e.links.twin(d.report, now); first != nil {
			e.linked.Add(1)
			if !first.attributed {
				return // the first was counted as unattributed
			}
			out := first.event
			out.Time, out.Source, out.Linked = d.ev.Time, d.source, true
			if out.Exe == "" {
				out.Exe = d.ev.Exe
			}
			e.send(out, events)
			return
		}
	}
	// Only a refusal has a twin: the eBPF path does not see audited allows.
	in := e.links.add(d.report, now, both && d.key.denied)
	e.decisions.Add(1)
	subj := match.Subject{Exe: d.ev.Exe, UID: d.ev.UID, ExeUnknown: d.exeUnknown}
	obj := match.Object{Path: d.ev.Path, OwnerUID: d.ev.OwnerUID, Socket: d.socket, Capability: d.cap, PathTooLong: d.ev.Truncated}
	agrees := func(v match.Decision) bool { return v.Verdict.Alerted() && v.Verdict.Denied() == d.key.denied }
	v := t.Decide(d.ev.Op, subj, obj)
	if !agrees(v) && d.path2 != "" {
		// A link or rename: the rule may have named the new name.
		obj.Path = d.path2
		if v2 := t.Decide(d.ev.Op, subj, obj); agrees(v2) {
			v, d.ev.Path = v2, d.path2
		}
	}
	if !agrees(v) {
		// AppArmor decided what no rule explains the same way: counted,
		// not guessed at.
		e.unattributed.Add(1)
		return
	}
	if int(v.RuleID) < len(t.counts) {
		if d.key.denied {
			t.counts[v.RuleID].denied.Add(1)
			e.denied.Add(1)
		} else {
			t.counts[v.RuleID].audited.Add(1)
			e.audited.Add(1)
		}
	}
	out := d.ev
	out.Version, out.RuleID, out.Verdict, out.Incident = t.Set().Version(), v.RuleID, v.Verdict, in.id
	out.Res0 = uint32(d.cap)
	if d.ev.Op == match.OpSocketCreate {
		out.Res0, out.Res1 = uint32(d.socket.Family), uint32(d.socket.Type)<<16|uint32(d.socket.Protocol)
	}
	in.attributed, in.event = true, out
	e.send(out, events)
}

// send hands an alert on without blocking; what does not fit is counted.
func (e *Enforcer) send(ev enforcer.Event, events chan<- enforcer.Event) {
	select {
	case events <- ev:
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

// Stats implements enforcer.Enforcer. The audit path's losses: records
// dropped where the socket overflowed (ENOBUFS) show up as gaps in the
// serial numbers; records the kernel could not queue at all (backlog full,
// rate limit) never got one, and are in its lost counter, which counts
// every audit record of the host, not only ours. The eBPF path's: a full
// ring buffer, and what its reader could not hand on.
func (e *Enforcer) Stats() enforcer.Stats {
	s := enforcer.Stats{
		Decisions:    e.decisions.Load(),
		Denied:       e.denied.Load(),
		Audited:      e.audited.Load(),
		Undelivered:  e.undelivered.Load(),
		Unattributed: e.unattributed.Load(),
		Linked:       e.linked.Load(),
		Paths:        make(map[enforcer.AlertSource]enforcer.PathStats),
	}
	if e.audit != nil {
		a := e.audit.Stats()
		lost := a.Gaps + a.Undelivered
		if st, err := e.audit.Status(); err == nil && st.Lost >= e.lost0 {
			lost += uint64(st.Lost - e.lost0)
		}
		s.Paths[enforcer.AlertAudit] = enforcer.PathStats{Delivered: e.fromAudit.Load(), Lost: lost}
		s.Malformed += a.Malformed
	}
	if e.watcher != nil {
		w := e.watcher.Stats()
		s.Paths[enforcer.AlertEBPF] = enforcer.PathStats{Delivered: e.fromEBPF.Load(), Lost: w.RingFull + w.Undelivered + w.Missed}
		s.Malformed += w.Malformed
		s.ScratchBusy = w.Busy
	}
	for _, p := range s.Paths {
		s.AlertsLost += p.Lost
	}
	return s
}

// Close closes the alert paths and, unless pinned, removes the profiles:
// nothing stays enforced after a deliberate stop, as with BPF-LSM.
func (e *Enforcer) Close() error {
	var errs []error
	if !e.keep {
		errs = append(errs, e.loader.RemoveAll())
	}
	if e.audit != nil {
		errs = append(errs, e.audit.Close())
	}
	if e.watcher != nil {
		errs = append(errs, e.watcher.Close())
	}
	return errors.Join(errs...)
}
