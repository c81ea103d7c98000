//go:build linux

package bpflsm

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"

	"github.com/cilium/ebpf"

	"github.com/kubearmor/kubearmor-host/internal/percpu"
)

// policyMaps are the maps one loaded object uses to find the rules in force:
// the layout is described in compile.go. Only the daemon's reconcile
// goroutine touches them.
type policyMaps struct {
	TrieOuter  *ebpf.Map `ebpf:"trie_outer"`
	RulesOuter *ebpf.Map `ebpf:"rules_outer"`
	StatsOuter *ebpf.Map `ebpf:"stats_outer"`
	DfaOuter   *ebpf.Map `ebpf:"dfa_outer"`
	SysOuter   *ebpf.Map `ebpf:"sysfilter_outer"`
	Kinds      *ebpf.Map `ebpf:"kinds"`
	Active     *ebpf.Map `ebpf:"active"`
	Stamps     *ebpf.Map `ebpf:"stamps"`
	Counters   *ebpf.Map `ebpf:"counters"`

	slot    uint32
	version uint64
	held    [2][]*ebpf.Map // inner maps installed in each slot: trie, rules, stats, dfa, syscalls
}

// apply writes s into the idle slot and makes it current with one store to
// `active`. The slot it overwrites held the generation before the current
// one, which no program can still be using: a hook reads `active` once and
// finishes in microseconds, while generations change at most once per
// reload.
func (m *policyMaps) apply(s *Spec) error {
	if s.Version == 0 || s.Version >= 1<<62 {
		return fmt.Errorf("policy set version %d out of range", s.Version)
	}
	next := m.slot ^ 1
	trie, err := newInner("ka_trie", unsafe.Sizeof(lsmTrieKey{}), unsafe.Sizeof(lsmTrieVal{}), len(s.Trie))
	if err != nil {
		return err
	}
	rules, err := newInner("ka_rules", unsafe.Sizeof(lsmRuleKey{}), unsafe.Sizeof(lsmRuleVal{}), len(s.Rules))
	if err != nil {
		trie.Close()
		return err
	}
	stats, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "ka_stats",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  uint32(unsafe.Sizeof(lsmRuleStats{})),
		MaxEntries: uint32(s.NumRules + 1),
		Flags:      unix.BPF_F_INNER_MAP,
	})
	if err != nil {
		trie.Close()
		rules.Close()
		return fmt.Errorf("create rule statistics map for %d rules: %w", s.NumRules, err)
	}
	dfaMap, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "ka_dfa",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: uint32(max(len(s.DFA), 1)),
		Flags:      unix.BPF_F_INNER_MAP,
	})
	if err != nil {
		trie.Close()
		rules.Close()
		stats.Close()
		return fmt.Errorf("create pattern automaton map of %d entries: %w", len(s.DFA), err)
	}
	sysMap, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "ka_sysfilter",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  uint32(unsafe.Sizeof(lsmSysFilter{})),
		MaxEntries: maxSyscall,
		Flags:      unix.BPF_F_INNER_MAP,
	})
	if err != nil {
		trie.Close()
		rules.Close()
		stats.Close()
		dfaMap.Close()
		return fmt.Errorf("create syscall filter map: %w", err)
	}
	fail := func(err error) error {
		for _, x := range []*ebpf.Map{trie, rules, stats, dfaMap, sysMap} {
			x.Close()
		}
		return err
	}
	for nr, f := range s.Syscalls {
		if f.Flags != 0 {
			if err := sysMap.Put(uint32(nr), f); err != nil {
				return fail(fmt.Errorf("fill syscall filter: %w", err))
			}
		}
	}
	if len(s.DFA) > 0 {
		keys := make([]uint32, len(s.DFA))
		for i := range keys {
			keys[i] = uint32(i)
		}
		if err := putAll(dfaMap, keys, s.DFA); err != nil {
			return fail(fmt.Errorf("fill pattern automaton: %w", err))
		}
	}
	gen := s.Version<<1 | uint64(next)
	// Unstamp the slot first: a program still deciding with the generation
	// it held (preempted across two updates) then knows not to trust it.
	if err := m.Stamps.Put(next, uint64(0)); err != nil {
		return fail(fmt.Errorf("unstamp slot %d: %w", next, err))
	}
	tk, tv := make([]lsmTrieKey, len(s.Trie)), make([]lsmTrieVal, len(s.Trie))
	for i, e := range s.Trie {
		tk[i], tv[i] = e.Key, e.Val
	}
	if err := putAll(trie, tk, tv); err != nil {
		return fail(fmt.Errorf("fill trie map: %w", err))
	}
	rk, rv := make([]lsmRuleKey, len(s.Rules)), make([]lsmRuleVal, len(s.Rules))
	for i, e := range s.Rules {
		rk[i], rv[i] = e.Key, e.Val
	}
	if err := putAll(rules, rk, rv); err != nil {
		return fail(fmt.Errorf("fill rules map: %w", err))
	}
	for k := range kindSlots {
		if err := m.Kinds.Put(next*uint32(kindSlots)+uint32(k), s.Kinds[k]); err != nil {
			return fail(fmt.Errorf("write kinds[%d]: %w", k, err))
		}
	}
	if err := m.TrieOuter.Put(next, trie); err != nil {
		return fail(fmt.Errorf("install trie map: %w", err))
	}
	if err := m.RulesOuter.Put(next, rules); err != nil {
		return fail(fmt.Errorf("install rules map: %w", err))
	}
	if err := m.StatsOuter.Put(next, stats); err != nil {
		return fail(fmt.Errorf("install statistics map: %w", err))
	}
	if err := m.DfaOuter.Put(next, dfaMap); err != nil {
		return fail(fmt.Errorf("install pattern automaton: %w", err))
	}
	if err := m.SysOuter.Put(next, sysMap); err != nil {
		return fail(fmt.Errorf("install syscall filter: %w", err))
	}
	if err := m.Stamps.Put(next, gen); err != nil {
		return fail(fmt.Errorf("stamp slot %d: %w", next, err))
	}
	if err := m.Active.Put(uint32(0), lsmActiveGen{Gen: gen}); err != nil {
		return fail(fmt.Errorf("switch generation: %w", err))
	}
	for _, old := range m.held[next] {
		old.Close()
	}
	m.held[next] = []*ebpf.Map{trie, rules, stats, dfaMap, sysMap}
	m.slot = next
	m.version = s.Version
	return nil
}

func newInner(name string, keySize, valueSize uintptr, n int) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       name,
		Type:       ebpf.Hash,
		KeySize:    uint32(keySize),
		ValueSize:  uint32(valueSize),
		MaxEntries: uint32(max(n, 1)),
	})
	if err != nil {
		return nil, fmt.Errorf("create %s map with %d entries: %w", name, n, err)
	}
	return m, nil
}

// putAll writes entries in batches where the kernel supports it.
func putAll[K, V any](m *ebpf.Map, keys []K, vals []V) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := m.BatchUpdate(keys, vals, nil)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return err
	}
	for i := range keys {
		if err := m.Put(keys[i], vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// counters sums the per-CPU counters, indexed by enum ka_counter.
func (m *policyMaps) counters() ([]uint64, error) {
	return percpu.Sum(m.Counters, int(lsmKaCounterKA_CNT_MAX))
}

func (m *policyMaps) closeInner() {
	for _, maps := range m.held {
		for _, x := range maps {
			x.Close()
		}
	}
	m.held = [2][]*ebpf.Map{}
}

// ruleStats reads the per-rule decisions of the set in force.
func (m *policyMaps) ruleStats() (uint64, []enforcer.RuleCounts, error) {
	held := m.held[m.slot]
	if len(held) < 3 {
		return 0, nil, nil
	}
	stats := held[2]
	out := make([]enforcer.RuleCounts, stats.MaxEntries())
	var v lsmRuleStats
	for i := range out {
		if err := stats.Lookup(uint32(i), &v); err != nil {
			return m.version, nil, fmt.Errorf("read statistics of rule %d: %w", i, err)
		}
		out[i] = enforcer.RuleCounts{Allowed: v.Allowed, Audited: v.Audited, Denied: v.Denied}
	}
	return m.version, out, nil
}

// memory sums the kernel memory the current generation's maps take, as
// /proc reports it ("memlock" in a map's fdinfo).
func (m *policyMaps) memory() (uint64, error) {
	var total uint64
	for _, x := range m.held[m.slot] {
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", x.FD()))
		if err != nil {
			return 0, err
		}
		for line := range strings.SplitSeq(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "memlock:"); ok {
				n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, fmt.Errorf("parse fdinfo memlock %q: %w", v, err)
				}
				total += n
			}
		}
	}
	return total, nil
}
