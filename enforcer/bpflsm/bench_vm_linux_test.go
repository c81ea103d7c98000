//go:build linux

package bpflsm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
)

// Markers around the results, which `make bench` copies into
// docs/benchmarks.md.
const (
	benchBegin = "---8<--- benchmark results"
	benchEnd   = "--->8---"
)

// benchRules builds n rules like a host's: half under /etc, half under
// /srv, mostly files, some directories and programs; none names the
// benchmark's unnamed file, and the last one audits the named file.
func benchRules(t testing.TB, n int, named string) *policy.Set {
	var rules []policy.Rule
	for i := range n - 1 {
		top := "/etc"
		if i%2 == 1 {
			top = "/srv"
		}
		r := policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath,
			Path: fmt.Sprintf("%s/app%d/conf%d", top, i%97, i)}
		switch i % 10 {
		case 7:
			r.Match, r.Path, r.Recursive = policy.MatchDir, fmt.Sprintf("%s/app%d/d%d/", top, i%97, i), true
		case 8:
			r.Kind, r.Path = policy.KindProcess, fmt.Sprintf("/usr/local/bin/tool%d", i)
		}
		rules = append(rules, r)
	}
	if n > 0 {
		rules = append(rules, policy.Rule{Kind: policy.KindFile, Action: policy.ActionAudit, Match: policy.MatchPath, Path: named})
	}
	return setOf(t, uint64(n+1), rules...)
}

// BenchmarkEnforcement measures the cost of enforcement as ratios against
// the same loops with nothing loaded, and prints a table. It runs its own
// rounds: `make bench` runs it once per kernel with -test.benchtime=1x.
//
// The wall clock of an emulated guest drifts by 10-20 % between runs a
// minute apart (host load, QEMU's translation cache), far more than the
// costs being measured. So every configuration is loaded once and then
// switched on and off (its links attached and detached, or the loops moved
// between an unconfined thread and one under its AppArmor profile) between
// short blocks, and each "on" block is compared with the "off" block next
// to it: drift cancels within a pair, and the median over many pairs is
// reported with its confidence interval.
func BenchmarkEnforcement(b *testing.B) {
	t := b
	testutils.RequireGuest(t)
	dir := t.TempDir()
	unnamed, named := "/etc/bench-unnamed", "/etc/bench-named"
	for _, p := range []string{unnamed, named} {
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(p)
	}
	prog := dir + "/true"
	testutils.CopyFile(t, "/bin/busybox", prog, 0o755)
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	open := func(p string) func() error {
		return func() error {
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			return unix.Close(fd)
		}
	}
	// Blocks of about 20 ms each.
	loops := []loop{
		{"open/close, no rule names the file", 1000, open(unnamed)},
		{"open/close, an Audit rule names it", 1000, open(named)},
		{"execve of a small binary", 4, func() error {
			pid, err := syscall.ForkExec(prog, []string{"true"}, &syscall.ProcAttr{})
			if err != nil {
				return err
			}
			var ws syscall.WaitStatus
			_, err = syscall.Wait4(pid, &ws, 0, nil)
			return err
		}},
		// A dynamic program: the loader and libraries it maps are each
		// decided too (mmap_file).
		{"execve of a small dynamic binary", 2, func() error {
			pid, err := syscall.ForkExec(dynamicProgram, []string{"head", "-c", "0", "/dev/null"}, &syscall.ProcAttr{})
			if err != nil {
				return err
			}
			var ws syscall.WaitStatus
			_, err = syscall.Wait4(pid, &ws, 0, nil)
			return err
		}},
		{"connect on loopback", 25, func() error {
			c, err := net.DialTCP("tcp4", nil, addr)
			if err != nil {
				return err
			}
			return c.Close()
		}},
	}

	plain := startWorker(t, "")
	configs := []benchConfig{
		{name: "empty file_open LSM program", start: emptyLSM},
		{name: "kubearmor, 0 rules", start: benchEnforcer(0, named)},
		{name: "kubearmor, 1,000 rules", start: benchEnforcer(1000, named)},
		{name: "kubearmor, 10,000 rules", start: benchEnforcer(10000, named)},
	}
	var aaLoad []string
	for _, n := range []int{1000, 10000} {
		name := fmt.Sprintf("kubearmor-bench-%d", n)
		took := loadAppArmorProfile(t, dir, name, benchRules(t, n, named))
		aaLoad = append(aaLoad, fmt.Sprintf("%d rules in %v", n, took.Round(time.Millisecond)))
		configs = append(configs, benchConfig{
			name:    fmt.Sprintf("AppArmor, %s rules", map[int]string{1000: "1,000", 10000: "10,000"}[n]),
			profile: name,
		})
	}

	// On an instruction-counting clock (make bench's second pass) the
	// guest's time is its work, and a few pairs settle the ratio.
	// It counts the open/close loops only, which the target is about:
	// emulation is slower on that clock.
	counting := testutils.CountingInstructions()
	pairs := 31
	if counting {
		pairs, loops = 15, loops[:2]
	}
	// [config][loop][pair]: ns per op with the configuration off and on.
	off := make([][][]float64, len(configs))
	on := make([][][]float64, len(configs))
	for ci, c := range configs {
		off[ci], on[ci] = make([][]float64, len(loops)), make([][]float64, len(loops))
		sw := switchable{plain: plain}
		if c.start != nil {
			var stop func()
			sw.attach, stop = c.start(t)
			defer stop()
		} else {
			sw.confined = startWorker(t, c.profile)
		}
		for p := range pairs {
			// Alternate which half of the pair goes first, so that a
			// steady drift does not favour either.
			for _, state := range [][2]bool{{false, true}, {true, false}}[p%2] {
				if err := sw.set(state); err != nil {
					t.Fatal(err)
				}
				for li, l := range loops {
					ns, err := sw.worker().block(l)
					// The alerts a block made (the Audit rule's) are read
					// by the enforcer's consumer meanwhile; on one vCPU that
					// work would be timed with the next block.
					time.Sleep(drain)
					if err != nil {
						t.Fatalf("%s with %s %s: %v", l.name, c.name, map[bool]string{true: "on", false: "off"}[state], err)
					}
					if state {
						on[ci][li] = append(on[ci][li], ns)
					} else {
						off[ci][li] = append(off[ci][li], ns)
					}
				}
			}
		}
		if err := sw.set(false); err != nil {
			t.Fatal(err)
		}
		sw.confined.stop()
		t.Logf("%s: done", c.name)
	}
	plain.stop()

	var out strings.Builder
	fmt.Fprintf(&out, "%s\n", benchBegin)
	var uts unix.Utsname
	unix.Uname(&uts)
	clock, leastNote := "the wall clock", ""
	if counting {
		clock = "a clock that counts instructions (QEMU -icount shift=0: 1 µs is 1,000 guest instructions)"
		leastNote = "; on this clock, where disturbance only adds, the time is the least block's, and \"least blocks\" is the ratio of the least blocks on and off, which the line below the table uses"
	}
	fmt.Fprintf(&out, "Kernel %s, %s. Each configuration was switched on and off %d times, with a block of each loop run in each state; "+
		"a cell is the median time per operation with it on, and the median over the %d pairs of on/off, with its 95 %% confidence interval%s.\n\n",
		unix.ByteSliceToString(uts.Release[:]), clock, pairs, pairs, leastNote)
	out.WriteString("| configuration |")
	for _, l := range loops {
		fmt.Fprintf(&out, " %s |", l.name)
	}
	out.WriteString("\n|---|")
	for range loops {
		out.WriteString("---|")
	}
	out.WriteString("\n| nothing loaded |")
	for li := range loops {
		var all []float64
		for ci := range configs {
			all = append(all, off[ci][li]...)
		}
		fmt.Fprintf(&out, " %.1f µs (1) |", median(all)/1000)
	}
	out.WriteString("\n")
	ratios := make([][]float64, len(configs)) // [config][loop] median ratio
	for ci, c := range configs {
		fmt.Fprintf(&out, "| %s |", c.name)
		ratios[ci] = make([]float64, len(loops))
		for li := range loops {
			r := make([]float64, pairs)
			for p := range r {
				r[p] = on[ci][li][p] / off[ci][li][p]
			}
			lo, mid, hi := medianCI(r)
			ratios[ci][li] = mid
			if !counting {
				fmt.Fprintf(&out, " %.1f µs (%.3f, %.3f-%.3f) |", median(on[ci][li])/1000, mid, lo, hi)
				continue
			}
			// Counting instructions, disturbance (interrupts, other
			// threads) only adds: the least block in each state is the
			// work itself, and its ratio is the cost.
			ratios[ci][li] = slices.Min(on[ci][li]) / slices.Min(off[ci][li])
			fmt.Fprintf(&out, " %.2f µs (%.3f, %.3f-%.3f; least blocks %.3f) |", slices.Min(on[ci][li])/1000, mid, lo, hi, ratios[ci][li])
		}
		out.WriteString("\n")
	}
	fmt.Fprintf(&out, "\nOpen/close of a file no rule names, above the empty hook: %.3f at 1,000 rules, %.3f at 10,000 rules (target: at most 0.03).\n",
		ratios[2][0]-ratios[0][0], ratios[3][0]-ratios[0][0])
	e, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(benchRules(t, 10000, named)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&out, "Kernel memory of the rule maps at 10,000 rules: %s.\n", e.mapMemory())
	e.Close()
	fmt.Fprintf(&out, "AppArmor profiles loaded with apparmor_parser (%s); their loops ran in a thread confined by them.\n", strings.Join(aaLoad, ", "))
	fmt.Fprintf(&out, "%s\n", benchEnd)
	fmt.Println(out.String())
}

type loop struct {
	name  string
	block int // operations per timed block
	op    func() error
}

// A benchConfig is one thing the benchmark measures: BPF programs that
// start loads (detached) and returns a switch for, or an AppArmor profile
// the loops run under.
type benchConfig struct {
	name    string
	start   func(t testing.TB) (attach func(bool) error, stop func())
	profile string
}

// switchable turns a configuration on and off between blocks: BPF
// configurations by attaching and detaching, AppArmor ones by choosing the
// worker thread the loops run on.
type switchable struct {
	attach          func(bool) error
	plain, confined *worker
	state           bool
}

// settle is how long the kernel gets, after hooks are attached or
// detached, to finish the work that deferred (trampoline images are freed
// after RCU grace periods), so that it is not timed with the next block.
const settle = 200 * time.Millisecond

// drain is how long the guest gets after each block to finish what the
// block left behind (reading its alerts), before the next block is timed.
const drain = 100 * time.Millisecond

func (s *switchable) set(on bool) error {
	if s.attach != nil && on != s.state {
		if err := s.attach(on); err != nil {
			return err
		}
		time.Sleep(settle)
	}
	s.state = on
	return nil
}

func (s *switchable) worker() *worker {
	if s.state && s.confined != nil {
		return s.confined
	}
	return s.plain
}

// A worker runs the loops on one OS thread of its own, under an AppArmor
// profile if it has one. The thread is never unlocked: a confined thread
// ends with its goroutine.
type worker struct {
	jobs chan func()
	done chan struct{}
}

func startWorker(t testing.TB, profile string) *worker {
	w := &worker{jobs: make(chan func()), done: make(chan struct{})}
	ready := make(chan error)
	go func() {
		defer close(w.done)
		runtime.LockOSThread()
		if profile != "" {
			if err := changeAppArmorProfile(profile); err != nil {
				ready <- err
				return
			}
		}
		close(ready)
		for job := range w.jobs {
			job()
		}
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *worker) stop() {
	if w == nil {
		return
	}
	close(w.jobs)
	<-w.done
}

// block runs a quarter block untimed, so that a hook just attached has its
// code translated by the emulator before the clock runs, then times a block.
// The Go heap is collected before and not during it.
func (w *worker) block(l loop) (float64, error) {
	var ns float64
	var err error
	done := make(chan struct{})
	w.jobs <- func() {
		defer close(done)
		for range max(l.block/4, 1) {
			if err = l.op(); err != nil {
				return
			}
		}
		runtime.GC()
		gc := debug.SetGCPercent(-1)
		defer debug.SetGCPercent(gc)
		start := time.Now()
		for range l.block {
			if err = l.op(); err != nil {
				return
			}
		}
		ns = float64(time.Since(start).Nanoseconds()) / float64(l.block)
	}
	<-done
	return ns, err
}

// benchEnforcer loads the enforcer with n rules and a consumer that keeps
// up with its alerts, as the daemon's does, and switches it by attaching
// and detaching all its hooks.
func benchEnforcer(n int, named string) func(t testing.TB) (func(bool) error, func()) {
	return func(t testing.TB) (func(bool) error, func()) {
		e, err := Load(Options{})
		if err != nil {
			var ve *ebpf.VerifierError
			if errors.As(err, &ve) {
				t.Fatalf("%v\n%+v", err, ve) // the verifier's whole log
			}
			t.Fatal(err)
		}
		if err := e.Apply(benchRules(t, n, named)); err != nil {
			t.Fatal(err)
		}
		events := make(chan enforcer.Event, 4096)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-events:
				case <-ctx.Done():
					return
				}
			}
		})
		wg.Go(func() { e.Run(ctx, events) })
		sw := &lsmSwitch{progs: programsOf(&e.objs.hooks)}
		if e.after.RenameDone != nil {
			sw.progs = append(sw.progs, programsOf(&e.after)...)
		}
		for _, l := range e.links { // Load attached them; the switch owns them now
			l.Close()
		}
		e.links = nil
		return sw.attach, func() {
			sw.attach(false)
			cancel()
			wg.Wait()
			e.Close()
		}
	}
}

// lsmSwitch attaches and detaches a set of programs (the LSM ones and
// their tracing companions).
type lsmSwitch struct {
	progs []*ebpf.Program
	links []link.Link
}

func (s *lsmSwitch) attach(on bool) error {
	if !on {
		var errs []error
		for _, l := range s.links {
			errs = append(errs, l.Close())
		}
		s.links = nil
		return errors.Join(errs...)
	}
	for _, p := range s.progs {
		l, err := attach(p)
		if err != nil {
			return fmt.Errorf("attach %s: %w", p, err)
		}
		s.links = append(s.links, l)
	}
	return nil
}

// appArmorProfile writes set as an AppArmor profile that allows everything
// else: Block rules become deny rules, Audit rules audit rules. The
// benchmark's sets hold only file path, directory and process path rules.
func appArmorProfile(name string, set *policy.Set) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %s flags=(attach_disconnected) {\n", name)
	b.WriteString("  file,\n  network,\n  capability,\n  signal,\n  ptrace,\n  unix,\n  mount,\n  umount,\n  pivot_root,\n  change_profile,\n")
	for r := range set.Rules() {
		path, perms := r.Path, "rw"
		switch {
		case r.Kind == policy.KindProcess && r.Match == policy.MatchPath:
			perms = "x"
		case r.Kind == policy.KindFile && r.Match == policy.MatchPath:
		case r.Kind == policy.KindFile && r.Match == policy.MatchDir && r.Recursive:
			path += "**"
		default:
			return "", fmt.Errorf("rule %s: not in the benchmark's AppArmor translation", r.Origin)
		}
		prefix := "deny"
		if r.Action == policy.ActionAudit {
			prefix = "audit"
		}
		fmt.Fprintf(&b, "  %s %s %s,\n", prefix, path, perms)
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// loadAppArmorProfile loads set as profile name with the real
// apparmor_parser, removes it when the benchmark ends, and returns how long
// loading took.
func loadAppArmorProfile(t testing.TB, dir, name string, set *policy.Set) time.Duration {
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Fatalf("apparmor_parser is not in the guest (the suite adds the host's; install apparmor there): %v", err)
	}
	text, err := appArmorProfile(name, set)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if out, err := exec.Command(parser, "--replace", "--skip-cache", file).CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser --replace %s: %v\n%s", file, err, out)
	}
	took := time.Since(start)
	t.Cleanup(func() {
		if out, err := exec.Command(parser, "--remove", file).CombinedOutput(); err != nil {
			t.Errorf("apparmor_parser --remove %s: %v\n%s", file, err, out)
		}
	})
	return took
}

// TestBenchAppArmorProfile compiles the benchmark's AppArmor profile with
// the real apparmor_parser (without loading it), so that a mistake shows
// before a guest runs the benchmark; in a guest, where AppArmor is live, it
// also loads one and checks that a thread under it is refused what the
// rules block, and only that.
func TestBenchAppArmorProfile(t *testing.T) {
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Skipf("apparmor_parser not installed (apt-get install apparmor): %v", err)
	}
	text, err := appArmorProfile("kubearmor-bench-test", benchRules(t, 100, "/etc/bench-named"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(text, "  deny "); n != 99 {
		t.Errorf("%d deny rules, want 99", n)
	}
	file := filepath.Join(t.TempDir(), "profile")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(parser, "--skip-kernel-load", "--skip-cache", file).CombinedOutput(); err != nil {
		t.Fatalf("apparmor_parser rejects the profile: %v\n%s\n%s", err, out, text)
	}
	if !testutils.InGuest() {
		return
	}

	dir := t.TempDir()
	blocked, free, prog := dir+"/blocked", dir+"/free", dir+"/prog"
	for _, p := range []string{blocked, free} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testutils.CopyFile(t, "/bin/busybox", prog, 0o755)
	took := loadAppArmorProfile(t, dir, "kubearmor-bench-test", setOf(t, 1,
		policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: blocked},
		policy.Rule{Kind: policy.KindProcess, Action: policy.ActionBlock, Match: policy.MatchPath, Path: prog}))
	var got [3]error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the confined thread ends with the goroutine
		if got[0] = changeAppArmorProfile("kubearmor-bench-test"); got[0] != nil {
			return
		}
		got[0] = errnoErr(openFile(blocked, unix.O_RDONLY))
		got[1] = errnoErr(openFile(free, unix.O_RDONLY))
		_, got[2] = syscall.ForkExec(prog, []string{"true"}, &syscall.ProcAttr{})
	}()
	<-done
	if !errors.Is(got[0], syscall.EACCES) || got[1] != nil || !errors.Is(got[2], syscall.EACCES) {
		t.Errorf("under the profile: open of the blocked file %v (want EACCES), of another %v (want none), exec of the blocked program %v (want EACCES)",
			got[0], got[1], got[2])
	}
	t.Logf("profile loaded in %v and enforced on a confined thread", took)
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// changeAppArmorProfile moves the calling thread under profile.
func changeAppArmorProfile(profile string) error {
	attr := "/proc/thread-self/attr/apparmor/current"
	if _, err := os.Stat(attr); err != nil {
		attr = "/proc/thread-self/attr/current"
	}
	if err := os.WriteFile(attr, []byte("changeprofile "+profile), 0); err != nil {
		return fmt.Errorf("change to AppArmor profile %s: %w", profile, err)
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// medianCI returns the median of v and a distribution-free 95 % confidence
// interval for it: the order statistics n/2 ± 1.96·√n/2.
func medianCI(v []float64) (lo, mid, hi float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	n := float64(len(s))
	d := 1.96 * math.Sqrt(n) / 2
	i := max(int(math.Floor(n/2-d)), 0)
	j := min(int(math.Ceil(n/2+d)), len(s)-1)
	return s[i], s[len(s)/2], s[j]
}

// emptyLSM loads a file_open program that only returns 0: the floor any
// BPF-LSM enforcement pays.
func emptyLSM(t testing.TB) (func(bool) error, func()) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.LSM,
		AttachType:   ebpf.AttachLSMMac,
		AttachTo:     "file_open",
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	sw := &lsmSwitch{progs: []*ebpf.Program{prog}}
	return sw.attach, func() { sw.attach(false); prog.Close() }
}
