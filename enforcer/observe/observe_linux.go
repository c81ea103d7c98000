//go:build linux

package observe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/overlaylayout"
	"github.com/kubearmor/kubearmor-host/internal/percpu"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// Name is the Enforcer value of observed alerts, as KubeArmor names its
// monitor.
const Name = "eBPF Monitor"

// maxProcs bounds the process table.
const maxProcs = 1 << 16

// Enforcer audits execs with the reference matcher.
type Enforcer struct {
	log     *slog.Logger
	objs    monitorObjects
	links   []link.Link
	matcher atomic.Pointer[tally]

	undelivered, malformed, unknownCaller, tableFull atomic.Uint64
}

var _ enforcer.Enforcer = (*Enforcer)(nil)

// Load loads and attaches the process monitor.
func Load(log *slog.Logger) (*Enforcer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Enforcer{log: log}
	spec, err := loadMonitor()
	if err != nil {
		return nil, fmt.Errorf("load process monitor object: %w", err)
	}
	if err := overlaylayout.Configure(spec); err != nil {
		log.Warn("overlay", "error", err)
	}
	if err := spec.LoadAndAssign(&e.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			log.Error("BPF verifier rejected the monitor", "log", fmt.Sprintf("%+v", ve))
		}
		return nil, fmt.Errorf("load process monitor: %w", err)
	}
	for _, p := range []*ebpf.Program{e.objs.KaMonFork, e.objs.KaMonExec, e.objs.KaMonExit} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("attach %s: %w", p, err)
		}
		e.links = append(e.links, l)
	}
	return e, nil
}

// Name implements enforcer.Enforcer.
func (e *Enforcer) Name() string { return Name }

// Validate implements enforcer.Enforcer: the matcher understands every rule.
func (e *Enforcer) Validate(*policy.Set) error { return nil }

// tally is the matcher in force and what it decided.
type tally struct {
	*match.Matcher
	counts []ruleCounts // by rule ID; 0 is the default posture
}

type ruleCounts struct{ allowed, audited, denied atomic.Uint64 }

// Apply implements enforcer.Enforcer.
func (e *Enforcer) Apply(set *policy.Set) error {
	e.matcher.Store(&tally{Matcher: match.New(set), counts: make([]ruleCounts, set.Len()+1)})
	return nil
}

// RuleStats implements enforcer.Enforcer.
func (e *Enforcer) RuleStats() (uint64, []enforcer.RuleCounts) {
	t := e.matcher.Load()
	if t == nil {
		return 0, nil
	}
	out := make([]enforcer.RuleCounts, len(t.counts))
	for i := range t.counts {
		c := &t.counts[i]
		out[i] = enforcer.RuleCounts{Allowed: c.allowed.Load(), Audited: c.audited.Load(), Denied: c.denied.Load()}
	}
	return t.Set().Version(), out
}

// Run implements enforcer.Enforcer. It owns the process table.
func (e *Enforcer) Run(ctx context.Context, events chan<- enforcer.Event) error {
	rd, err := ringbuf.NewReader(e.objs.Events)
	if err != nil {
		return fmt.Errorf("open monitor ring buffer: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	defer rd.Close()
	// Seed after the programs are attached, so no process falls between
	// the scan and the first event. Events queued before the scan may
	// describe execs the scan already saw the result of: their caller is
	// unknown.
	procs := newProcTable(maxProcs)
	seeded := bootNow()
	seedFromProc(procs)
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read monitor ring buffer: %w", err)
		}
		ev, path, err := decodeMonEvent(rec.RawSample)
		if err != nil {
			e.malformed.Add(1)
			continue
		}
		switch monitorKaMonType(ev.Type) {
		case monitorKaMonTypeKA_MON_FORK:
			procs.fork(ev.Ppid, ev.Tgid)
		case monitorKaMonTypeKA_MON_EXIT:
			procs.exit(ev.Tgid)
		case monitorKaMonTypeKA_MON_EXEC:
			caller, known := procs.exec(ev.Tgid, path)
			if !known || ev.Ts < seeded {
				e.unknownCaller.Add(1)
				known = false
			}
			e.decide(ev, path, caller, known, events)
		}
		e.tableFull.Store(procs.dropped)
	}
}

func (e *Enforcer) decide(ev monitorMonEvent, path, caller string, known bool, events chan<- enforcer.Event) {
	m := e.matcher.Load()
	if m == nil {
		return
	}
	truncated := ev.Flags&uint8(monitorKaEventFlagKA_EV_PATH_TRUNCATED|monitorKaEventFlagKA_EV_SCRATCH_BUSY) != 0
	d := m.Decide(match.OpExec,
		match.Subject{Exe: caller, UID: ev.Fsuid, ExeUnknown: !known},
		match.Object{Path: path, OwnerUID: ev.OwnerUid, PathTooLong: truncated})
	if d.Verdict != match.NoMatch && int(d.RuleID) < len(m.counts) {
		c := &m.counts[d.RuleID]
		switch {
		case d.Verdict == match.Allow:
			c.allowed.Add(1)
		case d.Verdict.Denied():
			c.denied.Add(1) // would have been denied
		default:
			c.audited.Add(1)
		}
	}
	if !d.Verdict.Alerted() {
		return
	}
	out := enforcer.Event{
		Time:      enforcer.BootTime(ev.Ts),
		Version:   m.Set().Version(),
		RuleID:    d.RuleID,
		Verdict:   d.Verdict,
		Observed:  true,
		Op:        match.OpExec,
		PID:       ev.Tgid,
		TID:       ev.Pid,
		PPID:      ev.Ppid,
		UID:       ev.Uid,
		OwnerUID:  ev.OwnerUid,
		Comm:      unix.ByteSliceToString(ev.Comm[:]),
		Path:      path,
		Exe:       caller,
		Truncated: truncated,
	}
	select {
	case events <- out:
	default:
		e.undelivered.Add(1)
	}
}

// Stats implements enforcer.Enforcer.
func (e *Enforcer) Stats() enforcer.Stats {
	c, err := percpu.Sum(e.objs.Counters, int(monitorKaCounterKA_CNT_MAX))
	if err != nil {
		e.log.Warn("read monitor counters", "error", err)
	}
	return enforcer.Stats{
		EventsLost:     c[monitorKaCounterKA_CNT_EVENT_LOST],
		PathsTruncated: c[monitorKaCounterKA_CNT_PATH_TRUNCATED],
		ScratchBusy:    c[monitorKaCounterKA_CNT_SCRATCH_BUSY],
		Undelivered:    e.undelivered.Load(),
		Malformed:      e.malformed.Load(),
		UnknownCaller:  e.unknownCaller.Load(),
		TableFull:      e.tableFull.Load(),
	}
}

// Close detaches the monitor.
func (e *Enforcer) Close() error {
	var errs []error
	for _, l := range e.links {
		errs = append(errs, l.Close())
	}
	e.links = nil
	errs = append(errs, e.objs.Close())
	return errors.Join(errs...)
}

// bootNow reads CLOCK_BOOTTIME, the clock of BPF timestamps.
func bootNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}

var monHeaderSize = int(unsafe.Sizeof(monitorMonEvent{}))

func decodeMonEvent(raw []byte) (monitorMonEvent, string, error) {
	var h monitorMonEvent
	if len(raw) < monHeaderSize {
		return h, "", fmt.Errorf("monitor record of %d bytes is shorter than its header", len(raw))
	}
	if _, err := binary.Decode(raw[:monHeaderSize], binary.LittleEndian, &h); err != nil {
		return h, "", err
	}
	if int(h.PathLen) > len(raw)-monHeaderSize {
		return h, "", fmt.Errorf("monitor record claims %d path bytes, has %d", h.PathLen, len(raw)-monHeaderSize)
	}
	return h, string(raw[monHeaderSize : monHeaderSize+int(h.PathLen)]), nil
}

// seedFromProc fills the table with the processes running now.
func seedFromProc(t *procTable) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, ent := range entries {
		pid, err := strconv.ParseUint(ent.Name(), 10, 32)
		if err != nil {
			continue
		}
		exe, err := os.Readlink("/proc/" + ent.Name() + "/exe")
		if err != nil {
			continue // kernel threads have none; the process may have exited
		}
		t.set(uint32(pid), exe)
	}
}
