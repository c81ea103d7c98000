//go:build linux

package bpflsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/policy"
)

// Name is the Enforcer value of BPF-LSM alerts, as in KubeArmor.
const Name = "BPFLSM"

// Options tune Load.
type Options struct {
	// AlertRingSize is the size of the alert ring buffer in bytes: a power
	// of two and a multiple of the page size. 0 means 1 MiB.
	AlertRingSize uint32
	Logger        *slog.Logger
}

// Enforcer is the BPF-LSM enforcer.
type Enforcer struct {
	log  *slog.Logger
	objs struct {
		Check  *ebpf.Program `ebpf:"ka_bprm_check"`
		Alerts *ebpf.Map     `ebpf:"alerts"`
		policyMaps
	}
	links []link.Link

	undelivered atomic.Uint64
	malformed   atomic.Uint64
}

var _ enforcer.Enforcer = (*Enforcer)(nil)

// Load loads the programs and maps and attaches the LSM hooks. Until the
// first Apply no policy is in force and every hook allows.
func Load(opts Options) (*Enforcer, error) {
	spec, err := loadLsm()
	if err != nil {
		return nil, fmt.Errorf("load BPF object: %w", err)
	}
	if opts.AlertRingSize != 0 {
		spec.Maps["alerts"].MaxEntries = opts.AlertRingSize
	}
	e := &Enforcer{log: opts.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := spec.LoadAndAssign(&e.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			// The error keeps the verifier's last lines; the whole log is
			// what a bug report needs.
			e.log.Error("BPF verifier rejected the programs", "log", fmt.Sprintf("%+v", ve))
		}
		return nil, fmt.Errorf("load BPF-LSM programs: %w", err)
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: e.objs.Check})
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("attach bprm_check_security: %w", err)
	}
	e.links = append(e.links, l)
	return e, nil
}

// Name implements enforcer.Enforcer.
func (e *Enforcer) Name() string { return Name }

// Validate implements enforcer.Enforcer.
func (e *Enforcer) Validate(set *policy.Set) error {
	_, err := Compile(set)
	return err
}

// Apply implements enforcer.Enforcer.
func (e *Enforcer) Apply(set *policy.Set) error {
	spec, err := Compile(set)
	if err != nil {
		return err
	}
	return e.objs.apply(spec)
}

// Run implements enforcer.Enforcer: it reads the alert ring buffer.
func (e *Enforcer) Run(ctx context.Context, events chan<- enforcer.Event) error {
	rd, err := ringbuf.NewReader(e.objs.Alerts)
	if err != nil {
		return fmt.Errorf("open alert ring buffer: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	defer rd.Close()
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read alert ring buffer: %w", err)
		}
		ev, err := decodeAlert(rec.RawSample, enforcer.BootTime)
		if err != nil {
			e.malformed.Add(1)
			e.log.Warn("malformed alert record", "error", err)
			continue
		}
		select {
		case events <- ev:
		default:
			e.undelivered.Add(1)
		}
	}
}

// Stats implements enforcer.Enforcer.
func (e *Enforcer) Stats() enforcer.Stats {
	c, err := e.objs.counters()
	if err != nil {
		e.log.Warn("read BPF counters", "error", err)
	}
	return enforcer.Stats{
		Decisions:      c[lsmKaCounterKA_CNT_DECISIONS],
		Denied:         c[lsmKaCounterKA_CNT_DENIED],
		Audited:        c[lsmKaCounterKA_CNT_AUDITED],
		AlertsLost:     c[lsmKaCounterKA_CNT_ALERT_LOST],
		PathsTruncated: c[lsmKaCounterKA_CNT_PATH_TRUNCATED],
		ScratchBusy:    c[lsmKaCounterKA_CNT_SCRATCH_BUSY],
		Undelivered:    e.undelivered.Load(),
		Malformed:      e.malformed.Load(),
	}
}

// Close detaches the hooks and frees the maps: no policy stays in force.
func (e *Enforcer) Close() error {
	var errs []error
	for _, l := range e.links {
		errs = append(errs, l.Close())
	}
	e.links = nil
	e.objs.closeInner()
	for _, c := range []interface{ Close() error }{e.objs.Check, e.objs.Alerts, e.objs.TrieOuter,
		e.objs.RulesOuter, e.objs.Kinds, e.objs.Active, e.objs.Counters} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
