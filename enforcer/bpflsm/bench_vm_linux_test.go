//go:build linux

package bpflsm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
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

type loop struct {
	name string
	op   func() error
}

// BenchmarkEnforcement measures the cost of enforcement as ratios against
// the same loops with nothing loaded, in alternating rounds, and prints a
// table. It runs its own rounds: `make bench` runs it once per kernel with
// -test.benchtime=1x.
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
	loops := []loop{
		{"open/close, no rule names the file", open(unnamed)},
		{"open/close, an Audit rule names it", open(named)},
		{"execve of a small binary", func() error {
			pid, err := syscall.ForkExec(prog, []string{"true"}, &syscall.ProcAttr{})
			if err != nil {
				return err
			}
			var ws syscall.WaitStatus
			_, err = syscall.Wait4(pid, &ws, 0, nil)
			return err
		}},
		{"connect on loopback", func() error {
			c, err := net.DialTCP("tcp4", nil, addr)
			if err != nil {
				return err
			}
			return c.Close()
		}},
	}
	iters := map[string]int{loops[0].name: 21000, loops[1].name: 21000, loops[2].name: 280, loops[3].name: 2100}

	type config struct {
		name    string
		setup   func(t testing.TB) func()
		profile string // AppArmor profile the measuring thread runs under
	}
	withEnforcer := func(n int) func(t testing.TB) func() {
		return func(t testing.TB) func() {
			e, err := Load(Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Apply(benchRules(t, n, named)); err != nil {
				t.Fatal(err)
			}
			events := make(chan enforcer.Event, 4096)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { // a consumer that keeps up, as the daemon's does
				defer close(done)
				for {
					select {
					case <-events:
					case <-stop:
						return
					}
				}
			}()
			ctx, cancel := context.WithCancel(context.Background())
			rdDone := make(chan struct{})
			go func() { e.Run(ctx, events); close(rdDone) }()
			return func() {
				cancel()
				<-rdDone
				close(stop)
				<-done
				e.Close()
			}
		}
	}
	none := func(testing.TB) func() { return func() {} }
	configs := []config{
		{name: "nothing loaded", setup: none},
		{name: "empty file_open LSM program", setup: emptyLSM},
		{name: "kubearmor, 0 rules", setup: withEnforcer(0)},
		{name: "kubearmor, 1,000 rules", setup: withEnforcer(1000)},
		{name: "kubearmor, 10,000 rules", setup: withEnforcer(10000)},
	}
	var aaLoad []string
	for _, n := range []int{1000, 10000} {
		name := fmt.Sprintf("kubearmor-bench-%d", n)
		took := loadAppArmorProfile(t, dir, name, benchRules(t, n, named))
		aaLoad = append(aaLoad, fmt.Sprintf("%d rules in %v", n, took.Round(time.Millisecond)))
		configs = append(configs, config{name: fmt.Sprintf("AppArmor, %s rules", map[int]string{1000: "1,000", 10000: "10,000"}[n]), setup: none, profile: name})
	}
	// Each configuration is measured right after a fresh "nothing loaded"
	// run and its ratio taken against that one; each loop runs in blocks and
	// keeps the median block; and the Go heap is collected before and not
	// during a loop. On the wall clock of an emulated guest that still
	// leaves 10-20 % of noise from the host (see docs/benchmarks.md).
	const rounds, blocks = 5, 7
	runLoops := func(c config) ([]float64, error) {
		out := make([]float64, len(loops))
		for li, l := range loops {
			n := iters[l.name] / blocks
			per := make([]float64, blocks)
			runtime.GC()
			gc := debug.SetGCPercent(-1)
			for bi := range per {
				start := time.Now()
				for range n {
					if err := l.op(); err != nil {
						debug.SetGCPercent(gc)
						return nil, fmt.Errorf("%s with %s: %w", l.name, c.name, err)
					}
				}
				per[bi] = float64(time.Since(start).Nanoseconds()) / float64(n)
			}
			debug.SetGCPercent(gc)
			out[li] = median(per)
		}
		return out, nil
	}
	measure := func(c config) []float64 {
		teardown := c.setup(t)
		defer teardown()
		if c.profile == "" {
			out, err := runLoops(c)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		// AppArmor confines a thread: the loops run on one locked to this
		// goroutine, which is never unlocked, so the confined thread ends
		// with it. Exec'd children inherit its profile.
		var out []float64
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			if err = changeAppArmorProfile(c.profile); err == nil {
				out, err = runLoops(c)
			}
		}()
		<-done
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// ns per op and ratio to the baseline run just before: [config][loop][round]
	res := make([][][]float64, len(configs))
	ratio := make([][][]float64, len(configs))
	for i := range res {
		res[i] = make([][]float64, len(loops))
		ratio[i] = make([][]float64, len(loops))
	}
	for round := range rounds {
		for ci := 1; ci < len(configs); ci++ {
			base := measure(configs[0])
			got := measure(configs[ci])
			for li := range loops {
				res[0][li] = append(res[0][li], base[li])
				ratio[0][li] = append(ratio[0][li], 1)
				res[ci][li] = append(res[ci][li], got[li])
				ratio[ci][li] = append(ratio[ci][li], got[li]/base[li])
			}
		}
		t.Logf("round %d done", round+1)
	}

	var out strings.Builder
	fmt.Fprintf(&out, "%s\n", benchBegin)
	var uts unix.Utsname
	unix.Uname(&uts)
	fmt.Fprintf(&out, "Kernel %s, %d rounds; each cell is the median over rounds of the time per operation (each the median of %d blocks) and of its ratio to a \"nothing loaded\" run made just before it.\n\n",
		unix.ByteSliceToString(uts.Release[:]), rounds, blocks)
	out.WriteString("| configuration |")
	for _, l := range loops {
		fmt.Fprintf(&out, " %s |", l.name)
	}
	out.WriteString("\n|---|")
	for range loops {
		out.WriteString("---|")
	}
	out.WriteString("\n")
	for ci, c := range configs {
		fmt.Fprintf(&out, "| %s |", c.name)
		for li := range loops {
			fmt.Fprintf(&out, " %.1f µs (%.3f) |", median(res[ci][li])/1000, median(ratio[ci][li]))
		}
		out.WriteString("\n")
	}
	e, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(benchRules(t, 10000, named)); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&out, "\nKernel memory of the rule maps at 10,000 rules: %s.\n", e.mapMemory())
	e.Close()
	fmt.Fprintf(&out, "AppArmor profiles loaded with apparmor_parser (%s); the loops ran in a thread confined by them.\n", strings.Join(aaLoad, ", "))
	fmt.Fprintf(&out, "%s\n", benchEnd)
	fmt.Println(out.String())
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

// emptyLSM attaches a file_open program that only returns 0: the floor
// any BPF-LSM enforcement pays.
func emptyLSM(t testing.TB) func() {
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
	l, err := link.AttachLSM(link.LSMOptions{Program: prog})
	if err != nil {
		t.Fatal(err)
	}
	return func() { l.Close(); prog.Close() }
}
