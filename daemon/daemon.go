package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/api"
	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/daemon/config"
	"github.com/kubearmor/kubearmor-host/daemon/metrics"
	"github.com/kubearmor/kubearmor-host/daemon/monitor"
	"github.com/kubearmor/kubearmor-host/daemon/notify"
	"github.com/kubearmor/kubearmor-host/daemon/proctree"
	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/daemon/summary"
	"github.com/kubearmor/kubearmor-host/daemon/usernames"
	"github.com/kubearmor/kubearmor-host/daemon/watch"
	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/detect"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/loader"
)

// Options wire the daemon to its surroundings; main builds them.
type Options struct {
	Config   config.Config
	Logger   *slog.Logger
	Notifier *notify.Notifier
	Alerts   record.Writer
	// Logs receives visibility logs; nil when they go nowhere but the
	// local API (hostLogTarget none).
	Logs record.Writer
	// Reload delivers SIGHUP: rescan the policy directory.
	Reload <-chan os.Signal
	// Load starts the chosen enforcer. Tests and main pass LoadEnforcer.
	Load func(detect.Enforcer, config.Config, *slog.Logger) (enforcer.Enforcer, error)
	// API is the local API: every alert and log is offered to it, and it
	// is served on Config.APISocket. Nil: no API.
	API *api.Server
	// Version is the daemon's, for the probe.
	Version string
	// KeepPins leaves pinned programs enforcing when the daemon exits, for
	// the service manager's stop action to decide (systemd's ExecStopPost
	// runs `kubearmor --cleanup`). Without it, exiting lifts the policies.
	KeepPins bool
}

// eventQueue is the number of decisions buffered between the enforcer's
// reader and the alert writer; beyond it the reader drops and counts.
const eventQueue = 4096

// telemetryQueue is the number of observed events buffered between the
// monitor's reader and the log pipeline; beyond it the reader drops and
// counts. It absorbs bursts the consumer cannot follow for a moment (a
// flood at 200,000/s on 2 cores lost 0.5 % at the queue with 8,192),
// at about 200 bytes a slot.
const telemetryQueue = 32768

// telemetryBurst is the in-kernel rate limit's burst, in seconds of the
// configured rate (telemetryRate, per CPU): a flood of opens is cut and
// counted before it fills the ring buffer or the journal.
const telemetryBurst = 2

// maxProcesses bounds the process tree.
const maxProcesses = 1 << 16

// statsInterval is how often counters are checked and, if any grew, logged.
const statsInterval = 30 * time.Second

// beatInterval paces the heartbeats of the reconcile loop and the pipeline;
// a loop that misses beats for beatTimeout stops the watchdog pings, and
// systemd restarts the daemon.
const (
	beatInterval = 5 * time.Second
	beatTimeout  = 4 * beatInterval
)

// Pinner is an enforcer whose kernel state can outlive the daemon.
type Pinner interface {
	// Pin makes this daemon's programs the ones that outlive it.
	Pin() error
	// Unpin lets the programs go when the enforcer closes.
	Unpin() error
}

type daemon struct {
	opts    Options
	log     *slog.Logger
	enf     enforcer.Enforcer
	report  detect.Report
	choice  detect.Choice
	started time.Time
	loader  *loader.Loader
	sets    setHistory

	users *usernames.Cache

	filesMu sync.Mutex
	files   []loader.FileStatus // of the policy set in force

	reconciled  *notify.Heartbeat
	alerted     *notify.Heartbeat
	readerDown  atomic.Pointer[error]
	watcherDown atomic.Pointer[error]

	writeErrors atomic.Uint64
	// reloads counts the SIGHUP rescans done, so that whoever sent the
	// signal can tell when it has been handled (kubearmor --reload), and
	// reloadFailures those that failed as a whole.
	reloads, reloadFailures atomic.Uint64
	lastCounters            []uint64 // values of the counters last logged

	startup *startup // where the time to READY=1 went

	monitor   *monitor.Monitor // nil when nothing is observed
	summary   lockedSummary
	logErrors atomic.Uint64
}

// Run runs the daemon until ctx is cancelled.
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
	now := time.Now()
	up := startup{begin: now, last: now}
	report := detect.Probe(ctx)
	up.mark(&up.probe)
	for _, n := range report.Notes {
		log.Info("probe", "note", n)
	}
	choice, err := detect.Choose(string(cfg.Enforcer), report)
	if err != nil {
		return fmt.Errorf("choose enforcer: %w", err)
	}
	log.Info("enforcer chosen", "enforcer", choice.Enforcer.String(), "reason", choice.Reason,
		"kernel", report.KernelRelease, "lsms", strings.Join(report.LSMs, ","))
	opts.Notifier.Status("starting: " + choice.Reason)

	enf, err := opts.Load(choice.Enforcer, cfg, log)
	if err != nil && choice.Enforcer == detect.AppArmor && cfg.Enforcer == config.EnforcerAuto {
		// AppArmor was the fallback already; what it needs beyond BPF-LSM
		// (CAP_MAC_ADMIN, CAP_AUDIT_READ, a writable securityfs) the
		// packaged unit does not grant unless a drop-in does.
		choice = detect.Choice{Enforcer: detect.None, Reason: fmt.Sprintf(
			"observe-only, nothing is blocked: BPF-LSM is not available (%s) and the AppArmor enforcer could not start: %v", report.BPFLSM.Reason, err)}
		log.Warn("enforcer chosen", "enforcer", choice.Enforcer.String(), "reason", choice.Reason)
		opts.Notifier.Status("starting: " + choice.Reason)
		enf, err = opts.Load(choice.Enforcer, cfg, log)
	}
	if err != nil {
		return fmt.Errorf("start %s enforcer: %w", choice.Enforcer, err)
	}
	up.mark(&up.enforcer)
	defer func() {
		if p, ok := enf.(Pinner); ok && !opts.KeepPins {
			if err := p.Unpin(); err != nil {
				log.Error("unpin programs", "error", err)
			}
		}
		enf.Close()
	}()

	host := policy.Host{Name: cfg.HostName, Labels: cfg.NodeLabels()}
	postures := policy.Postures{
		File:         posture(cfg.HostDefaultFilePosture),
		Network:      posture(cfg.HostDefaultNetworkPosture),
		Capabilities: posture(cfg.HostDefaultCapabilitiesPosture),
	}
	d := &daemon{
		opts:       opts,
		log:        log,
		enf:        enf,
		report:     report,
		choice:     choice,
		started:    time.Now(),
		users:      usernames.New("/etc/passwd"),
		summary:    lockedSummary{s: summary.New(summaryRows)},
		loader:     loader.New(cfg.PolicyDir, host, postures),
		reconciled: notify.NewHeartbeat("reconcile loop", beatTimeout),
		alerted:    notify.NewHeartbeat("alert pipeline", beatTimeout),
		startup:    &up,
	}
	if cfg.HostVisibility != 0 {
		m, err := monitor.Load(monitor.Options{Kinds: cfg.HostVisibility, RatePerCPU: uint64(cfg.TelemetryRate),
			BurstPerCPU: telemetryBurst * uint64(cfg.TelemetryRate), Ignore: uint32(os.Getpid()), Logger: log})
		if err != nil {
			// Visibility is not enforcement: go on without it, loudly.
			log.Error("visibility unavailable: no process, file or network logs", "hostVisibility", cfg.HostVisibility.String(), "error", err)
		} else {
			d.monitor = m
			defer m.Close()
			log.Info("observing", "hostVisibility", cfg.HostVisibility.String(), "logs", string(cfg.HostLogTarget))
			if cfg.HostVisibility&monitor.Capabilities != 0 {
				log.Info("capabilities visibility: no monitor sees every capability check; capability use is logged by capability rules (Audit logs each use, decided in the capable hook)")
			}
		}
		up.mark(&up.monitor)
	}
	return d.run(ctx)
}

// startup times the steps from Run's start to READY=1, so that a slow start
// says which step it was: under emulation the kernel's verifier of the
// enforcer's programs can take most of a minute.
type startup struct {
	begin, last                             time.Time
	probe, enforcer, monitor, firstSet, pin time.Duration
}

// mark ends a step: the time since the previous one goes to step.
func (s *startup) mark(step *time.Duration) {
	now := time.Now()
	*step, s.last = now.Sub(s.last), now
}

func (s *startup) attrs() []any {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	return []any{"startup_ms", ms(time.Since(s.begin)), "probe_ms", ms(s.probe), "enforcer_ms", ms(s.enforcer),
		"monitor_ms", ms(s.monitor), "first_set_ms", ms(s.firstSet), "pin_ms", ms(s.pin)}
}

func posture(p config.Posture) policy.Posture {
	if pp, ok := policy.ParsePosture(string(p)); ok {
		return pp
	}
	return policy.PostureAudit
}

func (d *daemon) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	// The first set is in force before anything reports ready. If the
	// directory cannot be trusted or the kernel refuses the set, nothing is
	// enforced: that is fatal, so systemd says the service failed, rather
	// than a READY=1 that protects nothing.
	if err := d.reconcile("start"); err != nil {
		return err
	}
	d.startup.mark(&d.startup.firstSet)
	// Only now may this daemon's programs replace what a previous one left
	// pinned: both enforced until here, so there was no gap.
	pinned := true
	if p, ok := d.enf.(Pinner); ok {
		if err := p.Pin(); err != nil {
			d.log.Error("programs not pinned: enforcement will not outlive the daemon", "error", err)
			pinned = false
		}
	}
	// What another enforcer left goes only once this one's outlives the
	// daemon too.
	if pinned {
		retireOthers(d.choice.Enforcer, d.opts.Config.BPFPinPath, d.log)
	}
	d.startup.mark(&d.startup.pin)

	if d.monitor != nil {
		telemetry := make(chan monitor.Event, telemetryQueue)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := d.monitor.Run(ctx, telemetry); err != nil {
				d.log.Error("telemetry reader stopped: no more logs", "error", err)
			}
		}()
		go func() {
			defer wg.Done()
			d.observe(ctx, telemetry)
		}()
	}
	if d.opts.API != nil {
		// Listening before READY=1, so that karmor works as soon as
		// systemd says the service started. The API is how people look,
		// not what enforces: without it the daemon goes on, loudly.
		if ln, err := api.Listen(d.opts.Config.APISocket); err != nil {
			d.log.Error("local API not served: karmor cannot reach this daemon", "error", err)
		} else {
			wg.Go(func() {
				if err := d.opts.API.Serve(ctx, ln, d); err != nil {
					d.log.Error("local API stopped: karmor cannot reach this daemon", "error", err)
				}
			})
		}
	}
	if addr := d.opts.Config.MetricsAddress; addr != "" {
		wg.Go(func() {
			if err := metrics.Serve(ctx, addr, d.counters, d.log); err != nil {
				d.log.Error("metrics not served", "error", err)
			}
		})
	}
	events := make(chan enforcer.Event, eventQueue)
	wg.Add(4)
	go func() {
		defer wg.Done()
		if err := d.enf.Run(ctx, events); err != nil {
			d.log.Error("event reader stopped", "error", err)
			d.readerDown.Store(&err)
		}
	}()
	go func() {
		defer wg.Done()
		d.pipeline(ctx, events)
	}()
	w := watch.New(d.opts.Config.PolicyDir, d.opts.Config.ReloadDebounce, d.log)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("policy watcher stopped", "error", err)
			d.watcherDown.Store(&err)
		}
	}()
	go func() {
		defer wg.Done()
		notify.RunWatchdog(ctx, d.opts.Notifier, d.reconciled.Check, d.alerted.Check, d.readerAlive, d.watcherAlive)
	}()

	d.opts.Notifier.Ready(d.status())
	d.log.Info("ready", d.startup.attrs()...)
	tick := time.NewTicker(beatInterval)
	defer tick.Stop()
	lastStats := time.Now()
	triggers := w.Triggers()
	for {
		d.reconciled.Beat()
		select {
		case <-ctx.Done():
			d.opts.Notifier.Stopping()
			d.logStats()
			if _, ok := d.enf.(Pinner); ok && d.opts.KeepPins {
				d.log.Info("stopping: the pinned programs keep enforcing until the service manager cleans up")
			} else {
				d.log.Info("stopping: policies are no longer enforced once the daemon exits")
			}
			return nil
		case tr, ok := <-triggers:
			if !ok {
				// The watcher died (logged, and the watchdog stops, so
				// systemd restarts the daemon); SIGHUP still reloads.
				triggers = nil
				continue
			}
			// Also on watch.ReasonStarted: a file may have changed between
			// the start-up load and the watch; an unchanged set costs nothing.
			_ = d.reconcile(tr.Reason + describePaths(tr.Paths)) // logged; the set in force stays
			d.opts.Notifier.Status(d.status())
		case <-d.opts.Reload:
			d.opts.Notifier.Reloading()
			if err := d.reconcile("SIGHUP"); err != nil { // logged; the set in force stays
				d.reloadFailures.Add(1)
			}
			d.reloads.Add(1)
			d.opts.Notifier.Ready(d.status())
		case <-tick.C:
			if time.Since(lastStats) >= statsInterval {
				d.logStats()
				lastStats = time.Now()
			}
		}
	}
}

func describePaths(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	return ": " + strings.Join(paths, ", ")
}

func (d *daemon) watcherAlive() error {
	if err := d.watcherDown.Load(); err != nil {
		return fmt.Errorf("policy watcher stopped: %w", *err)
	}
	return nil
}

func (d *daemon) readerAlive() error {
	if err := d.readerDown.Load(); err != nil {
		return fmt.Errorf("event reader stopped: %w", *err)
	}
	return nil
}

// reconcile loads the policy directory and puts the result in force. On any
// error the set in force stays: a bad file or a refused update never weakens
// enforcement. It returns an error when nothing new could be put in force:
// the directory could not be read or trusted, or the kernel refused the set.
func (d *daemon) reconcile(reason string) error {
	res, err := d.loader.Load(d.enf.Validate)
	if err != nil {
		d.log.Error("policy directory not loaded; the policy set in force stays", "dir", d.opts.Config.PolicyDir, "error", err)
		return err
	}
	for _, f := range res.Files {
		switch f.State {
		case loader.Rejected:
			d.log.Error("policy file rejected", "file", f.Path, "error", f.Err)
		case loader.Stale:
			d.log.Error("policy file rejected; its last good version stays in force", "file", f.Path,
				"error", f.Err, "since", f.Since.Format(time.RFC3339))
		}
		for _, p := range f.Policies {
			if !p.Applied {
				d.log.Warn("policy not applied to this host", "policy", p.Name, "file", f.Path, "line", p.Line, "reason", p.Reason)
			}
		}
	}
	if !res.Changed && d.sets.current() != nil {
		d.setFiles(res.Files)
		d.log.Debug("policy set unchanged", "reason", reason)
		return nil
	}
	warnSymlinks(d.log, res.Set)
	// Known before the kernel uses it, so its first alerts name their policy.
	d.sets.add(res.Set)
	if err := d.enf.Apply(res.Set); err != nil {
		d.sets.remove(res.Set)
		d.log.Error("policy set not applied; the set in force stays", "version", res.Set.Version(), "error", err)
		return fmt.Errorf("apply policy set %d: %w", res.Set.Version(), err)
	}
	res.Commit()
	d.setFiles(res.Files)
	kinds := res.Set.CountByKind()
	d.log.Info("policy set applied", "reason", reason, "version", res.Set.Version(), "rules", res.Set.Len(),
		"process_rules", kinds[policy.KindProcess], "summary", res.Summary(), "enforcer", d.enf.Name())
	return nil
}

func (d *daemon) status() string {
	set := d.sets.current()
	n := 0
	if set != nil {
		n = set.Len()
	}
	if d.choice.Enforcer == detect.None {
		return fmt.Sprintf("observe-only, auditing %d rules (nothing is blocked): %s", n, d.choice.Reason)
	}
	return fmt.Sprintf("enforcing %d rules with %s", n, d.choice.Reason)
}

// pipeline turns decisions into alerts. It never blocks the reader: the
// channel between them is buffered and the reader drops what does not fit.
func (d *daemon) pipeline(ctx context.Context, events <-chan enforcer.Event) {
	rc := record.Context{
		HostName:  d.opts.Config.HostName,
		Enforcer:  d.enf.Name(),
		Rule:      d.sets.rule,
		ParentExe: parentExe,
		UserName:  d.users.Name,
	}
	tick := time.NewTicker(beatInterval)
	defer tick.Stop()
	for {
		d.alerted.Beat()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case ev := <-events:
			a := record.FromEvent(ev, rc)
			if err := d.opts.Alerts.Write(a); err != nil {
				if d.writeErrors.Add(1) == 1 {
					d.log.Error("alert not written (counted; further errors are only counted)", "error", err)
				}
			}
			if d.opts.API != nil {
				d.opts.API.Write(a) // never blocks; a slow client loses its own
			}
		}
	}
}

// observe turns observed events into logs, keeping the process tree.
func (d *daemon) observe(ctx context.Context, events <-chan monitor.Event) {
	tree := proctree.New(maxProcesses, "/proc")
	tree.Seed()
	lc := record.LogContext{
		HostName: d.opts.Config.HostName,
		Process: func(pid uint32) record.Process {
			p, _ := tree.Lookup(pid)
			return record.Process{Exe: p.Exe, Cwd: p.Cwd, TTY: p.TTY}
		},
		UserName: d.users.Name,
	}
	for {
		var ev monitor.Event
		select {
		case <-ctx.Done():
			return
		case ev = <-events:
		}
		switch ev.Type {
		case monitor.Exec:
			tree.Exec(proctree.Proc{PID: ev.PID, PPID: ev.PPID, UID: ev.UID, Exe: ev.Path, Cwd: ev.Cwd, TTY: ev.TTY})
		case monitor.Fork:
			tree.Fork(ev.PID, ev.PPID, ev.UID)
		case monitor.Exit:
			tree.Exit(ev.PID)
		}
		l, ok := record.FromMonitor(ev, lc)
		if !ok {
			continue
		}
		d.summary.add(ev, l)
		if d.opts.API != nil {
			d.opts.API.Write(l)
		}
		if d.opts.Logs == nil {
			continue
		}
		if err := d.opts.Logs.Write(l); err != nil {
			if d.logErrors.Add(1) == 1 {
				d.log.Error("log not written (counted; further errors are only counted)", "error", err)
			}
		}
	}
}

func parentExe(pid uint32) string {
	exe, err := os.Readlink("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/exe")
	if err != nil {
		return ""
	}
	return exe
}

// logStats writes every counter, grouped by stage, when any of them
// moved, and the decisions of each policy in force.
func (d *daemon) logStats() {
	cs := d.counters()
	values := make([]uint64, len(cs))
	for i, c := range cs {
		values[i] = c.Value
	}
	if slices.Equal(values, d.lastCounters) {
		return
	}
	d.lastCounters = values
	if version, counts := d.enf.RuleStats(); len(counts) > 0 {
		if line := d.policyCounts(version, counts); line != "" {
			d.log.Info("decisions by policy", "version", version, "policies", line)
		}
	}
	stages, byStage := hostpb.ByStage(cs)
	attrs := make([]any, 0, len(stages))
	for _, st := range stages {
		var group []any
		for _, c := range byStage[st] {
			group = append(group, slog.Uint64(c.Name, c.Value))
		}
		attrs = append(attrs, slog.Group(st, group...))
	}
	d.log.Info("counters", attrs...)
}

// policyCounts sums rule decisions per policy: "name: allowed A, audited B,
// denied C; ...", with the default posture as DefaultPosture.
func (d *daemon) policyCounts(version uint64, counts []enforcer.RuleCounts) string {
	type total struct{ allowed, audited, denied uint64 }
	byPolicy := map[string]*total{}
	var order []string
	for id, c := range counts {
		if c == (enforcer.RuleCounts{}) {
			continue
		}
		name := record.PolicyDefaultPosture
		if id > 0 {
			r, ok := d.sets.rule(version, uint32(id))
			if !ok {
				continue
			}
			name = r.Policy
		}
		t, ok := byPolicy[name]
		if !ok {
			t = &total{}
			byPolicy[name] = t
			order = append(order, name)
		}
		t.allowed += c.Allowed
		t.audited += c.Audited
		t.denied += c.Denied
	}
	parts := make([]string, 0, len(order))
	for _, name := range order {
		t := byPolicy[name]
		parts = append(parts, fmt.Sprintf("%s: allowed %d, audited %d, denied %d", name, t.allowed, t.audited, t.denied))
	}
	return strings.Join(parts, "; ")
}

// setHistory keeps the last few policy sets, so an alert decided by a set
// that was replaced a moment ago still names its policy.
type setHistory struct {
	mu   sync.RWMutex
	sets []*policy.Set
}

const keepSets = 8

func (h *setHistory) add(s *policy.Set) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sets = append(h.sets, s)
	if len(h.sets) > keepSets {
		h.sets = h.sets[len(h.sets)-keepSets:]
	}
}

func (h *setHistory) remove(s *policy.Set) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sets = slices.DeleteFunc(h.sets, func(x *policy.Set) bool { return x == s })
}

func (h *setHistory) current() *policy.Set {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.sets) == 0 {
		return nil
	}
	return h.sets[len(h.sets)-1]
}

func (h *setHistory) rule(version uint64, id uint32) (*policy.Rule, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, s := range h.sets {
		if s.Version() == version {
			return s.Rule(id)
		}
	}
	return nil, false
}
