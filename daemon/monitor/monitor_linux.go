//go:build linux

package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
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
)

// Options configure a Monitor.
type Options struct {
	Kinds Kinds
	// RatePerCPU caps the events a CPU may send per second, with bursts of
	// BurstPerCPU (RatePerCPU if 0; at most a minute's worth); 0 means no
	// limit.
	RatePerCPU, BurstPerCPU uint64
	// RingSize is the telemetry ring buffer's size in bytes: a power of two
	// and a multiple of the page size. 0 means 4 MiB.
	RingSize uint32
	// Ignore is a process whose events are not observed (the daemon).
	Ignore uint32
	// Only, if not 0, is the one process observed (tests count exactly
	// what one generator did).
	Only   uint32
	Logger *slog.Logger
}

// Monitor observes processes, files and network; see the package doc.
type Monitor struct {
	log   *slog.Logger
	objs  visibilityObjects
	links []link.Link

	detach                          chan struct{} // closed by Detach
	detachOnce                      sync.Once
	delivered, queueFull, malformed atomic.Uint64
}

// Load loads and attaches the monitors opts.Kinds asks for. With no kinds,
// nothing is loaded: Run then returns at once.
func Load(opts Options) (*Monitor, error) {
	m := &Monitor{log: opts.Logger, detach: make(chan struct{})}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if opts.Kinds == 0 {
		return m, nil
	}
	spec, err := loadVisibility()
	if err != nil {
		return nil, fmt.Errorf("load visibility BPF object: %w", err)
	}
	if err := overlaylayout.Configure(spec); err != nil {
		m.log.Warn("overlay", "error", err)
	}
	burst := opts.BurstPerCPU
	if burst == 0 {
		burst = opts.RatePerCPU
	}
	if opts.RatePerCPU != 0 && burst > 60*opts.RatePerCPU {
		// The kernel refills an idle CPU's bucket after a minute.
		return nil, fmt.Errorf("telemetry burst %d per CPU is more than a minute at %d/s", burst, opts.RatePerCPU)
	}
	for name, v := range map[string]any{
		"vis_kinds": uint32(opts.Kinds), "rate_per_cpu": opts.RatePerCPU, "burst_per_cpu": burst,
		"self_tgid": opts.Ignore, "only_tgid": opts.Only,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
	}
	if opts.RingSize != 0 {
		spec.Maps["telemetry"].MaxEntries = opts.RingSize
	}
	if err := spec.LoadAndAssign(&m.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			m.log.Error("BPF verifier rejected the monitors", "log", fmt.Sprintf("%+v", ve))
		}
		return nil, fmt.Errorf("load monitors: %w", err)
	}
	var progs []*ebpf.Program
	if opts.Kinds&Process != 0 {
		progs = append(progs, m.objs.KaVisExec, m.objs.KaVisExit, m.objs.KaVisFork)
	}
	if opts.Kinds&(File|Network) != 0 {
		progs = append(progs, m.objs.KaVisSysEnter, m.objs.KaVisSysExit)
	}
	for _, p := range progs {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("attach %s: %w", p, err)
		}
		m.links = append(m.links, l)
	}
	return m, nil
}

// Run reads events into out until ctx ends, or until Detach was called and
// every event left is read. It never blocks on out: when out is full, the event is
// dropped and counted (Stats.QueueFull).
func (m *Monitor) Run(ctx context.Context, out chan<- Event) error {
	if m.objs.Telemetry == nil {
		select {
		case <-ctx.Done():
		case <-m.detach:
		}
		return nil
	}
	rd, err := ringbuf.NewReader(m.objs.Telemetry)
	if err != nil {
		return fmt.Errorf("open telemetry ring buffer: %w", err)
	}
	defer rd.Close()
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-m.detach:
			// Nothing new can arrive: read what is there, then stop.
			rd.Flush()
		case <-ctx.Done():
		case <-done:
		}
	}()
	var clock enforcer.BootClock
	// The programs wake the reader only once the ring fills a little (see
	// KA_VIS_WAKEUP_BYTES): it polls too, so a lone event waits at most
	// pollInterval.
	err = ringread.Each(rd, pollInterval, func(raw []byte) {
		ev, err := decode(raw, &clock)
		if err != nil {
			m.malformed.Add(1)
			return
		}
		select {
		case out <- ev:
			m.delivered.Add(1)
		default:
			m.queueFull.Add(1)
		}
	})
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}

// pollInterval is the longest an event waits in the ring buffer for the
// reader while the ring is nearly empty.
const pollInterval = 10 * time.Millisecond

// Detach stops observing; Run returns once it has read what is left.
func (m *Monitor) Detach() error {
	var errs []error
	for _, l := range m.links {
		errs = append(errs, l.Close())
	}
	m.links = nil
	m.detachOnce.Do(func() { close(m.detach) })
	return errors.Join(errs...)
}

// Stats are the monitor's counts; every event the kernel produced is
// Delivered or counted in exactly one of the others.
type Stats struct {
	Seen      uint64 // events the monitors produced
	Delivered uint64 // read and handed on
	Throttled uint64 // dropped by the in-kernel rate limit
	RingFull  uint64 // dropped: the ring buffer was full
	Busy      uint64 // dropped: scratch space in use on that CPU
	QueueFull uint64 // read, dropped: the consumer's queue was full
	Malformed uint64 // read, not decodable
	Untracked uint64 // syscall exits whose entry was not seen (not in Seen)
}

// Lost is the sum of every count of events produced and not delivered.
func (s Stats) Lost() uint64 {
	return s.Throttled + s.RingFull + s.Busy + s.QueueFull + s.Malformed
}

// Stats reads the counters.
func (m *Monitor) Stats() Stats {
	s := Stats{Delivered: m.delivered.Load(), QueueFull: m.queueFull.Load(), Malformed: m.malformed.Load()}
	if m.objs.VisCounters == nil {
		return s
	}
	c, err := percpu.Sum(m.objs.VisCounters, int(visibilityKaVisCounterKA_VIS_CNT_MAX))
	if err != nil {
		m.log.Warn("read monitor counters", "error", err)
	}
	s.Seen = c[visibilityKaVisCounterKA_VIS_CNT_SEEN]
	s.Throttled = c[visibilityKaVisCounterKA_VIS_CNT_THROTTLED]
	s.RingFull = c[visibilityKaVisCounterKA_VIS_CNT_RING_FULL]
	s.Busy = c[visibilityKaVisCounterKA_VIS_CNT_BUSY]
	s.Untracked = c[visibilityKaVisCounterKA_VIS_CNT_UNTRACKED]
	return s
}

// Close detaches the monitors and releases them.
func (m *Monitor) Close() error {
	return errors.Join(m.Detach(), m.objs.Close())
}

var headerSize = int(unsafe.Sizeof(visibilityVisEvent{}))

// decode turns a record into an Event, converting its boot-clock time with
// clock. The header is copied as it lies: the kernel wrote it in this
// machine's byte order and the C layout that bpf2go's Go struct mirrors
// (padding included), which is what a reflective decode would rebuild
// field by field at many times the cost.
func decode(raw []byte, clock *enforcer.BootClock) (Event, error) {
	var h visibilityVisEvent
	if len(raw) < headerSize {
		return Event{}, fmt.Errorf("telemetry record of %d bytes is shorter than its header", len(raw))
	}
	h = *(*visibilityVisEvent)(unsafe.Pointer(unsafe.SliceData(raw)))
	if int(h.PathLen)+int(h.CwdLen) > len(raw)-headerSize {
		return Event{}, fmt.Errorf("telemetry record claims %d path and %d working directory bytes, has %d",
			h.PathLen, h.CwdLen, len(raw)-headerSize)
	}
	ev := Event{
		Time:      clock.Time(h.Ts),
		Type:      Type(h.Type),
		PID:       h.Tgid,
		TID:       h.Pid,
		PPID:      h.Ppid,
		UID:       h.Uid,
		Ret:       h.Ret,
		OpenFlags: h.Oflags,
		Path:      string(raw[headerSize : headerSize+int(h.PathLen)]),
		Cwd:       string(raw[headerSize+int(h.PathLen) : headerSize+int(h.PathLen)+int(h.CwdLen)]),
		TTY:       unix.ByteSliceToString(h.Tty[:]),
		Comm:      unix.ByteSliceToString(h.Comm[:]),
		Family:    h.Family,
		SockType:  h.SockType,
		Protocol:  h.Protocol,
		Truncated: h.Evflags&uint8(visibilityKaEventFlagKA_EV_PATH_TRUNCATED) != 0,
	}
	switch h.Family {
	case unix.AF_INET:
		ev.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(h.Laddr[:4])), h.Lport)
		ev.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(h.Raddr[:4])), h.Rport)
	case unix.AF_INET6:
		ev.Local = netip.AddrPortFrom(netip.AddrFrom16(h.Laddr), h.Lport)
		ev.Remote = netip.AddrPortFrom(netip.AddrFrom16(h.Raddr), h.Rport)
	}
	return ev, nil
}
