//go:build linux

package alertloss

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/apparmor"
	"github.com/kubearmor/kubearmor-host/enforcer/bpflsm"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
)

// Markers around the results, which `make bench-loss` copies into
// docs/benchmarks.md.
const (
	benchBegin = "---8<--- benchmark results"
	benchEnd   = "--->8---"
)

// genEnv makes the test binary a generator: "PATH N RATE". The
// violations must come from a process started after the rules are in
// force (AppArmor confines at exec), so the benchmark runs itself again.
const genEnv = "KUBEARMOR_LOSSGEN"

func TestMain(m *testing.M) {
	if spec := os.Getenv(genEnv); spec != "" {
		os.Exit(generator(spec))
	}
	os.Exit(testutils.RunWithLeakCheck(m))
}

// generator opens PATH N times at RATE per second and prints its Result
// as JSON.
func generator(spec string) int {
	var path string
	var n int
	var rate float64
	if _, err := fmt.Sscan(spec, &path, &n, &rate); err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", genEnv, spec, err)
		return 2
	}
	r := Generate(context.Background(), n, rate, syscall.EACCES, func() error {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	})
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

// path is one alert path under test.
type path struct {
	name string
	load func(t testing.TB) enforcer.Enforcer
}

func paths() []path {
	aa := func(source enforcer.AlertSource) func(t testing.TB) enforcer.Enforcer {
		return func(t testing.TB) enforcer.Enforcer {
			e, err := apparmor.Load(apparmor.Options{Source: source})
			if err != nil {
				t.Fatal(err)
			}
			if e.Source() != source {
				t.Fatalf("AppArmor alerts from %s, want %s", e.Source(), source)
			}
			return e
		}
	}
	lsm := func(ring uint32) func(t testing.TB) enforcer.Enforcer {
		return func(t testing.TB) enforcer.Enforcer {
			e, err := bpflsm.Load(bpflsm.Options{AlertRingSize: ring})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
	}
	return []path{
		{"BPF-LSM, ring buffer", lsm(0)},
		{"AppArmor, audit log (multicast)", aa(enforcer.AlertAudit)},
		{"AppArmor, eBPF (fexit on the LSM entry points)", aa(enforcer.AlertEBPF)},
	}
}

// row is one path at one rate.
type row struct {
	path      string
	target    float64 // calls per second asked for; 0: flat out
	gen       Result
	delivered uint64
	counted   uint64 // lost, and counted by the path
}

func (r row) uncounted() int64 {
	return int64(r.gen.Refused) - int64(r.delivered) - int64(r.counted)
}

// measure runs one generator against an enforcer already in force and
// waits until what it generated is accounted for, or stops changing.
func measure(t testing.TB, e enforcer.Enforcer, tally *tally, target string, n int, rate float64) row {
	before := lost(e.Stats())
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %g", genEnv, target, n, rate))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("generator: %v", err)
	}
	r := row{target: rate}
	if err := json.Unmarshal(out, &r.gen); err != nil {
		t.Fatalf("generator output %q: %v", out, err)
	}
	if r.gen.Other != 0 {
		t.Fatalf("generator: %d of %d calls were not refused: the rule is not in force", r.gen.Other, r.gen.Calls)
	}
	pid := uint32(cmd.Process.Pid)
	// Audit records come up to 300 ms late (reassembly); a backlog longer.
	// Settled: all accounted for, or nothing moved for two seconds.
	var last uint64
	still := time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r.delivered, r.counted = tally.get(pid), lost(e.Stats())-before
		if r.delivered+r.counted >= uint64(r.gen.Refused) {
			break
		}
		if now := r.delivered + r.counted; now != last {
			last, still = now, time.Now()
		} else if time.Since(still) > 2*time.Second {
			break
		}
	}
	return r
}

// lost is what an enforcer counted as lost, on every path.
func lost(s enforcer.Stats) uint64 { return s.AlertsLost + s.Undelivered + s.Malformed }

// tally counts the alerts for the target file by process.
type tally struct {
	mu    sync.Mutex
	byPID map[uint32]uint64
}

func (t *tally) get(pid uint32) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byPID[pid]
}

// start puts the set in force and counts alerts until the returned stop.
func start(t testing.TB, p path, set *policy.Set, target string) (enforcer.Enforcer, *tally, func()) {
	e := p.load(t)
	if err := e.Apply(set); err != nil {
		e.Close()
		t.Fatal(err)
	}
	tl := &tally{byPID: map[uint32]uint64{}}
	// A deep queue: the consumer only counts, and the enforcer counts
	// what it could not queue.
	events := make(chan enforcer.Event, 1<<16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.Run(ctx, events) })
	wg.Go(func() {
		for {
			select {
			case ev := <-events:
				if ev.Path == target {
					tl.mu.Lock()
					tl.byPID[ev.PID]++
					tl.mu.Unlock()
				}
			case <-ctx.Done():
				return
			}
		}
	})
	return e, tl, func() {
		cancel()
		wg.Wait()
		e.Close()
	}
}

// run measures every path at every rate with n(rate) violations each.
func run(t testing.TB, rates []float64, n func(rate float64) int) []row {
	if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); strings.TrimSpace(string(b)) != "Y" {
		t.Fatal("AppArmor is not enabled in the guest")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "secret")
	if err := os.WriteFile(target, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rules := []policy.Rule{{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: target,
		Origin: policy.Origin{File: "bench.yaml", Line: 1, Field: "file"}}}
	set, err := policy.NewSet(1, policy.Postures{File: policy.PostureAudit, Network: policy.PostureAudit, Capabilities: policy.PostureAudit},
		[]*policy.Document{{File: "bench.yaml", Line: 1, Name: "bench-block", Rules: rules}})
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for _, p := range paths() {
		e, tl, stop := start(t, p, set, target)
		for _, rate := range rates {
			r := measure(t, e, tl, target, n(rate), rate)
			r.path = p.name
			rows = append(rows, r)
			t.Logf("%s at %s: %d generated, %d delivered, %d counted, %d uncounted, achieved %.0f/s",
				p.name, rateName(r.target), r.gen.Refused, r.delivered, r.counted, r.uncounted(), r.gen.Rate())
		}
		stop()
	}
	return rows
}

func rateName(r float64) string {
	if r == 0 {
		return "flat out"
	}
	return strconv.FormatFloat(r, 'f', 0, 64) + "/s"
}

// table renders rows as Markdown.
func table(rows []row) string {
	var b strings.Builder
	b.WriteString("| path | asked | achieved/s | generated | delivered | counted lost | uncounted lost | call p50 (≤) | p99 (≤) | max |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %d | %d | %d | %d | %v | %v | %v |\n", r.path, rateName(r.target), r.gen.Rate(),
			r.gen.Refused, r.delivered, r.counted, r.uncounted(), r.gen.Latency.Quantile(0.5).Round(time.Microsecond),
			r.gen.Latency.Quantile(0.99).Round(time.Microsecond), r.gen.Latency.Max.Round(time.Microsecond))
	}
	return b.String()
}

// TestAlertLoss runs the benchmark's harness small, in every guest: each
// path, at a low rate and flat out, produces its table row, and nothing is
// lost uncounted where the path is meant to count everything.
func TestAlertLoss(t *testing.T) {
	testutils.RequireGuest(t)
	rows := run(t, []float64{1000, 0}, func(rate float64) int { return 1000 })
	t.Logf("\n%s", table(rows))
	for _, r := range rows {
		if r.gen.Refused != 1000 {
			t.Errorf("%s at %s: %d violations generated, want 1000", r.path, rateName(r.target), r.gen.Refused)
		}
		if u := r.uncounted(); u != 0 && !strings.Contains(r.path, "audit") {
			t.Errorf("%s at %s: %d alerts lost without being counted", r.path, rateName(r.target), u)
		}
	}
}

// BenchmarkAlertLoss is the side-by-side loss benchmark (`make bench-loss`):
// every path at 1,000, 10,000 and 100,000 violations a second and flat out,
// two seconds' worth at each rate (100,000 flat out).
func BenchmarkAlertLoss(b *testing.B) {
	testutils.RequireGuest(b)
	rates := []float64{1000, 10000, 100000, 0}
	rows := run(b, rates, func(rate float64) int {
		if rate == 0 {
			return 100000
		}
		return int(2 * rate)
	})
	var kernel unix.Utsname
	unix.Uname(&kernel)
	fmt.Printf("%s\n### Alert loss, kernel %s (%d CPUs, QEMU TCG)\n\n%s%s\n", benchBegin,
		unix.ByteSliceToString(kernel.Release[:]), runtime.NumCPU(), table(rows), benchEnd)
}
