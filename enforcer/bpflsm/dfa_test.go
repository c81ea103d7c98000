package bpflsm

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/kubearmor/kubearmor-host/policy"
)

// TestDFAAgreesWithGlob holds the automaton against policy.Glob (an RE2
// translation) on every pattern syntax, for paths built to hit and miss.
func TestDFAAgreesWithGlob(t *testing.T) {
	patterns := []string{
		"/home/*/.ssh/id_*", "/etc/**", "/etc/*.conf", "/var/log/**/*.log", "/tmp/?", "/a[bc]d/x",
		"/a[^b]d/x", "/{usr,opt}/bin/{nc,ncat}", "/x/{a,b{c,d}}/y", "/lit\\*eral", "/**", "/a/**/b",
		"/d/[a-c0-2]x", "/s/*/*/t",
	}
	paths := []string{"/home/bob/.ssh/id_rsa", "/home/bob/x/.ssh/id_rsa", "/etc/passwd", "/etc/a/b",
		"/etc/x.conf", "/etc/a/x.conf", "/var/log/a.log", "/var/log/a/b/c.log", "/tmp/a", "/tmp/ab",
		"/abd/x", "/acd/x", "/add/x", "/a/d/x", "/usr/bin/nc", "/opt/bin/ncat", "/usr/bin/nca",
		"/x/a/y", "/x/bc/y", "/x/bd/y", "/x/b/y", "/lit*eral", "/litteral", "/", "/a/b", "/a/x/y/b",
		"/d/bx", "/d/1x", "/d/3x", "/s/a/b/t", "/s/a/t", "memfd:x"}
	var rules []*policy.Rule
	for i, p := range patterns {
		g, err := policy.CompileGlob(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		rules = append(rules, &policy.Rule{ID: uint32(i + 1), Kind: policy.KindFile, Match: policy.MatchPattern, Pattern: g})
	}
	d, err := buildDFA(map[policy.Kind][]*policy.Rule{policy.KindFile: rules})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		paths = append(paths, randomPath(rng))
	}
	for _, p := range paths {
		var want, got []uint32
		for _, r := range rules {
			if r.Pattern.Match(p) {
				want = append(want, r.ID)
			}
		}
		for _, r := range d.run(policy.KindFile, p) {
			got = append(got, r.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%q: automaton matches rules %v, glob %v", p, got, want)
		}
	}
	t.Logf("%d states", len(d.next)/256)
}

func randomPath(rng *rand.Rand) string {
	parts := []string{"home", "bob", ".ssh", "id_rsa", "etc", "x.conf", "var", "log", "a.log", "tmp", "a", "b",
		"abd", "acd", "x", "usr", "opt", "bin", "nc", "ncat", "bc", "bd", "y", "d", "1x", "s", "t", "lit*eral"}
	p := ""
	for range 1 + rng.IntN(5) {
		p += "/" + parts[rng.IntN(len(parts))]
	}
	return p
}

func TestDFATooComplex(t *testing.T) {
	// "*a*a*..." patterns with distinct letters blow up the subset construction.
	var rules []*policy.Rule
	for i := range 40 {
		g, err := policy.CompileGlob("/**" + string(rune('a'+i%26)) + "?????????" + string(rune('a'+(i*7)%26)) + "**")
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, &policy.Rule{ID: uint32(i + 1), Kind: policy.KindFile, Match: policy.MatchPattern, Pattern: g})
	}
	if _, err := buildDFA(map[policy.Kind][]*policy.Rule{policy.KindFile: rules}); err != errTooComplex {
		t.Errorf("error %v, want errTooComplex", err)
	}
}
