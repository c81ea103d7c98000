//go:build linux

package bpflsm

import (
	"errors"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

func TestMain(m *testing.M) {
	if os.Getenv(execServerEnv) == "1" {
		os.Exit(runExecServer())
	}
	if os.Getenv(memfdExecEnv) != "" {
		os.Exit(runMemfdExec(os.Getenv(memfdExecEnv)))
	}
	os.Exit(testutils.RunWithLeakCheck(m))
}

// testDecider runs the kernel's decision procedure on given paths through
// BPF_PROG_TEST_RUN of the raw_tp wrapper in lsm.bpf.c. That needs no
// BPF-LSM, so it runs on the development host as well as in the guests.
type testDecider struct {
	objs struct {
		Prog *ebpf.Program `ebpf:"ka_test_decide"`
		In   *ebpf.Map     `ebpf:"test_in"`
		Out  *ebpf.Map     `ebpf:"test_out"`
		policyMaps
	}
}

func newTestDecider(t *testing.T) *testDecider {
	t.Helper()
	testutils.RequireRoot(t)
	spec, err := loadLsm()
	if err != nil {
		t.Fatal(err)
	}
	d := &testDecider{}
	err = spec.LoadAndAssign(&d.objs, nil)
	if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, os.ErrPermission) {
		testutils.RequireFeature(t, "raw_tp programs with bpf_loop", err)
	}
	if err != nil {
		t.Fatalf("load decision program: %v", err)
	}
	t.Cleanup(func() {
		d.objs.closeInner()
		for _, c := range []interface{ Close() error }{d.objs.Prog, d.objs.In, d.objs.Out, d.objs.TrieOuter,
			d.objs.RulesOuter, d.objs.StatsOuter, d.objs.DfaOuter, d.objs.SysOuter, d.objs.Kinds, d.objs.Active, d.objs.Stamps, d.objs.Counters} {
			c.Close()
		}
	})
	return d
}

func (d *testDecider) apply(t testing.TB, set *policy.Set) {
	t.Helper()
	spec, err := Compile(set)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	if err := d.objs.apply(spec); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func (d *testDecider) decide(t testing.TB, op match.Op, s match.Subject, o match.Object) match.Decision {
	t.Helper()
	return d.decideAs(t, op, s, o, false)
}

// decideAs is decide with the executable's path flagged as one no host
// mount shows, when exeNoHost.
func (d *testDecider) decideAs(t testing.TB, op match.Op, s match.Subject, o match.Object, exeNoHost bool) match.Decision {
	t.Helper()
	in := lsmTestInput{
		Kind:     uint32(op.Kind()),
		Op:       uint32(op),
		Family:   uint32(o.Socket.Family),
		Type:     uint32(o.Socket.Type),
		Protocol: uint32(o.Socket.Protocol),
		Cap:      uint32(o.Capability),
	}
	if op == match.OpSyscall {
		nr, _ := policy.SyscallNumber(o.Syscall)
		in.Sysnr = uint32(nr)
	}
	in.PathLen = uint32(copy(in.Path[:], o.Path))
	in.ExeLen = uint32(copy(in.Exe[:], s.Exe))
	if s.UID != o.OwnerUID {
		in.NotOwner = 1
	}
	if o.PathTooLong {
		in.Flags = uint32(lsmKaEventFlagKA_EV_PATH_TRUNCATED)
	}
	if o.NoHostPath {
		in.Flags |= uint32(lsmKaEventFlagKA_EV_NO_HOST)
	}
	if o.UserWritable {
		in.Untrusted = 1
	}
	if s.ExeUnknown {
		in.ExeFlags = uint32(lsmKaEventFlagKA_EV_PATH_TRUNCATED)
	}
	if exeNoHost {
		in.ExeFlags |= uint32(lsmKaEventFlagKA_EV_NO_HOST)
	}
	if err := d.objs.In.Put(uint32(0), &in); err != nil {
		t.Fatal(err)
	}
	if _, err := d.objs.Prog.Run(&ebpf.RunOptions{}); err != nil {
		t.Fatalf("run decision program: %v", err)
	}
	var out lsmTestOutput
	if err := d.objs.Out.Lookup(uint32(0), &out); err != nil {
		t.Fatal(err)
	}
	return match.Decision{Verdict: match.Verdict(out.D.Verdict), RuleID: out.D.Rule}
}

// TestDecideDifferential holds the kernel's decisions against the reference
// matcher's on generated rule sets and execs.
func TestDecideDifferential(t *testing.T) {
	d := newTestDecider(t)
	rng := rand.New(rand.NewPCG(1, 2))
	sets, queries := 500, 40
	if testutils.InGuest() {
		sets = 125 // the same program on the guest kernels' verifiers, at TCG speed
	}
	seen := map[match.Verdict]int{}
	kinds := map[policy.Kind]int{}
	for i := range sets {
		set := hostUniverse.randomSet(rng, uint64(i+1), "")
		d.apply(t, set)
		m := match.New(set)
		for range queries {
			op, s, o := hostUniverse.randomQuery(rng, "")
			o.PathTooLong = o.Path != "" && rng.IntN(50) == 0
			s.ExeUnknown = rng.IntN(50) == 0
			// Reached another way: a file mapped executable (the loader's
			// way to a program), or one no host mount shows.
			if op == match.OpExec && rng.IntN(3) == 0 {
				op = match.OpExecMap
			}
			if (op.Kind() == policy.KindProcess || op.Kind() == policy.KindFile) && rng.IntN(20) == 0 {
				o.NoHostPath = true
			}
			o.UserWritable = op == match.OpExecMap && rng.IntN(3) == 0
			// A program no host mount shows: the kernel has a name for it,
			// which must not make it anyone's source.
			exeNoHost := s.Exe != "" && rng.IntN(30) == 0
			ms := s
			if exeNoHost {
				ms.Exe = ""
			}
			want := m.Decide(op, ms, o)
			seen[want.Verdict]++
			kinds[op.Kind()]++
			if got := d.decideAs(t, op, s, o, exeNoHost); got != want {
				min := d.shrink(t, set, op, s, o)
				d.apply(t, min)
				t.Fatalf("%v by %s (uid %d, exe unknown %v) on %+v: kernel %v, matcher %v\nminimal rule set (postures %+v):\n%s",
					op, s.Exe, s.UID, s.ExeUnknown, o, d.decide(t, op, s, o), match.New(min).Decide(op, s, o),
					min.Postures(), dumpRules(min))
			}
		}
	}
	t.Logf("%d decisions agree: %v, by kind %v", sets*queries, seen, kinds)
	for v := match.NoMatch; v <= match.PostureBlock; v++ {
		if seen[v] == 0 {
			t.Errorf("the generator never produced verdict %v: the test does not cover it", v)
		}
	}
}

// shrink removes rules from set one at a time while the kernel and the
// matcher still disagree on the query, so a failure prints a minimal case.
func (d *testDecider) shrink(t *testing.T, set *policy.Set, op match.Op, s match.Subject, o match.Object) *policy.Set {
	var rules []policy.Rule
	for r := range set.Rules() {
		rules = append(rules, *r)
	}
	disagree := func(rs []policy.Rule) (*policy.Set, bool) {
		doc := &policy.Document{File: "gen.yaml", Line: 1, Name: "gen", Rules: rs}
		cand, err := policy.NewSet(set.Version()+1000, set.Postures(), []*policy.Document{doc})
		if err != nil {
			return nil, false
		}
		d.apply(t, cand)
		return cand, d.decide(t, op, s, o) != match.New(cand).Decide(op, s, o)
	}
	best := set
	for i := 0; i < len(rules); {
		trial := append(append([]policy.Rule(nil), rules[:i]...), rules[i+1:]...)
		if cand, bad := disagree(trial); bad {
			rules, best = trial, cand
			continue
		}
		i++
	}
	return best
}

func dumpRules(set *policy.Set) string {
	var out string
	for r := range set.Rules() {
		out += "  " + describeRule(r) + "\n"
	}
	return out
}

// TestHookNames checks that every LSM and tracing program of the object is
// loaded and attached: a program missing from hooks or afterChange would
// never run.
func TestHookNames(t *testing.T) {
	spec, err := loadLsm()
	if err != nil {
		t.Fatal(err)
	}
	var h hooks
	var a afterChange
	if len(programNames[hooks]()) != len(programsOf(&h)) || len(programNames[afterChange]()) != len(programsOf(&a)) {
		t.Fatal("names and programs differ in number")
	}
	names := append(programNames[hooks](), programNames[afterChange]()...)
	for _, n := range names {
		if _, ok := spec.Programs[n]; !ok {
			t.Errorf("no program %s", n)
		}
	}
	if len(spec.Programs) != len(names)+2 { // and sys_enter and the test program
		t.Errorf("the object has %d programs, names() lists %d", len(spec.Programs), len(names))
	}
}
