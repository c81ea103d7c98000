package bpflsm

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// universe is the set of paths, sockets and capabilities generated cases
// draw from.
type universe struct {
	dirs    []string // directory rules
	files   []string // path rules and targets
	names   []string // execname rules
	sources []string // fromSource paths, and directories (ending in '/')
	exes    []string // executables that act
	kinds   []policy.Kind
}

// hostUniverse is chosen so that generated rules overlap: nested
// directories, a name that is a prefix of another ("/a/b" and "/a/bx"),
// sources that are also objects, paths no rule names, and names of 63
// bytes and more, whose lengths share one bit of the kernel's length filter.
var hostUniverse = universe{
	dirs: []string{"/", "/a/", "/a/b/", "/a/b/c/", "/bin/", "/src/"},
	files: []string{"/a/x", "/a/b/x", "/a/b/y", "/a/bx", "/a/b/c/x", "/a/b/c/d/x", "/bin/x", "/z/x", "/src/s1", "/a/b",
		"/a/" + strings.Repeat("m", 63), "/a/" + strings.Repeat("l", 70), "/a/" + strings.Repeat("l", 80) + "/x"},
	names:   []string{"x", "y", "s1"},
	sources: []string{"/src/s1", "/src/s2", "/a/b/x", "/src/", "/a/", "/a/b/", "/"},
	exes:    []string{"/src/s1", "/src/s2", "/a/b/x", "/other/exe", "/a/b/c/d/e", "/a/y", "/src/sub/s3"},
	kinds:   []policy.Kind{policy.KindProcess, policy.KindFile, policy.KindNetwork, policy.KindCapabilities, policy.KindSyscall},
}

// Sockets and capabilities the generator uses; each socket matches several
// protocol names, so rules on "tcp", "stream" and "all" overlap.
var (
	genSockets = []policy.Socket{
		{Family: 2, Type: 1, Protocol: 6},    // tcp
		{Family: 10, Type: 2, Protocol: 17},  // udp6
		{Family: 2, Type: 2, Protocol: 1},    // icmp datagram
		{Family: 10, Type: 3, Protocol: 58},  // raw icmpv6
		{Family: 2, Type: 5, Protocol: 132},  // sctp seqpacket
		{Family: 17, Type: 3, Protocol: 768}, // packet
		{Family: 1, Type: 1, Protocol: 0},    // unix: never governed
	}
	genProtocols = []policy.Protocol{policy.ProtoAll, policy.ProtoTCP, policy.ProtoUDP, policy.ProtoICMP,
		policy.ProtoICMPv6, policy.ProtoRaw, policy.ProtoSCTP, policy.ProtoStream, policy.ProtoDgram,
		policy.ProtoSeqPacket, policy.ProtoPacket}
	genCaps      = []policy.Capability{0, 12, 13, 21}
	pathSyscalls = []string{"unlinkat", "rmdir", "fchmodat", "openat"}
	genSyscalls  = append([]string{"kill", "setuid"}, pathSyscalls...)
	genPatterns  = []string{"/a/*/x", "/a/**", "/{a,bin}/x", "/a/b?", "/*/b/*", "/src/s[12]", "/**/x", "/a/b/c/**"}
	fileOps      = []match.Op{match.OpOpenRead, match.OpOpenRead, match.OpOpenWrite, match.OpCreate, match.OpUnlink, match.OpRename, match.OpChmod}
	netOps       = []match.Op{match.OpSocketCreate, match.OpConnect, match.OpBind, match.OpAccept}
	actions      = []policy.Action{policy.ActionAllow, policy.ActionAudit, policy.ActionBlock}
	postures2    = []policy.Posture{policy.PostureAudit, policy.PostureBlock}
)

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

// randomSet builds a rule set over the universe, with every path under root
// (which is "" or a directory like "/t" without a trailing '/').
func (u universe) randomSet(rng *rand.Rand, version uint64, root string) *policy.Set {
	n := 1 + rng.IntN(10)
	doc := &policy.Document{File: "gen.yaml", Line: 1, Name: "gen"}
	for i := range n {
		r := policy.Rule{
			Policy:   "gen",
			Origin:   policy.Origin{File: "gen.yaml", Line: i + 1, Field: fmt.Sprintf("rule[%d]", i)},
			Kind:     pick(rng, u.kinds),
			Action:   pick(rng, actions),
			Severity: 1 + rng.IntN(10),
		}
		switch r.Kind {
		case policy.KindNetwork:
			r.Match, r.Protocol = policy.MatchProtocol, pick(rng, genProtocols)
		case policy.KindCapabilities:
			r.Match, r.Capability = policy.MatchCapability, pick(rng, genCaps)
		case policy.KindSyscall:
			r.Match, r.Action = policy.MatchSyscall, policy.ActionAudit
			switch rng.IntN(3) {
			case 0:
				r.Syscalls = []string{pick(rng, genSyscalls), pick(rng, genSyscalls)}
			case 1:
				r.Syscalls, r.Path = []string{pick(rng, pathSyscalls)}, root+pick(rng, u.files)
			default:
				r.Syscalls, r.Path, r.Recursive = []string{pick(rng, pathSyscalls)}, root+pick(rng, u.dirs), rng.IntN(2) == 0
			}
		default:
			switch rng.IntN(6) {
			case 0, 1:
				r.Match, r.Path = policy.MatchPath, root+pick(rng, u.files)
			case 2, 3:
				r.Match, r.Path, r.Recursive = policy.MatchDir, root+pick(rng, u.dirs), rng.IntN(2) == 0
			case 4:
				g, err := policy.CompileGlob(root + pick(rng, genPatterns))
				if err != nil {
					panic(err)
				}
				r.Match, r.Pattern = policy.MatchPattern, g
			default:
				if r.Kind == policy.KindProcess {
					r.Match, r.Path = policy.MatchExecName, pick(rng, u.names)
				} else {
					r.Match, r.Path = policy.MatchPath, root+pick(rng, u.files)
				}
			}
			r.OwnerOnly = rng.IntN(5) == 0
			r.ReadOnly = r.Kind == policy.KindFile && rng.IntN(4) == 0
		}
		if r.Match != policy.MatchPattern && rng.IntN(5) < 2 { // patterns have no fromSource
			for range 1 + rng.IntN(2) {
				src := root + pick(rng, u.sources)
				if strings.HasSuffix(src, "/") {
					r.Sources = append(r.Sources, policy.Source{Dir: src, Recursive: rng.IntN(2) == 0})
				} else {
					r.Sources = append(r.Sources, policy.Source{Path: src})
				}
			}
		}
		doc.Rules = append(doc.Rules, r)
	}
	postures := policy.Postures{File: pick(rng, postures2), Network: pick(rng, postures2), Capabilities: pick(rng, postures2)}
	set, err := policy.NewSet(version, postures, []*policy.Document{doc})
	if err != nil {
		panic(err)
	}
	return set
}

// randomQuery picks an operation of one of the universe's kinds.
func (u universe) randomQuery(rng *rand.Rand, root string) (match.Op, match.Subject, match.Object) {
	s := match.Subject{Exe: root + pick(rng, u.exes), UID: 0}
	var o match.Object
	var op match.Op
	switch pick(rng, u.kinds) {
	case policy.KindProcess:
		op = match.OpExec
	case policy.KindFile:
		op = pick(rng, fileOps)
	case policy.KindNetwork:
		return pick(rng, netOps), s, match.Object{Socket: pick(rng, genSockets)}
	case policy.KindCapabilities:
		return match.OpCapable, s, match.Object{Capability: pick(rng, genCaps)}
	case policy.KindSyscall:
		o := match.Object{Syscall: pick(rng, genSyscalls)}
		if rng.IntN(3) > 0 {
			o.Path = root + pick(rng, u.files)
		}
		return match.OpSyscall, s, o
	}
	o.Path = root + pick(rng, u.files)
	if rng.IntN(3) == 0 {
		o.OwnerUID = 1000
	}
	return op, s, o
}

func describeRule(r *policy.Rule) string {
	s := fmt.Sprintf("#%d %s %s %s %s", r.ID, r.Kind, r.Action, r.Match, r.Object())
	if r.Recursive {
		s += " recursive"
	}
	if r.ReadOnly {
		s += " readOnly"
	}
	if r.OwnerOnly {
		s += " ownerOnly"
	}
	for _, src := range r.Sources {
		s += " from " + src.String()
	}
	return s
}
