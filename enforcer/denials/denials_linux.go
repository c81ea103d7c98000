//go:build linux

package denials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/overlaylayout"
	"github.com/kubearmor/kubearmor-host/internal/percpu"
	"github.com/kubearmor/kubearmor-host/internal/ringread"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// Denial is one refusal.
type Denial struct {
	Time     time.Time
	Op       match.Op // exec, executable mapping, open, the path operations, socket creation, capable
	PID, TID uint32
	PPID     uint32
	UID      uint32 // real uid
	OwnerUID uint32 // the file's owner
	Comm     string
	Path     string // the file or directory
	Path2    string // a link's or rename's new name
	Exe      string // the caller's executable
	Errno    unix.Errno
	// Truncated: the file's path did not fit, or was not read (the CPU's
	// scratch space was in use); ExeTruncated: the executable's.
	Truncated, ExeTruncated bool
	Cap                     policy.Capability
	Socket                  policy.Socket
}

// Options configure Load.
type Options struct {
	Logger *slog.Logger
	// Ignore is a process whose refusals are not reported (the daemon).
	Ignore uint32
}

// Watcher holds the attached programs.
type Watcher struct {
	log   *slog.Logger
	objs  denialsObjects
	links []link.Link

	delivered, undelivered, malformed atomic.Uint64
}

// Load loads and attaches the programs. Tracing programs need BTF and
// CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN); some kernels refuse fexit
// altogether.
func Load(opts Options) (*Watcher, error) {
	w := &Watcher{log: opts.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	spec, err := loadDenials()
	if err != nil {
		return nil, fmt.Errorf("denials: %w", err)
	}
	if err := overlaylayout.Configure(spec); err != nil {
		w.log.Warn("overlay", "error", err)
	}
	if err := spec.Variables["self_tgid"].Set(opts.Ignore); err != nil {
		return nil, fmt.Errorf("denials: set self_tgid: %w", err)
	}
	if err := spec.LoadAndAssign(&w.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			w.log.Error("BPF verifier rejected the denial programs", "log", fmt.Sprintf("%+v", ve))
		}
		return nil, fmt.Errorf("denials: load: %w", err)
	}
	for _, p := range w.programs() {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("denials: attach %s: %w", p, err)
		}
		w.links = append(w.links, l)
	}
	return w, nil
}

// programs are the loaded programs, by reflection over the generated
// struct: one more in the C file is one more here.
func (w *Watcher) programs() []*ebpf.Program {
	v := reflect.ValueOf(w.objs.denialsPrograms)
	out := make([]*ebpf.Program, 0, v.NumField())
	for i := range v.NumField() {
		if p, ok := v.Field(i).Interface().(*ebpf.Program); ok {
			out = append(out, p)
		}
	}
	return out
}

// pollInterval is the longest a refusal waits in the ring buffer while it
// holds less than the wakeup threshold (KA_DENY_WAKEUP_BYTES).
const pollInterval = 10 * time.Millisecond

// Run delivers refusals to out until ctx is done. It never blocks on out:
// what does not fit is counted (Stats.Undelivered).
func (w *Watcher) Run(ctx context.Context, out chan<- Denial) error {
	rd, err := ringbuf.NewReader(w.objs.Denials)
	if err != nil {
		return fmt.Errorf("open denial ring buffer: %w", err)
	}
	defer rd.Close()
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	var clock enforcer.BootClock
	return ringread.Each(rd, pollInterval, func(raw []byte) {
		d, err := decode(raw, &clock)
		if err != nil {
			w.malformed.Add(1)
			return
		}
		select {
		case out <- d:
			w.delivered.Add(1)
		default:
			w.undelivered.Add(1)
		}
	})
}

var headerSize = int(unsafe.Sizeof(denialsDenial{}))

// decode turns a record into a Denial. The header is copied as it lies,
// as the monitor's decode does (same machine, same layout).
func decode(raw []byte, clock *enforcer.BootClock) (Denial, error) {
	if len(raw) < headerSize {
		return Denial{}, fmt.Errorf("denial record of %d bytes is shorter than its header", len(raw))
	}
	h := *(*denialsDenial)(unsafe.Pointer(unsafe.SliceData(raw)))
	data := raw[headerSize:]
	p1, p2 := int(h.PathLen), int(h.PathLen)+int(h.Path2Len)
	if p2+int(h.ExeLen) > len(data) {
		return Denial{}, fmt.Errorf("denial record claims %d+%d+%d path bytes, has %d", h.PathLen, h.Path2Len, h.ExeLen, len(data))
	}
	d := Denial{
		Time:         clock.Time(h.Ts),
		Op:           match.Op(h.Op),
		PID:          h.Tgid,
		TID:          h.Pid,
		PPID:         h.Ppid,
		UID:          h.Uid,
		OwnerUID:     h.OwnerUid,
		Comm:         unix.ByteSliceToString(h.Comm[:]),
		Path:         string(data[:p1]),
		Path2:        string(data[p1:p2]),
		Exe:          string(data[p2 : p2+int(h.ExeLen)]),
		Errno:        unix.Errno(-h.Ret),
		Truncated:    h.Flags&uint8(denialsKaEventFlagKA_EV_PATH_TRUNCATED|denialsKaEventFlagKA_EV_SCRATCH_BUSY) != 0,
		ExeTruncated: h.Flags&uint8(denialsKaEventFlagKA_EV_EXE_TRUNCATED|denialsKaEventFlagKA_EV_SCRATCH_BUSY) != 0,
	}
	switch d.Op {
	case match.OpCapable:
		d.Cap = policy.Capability(h.Res0)
	case match.OpSocketCreate:
		d.Socket = policy.Socket{Family: int(h.Res0), Type: int(h.Res1 >> 16), Protocol: int(h.Res1 & 0xffff)}
	case match.OpExec, match.OpExecMap, match.OpOpenRead, match.OpOpenWrite, match.OpCreate, match.OpUnlink, match.OpRmdir, match.OpMkdir,
		match.OpRename, match.OpLink, match.OpSymlink, match.OpTruncate, match.OpChmod, match.OpChown:
	default:
		return Denial{}, fmt.Errorf("denial record of operation %d", h.Op)
	}
	return d, nil
}

// Stats count every refusal the programs saw: Seen = Delivered + RingFull
// + Undelivered + Malformed, once the ring is drained; and the calls they
// missed.
type Stats struct {
	Seen        uint64 // refusals the programs saw
	Delivered   uint64
	RingFull    uint64 // not queued: the ring buffer was full
	Busy        uint64 // queued without paths (scratch space in use); not a loss
	Undelivered uint64 // read, dropped: the consumer was slow
	Malformed   uint64 // read, not decodable
	// Missed counts calls the programs did not run for: a tracing program
	// preempted on a CPU is not entered again there until it returns (the
	// kernel's recursion guard): any refusal among them is not seen (nor
	// in Seen). Counted as lost, an upper bound.
	Missed uint64
}

// Lost is what was refused and never delivered.
func (s Stats) Lost() uint64 { return s.RingFull + s.Undelivered + s.Malformed + s.Missed }

// Stats reads the counters.
func (w *Watcher) Stats() Stats {
	s := Stats{Delivered: w.delivered.Load(), Undelivered: w.undelivered.Load(), Malformed: w.malformed.Load()}
	c, err := percpu.Sum(w.objs.DenyCounters, int(denialsKaDenyCounterKA_DENY_CNT_MAX))
	if err != nil {
		w.log.Warn("read denial counters", "error", err)
	}
	s.Seen = c[denialsKaDenyCounterKA_DENY_CNT_SEEN]
	s.RingFull = c[denialsKaDenyCounterKA_DENY_CNT_RING_FULL]
	s.Busy = c[denialsKaDenyCounterKA_DENY_CNT_BUSY]
	for _, p := range w.programs() {
		if p == nil {
			continue
		}
		if st, err := p.Stats(); err == nil {
			s.Missed += st.RecursionMisses
		}
	}
	return s
}

// Close detaches the programs and releases them.
func (w *Watcher) Close() error {
	var errs []error
	for _, l := range w.links {
		errs = append(errs, l.Close())
	}
	w.links = nil
	return errors.Join(append(errs, w.objs.Close())...)
}
