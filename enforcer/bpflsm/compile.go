package bpflsm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// Map layout (the C side is bpf/lib/policy.h). One policy generation is:
//
//	trie   hash   {parent node, name length, name[256] zero padded} -> {node, flags}
//	              The root "/" is {0, 0, ""} -> {1, flags}. Every rule object
//	              path and every fromSource path has a node; node IDs start
//	              at 1. execname rules are {0xffffffff, name} -> node.
//	              flags: bit type-1 = rules without fromSource at this node
//	              for key type `type`; bit 8+type-1 = rules with fromSource;
//	              bit 16 = a fromSource path or directory is this node (an
//	              anchor). Under an anchor, {anchor, 2, "\0s"|"\0p"|"\0a"} ->
//	              {class, flags} is the source class of an executable that is
//	              the anchor, directly in it, or deeper below it, when it is
//	              the deepest anchor on the executable's path: the class
//	              stands for every source such an executable matches. Its
//	              bit 16+kind = one of them has an allow-list (an Allow rule
//	              with fromSource) for kind.
//	rules  hash   {node, source class or 0, key type, access} -> rule[action][owner]
//	              key types, applied in this order: ANCESTOR (node is an
//	              ancestor directory of the object, above its parent), PARENT
//	              (the object's directory), SELF (the object, as a
//	              directory), NAME (the object's file name), EXACT (the
//	              object; also protocol nodes 0x80000000|protocol and
//	              capability nodes 0x81000000|capability). access is exec,
//	              read, write (every file operation but a read), net or cap.
//	              rule[a][o] is the ID of the most specific rule of action a
//	              (Allow, Audit, Block) at that key covering the access when
//	              the subject owns the object (o=0) or not (o=1); 0 for none.
//	kinds  array  [slot*8 + kind] -> {has rules, has Block, host allow-list, posture,
//	              has execname, some source has an allow-list, has fromSource rules}
//	stamps array  [slot] -> the generation the slot holds; 0 while it is rewritten
//	active array  [0] -> (version << 1) | slot
//
// trie and rules are inner maps of trie_outer and rules_outer (one per slot),
// created at the size the set needs: there is no fixed rule limit.

// TrieEntry is one trie element.
type TrieEntry struct {
	Key lsmTrieKey
	Val lsmTrieVal
}

// RuleEntry is one rules element.
type RuleEntry struct {
	Key lsmRuleKey
	Val lsmRuleVal
}

// Spec is a policy set compiled to the contents of one map generation. It is
// pure data, built and tested without a kernel.
type Spec struct {
	Version  uint64
	NumRules int
	DFA      []uint32 // the pattern automaton: next state at [state*256 + byte]
	// Syscalls has an entry for each system call with rules; nil if none.
	Syscalls []lsmSysFilter
	Trie     []TrieEntry
	Rules    []RuleEntry
	Kinds    [kindSlots]lsmKindCfg
}

const (
	kindSlots       = int(lsmKaKindKA_KIND_SLOTS)
	rootNode        = 1
	execNameParent  = 0xffffffff
	pseudoProtocol  = 0x80000000
	pseudoCapabilty = 0x81000000
	pseudoDFA       = 0x82000000
	pseudoSyscall   = 0x83000000
	maxSyscall      = 512 // size of the syscall filter table; x86-64 numbers stay below it
)

// Key types, from the C enum.
const (
	keyAncestor = uint8(lsmKaKeyTypeKA_KEY_ANCESTOR)
	keyParent   = uint8(lsmKaKeyTypeKA_KEY_PARENT)
	keySelf     = uint8(lsmKaKeyTypeKA_KEY_SELF)
	keyName     = uint8(lsmKaKeyTypeKA_KEY_NAME)
	keyExact    = uint8(lsmKaKeyTypeKA_KEY_EXACT)
	keyPattern  = uint8(lsmKaKeyTypeKA_KEY_PATTERN)
)

func flagAny(t uint8) uint32 { return 1 << (uint32(lsmKaNodeFlagKA_NF_ANY_SHIFT) + uint32(t) - 1) }
func flagSrc(t uint8) uint32 { return 1 << (uint32(lsmKaNodeFlagKA_NF_SRC_SHIFT) + uint32(t) - 1) }
func flagAllowList(k policy.Kind) uint32 {
	return 1 << (uint32(lsmKaNodeFlagKA_NF_ALLOWLIST_SHIFT) + uint32(k))
}

const flagSource = uint32(lsmKaNodeFlagKA_NF_SOURCE)

// access is a class of operations that every rule treats alike; one
// representative operation stands for each when asking the matcher.
type access struct {
	class uint8
	op    match.Op
}

// accessesOf lists the access classes the programs decide for a rule kind;
// nil for kinds this enforcer does not enforce yet.
func accessesOf(k policy.Kind) []access {
	switch k {
	case policy.KindProcess:
		return []access{{uint8(lsmKaAccessKA_ACC_EXEC), match.OpExec}}
	case policy.KindFile:
		return []access{{uint8(lsmKaAccessKA_ACC_READ), match.OpOpenRead}, {uint8(lsmKaAccessKA_ACC_WRITE), match.OpOpenWrite}}
	case policy.KindNetwork:
		return []access{{uint8(lsmKaAccessKA_ACC_NET), match.OpConnect}}
	case policy.KindCapabilities:
		return []access{{uint8(lsmKaAccessKA_ACC_CAP), match.OpCapable}}
	case policy.KindSyscall:
		return []access{{uint8(lsmKaAccessKA_ACC_SYSCALL), match.OpSyscall}}
	}
	return nil
}

// Compile turns a policy set into map contents. Rules this enforcer cannot
// check in the kernel are errors naming the rule, so the loader rejects the
// file that holds them instead of enforcing less than it says.
func Compile(set *policy.Set) (*Spec, error) {
	c := &compiler{
		spec:  &Spec{Version: set.Version(), NumRules: set.Len()},
		nodes: map[nodeKey]uint32{{}: rootNode},
		flags: map[uint32]uint32{},
		alias: map[uint32]uint32{},
		best:  map[lsmRuleKey]*[3][2]*policy.Rule{},
		names: map[uint32]nodeKey{rootNode: {}},
	}
	var errs policy.ErrorList
	fail := func(r *policy.Rule, err error) {
		errs = append(errs, &policy.Error{File: r.Origin.File, Line: r.Origin.Line, Field: r.Origin.Field, Msg: err.Error()})
	}
	c.sourceClasses(set)
	patterns := map[policy.Kind][]*policy.Rule{}
	for r := range set.Rules() {
		if r.Match == policy.MatchPattern && accessesOf(r.Kind) != nil {
			patterns[r.Kind] = append(patterns[r.Kind], r)
			continue
		}
		if err := c.add(r); err != nil {
			fail(r, err)
		}
	}
	if len(patterns) > 0 {
		if err := c.addPatterns(patterns); err != nil {
			for _, rs := range patterns {
				for _, r := range rs {
					fail(r, err)
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	c.finish(set)
	return c.spec, nil
}

// addPreset sets the rule that decides a preset's operations: the reference
// matcher's, a Block before an Audit, then the lower ID (presets are all as
// specific as each other and name no source).
func (c *compiler) addPreset(r *policy.Rule) {
	k := &c.spec.Kinds[r.Kind]
	rule, action := &k.FilelessRule, &k.FilelessAction
	if r.Preset == policy.PresetAnonMapExec {
		rule, action = &k.AnonRule, &k.AnonAction
	}
	verdict := uint8(lsmKaVerdictKA_AUDIT)
	if r.Action == policy.ActionBlock {
		verdict = uint8(lsmKaVerdictKA_BLOCK)
	}
	if *rule == 0 || verdict > *action {
		*rule, *action = r.ID, verdict
	}
}

type nodeKey struct {
	parent uint32
	name   string
}

type compiler struct {
	spec    *Spec
	nodes   map[nodeKey]uint32
	names   map[uint32]nodeKey
	flags   map[uint32]uint32
	classes []sourceClass
	alias   map[uint32]uint32 // class entry node -> the class it shares with others
	best    map[lsmRuleKey]*[3][2]*policy.Rule
	order   []lsmRuleKey // keys in creation order, for deterministic output
}

// node returns the trie node of an absolute path ("/" is the root; a
// trailing '/' is ignored), creating the nodes on the way.
func (c *compiler) node(path string) uint32 {
	id := uint32(rootNode)
	for comp := range strings.SplitSeq(strings.Trim(path, "/"), "/") {
		if comp != "" {
			id = c.child(id, comp)
		}
	}
	return id
}

func (c *compiler) child(parent uint32, name string) uint32 {
	k := nodeKey{parent: parent, name: name}
	id, ok := c.nodes[k]
	if !ok {
		id = uint32(len(c.nodes) + 1)
		c.nodes[k] = id
		c.names[id] = k
	}
	return id
}

func (c *compiler) add(r *policy.Rule) error {
	if r.Kind == policy.KindSyscall {
		return c.addSyscall(r)
	}
	if r.Match == policy.MatchPreset {
		c.addPreset(r)
		return nil
	}
	accesses := accessesOf(r.Kind)
	if accesses == nil {
		return fmt.Errorf("%s rules are not enforced by the BPF-LSM enforcer in this version", strings.ToLower(r.Kind.String()))
	}
	var obj uint32
	var types []uint8
	pseudo := false
	switch r.Match {
	case policy.MatchPath:
		obj, types = c.node(r.Path), []uint8{keyExact}
	case policy.MatchDir:
		obj, types = c.node(r.Path), []uint8{keyParent, keySelf}
		if r.Recursive {
			types = append(types, keyAncestor)
		}
	case policy.MatchExecName:
		obj, types = c.child(execNameParent, r.Path), []uint8{keyName}
		c.spec.Kinds[r.Kind].HasNames = 1
	case policy.MatchProtocol:
		obj, types, pseudo = pseudoProtocol|uint32(r.Protocol), []uint8{keyExact}, true
	case policy.MatchCapability:
		obj, types, pseudo = pseudoCapabilty|uint32(r.Capability), []uint8{keyExact}, true
	default:
		return fmt.Errorf("%s %s rules are not enforced by the BPF-LSM enforcer in this version",
			strings.ToLower(r.Kind.String()), r.Match)
	}
	sources := c.sources(r)
	for _, src := range sources {
		for _, t := range types {
			switch {
			case pseudo:
			case src == 0:
				c.flags[obj] |= flagAny(t)
			default:
				c.flags[obj] |= flagSrc(t)
			}
			for _, a := range accesses {
				c.attach(lsmRuleKey{Node: obj, Source: src, Type: t, Access: a.class}, r, a.op)
			}
		}
	}
	return nil
}

// A sourceClass is a set of fromSource entries that some executable
// matches all of, and no others: the kernel finds an executable's class once
// (walk_source) and looks rules up by it.
type sourceClass struct {
	node    uint32
	sources []policy.Source
}

// Relations of an executable to the deepest anchor on its path, named as
// in the class entries' names.
var classRelations = []struct {
	name string // the class entry's name under the anchor
	tail string // appended to the anchor's path: an executable so placed
}{
	{"\x00s", ""},             // the anchor itself
	{"\x00p", "/\x00x"},       // directly in it
	{"\x00a", "/\x00x/\x00y"}, // deeper
}

// sourceClasses makes a node of every fromSource path and directory (an
// anchor) and, for each anchor and relation, the class of the sources an
// executable so placed matches. The components added to the anchor's path
// are in no rule (no name has a NUL), so the deepest anchor is the one
// given, and Source.Matches, the matcher's own test, says which match.
func (c *compiler) sourceClasses(set *policy.Set) {
	var all []policy.Source
	var anchors []uint32
	for r := range set.Rules() {
		for _, s := range r.Sources {
			if slices.Contains(all, s) {
				continue
			}
			all = append(all, s)
			n := c.node(s.Path + s.Dir)
			if !slices.Contains(anchors, n) {
				anchors = append(anchors, n)
			}
			c.flags[n] |= flagSource
		}
	}
	for _, n := range anchors {
		base := c.path(n)
		for _, rel := range classRelations {
			exe := strings.TrimSuffix(base, "/") + rel.tail
			if exe == "" {
				exe = "/"
			}
			var matched []policy.Source
			for _, s := range all {
				if s.Matches(exe) {
					matched = append(matched, s)
				}
			}
			if len(matched) == 0 {
				continue
			}
			// Places that match the same sources share one class, so a
			// rule is stored once per distinct set, not once per place.
			entry := c.child(n, rel.name)
			if i := slices.IndexFunc(c.classes, func(cl sourceClass) bool { return slices.Equal(cl.sources, matched) }); i >= 0 {
				c.alias[entry] = c.classes[i].node
				continue
			}
			c.classes = append(c.classes, sourceClass{node: entry, sources: matched})
		}
	}
}

// path spells out node n's path.
func (c *compiler) path(n uint32) string {
	if n == rootNode {
		return "/"
	}
	k := c.names[n]
	if k.parent == rootNode {
		return "/" + k.name
	}
	return c.path(k.parent) + "/" + k.name
}

// sources returns the source classes a rule with fromSource applies to
// (those holding one of its sources), or [0] for a rule without fromSource.
// An Allow rule makes each of its classes an allow-list for its kind.
func (c *compiler) sources(r *policy.Rule) []uint32 {
	if len(r.Sources) == 0 {
		return []uint32{0}
	}
	var out []uint32
	for _, cl := range c.classes {
		if !slices.ContainsFunc(r.Sources, func(s policy.Source) bool { return slices.Contains(cl.sources, s) }) {
			continue
		}
		if r.Action == policy.ActionAllow {
			c.flags[cl.node] |= flagAllowList(r.Kind)
		}
		out = append(out, cl.node)
	}
	return out
}

// addSyscall attaches an audit-only syscall rule: to the syscall pseudo
// node when it names no path, else to the path's node, once per system call.
func (c *compiler) addSyscall(r *policy.Rule) error {
	sources := c.sources(r)
	obj, types := uint32(pseudoSyscall), []uint8{keyExact}
	switch {
	case r.Path == "":
	case strings.HasSuffix(r.Path, "/"):
		obj, types = c.node(r.Path), []uint8{keyParent, keySelf}
		if r.Recursive {
			types = append(types, keyAncestor)
		}
	default:
		obj = c.node(r.Path)
	}
	if c.spec.Syscalls == nil {
		c.spec.Syscalls = make([]lsmSysFilter, maxSyscall)
	}
	for _, name := range r.Syscalls {
		nr, _ := policy.SyscallNumber(name)
		if nr >= maxSyscall {
			return fmt.Errorf("system call %s (%d) is beyond the %d the enforcer tracks", name, nr, maxSyscall)
		}
		f := &c.spec.Syscalls[nr]
		f.PathArg, f.DirfdArg = -1, -1
		if pa, ok := syscallPathArg(name); ok {
			f.PathArg, f.DirfdArg = pa.path, pa.dirfd
		}
		if r.Path == "" {
			f.Flags |= 1
		} else {
			if f.PathArg < 0 {
				return fmt.Errorf("system call %s takes no path, so it cannot match path %s", name, r.Path)
			}
			f.Flags |= 2
		}
		for _, src := range sources {
			for _, t := range types {
				if obj != pseudoSyscall {
					if src == 0 {
						c.flags[obj] |= flagAny(t)
					} else {
						c.flags[obj] |= flagSrc(t)
					}
				}
				c.attach(lsmRuleKey{Node: obj, Source: src, Type: t, Access: uint8(lsmKaAccessKA_ACC_SYSCALL), Sysnr: uint16(nr)}, r, match.OpSyscall)
			}
		}
	}
	return nil
}

// addPatterns compiles the pattern rules into the automaton and attaches
// each rule to the accepting states it reaches.
func (c *compiler) addPatterns(byKind map[policy.Kind][]*policy.Rule) error {
	d, err := buildDFA(byKind)
	if err != nil {
		return err
	}
	c.spec.DFA = d.next
	for k, start := range d.start {
		c.spec.Kinds[k].DfaStart = start
	}
	states := make([]uint32, 0, len(d.accept))
	for s := range d.accept {
		states = append(states, s)
	}
	slices.Sort(states)
	for _, state := range states {
		for _, r := range d.accept[state] {
			for _, a := range accessesOf(r.Kind) {
				c.attach(lsmRuleKey{Node: pseudoDFA | state, Type: keyPattern, Access: a.class}, r, a.op)
			}
		}
	}
	return nil
}

// lenBit mirrors len_bit in bpf/lib/policy.h.
func lenBit(n int) uint64 {
	return 1 << min(n, 63)
}

// attach records r under key for each owner relation it covers, keeping the
// most specific rule per action as the reference matcher ranks them.
func (c *compiler) attach(key lsmRuleKey, r *policy.Rule, op match.Op) {
	b, ok := c.best[key]
	if !ok {
		b = &[3][2]*policy.Rule{}
		c.best[key] = b
		c.order = append(c.order, key)
	}
	a := int(r.Action) - 1
	for o, owner := range []bool{true, false} {
		if !match.Covers(r, op, owner) {
			continue
		}
		if cur := b[a][o]; cur == nil || match.MoreSpecific(r, cur) {
			b[a][o] = r
		}
	}
}

func (c *compiler) finish(set *policy.Set) {
	s := c.spec
	// lens[node]: the lengths of node's children's names, so that the hooks
	// skip the lookups that cannot succeed (len_bit in bpf/lib/policy.h).
	lens := map[uint32]uint64{}
	for id := uint32(2); id <= uint32(len(c.names)); id++ {
		if k := c.names[id]; !strings.HasPrefix(k.name, "\x00") { // classes are looked up apart
			lens[k.parent] |= lenBit(len(k.name))
		}
	}
	for id := uint32(1); id <= uint32(len(c.names)); id++ {
		k := c.names[id]
		var e TrieEntry
		e.Key.Parent = k.parent
		e.Key.Len = uint32(len(k.name))
		copy(e.Key.Name[:], k.name)
		e.Val.Node = id
		if class, ok := c.alias[id]; ok {
			e.Val.Node = class
		}
		e.Val.Flags = c.flags[e.Val.Node]
		e.Val.Lens = lens[id]
		s.Trie = append(s.Trie, e)
	}
	for k := range s.Kinds {
		if s.Kinds[k].HasNames != 0 {
			s.Kinds[k].NameLens = lens[execNameParent] // all kinds' names: a superset is safe
		}
	}
	for _, key := range c.order {
		var v lsmRuleVal
		for a := range 3 {
			for o := range 2 {
				if r := c.best[key][a][o]; r != nil {
					v.Rule[a][o] = r.ID
				}
			}
		}
		s.Rules = append(s.Rules, RuleEntry{Key: key, Val: v})
	}
	for r := range set.Rules() {
		k := &s.Kinds[r.Kind]
		k.HasRules = 1
		if r.Action == policy.ActionBlock {
			k.HasBlock = 1
		}
		if r.Action == policy.ActionAllow && len(r.Sources) == 0 {
			k.HostAllowlist = 1
		}
		if len(r.Sources) > 0 {
			k.HasSourced = 1
			if r.Action == policy.ActionAllow {
				k.SrcAllowlist = 1
			}
		}
	}
	for k := policy.KindProcess; k <= policy.KindSyscall; k++ {
		s.Kinds[k].Posture = uint8(lsmKaVerdictKA_POSTURE_AUDIT)
		if set.Postures().For(k) == policy.PostureBlock {
			s.Kinds[k].Posture = uint8(lsmKaVerdictKA_POSTURE_BLOCK)
		}
	}
}
