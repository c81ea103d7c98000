// Package match is the reference matcher: the one definition, in Go, of what
// every policy rule means. Given an operation, the subject doing it and the
// object it is done to, it returns the verdict and the rule that decided.
//
// The kernel enforcers are compiled from the same policy.Set and tested
// against this package (differential tests); where no LSM is available the
// daemon runs it on observed events to raise audit alerts.
//
// The semantics, in order:
//
//  1. The operation's kind picks the rules: exec, an executable mapping of a
//     file, and anonymous memory made executable -> process; open, unlink,
//     rename and the other path operations -> file; socket operations on
//     IPv4, IPv6 and packet sockets -> network; capability use ->
//     capabilities; a system call -> syscalls.
//  2. A rule is a candidate when its object selector matches (path, execname,
//     directory, pattern, protocol, capability, syscall, preset), its
//     fromSource list is empty or names the subject's executable, and its
//     readOnly/ownerOnly constraints fit: an Allow rule covers only accesses
//     that stay within them (reads for readOnly, the owner for ownerOnly); a
//     Block or Audit rule covers only accesses that break them. A rule
//     without constraints covers every access to its object.
//  3. Block beats Audit beats Allow. Within an action the most specific rule is
//     reported: exact path > execname > directory (deeper first) > pattern or
//     no path at all (syscall rules, presets), a specific protocol > "all";
//     then a rule with fromSource over one without; then the lower rule ID
//     (earlier in file order).
//  4. With no candidate, the default posture of the kind applies if an
//     allow-list is in force for the subject: an Allow rule without
//     fromSource makes one for every process, an Allow rule with fromSource
//     for those sources only. Otherwise nothing matched. An executable
//     mapping (OpExecMap) never takes the posture: see below.
//
// Names. Every path, of an object and of a subject's executable, is the one
// the file has in the host's initial mount namespace, whichever mount
// namespace, bind mount, overlay or chroot the process reaches it through:
// a file seen through a bind mount is named as below the mount's source, a
// file of an overlay as its layer's file (the one holding the bytes), and
// what a path operation (unlink, rename, chmod, ...) changes through an
// overlay no host mount shows as the file it changes, below the overlay's
// upper layer. Where a host mount shows the same files at several places,
// the name is the one through the host mount whose root is nearest the file
// system's root (the earliest mounted among equals; a host mount of the
// whole file system names its files itself). Where that cannot be worked
// out (more mounts of the file system than the kernel looks at, a tree
// deeper than it walks) the path is unresolvable (Object PathTooLong), which
// fails closed. A file that no host mount shows (a memfd, a tmpfs mounted
// only inside a private namespace, an overlay there whose upper layer, if
// any, is not shown either: Object NoHostPath) has no path a rule can write:
// only execname rules and the filelessExec preset match it, and where an
// allow-list is in force it gets the posture, so an allow-list refuses it
// (posture block) or audits it.
// A subject whose executable has no host path matches no fromSource.
//
// Programs that run without their own exec. A file mapped executable
// (mmap or mprotect with PROT_EXEC of a file mapping, which is how the
// dynamic loader brings in a program and its libraries) is OpExecMap: the
// process rules that match the file decide it as they decide an exec,
// except that no posture applies (a shared library no Allow rule names keeps
// loading under a process allow-list), so only Block and Audit rules alert;
// but a file a local user may have written (not root's, or writable by
// group or others: Object UserWritable) is decided as an exec, posture
// included, so an allow-list holds against LD_PRELOAD and dlopen of code
// the user brought.
// A program's own exec maps it as part of the exec, decided once, as OpExec.
// A process whose program is a dynamic loader (a root-owned file, not
// writable by group or others, that the kernel has loaded as the ELF
// interpreter of a program that is such a file too, on a file system the
// host mounted that is not FUSE) runs as the first other file it maps
// executable, unless that file is set-user-ID or set-group-ID: that
// mapping is decided as OpExec, postures included, so a process allow-list
// refuses the loader itself unless a rule allows it and then refuses the
// program unless a rule allows that too; from then on the process (and
// what it forks) is that program for fromSource and in every alert. A copy
// of the loader is not a loader: it is just the program it is.
//
// Memory-only programs are process operations on objects with no host path:
// an exec (or an executable mapping) of a memfd or of a file that no host
// mount shows is matched by the filelessExec preset, and anonymous memory
// made executable (OpExecAnon) by the anonymousMapExec preset: a mapping
// with no file, of shared anonymous or SysV memory, or a private file
// mapping that is or becomes writable, or whose pages were written (what
// SELinux calls execmem and execmod), given PROT_EXEC by mmap or mprotect.
// Presets are Audit or Block; nothing else matches these operations.
//
// User namespaces created by a process without CAP_SYS_ADMIN on the host are
// OpUserNS: the unprivilegedUserNamespaces setting decides them, not a rule.
package match

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kubearmor/kubearmor-host/policy"
)

// Op is an operation a process attempts.
type Op uint8

// Operations.
const (
	OpExec Op = iota + 1

	OpOpenRead  // open for reading only
	OpOpenWrite // open for writing, appending or truncating
	OpCreate    // create a file (open with O_CREAT of a new name, mknod)
	OpUnlink
	OpRmdir
	OpMkdir
	OpRename // checked for each of the old and the new path
	OpLink
	OpSymlink
	OpTruncate
	OpChmod
	OpChown

	OpSocketCreate
	OpConnect
	OpAccept
	OpBind

	OpCapable

	OpSyscall

	// Numbered after the others: the kernel's numbers stay as they were.
	OpExecMap  // a file mapped executable (mmap or mprotect with PROT_EXEC)
	OpExecAnon // anonymous memory made executable
	// OpUserNS is an unprivileged process creating a user namespace: a
	// setting decides it, not a rule (no Kind).
	OpUserNS
)

func (o Op) String() string {
	names := [...]string{
		OpExec: "exec", OpOpenRead: "open-read", OpOpenWrite: "open-write", OpCreate: "create", OpUnlink: "unlink", OpRmdir: "rmdir",
		OpMkdir: "mkdir", OpRename: "rename", OpLink: "link", OpSymlink: "symlink", OpTruncate: "truncate",
		OpChmod: "chmod", OpChown: "chown", OpSocketCreate: "socket-create", OpConnect: "connect",
		OpAccept: "accept", OpBind: "bind", OpCapable: "capable", OpSyscall: "syscall",
		OpExecMap: "exec-map", OpExecAnon: "exec-anon", OpUserNS: "userns-create",
	}
	if int(o) < len(names) && names[o] != "" {
		return names[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Kind is the policy section that governs the operation.
func (o Op) Kind() policy.Kind {
	switch {
	case o == OpExec || o == OpExecMap || o == OpExecAnon:
		return policy.KindProcess
	case o >= OpOpenRead && o <= OpChown:
		return policy.KindFile
	case o >= OpSocketCreate && o <= OpBind:
		return policy.KindNetwork
	case o == OpCapable:
		return policy.KindCapabilities
	case o == OpSyscall:
		return policy.KindSyscall
	}
	return 0
}

// modifies reports whether a file operation is more than a read, which a
// readOnly rule does not permit.
func (o Op) modifies() bool { return o.Kind() == policy.KindFile && o != OpOpenRead }

// Subject is the process performing an operation.
type Subject struct {
	// Exe is its executable's host path ("" when it has none); for exec,
	// the program calling execve. For a process a loader runs, the program.
	Exe       string
	ParentExe string // its parent's executable, for reporting
	UID       uint32
	// ExeUnknown says the executable's path could not be resolved, so it
	// is unknown whether fromSource rules apply.
	ExeUnknown bool
}

// Object is what the operation is done to. Only the fields of the
// operation's kind are read.
type Object struct {
	Path        string // process, file, and path-bound syscalls: the host path
	PathTooLong bool   // the path could not be resolved within policy.MaxPathLen
	// NoHostPath says no host mount shows the object (a memfd, a file on a
	// mount only a private namespace has); Path is then its name there,
	// which only execname rules read.
	NoHostPath bool
	// UserWritable says a local user may have written the file: it is not
	// root's, or group or others may write it. Mapped executable, it is
	// decided as an exec (see the package doc).
	UserWritable bool
	OwnerUID     uint32 // owner of the file at Path, for ownerOnly
	Socket       policy.Socket
	Capability   policy.Capability
	Syscall      string
}

// Verdict is the outcome of a decision.
type Verdict uint8

// Verdicts.
const (
	NoMatch Verdict = iota
	Allow
	Audit
	Block
	PostureAudit // no rule matched inside an allow-list; posture "audit"
	PostureBlock // no rule matched inside an allow-list; posture "block"
)

func (v Verdict) String() string {
	return [...]string{"NoMatch", "Allow", "Audit", "Block", "PostureAudit", "PostureBlock"}[v]
}

// Denied reports whether the operation must fail.
func (v Verdict) Denied() bool { return v == Block || v == PostureBlock }

// Alerted reports whether the decision raises an alert.
func (v Verdict) Alerted() bool { return v >= Audit }

// Decision is a verdict and the rule that decided it (0 for NoMatch and the
// posture verdicts).
type Decision struct {
	Verdict Verdict
	RuleID  uint32
}

func (d Decision) String() string { return fmt.Sprintf("%s(rule %d)", d.Verdict, d.RuleID) }

const numKinds = int(policy.KindSyscall) + 1

// Matcher answers decisions for one policy.Set. It is immutable and safe for
// concurrent use.
type Matcher struct {
	set        *policy.Set
	rules      [numKinds][]*policy.Rule
	hostList   [numKinds]bool            // an Allow rule without fromSource exists
	srcList    [numKinds][]policy.Source // sources of Allow rules with fromSource
	hasBlock   [numKinds]bool
	hasSourced [numKinds]bool // a rule with fromSource exists
}

// New indexes a policy set.
func New(set *policy.Set) *Matcher {
	m := &Matcher{set: set}
	for r := range set.Rules() {
		k := r.Kind
		m.rules[k] = append(m.rules[k], r)
		if len(r.Sources) > 0 {
			m.hasSourced[k] = true
		}
		switch r.Action {
		case policy.ActionAllow:
			if len(r.Sources) == 0 {
				m.hostList[k] = true
			}
			m.srcList[k] = append(m.srcList[k], r.Sources...)
		case policy.ActionBlock:
			m.hasBlock[k] = true
		}
	}
	return m
}

// Set returns the policy set the matcher was built from.
func (m *Matcher) Set() *policy.Set { return m.set }

// Decide returns the verdict for op by s on o.
func (m *Matcher) Decide(op Op, s Subject, o Object) Decision {
	if op == OpExecMap && o.UserWritable {
		op = OpExec
	}
	k := op.Kind()
	if k == 0 || len(m.rules[k]) == 0 {
		return Decision{}
	}
	if k == policy.KindNetwork && !o.Socket.IsNetwork() {
		return Decision{}
	}
	pathKind := (k == policy.KindProcess && op != OpExecAnon) || k == policy.KindFile || (k == policy.KindSyscall && o.Path != "")
	if o.PathTooLong && pathKind || s.ExeUnknown && m.hasSourced[k] && op != OpExecAnon {
		return m.unresolvable(k, op, s)
	}
	var best [policy.ActionBlock + 1]*policy.Rule
	for _, r := range m.rules[k] {
		if !objectMatches(r, op, o) || !sourceMatches(r, s.Exe) || !Covers(r, op, s.UID == o.OwnerUID) {
			continue
		}
		if b := best[r.Action]; b == nil || MoreSpecific(r, b) {
			best[r.Action] = r
		}
	}
	switch {
	case best[policy.ActionBlock] != nil:
		return Decision{Block, best[policy.ActionBlock].ID}
	case best[policy.ActionAudit] != nil:
		return Decision{Audit, best[policy.ActionAudit].ID}
	case best[policy.ActionAllow] != nil:
		return Decision{Allow, best[policy.ActionAllow].ID}
	}
	if op != OpExecMap && op != OpExecAnon && m.allowListed(k, s.Exe) {
		return m.posture(k)
	}
	return Decision{}
}

// unresolvable decides an operation on a path too long to match, or by a
// subject whose executable is unknown while fromSource rules exist. No rule
// can be checked, so it fails closed when the kind blocks anything (or, but
// for an executable mapping, its allow-list's posture is block), and is
// audited otherwise: a deep directory tree must not be a way around a Block.
func (m *Matcher) unresolvable(k policy.Kind, op Op, s Subject) Decision {
	listed := m.allowListed(k, s.Exe)
	if s.ExeUnknown {
		listed = m.hostList[k] || len(m.srcList[k]) > 0
	}
	if op == OpExecMap {
		listed = false // an executable mapping takes no posture
	}
	if m.hasBlock[k] || (listed && m.set.Postures().For(k) == policy.PostureBlock) {
		return Decision{Verdict: PostureBlock}
	}
	return Decision{Verdict: PostureAudit}
}

func (m *Matcher) allowListed(k policy.Kind, exe string) bool {
	if m.hostList[k] {
		return true
	}
	return slices.ContainsFunc(m.srcList[k], func(src policy.Source) bool { return src.Matches(exe) })
}

func (m *Matcher) posture(k policy.Kind) Decision {
	if m.set.Postures().For(k) == policy.PostureBlock {
		return Decision{Verdict: PostureBlock}
	}
	return Decision{Verdict: PostureAudit}
}

func objectMatches(r *policy.Rule, op Op, o Object) bool {
	if r.Match == policy.MatchPreset {
		switch r.Preset {
		case policy.PresetFilelessExec:
			return (op == OpExec || op == OpExecMap) && o.NoHostPath
		case policy.PresetAnonMapExec:
			return op == OpExecAnon
		}
		return false
	}
	if op == OpExecAnon {
		return false // no file: only its preset names it
	}
	if o.NoHostPath {
		return r.Match == policy.MatchExecName && baseName(o.Path) == r.Path
	}
	switch r.Match {
	case policy.MatchPath:
		return o.Path == r.Path
	case policy.MatchExecName:
		return baseName(o.Path) == r.Path
	case policy.MatchDir:
		return policy.InDir(o.Path, r.Path, r.Recursive)
	case policy.MatchPattern:
		return r.Pattern.Match(o.Path)
	case policy.MatchProtocol:
		return r.Protocol.Matches(o.Socket)
	case policy.MatchCapability:
		return r.Capability == o.Capability
	case policy.MatchSyscall:
		if !slices.Contains(r.Syscalls, strings.ToLower(o.Syscall)) {
			return false
		}
		switch {
		case r.Path == "":
			return true
		case strings.HasSuffix(r.Path, "/"):
			return policy.InDir(o.Path, r.Path, r.Recursive)
		default:
			return o.Path == r.Path
		}
	}
	return false
}

func baseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func sourceMatches(r *policy.Rule, exe string) bool {
	if len(r.Sources) == 0 {
		return true
	}
	return slices.ContainsFunc(r.Sources, func(src policy.Source) bool { return src.Matches(exe) })
}

// Covers applies readOnly and ownerOnly to an access whose object already
// matches: they describe the access the rule permits, whatever its action.
// owner says whether the subject owns the object.
func Covers(r *policy.Rule, op Op, owner bool) bool {
	if !r.Constrained() {
		return true
	}
	within := !(r.ReadOnly && op.modifies()) && !(r.OwnerOnly && !owner)
	if r.Action == policy.ActionAllow {
		return within
	}
	return !within
}

// Specificity ranks a rule among rules of the same action; it depends on the
// rule alone, so a compiler can precompute it. Higher is more specific.
func Specificity(r *policy.Rule) (class, depth int) {
	switch r.Match {
	case policy.MatchPath:
		return 3, strings.Count(r.Path, "/")
	case policy.MatchExecName:
		return 2, 0
	case policy.MatchDir:
		return 1, strings.Count(r.Path, "/") - 1
	case policy.MatchProtocol:
		if r.Protocol != policy.ProtoAll {
			return 1, 0
		}
	case policy.MatchSyscall:
		// A syscall rule is as specific as the path it names.
		switch {
		case r.Path == "":
		case strings.HasSuffix(r.Path, "/"):
			return 1, strings.Count(r.Path, "/") - 1
		default:
			return 3, strings.Count(r.Path, "/")
		}
	}
	return 0, 0
}

// MoreSpecific reports whether a should be reported instead of b when both
// match with the same action.
func MoreSpecific(a, b *policy.Rule) bool {
	ac, ad := Specificity(a)
	bc, bd := Specificity(b)
	if ac != bc {
		return ac > bc
	}
	if ad != bd {
		return ad > bd
	}
	as, bs := len(a.Sources) > 0, len(b.Sources) > 0
	if as != bs {
		return as
	}
	return a.ID < b.ID
}
