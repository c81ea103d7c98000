//go:build linux

package bpflsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/overlaylayout"
	"github.com/kubearmor/kubearmor-host/internal/ringread"
	"github.com/kubearmor/kubearmor-host/policy"
)

// Name is the Enforcer value of BPF-LSM alerts, as in KubeArmor.
const Name = "BPFLSM"

// Options tune Load.
type Options struct {
	// AlertRingSize is the size of the alert ring buffer in bytes: a power
	// of two and a multiple of the page size. 0 means 8 MiB.
	AlertRingSize uint32
	Logger        *slog.Logger
	// PinDir, if set, is where programs are pinned so they keep enforcing
	// when the daemon dies (see pin_linux.go). Programs a previous daemon
	// pinned there keep enforcing until Pin replaces them.
	PinDir string
	// UserNamespaces is what happens when an unprivileged process creates
	// a user namespace: UserNSAllow (the zero value), UserNSAudit or
	// UserNSBlock.
	UserNamespaces UserNS
}

// UserNS is the setting for user namespaces created by unprivileged
// processes (config key unprivilegedUserNamespaces).
type UserNS uint32

// UserNS settings, numbered as enum ka_userns.
const (
	UserNSAllow = UserNS(lsmKaUsernsKA_USERNS_ALLOW)
	UserNSAudit = UserNS(lsmKaUsernsKA_USERNS_AUDIT)
	UserNSBlock = UserNS(lsmKaUsernsKA_USERNS_BLOCK)
)

// ParseUserNS reads the config value: allow, audit or block.
func ParseUserNS(s string) (UserNS, error) {
	switch s {
	case "allow":
		return UserNSAllow, nil
	case "audit":
		return UserNSAudit, nil
	case "block":
		return UserNSBlock, nil
	}
	return 0, fmt.Errorf("user namespace setting %q: want allow, audit or block", s)
}

// hooks are the LSM programs, one per hook.
type hooks struct {
	BprmCheck     *ebpf.Program `ebpf:"ka_bprm_check"`
	FileOpen      *ebpf.Program `ebpf:"ka_file_open"`
	PathUnlink    *ebpf.Program `ebpf:"ka_path_unlink"`
	PathRmdir     *ebpf.Program `ebpf:"ka_path_rmdir"`
	PathMkdir     *ebpf.Program `ebpf:"ka_path_mkdir"`
	PathMknod     *ebpf.Program `ebpf:"ka_path_mknod"`
	PathSymlink   *ebpf.Program `ebpf:"ka_path_symlink"`
	PathLink      *ebpf.Program `ebpf:"ka_path_link"`
	PathRename    *ebpf.Program `ebpf:"ka_path_rename"`
	PathTruncate  *ebpf.Program `ebpf:"ka_path_truncate"`
	PathChmod     *ebpf.Program `ebpf:"ka_path_chmod"`
	PathChown     *ebpf.Program `ebpf:"ka_path_chown"`
	SocketCreate  *ebpf.Program `ebpf:"ka_socket_create"`
	SocketConnect *ebpf.Program `ebpf:"ka_socket_connect"`
	SocketBind    *ebpf.Program `ebpf:"ka_socket_bind"`
	SocketAccept  *ebpf.Program `ebpf:"ka_socket_accept"`
	Capable       *ebpf.Program `ebpf:"ka_capable"`
	BprmCommitted *ebpf.Program `ebpf:"ka_bprm_committed"`
	SbMount       *ebpf.Program `ebpf:"ka_sb_mount"`
	SbUmount      *ebpf.Program `ebpf:"ka_sb_umount"`
	MoveMount     *ebpf.Program `ebpf:"ka_move_mount"`
	SbPivotroot   *ebpf.Program `ebpf:"ka_sb_pivotroot"`
	ExecDone      *ebpf.Program `ebpf:"ka_exec_done"`
	TaskAlloc     *ebpf.Program `ebpf:"ka_task_alloc"`
	MmapFile      *ebpf.Program `ebpf:"ka_mmap_file"`
	FileMprotect  *ebpf.Program `ebpf:"ka_file_mprotect"`
	UsernsCreate  *ebpf.Program `ebpf:"ka_userns_create"`
}

// afterChange are tracing programs (fexit) that move the caches' epochs
// again once a rename or mount is done (see lsm.bpf.c). They are loaded
// apart and optional: a kernel without the functions they attach to as they
// expect them (vfs_rename took its arguments one by one before 5.12)
// enforces without them, and the daemon says what that leaves open.
type afterChange struct {
	RenameDone *ebpf.Program `ebpf:"ka_rename_done"`
	MountDone  *ebpf.Program `ebpf:"ka_mount_done"`
	UmountDone *ebpf.Program `ebpf:"ka_umount_done"`
}

// programsOf lists the programs of a struct of them in field order, and
// programNames their names (the struct tags), so the two cannot drift apart.
func programsOf[T any](progs *T) []*ebpf.Program {
	v := reflect.ValueOf(progs).Elem()
	out := make([]*ebpf.Program, v.NumField())
	for i := range out {
		out[i] = v.Field(i).Interface().(*ebpf.Program)
	}
	return out
}

func programNames[T any]() []string {
	t := reflect.TypeFor[T]()
	out := make([]string, t.NumField())
	for i := range out {
		out[i] = t.Field(i).Tag.Get("ebpf")
	}
	return out
}

// Enforcer is the BPF-LSM enforcer.
type Enforcer struct {
	log  *slog.Logger
	objs struct {
		hooks
		// SysEnter runs on every system call, so it is attached only
		// while syscall rules are in force (see Apply).
		SysEnter *ebpf.Program `ebpf:"ka_sys_enter"`
		Alerts   *ebpf.Map     `ebpf:"alerts"`
		// Epoch holds the caches' epochs, which the afterChange programs
		// share.
		Epoch *ebpf.Map `ebpf:"epoch"`
		// Settings holds what SetUserNamespaces writes; Loaders is seeded
		// with the system's dynamic loaders (seedLoaders).
		Settings *ebpf.Map `ebpf:"settings"`
		Loaders  *ebpf.Map `ebpf:"loaders"`
		policyMaps
	}
	after     afterChange
	sysLink   link.Link
	links     []link.Link
	linkNames []string // the programs' names, for their pins

	pinDir          string
	pinned          bool
	adopted         []link.Link // a previous daemon's, until Pin
	adoptedPaths    []string
	adoptedCounters *ebpf.Map

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
	if err := overlaylayout.Configure(spec); err != nil {
		e.log.Warn("overlay", "error", err)
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
	if err := e.SetUserNamespaces(opts.UserNamespaces); err != nil {
		e.Close()
		return nil, fmt.Errorf("write settings: %w", err)
	}
	for _, l := range seedLoaders(e.objs.Loaders) {
		e.log.Debug("dynamic loader", "path", l)
	}
	links, err := attachAll(programsOf(&e.objs.hooks), programNames[hooks]())
	if err != nil {
		e.Close()
		return nil, err
	}
	e.links, e.linkNames = links, programNames[hooks]()
	if err := e.attachAfterChange(spec); err != nil {
		e.log.Warn("path caches are not refreshed after renames and mounts: a path walk racing a rename or mount may leave a stale cache entry until the next one",
			"error", err)
	}
	if opts.PinDir != "" {
		if err := e.adopt(opts.PinDir); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// attachAfterChange loads and attaches the afterChange programs, sharing
// the loaded object's epochs; on error none stays attached.
func (e *Enforcer) attachAfterChange(spec *ebpf.CollectionSpec) error {
	opts := &ebpf.CollectionOptions{MapReplacements: map[string]*ebpf.Map{"epoch": e.objs.Epoch}}
	if err := spec.LoadAndAssign(&e.after, opts); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	links, err := attachAll(programsOf(&e.after), programNames[afterChange]())
	if err != nil {
		return err
	}
	e.links = append(e.links, links...)
	e.linkNames = append(e.linkNames, programNames[afterChange]()...)
	return nil
}

// attachAll attaches programs (named by names, in the same order); on
// error none stays attached.
func attachAll(progs []*ebpf.Program, names []string) ([]link.Link, error) {
	var links []link.Link
	for i, p := range progs {
		l, err := attach(p)
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			return nil, fmt.Errorf("attach %s: %w", names[i], err)
		}
		links = append(links, l)
	}
	return links, nil
}

// attach attaches an LSM program to its hook, or a tracing one to its
// function.
func attach(p *ebpf.Program) (link.Link, error) {
	if p.Type() == ebpf.Tracing {
		return link.AttachTracing(link.TracingOptions{Program: p})
	}
	return link.AttachLSM(link.LSMOptions{Program: p})
}

// SetUserNamespaces changes what happens when an unprivileged process
// creates a user namespace, at once.
func (e *Enforcer) SetUserNamespaces(u UserNS) error {
	return e.objs.Settings.Put(uint32(0), lsmKaSettings{Userns: uint32(u)})
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
	// The syscall program goes on before a set with syscall rules is in
	// force, and off after the last such set is gone.
	if spec.Syscalls != nil && e.sysLink == nil {
		l, err := link.AttachTracing(link.TracingOptions{Program: e.objs.SysEnter})
		if err != nil {
			return fmt.Errorf("attach sys_enter: %w", err)
		}
		e.sysLink = l
		if e.pinned {
			if err := l.Pin(e.sysLinkPin()); err != nil {
				return fmt.Errorf("pin sys_enter: %w", err)
			}
		}
	}
	if err := e.objs.apply(spec); err != nil {
		return err
	}
	if spec.Syscalls == nil && e.sysLink != nil {
		if e.pinned {
			e.sysLink.Unpin()
		}
		e.sysLink.Close()
		e.sysLink = nil
	}
	return nil
}

// alertPoll is the longest an alert waits in the ring buffer while it
// holds less than the wakeup threshold.
const alertPoll = 10 * time.Millisecond

// Run implements enforcer.Enforcer: it reads the alert ring buffer.
func (e *Enforcer) Run(ctx context.Context, events chan<- enforcer.Event) error {
	rd, err := ringbuf.NewReader(e.objs.Alerts)
	if err != nil {
		return fmt.Errorf("open alert ring buffer: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	defer rd.Close()
	var clock enforcer.BootClock
	// The programs wake the reader only once the ring fills a little
	// (KA_ALERT_WAKEUP_BYTES): it polls too.
	return ringread.Each(rd, alertPoll, func(raw []byte) {
		ev, err := decodeAlert(raw, clock.Time)
		if err != nil {
			e.malformed.Add(1)
			e.log.Warn("malformed alert record", "error", err)
			return
		}
		select {
		case events <- ev:
		default:
			e.undelivered.Add(1)
		}
	})
}

// Stats implements enforcer.Enforcer.
func (e *Enforcer) Stats() enforcer.Stats {
	c, err := e.objs.counters()
	if err != nil {
		e.log.Warn("read BPF counters", "error", err)
	}
	return enforcer.Stats{
		Decisions:      c[lsmKaCounterKA_CNT_DECISIONS] + c[lsmKaCounterKA_CNT_FAST],
		Denied:         c[lsmKaCounterKA_CNT_DENIED],
		Audited:        c[lsmKaCounterKA_CNT_AUDITED],
		AlertsLost:     c[lsmKaCounterKA_CNT_ALERT_LOST],
		PathsTruncated: c[lsmKaCounterKA_CNT_PATH_TRUNCATED],
		ScratchBusy:    c[lsmKaCounterKA_CNT_SCRATCH_BUSY],
		Torn:           c[lsmKaCounterKA_CNT_TORN],
		Cached:         c[lsmKaCounterKA_CNT_CACHED] + c[lsmKaCounterKA_CNT_FAST],
		MountsCut:      c[lsmKaCounterKA_CNT_CANON_CUT],
		Undelivered:    e.undelivered.Load(),
		Malformed:      e.malformed.Load(),
	}
}

// RuleStats implements enforcer.Enforcer.
func (e *Enforcer) RuleStats() (uint64, []enforcer.RuleCounts) {
	v, counts, err := e.objs.ruleStats()
	if err != nil {
		e.log.Warn("read rule statistics", "error", err)
	}
	return v, counts
}

// mapMemory describes the kernel memory of the rule maps in force.
func (e *Enforcer) mapMemory() string {
	n, err := e.objs.memory()
	if err != nil {
		return "unknown: " + err.Error()
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Close releases the programs and maps. Unless they are pinned (Pin, and
// no Unpin since), that detaches the hooks: no policy stays in force.
func (e *Enforcer) Close() error {
	var errs []error
	for _, l := range e.adopted {
		errs = append(errs, l.Close())
	}
	e.adopted = nil
	if e.adoptedCounters != nil {
		errs = append(errs, e.adoptedCounters.Close())
	}
	for _, l := range e.links {
		errs = append(errs, l.Close())
	}
	e.links, e.linkNames = nil, nil
	e.objs.closeInner()
	if e.sysLink != nil {
		errs = append(errs, e.sysLink.Close())
		e.sysLink = nil
	}
	for _, p := range append(append(programsOf(&e.objs.hooks), e.objs.SysEnter), programsOf(&e.after)...) {
		errs = append(errs, p.Close()) // nil (not loaded) closes as nothing
	}
	for _, m := range []*ebpf.Map{e.objs.Alerts, e.objs.Epoch, e.objs.Settings, e.objs.Loaders, e.objs.TrieOuter, e.objs.RulesOuter, e.objs.StatsOuter, e.objs.DfaOuter, e.objs.SysOuter, e.objs.Kinds, e.objs.Active, e.objs.Stamps, e.objs.Counters} {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}
