package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// Environment variables read by RunTests.
const (
	// SkipEnv=1 skips the guest tests.
	SkipEnv = "KUBEARMOR_VMTEST_SKIP"
	// RunEnv is passed to the guest test binaries as -test.run.
	RunEnv = "KUBEARMOR_VMTEST_RUN"
	// ArgsEnv holds extra flags for the guest test binaries, space separated
	// (e.g. "-test.count=3 -test.failfast").
	ArgsEnv = "KUBEARMOR_VMTEST_ARGS"
	// PackagesEnv restricts the guest packages to these patterns, space
	// separated, to skip building and running the others.
	PackagesEnv = "KUBEARMOR_VMTEST_PKGS"
	// TimeoutEnv is the time one kernel may take to boot and run every
	// test binary (a Go duration, default DefaultTimeout).
	TimeoutEnv = "KUBEARMOR_VMTEST_TIMEOUT"
	// ICountEnv set to 1 runs the guests with Machine.CountInstructions.
	ICountEnv = "KUBEARMOR_VMTEST_ICOUNT"
)

// Suite is a set of Go test packages to run in the guests.
type Suite struct {
	// Name says which suite a guest ran in the durations report ("guests").
	Name string
	// Packages are go package patterns relative to the module root
	// ("./enforcer/detect", "./daemon/..."). Their test binaries are built
	// statically and run, one after another, in every guest; each runs in
	// /src/<package dir> with the package's testdata/ beside it, like go test.
	Packages []string
	// Binaries are extra programs built statically and installed in the guest.
	Binaries []Binary
	// Files are extra files for the guest.
	Files []File
	// Kernels are Debian kernel packages; KernelPackages() if empty.
	Kernels []string
	// Run is the guest's -test.run; RunEnv if empty.
	Run string
	// Args are extra flags for the guest test binaries, after ArgsEnv's.
	Args []string
	// Timeout bounds one kernel's boot and run: its limit. TimeoutEnv
	// overrides it; DefaultTimeout if 0.
	Timeout time.Duration
	// Shares are the top-level guest tests allowed more than DefaultShare,
	// by "<package dir>.<Test>" (e.g. "cmd/kubearmor.TestSurvivesKill"); a
	// test over its share is named in the durations report.
	Shares    map[string]time.Duration
	CPUs      int // DefaultCPUs if 0
	MemoryMiB int // DefaultMemoryMiB if 0
	// BuildFlags are passed to go build and go test -c (e.g. "-tags=foo").
	BuildFlags []string
	// Root, if set, boots this Debian system with systemd as PID 1 instead
	// of the busybox image (BuildSystemImage): the tests run from a unit
	// once multi-user.target is reached.
	Root *DebianRoot
}

// Binary is a main package to build and install in the guest.
type Binary struct {
	Package   string // e.g. "./cmd/kubearmor", relative to the module root
	GuestPath string // e.g. "/usr/local/bin/kubearmor" (on PATH in the guest)
}

// SkipReason says why the guest tests cannot run here, or "" if they can.
func SkipReason() string {
	switch {
	case os.Getenv(SkipEnv) == "1":
		return SkipEnv + "=1"
	case testutils.InGuest():
		return "already inside a vmtest guest"
	case os.Geteuid() != 0:
		return "needs root (kernels are fetched with apt-get into " + CacheDir() + "; guest tests assume a root-built image)"
	}
	if _, err := exec.LookPath(QEMUBinary); err != nil {
		return QEMUBinary + " is not installed (apt-get install qemu-system-x86)"
	}
	return ""
}

// guestPackage is a package whose test binary runs in the guest.
type guestPackage struct {
	ImportPath string
	Rel        string // directory relative to the module root, e.g. enforcer/detect
	Dir        string // on the host
	Binary     string // test binary on the host
}

func (p guestPackage) guestBinary() string {
	return "/vmtest/" + strings.ReplaceAll(p.Rel, "/", "_") + ".test"
}

func (p guestPackage) guestDir() string {
	return path.Join("/src", p.Rel)
}

// RunTests builds the suite, boots every kernel and runs the guest test
// binaries there, reporting each guest test as a subtest:
// <kernel release>/<package dir>/<test>/<subtest>. A guest test's failure,
// a guest crash or timeout, a missing bpf LSM and a package that ran no
// tests all fail t. It skips t (with the reason) only for SkipReason.
func RunTests(t *testing.T, s Suite) {
	if reason := SkipReason(); reason != "" {
		t.Skip("guest tests skipped: " + reason)
	}
	ctx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		// Leave time to report a hung guest before go test's own
		// timeout panics with nothing but goroutine stacks.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, deadline.Add(-30*time.Second),
			errors.New("go test -timeout is about to expire; raise it (e.g. -timeout 30m)"))
		defer cancel()
	}
	timeout, err := suiteTimeout(s.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	guestArgs, err := testFlags(s, timeout)
	if err != nil {
		t.Fatal(err)
	}

	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	pkgs, err := listPackages(ctx, root, packagePatterns(s.Packages))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) == 0 {
		t.Fatalf("no guest packages with tests among %q", packagePatterns(s.Packages))
	}
	if err := recordInputs(ctx, root, append(packagePatterns(s.Packages), binaryPackages(s.Binaries)...)); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	files, err := buildAll(ctx, root, work, s, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %d test binaries and %d programs in %v", len(pkgs), len(s.Binaries), time.Since(begin).Round(time.Millisecond))

	guest := Guest{Files: append(files, s.Files...)}
	for _, p := range pkgs {
		guest.Commands = append(guest.Commands, Command{
			Name: p.Rel,
			Path: p.guestBinary(),
			Args: guestArgs,
			Dir:  p.guestDir(),
		})
	}
	ini, err := buildImage(ctx, t, work, s.Root, guest)
	if err != nil {
		t.Fatal(err)
	}

	for _, kp := range s.kernelPackages() {
		begin := time.Now()
		k, err := FetchKernel(ctx, CacheDir(), kp)
		if err != nil {
			t.Errorf("fetch kernel: %v", err)
			continue
		}
		how := "cached"
		if k.Downloaded {
			how = "downloaded"
		}
		t.Logf("kernel %s %s in %v: %s", k, how, time.Since(begin).Round(time.Millisecond), k.Dir)
		t.Run(k.Release, func(t *testing.T) {
			image := ini
			if s.Root == nil {
				// The busybox guest loads the kernel's guest modules.
				if image, err = ini.WithModules(filepath.Join(work, "initramfs-"+k.Release+".cpio"), k); err != nil {
					t.Fatal(err)
				}
			}
			m := Machine{Kernel: k, Initramfs: image, CPUs: s.CPUs, MemoryMiB: s.MemoryMiB, Timeout: timeout, WorkDir: work,
				CountInstructions: os.Getenv(ICountEnv) == "1"}
			if m.CountInstructions {
				// With two vCPUs on the counting clock the guest did not
				// get past its early boot here; with one it boots in
				// seconds. A benchmark loses nothing by it.
				m.CPUs = 1
			}
			runKernel(ctx, t, s, m, pkgs)
		})
	}
}

// buildImage writes the guest's image: the busybox one, or root's.
func buildImage(ctx context.Context, t *testing.T, work string, root *DebianRoot, g Guest) (*Initramfs, error) {
	if root == nil {
		return BuildInitramfs(filepath.Join(work, "initramfs.cpio"), g)
	}
	begin := time.Now()
	archive, built, err := FetchDebianRoot(ctx, CacheDir(), *root)
	if err != nil {
		return nil, err
	}
	how := "cached"
	if built {
		how = "built with debootstrap"
	}
	t.Logf("Debian %s root %s in %v: %s", root.Suite, how, time.Since(begin).Round(time.Millisecond), archive)
	return BuildSystemImage(filepath.Join(work, "system.cpio"), archive, g)
}

// kernelPackages are the kernels the suite boots.
func (s Suite) kernelPackages() []string {
	if len(s.Kernels) > 0 {
		return s.Kernels
	}
	return KernelPackages()
}

func (s Suite) runFilter() string {
	if s.Run != "" {
		return s.Run
	}
	return os.Getenv(RunEnv)
}

func packagePatterns(pkgs []string) []string {
	if only := strings.Fields(os.Getenv(PackagesEnv)); len(only) > 0 {
		return only
	}
	return pkgs
}

// suiteTimeout is one kernel's limit: TimeoutEnv if set (benchmarks run
// far longer than the tests), else the suite's, else DefaultTimeout.
func suiteTimeout(d time.Duration) (time.Duration, error) {
	if env := os.Getenv(TimeoutEnv); env != "" {
		d, err := time.ParseDuration(env)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", TimeoutEnv, err)
		}
		return d, nil
	}
	if d != 0 {
		return d, nil
	}
	return DefaultTimeout, nil
}

// testFlags are the flags of every guest test binary. -test.v=test2json
// marks the framing lines so the host can tell tests apart reliably.
func testFlags(s Suite, timeout time.Duration) ([]string, error) {
	args := []string{"-test.v=test2json", "-test.timeout=" + (timeout - 15*time.Second).String()}
	if timeout <= 30*time.Second {
		args[1] = "-test.timeout=" + timeout.String()
	}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	if run := s.runFilter(); run != "" {
		args = append(args, "-test.run="+run)
	}
	extra := append(strings.Fields(os.Getenv(ArgsEnv)), s.Args...)
	for _, a := range extra {
		if !strings.HasPrefix(a, "-test.") {
			return nil, fmt.Errorf("guest test flag %q: want -test.<flag> (test binaries take no other flags here)", a)
		}
	}
	return append(args, extra...), nil
}

// runKernel boots one kernel and reports its results under t, and what
// the guest took against its limit (DurationsEnv).
func runKernel(ctx context.Context, t *testing.T, s Suite, m Machine, pkgs []guestPackage) {
	filtered := s.runFilter() != ""
	res, runErr := m.Run(ctx)
	if res == nil {
		t.Fatal(runErr)
	}
	durations := &guestDurations{suite: s.Name, kernel: m.Kernel.Release, limit: m.Timeout, boot: res.Boot, total: res.Duration}
	defer func() {
		t.Log(durations)
		if err := appendDurations(durations); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		if t.Failed() && len(res.Console) > 0 {
			t.Logf("--- full console of %s ---\n%s", m.Kernel.Release, res.Console)
		}
	})
	t.Logf("guest uname -r: %s", res.Uname)
	t.Logf("guest LSMs: %s", res.LSM)
	t.Logf("boot %v, total %v", res.Boot.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
	if res.Uname != "" && !slices.Contains(res.LSMs(), "bpf") {
		t.Errorf("bpf is not in the guest's active LSM list %q: BPF-LSM cannot work; check lsm= in the kernel command line (%s)", res.LSM, DefaultCmdline)
	}
	if w := kernelWarnings(res.Console); w != "" {
		t.Errorf("the guest kernel logged warnings or bugs:\n%s", w)
	}

	executed := 0 // guest tests that ran and did not skip, in all packages
	for i, p := range pkgs {
		if i >= len(res.Outputs) {
			break
		}
		out := res.Outputs[i]
		if !out.Finished && len(out.Output) == 0 {
			durations.addPackage(s, p, out, nil)
			continue // never started: the guest stopped before
		}
		t.Run(p.Rel, func(t *testing.T) {
			var report *packageReport
			defer func() { durations.addPackage(s, p, out, report) }() // also past a Skip
			report, n, err := reportPackage(ctx, t, p, out, filtered)
			executed += n
			if err != nil {
				t.Error(err)
			}
		})
	}
	if runErr != nil {
		t.Fatal(runErr)
	}
	if executed == 0 {
		t.Errorf("no guest test ran without skipping, in %d packages", len(pkgs))
	}
}

// kernelWarnings returns the console lines of WARN()s, BUG()s and oopses:
// the tests may have hit a kernel bug, and would else still pass.
func kernelWarnings(console []byte) string {
	var found []string
	for _, line := range strings.Split(string(console), "\n") {
		if strings.Contains(line, "WARNING: CPU:") || strings.Contains(line, "BUG:") || strings.Contains(line, "Oops:") {
			found = append(found, strings.TrimSpace(line))
		}
	}
	return strings.Join(found, "\n")
}

// reportPackage converts one test binary's output into subtests of t and
// returns it, and how many guest tests ran without skipping.
func reportPackage(ctx context.Context, t *testing.T, p guestPackage, out Output, filtered bool) (*packageReport, int, error) {
	t.Logf("guest run took %v, exit code %d", out.Duration.Round(time.Millisecond), out.ExitCode)
	report, err := test2json(ctx, p.ImportPath, out.Output)
	if err != nil {
		t.Logf("raw output:\n%s", out.Output)
		return nil, 0, err
	}
	for _, gt := range report.Tests {
		reportTest(t, gt)
	}
	pkgOut := strings.TrimSpace(report.Output.String())
	ran, executed := report.count()
	switch {
	case !out.Finished:
		return report, executed, fmt.Errorf("the test binary did not finish (guest crash or timeout)%s", indentBlock(pkgOut))
	case out.ExitCode != 0 || report.Action == "fail":
		if pkgOut == "" && !report.failedTest() {
			pkgOut = string(out.Output) // nothing says why: show everything
		}
		return report, executed, fmt.Errorf("the test binary failed (exit code %d)%s", out.ExitCode, indentBlock(pkgOut))
	case ran == 0 && benchmarked(pkgOut):
		// A benchmark run (-test.bench with -test.run=^$) is not a
		// test, but it ran.
		t.Log(pkgOut)
		return report, 1, nil
	case ran == 0 && filtered:
		t.Skipf("no test matches the filter: %s", pkgOut)
	case ran == 0:
		return report, 0, fmt.Errorf("no tests ran: %s", pkgOut)
	}
	if pkgOut != "" {
		t.Log(pkgOut)
	}
	return report, executed, nil
}

// benchResult is a benchmark's result line in a test binary's output.
var benchResult = regexp.MustCompile(`(?m)^Benchmark\S+\s+\d+\s+[\d.]+ ns/op`)

// benchmarked reports whether a test binary's output has a benchmark result.
func benchmarked(out string) bool { return benchResult.MatchString(out) }

// reportTest reports a guest test (and its subtests) as a subtest of t.
func reportTest(t *testing.T, gt *guestTest) {
	t.Run(gt.name, func(t *testing.T) {
		for _, c := range gt.children {
			reportTest(t, c)
		}
		out := dedent(gt.output.String())
		elapsed := fmt.Sprintf("(%.2fs in the guest)", gt.elapsed)
		switch gt.action {
		case "pass":
			if out != "" || gt.elapsed >= 0.1 {
				t.Log(strings.TrimSpace(out + "\n" + elapsed))
			}
		case "skip":
			t.Skip(out)
		case "fail":
			t.Errorf("guest test failed %s\n%s", elapsed, out)
		default:
			t.Errorf("guest test did not finish (guest crash, timeout or os.Exit)\n%s", out)
		}
	})
}

// indentBlock returns s on its own lines after a message, or "" if empty.
func indentBlock(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	return "\n" + s
}

// dedent removes the indentation the guest's testing package put before
// every line, as the host's adds its own.
func dedent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " \t")); indent < 0 || n < indent {
			indent = n
		}
	}
	for i, l := range lines {
		if len(l) >= indent && indent > 0 {
			lines[i] = l[indent:]
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not in a module")
	}
	return filepath.Dir(gomod), nil
}

// listPackages expands patterns to the packages that have tests.
func listPackages(ctx context.Context, root string, patterns []string) ([]guestPackage, error) {
	args := append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w: %s", strings.Join(patterns, " "), err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []guestPackage
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 || f[2] == "0" && f[3] == "0" {
			continue
		}
		rel, err := filepath.Rel(root, f[1])
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, guestPackage{ImportPath: f[0], Rel: filepath.ToSlash(rel), Dir: f[1]})
	}
	return pkgs, nil
}

func binaryPackages(bins []Binary) []string {
	var pkgs []string
	for _, b := range bins {
		pkgs = append(pkgs, b.Package)
	}
	return pkgs
}

// recordInputs opens the directories of the module's packages that the
// guest binaries are built from, and go.mod and go.sum. go test's result
// cache knows only the files the test process itself opens; without this,
// a change to a guest package would replay a cached, stale pass.
func recordInputs(ctx context.Context, root string, patterns []string) error {
	args := append([]string{"list", "-deps", "-test", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list -deps %s: %w: %s", strings.Join(patterns, " "), err, strings.TrimSpace(stderr.String()))
	}
	dirs := map[string]bool{}
	for _, d := range strings.Fields(string(out)) {
		dirs[d] = true
		// testdata is not a package; its files are inputs too.
		_ = filepath.WalkDir(filepath.Join(d, "testdata"), func(p string, e fs.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs[p] = true
			}
			return nil
		})
	}
	for _, p := range append(sortedKeys(dirs), filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")) {
		// Opening a directory records the names, sizes and mtimes of its files.
		if f, err := os.Open(p); err == nil {
			f.Close()
		}
	}
	return nil
}

// buildAll builds the test binaries and programs (in parallel; the go
// build cache makes repeats cheap) and returns the files to put in the guest.
func buildAll(ctx context.Context, root, work string, s Suite, pkgs []guestPackage) ([]File, error) {
	bin := filepath.Join(work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	type job struct {
		args []string
		file File
	}
	var jobs []job
	for i := range pkgs {
		p := &pkgs[i]
		p.Binary = filepath.Join(bin, strings.ReplaceAll(p.Rel, "/", "_")+".test")
		args := append([]string{"test", "-c", "-o", p.Binary}, s.BuildFlags...)
		jobs = append(jobs, job{args: append(args, p.ImportPath), file: File{HostPath: p.Binary, GuestPath: p.guestBinary()}})
	}
	for _, b := range s.Binaries {
		if !path.IsAbs(b.GuestPath) {
			return nil, fmt.Errorf("binary %s: guest path %q is not absolute", b.Package, b.GuestPath)
		}
		out := filepath.Join(bin, "prog-"+path.Base(b.GuestPath))
		args := append([]string{"build", "-o", out}, s.BuildFlags...)
		jobs = append(jobs, job{args: append(args, b.Package), file: File{HostPath: out, GuestPath: b.GuestPath, Mode: 0o755}})
	}

	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, "go", j.args...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %w\n%s", strings.Join(j.args, " "), err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	var files []File
	for _, j := range jobs {
		files = append(files, j.file)
	}
	for _, p := range pkgs {
		// go test runs a test binary in its package directory, and tests
		// read testdata/ relative to it: recreate that in the guest.
		td := filepath.Join(p.Dir, "testdata")
		if info, err := os.Stat(td); err == nil && info.IsDir() {
			files = append(files, File{HostPath: td, GuestPath: path.Join(p.guestDir(), "testdata")})
		}
	}
	return files, nil
}
