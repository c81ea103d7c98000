package bpflsm

import (
	"fmt"
	"math/rand/v2"

	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// universe is the set of paths generated cases draw from.
type universe struct {
	dirs    []string // directory rules
	files   []string // path rules and exec targets
	sources []string // fromSource paths
	exes    []string // executables that exec the targets
}

// hostUniverse is chosen so that generated rules overlap: nested
// directories, a name that is a prefix of another ("/a/b" and "/a/bx"),
// sources that are also objects, and paths no rule names.
var hostUniverse = universe{
	dirs:    []string{"/", "/a/", "/a/b/", "/a/b/c/", "/bin/", "/src/"},
	files:   []string{"/a/x", "/a/b/x", "/a/b/y", "/a/bx", "/a/b/c/x", "/a/b/c/d/x", "/bin/x", "/z/x", "/src/s1"},
	sources: []string{"/src/s1", "/src/s2", "/a/b/x"},
	exes:    []string{"/src/s1", "/src/s2", "/a/b/x", "/other/exe"},
}

// randomSet builds a process-rule set over the universe, with every path
// under root (which is "" or a directory like "/t" without a trailing '/').
func (u universe) randomSet(rng *rand.Rand, version uint64, root string) *policy.Set {
	n := 1 + rng.IntN(8)
	doc := &policy.Document{File: "gen.yaml", Line: 1, Name: "gen"}
	for i := range n {
		r := policy.Rule{
			Policy:   "gen",
			Origin:   policy.Origin{File: "gen.yaml", Line: i + 1, Field: fmt.Sprintf("rule[%d]", i)},
			Kind:     policy.KindProcess,
			Action:   []policy.Action{policy.ActionAllow, policy.ActionAudit, policy.ActionBlock}[rng.IntN(3)],
			Severity: 1 + rng.IntN(10),
		}
		if rng.IntN(2) == 0 {
			r.Match, r.Path = policy.MatchPath, root+u.files[rng.IntN(len(u.files))]
		} else {
			r.Match, r.Path, r.Recursive = policy.MatchDir, root+u.dirs[rng.IntN(len(u.dirs))], rng.IntN(2) == 0
		}
		r.OwnerOnly = rng.IntN(5) == 0
		if rng.IntN(5) < 2 {
			for range 1 + rng.IntN(2) {
				r.Sources = append(r.Sources, policy.Source{Path: root + u.sources[rng.IntN(len(u.sources))]})
			}
		}
		doc.Rules = append(doc.Rules, r)
	}
	postures := policy.Postures{
		File:         []policy.Posture{policy.PostureAudit, policy.PostureBlock}[rng.IntN(2)],
		Network:      policy.PostureAudit,
		Capabilities: policy.PostureAudit,
	}
	set, err := policy.NewSet(version, postures, []*policy.Document{doc})
	if err != nil {
		panic(err)
	}
	return set
}

// randomQuery picks an exec of a universe file by a universe executable.
func (u universe) randomQuery(rng *rand.Rand, root string) (match.Subject, match.Object) {
	s := match.Subject{Exe: root + u.exes[rng.IntN(len(u.exes))], UID: 0}
	o := match.Object{Path: root + u.files[rng.IntN(len(u.files))]}
	if rng.IntN(3) == 0 {
		o.OwnerUID = 1000
	}
	return s, o
}

func describeRule(r *policy.Rule) string {
	s := fmt.Sprintf("#%d %s %s %s", r.ID, r.Action, r.Match, r.Path)
	if r.Recursive {
		s += " recursive"
	}
	if r.OwnerOnly {
		s += " ownerOnly"
	}
	for _, src := range r.Sources {
		s += " from " + src.String()
	}
	return s
}
