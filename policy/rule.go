package policy

import (
	"fmt"
	"iter"
	"strings"
)

// Kind is the section a rule comes from. Its String is KubeArmor's Operation
// value for alerts of that kind.
type Kind uint8

// Rule kinds.
const (
	KindProcess Kind = iota + 1
	KindFile
	KindNetwork
	KindCapabilities
	KindSyscall
)

func (k Kind) String() string {
	switch k {
	case KindProcess:
		return "Process"
	case KindFile:
		return "File"
	case KindNetwork:
		return "Network"
	case KindCapabilities:
		return "Capabilities"
	case KindSyscall:
		return "Syscall"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Action is what a rule asks for when it matches.
type Action uint8

// Rule actions. The zero value is "not written", resolved to Block.
const (
	ActionAllow Action = iota + 1
	ActionAudit
	ActionBlock
)

func (a Action) String() string {
	switch a {
	case ActionAllow:
		return "Allow"
	case ActionAudit:
		return "Audit"
	case ActionBlock:
		return "Block"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ParseAction accepts Allow, Audit or Block in any letter case.
func ParseAction(s string) (Action, bool) {
	for _, a := range []Action{ActionAllow, ActionAudit, ActionBlock} {
		if strings.EqualFold(s, a.String()) {
			return a, true
		}
	}
	return 0, false
}

// Posture is what happens to an operation that no rule matches while an
// allow-list is in force for its kind.
type Posture uint8

// Default postures.
const (
	PostureAudit Posture = iota + 1
	PostureBlock
)

func (p Posture) String() string {
	switch p {
	case PostureAudit:
		return "audit"
	case PostureBlock:
		return "block"
	}
	return fmt.Sprintf("Posture(%d)", uint8(p))
}

// ParsePosture accepts "audit" or "block" in any letter case.
func ParsePosture(s string) (Posture, bool) {
	switch strings.ToLower(s) {
	case "audit":
		return PostureAudit, true
	case "block":
		return PostureBlock, true
	}
	return 0, false
}

// Postures are the host default postures (config keys hostDefaultFilePosture,
// hostDefaultNetworkPosture, hostDefaultCapabilitiesPosture). Process rules
// share the file posture, as in KubeArmor.
type Postures struct {
	File, Network, Capabilities Posture
}

// For returns the posture that applies to a rule kind.
func (p Postures) For(k Kind) Posture {
	switch k {
	case KindProcess, KindFile:
		return p.File
	case KindNetwork:
		return p.Network
	case KindCapabilities:
		return p.Capabilities
	}
	return PostureAudit
}

// MatchType says how a rule selects its object.
type MatchType uint8

// Match types.
const (
	MatchPath       MatchType = iota + 1 // Path is one absolute path
	MatchExecName                        // Path is a file name, in any directory
	MatchDir                             // Path is a directory ending in '/', Recursive or not
	MatchPattern                         // Pattern is a glob
	MatchProtocol                        // Protocol
	MatchCapability                      // Capability
	MatchSyscall                         // Syscalls, optionally restricted to Path (file or dir)
	MatchPreset                          // Preset, a behaviour rather than an object
)

func (m MatchType) String() string {
	switch m {
	case MatchPath:
		return "path"
	case MatchExecName:
		return "execname"
	case MatchDir:
		return "dir"
	case MatchPattern:
		return "pattern"
	case MatchProtocol:
		return "protocol"
	case MatchCapability:
		return "capability"
	case MatchSyscall:
		return "syscall"
	case MatchPreset:
		return "preset"
	}
	return fmt.Sprintf("MatchType(%d)", uint8(m))
}

// Preset is a behaviour a policy can audit or block as a whole, named as in
// KubeArmor's spec.presets. What each matches is defined in policy/match.
type Preset uint8

// Presets.
const (
	// PresetFilelessExec: running a program that no host mount shows (a
	// memfd, a file on a mount only a private namespace has).
	PresetFilelessExec Preset = iota + 1
	// PresetAnonMapExec: making anonymous memory executable.
	PresetAnonMapExec
)

// String is the preset's name in spec.presets[].name.
func (p Preset) String() string {
	switch p {
	case PresetFilelessExec:
		return "filelessExec"
	case PresetAnonMapExec:
		return "anonymousMapExec"
	}
	return fmt.Sprintf("Preset(%d)", uint8(p))
}

// ParsePreset accepts a preset name as KubeArmor spells it.
func ParsePreset(s string) (Preset, bool) {
	for _, p := range []Preset{PresetFilelessExec, PresetAnonMapExec} {
		if s == p.String() {
			return p, true
		}
	}
	return 0, false
}

// Origin locates the YAML a rule came from.
type Origin struct {
	File  string
	Line  int
	Field string // e.g. spec.process.matchPaths[0]
}

func (o Origin) String() string { return fmt.Sprintf("%s:%d: %s", o.File, o.Line, o.Field) }

// Source is a fromSource entry: the executable that performs the operation.
type Source struct {
	Path      string // exact executable path, or
	Dir       string // directory ending in '/'
	Recursive bool
}

// Matches reports whether the executable at exe is this source.
func (s Source) Matches(exe string) bool {
	if s.Path != "" {
		return exe == s.Path
	}
	return InDir(exe, s.Dir, s.Recursive)
}

func (s Source) String() string {
	if s.Path != "" {
		return s.Path
	}
	if s.Recursive {
		return s.Dir + " (recursive)"
	}
	return s.Dir
}

// InDir reports whether path lies in dir (which ends in '/'): directly in it,
// or at any depth when recursive. The directory itself is in it too, so that
// a rule on /secret/ also covers listing /secret.
func InDir(path, dir string, recursive bool) bool {
	if path == "" {
		return false // no path at all (a syscall without one) is in no directory
	}
	if path+"/" == dir || path == dir {
		return true // the directory itself ("/" is its own spelling)
	}
	rest, ok := strings.CutPrefix(path, dir)
	if !ok || rest == "" {
		return false
	}
	return recursive || !strings.Contains(rest, "/")
}

// Rule is one compiled rule: a single object selector with its resolved
// action and alert metadata. A YAML entry with several syscalls stays one
// rule; everything else is one YAML entry per rule.
type Rule struct {
	ID       uint32 // 1-based position in the Set; the kernel reports it
	Policy   string
	Origin   Origin
	Kind     Kind
	Action   Action
	Severity int
	Tags     []string
	Message  string

	Match      MatchType
	Path       string // MatchPath, MatchExecName, MatchDir; optional for MatchSyscall
	Recursive  bool   // MatchDir, and MatchSyscall with a directory Path
	Pattern    *Glob  // MatchPattern
	Protocol   Protocol
	Capability Capability
	Syscalls   []string // MatchSyscall, lower-case names
	Preset     Preset   // MatchPreset

	ReadOnly  bool // the rule permits reading only
	OwnerOnly bool // the rule permits the object's owner only
	Sources   []Source
}

// Object describes the rule's selector in words, for alerts and status.
func (r *Rule) Object() string {
	switch r.Match {
	case MatchPattern:
		return r.Pattern.String()
	case MatchProtocol:
		return r.Protocol.String()
	case MatchCapability:
		return r.Capability.String()
	case MatchPreset:
		return r.Preset.String()
	case MatchSyscall:
		if r.Path != "" {
			return strings.Join(r.Syscalls, ",") + " " + r.Path
		}
		return strings.Join(r.Syscalls, ",")
	}
	return r.Path
}

// Constrained reports whether readOnly or ownerOnly narrows the rule.
func (r *Rule) Constrained() bool { return r.ReadOnly || r.OwnerOnly }

// PolicyRef is what a Set remembers of each policy document.
type PolicyRef struct {
	Name      string
	File      string
	Line      int
	FirstRule uint32 // ID of its first rule
	NumRules  int
}

// Set is an immutable, versioned policy set: every rule in force on this host.
// Rule IDs are 1..Len() in file order. A Set is never modified after NewSet;
// a change makes a new Set with a higher Version.
type Set struct {
	version  uint64
	postures Postures
	rules    []Rule
	policies []PolicyRef
}

// Version increases with every Set the daemon builds.
func (s *Set) Version() uint64 { return s.version }

// Postures returns the default postures the set was built with.
func (s *Set) Postures() Postures { return s.postures }

// Len is the number of rules.
func (s *Set) Len() int { return len(s.rules) }

// Rule returns the rule with the given ID.
func (s *Set) Rule(id uint32) (*Rule, bool) {
	if id == 0 || int(id) > len(s.rules) {
		return nil, false
	}
	return &s.rules[id-1], true
}

// Rules yields every rule in ID order. Callers must not modify them.
func (s *Set) Rules() iter.Seq[*Rule] {
	return func(yield func(*Rule) bool) {
		for i := range s.rules {
			if !yield(&s.rules[i]) {
				return
			}
		}
	}
}

// Policies lists the policies in the set, in file order.
func (s *Set) Policies() []PolicyRef { return append([]PolicyRef(nil), s.policies...) }

// CountByKind counts rules of each kind, for status lines.
func (s *Set) CountByKind() map[Kind]int {
	m := make(map[Kind]int)
	for i := range s.rules {
		m[s.rules[i].Kind]++
	}
	return m
}

// NewSet numbers the rules of docs (already in file order) and freezes them.
// Policy names must be unique across the set, since alerts name the policy.
func NewSet(version uint64, postures Postures, docs []*Document) (*Set, error) {
	s := &Set{version: version, postures: postures}
	seen := make(map[string]*Document)
	var list ErrorList
	for _, d := range docs {
		if prev, dup := seen[d.Name]; dup {
			list = append(list, &Error{File: d.File, Line: d.Line, Field: "metadata.name",
				Msg: fmt.Sprintf("policy %q is already defined at %s:%d", d.Name, prev.File, prev.Line)})
			continue
		}
		seen[d.Name] = d
		ref := PolicyRef{Name: d.Name, File: d.File, Line: d.Line, FirstRule: uint32(len(s.rules) + 1), NumRules: len(d.Rules)}
		for _, r := range d.Rules {
			r.ID = uint32(len(s.rules) + 1)
			s.rules = append(s.rules, r)
		}
		s.policies = append(s.policies, ref)
	}
	if len(list) > 0 {
		return nil, list
	}
	return s, nil
}
