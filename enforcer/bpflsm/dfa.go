package bpflsm

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kubearmor/kubearmor-host/policy"
)

// The kernel checks matchPatterns with a DFA over the bytes of the path:
// one array lookup per byte, whatever the patterns. The globs of all
// pattern rules of a kind are compiled together (Thompson NFA, then subset
// construction); each accepting state knows which rules matched, and the
// compiler attaches their best rules to it like to any other node.

// maxDFAStates bounds the table (states x 256 entries of 4 bytes).
const maxDFAStates = 4096

// byteSet is a set of bytes.
type byteSet [4]uint64

func (s *byteSet) add(b byte)      { s[b>>6] |= 1 << (b & 63) }
func (s *byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *byteSet) invert()         { s[0], s[1], s[2], s[3] = ^s[0], ^s[1], ^s[2], ^s[3] }
func (s *byteSet) addRange(lo, hi byte) {
	for b := int(lo); b <= int(hi); b++ {
		s.add(byte(b))
	}
}

func anyByte() byteSet { var s byteSet; s.invert(); return s }

func notSlash() byteSet {
	s := anyByte()
	s[0] &^= 1 << '/'
	return s
}

// nfa is a Thompson automaton: each state has byte transitions and
// epsilon moves.
type nfa struct {
	eps   [][]int
	trans [][]nfaEdge
	rule  map[int]*policy.Rule // accepting states
}

type nfaEdge struct {
	on byteSet
	to int
}

func (n *nfa) state() int {
	n.eps = append(n.eps, nil)
	n.trans = append(n.trans, nil)
	return len(n.eps) - 1
}

// glob adds the pattern from state `from` and returns its end state. It
// follows policy.CompileGlob's syntax, which has already validated it.
func (n *nfa) glob(p string, from int) (int, error) {
	cur := from
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '*':
			on := notSlash()
			if i+1 < len(p) && p[i+1] == '*' {
				for i+1 < len(p) && p[i+1] == '*' {
					i++
				}
				on = anyByte()
			}
			loop := n.state()
			n.eps[cur] = append(n.eps[cur], loop)
			n.trans[loop] = append(n.trans[loop], nfaEdge{on, loop})
			cur = loop
		case '?':
			next := n.state()
			n.trans[cur] = append(n.trans[cur], nfaEdge{notSlash(), next})
			cur = next
		case '[':
			set, end, err := globSet(p, i)
			if err != nil {
				return 0, err
			}
			next := n.state()
			n.trans[cur] = append(n.trans[cur], nfaEdge{set, next})
			cur, i = next, end
		case '{':
			alts, end, err := splitAlternatives(p, i)
			if err != nil {
				return 0, err
			}
			join := n.state()
			for _, a := range alts {
				start := n.state()
				n.eps[cur] = append(n.eps[cur], start)
				last, err := n.glob(a, start)
				if err != nil {
					return 0, err
				}
				n.eps[last] = append(n.eps[last], join)
			}
			cur, i = join, end
		default:
			if c == '\\' && i+1 < len(p) {
				i++
				c = p[i]
			}
			var on byteSet
			on.add(c)
			next := n.state()
			n.trans[cur] = append(n.trans[cur], nfaEdge{on, next})
			cur = next
		}
	}
	return cur, nil
}

// globSet parses the bracket expression at p[start].
func globSet(p string, start int) (byteSet, int, error) {
	var set byteSet
	i := start + 1
	negate := i < len(p) && (p[i] == '^' || p[i] == '!')
	if negate {
		i++
	}
	first := i
	for ; i < len(p); i++ {
		c := p[i]
		if c == ']' && i > first {
			if negate {
				set.invert()
				set[0] &^= 1 << '/'
			}
			return set, i, nil
		}
		if c == '\\' && i+1 < len(p) {
			i++
			c = p[i]
		}
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi := p[i+2]
			if hi == '\\' && i+3 < len(p) {
				hi = p[i+3]
				i++
			}
			set.addRange(c, hi)
			i += 2
			continue
		}
		set.add(c)
	}
	return set, 0, fmt.Errorf("unclosed '[' at offset %d", start)
}

// splitAlternatives splits "{a,b{c,d}}" at p[start] into its top-level
// alternatives.
func splitAlternatives(p string, start int) ([]string, int, error) {
	depth, from := 0, start+1
	var alts []string
	for i := start; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '[':
			_, end, err := globSet(p, i)
			if err != nil {
				return nil, 0, err
			}
			i = end
		case '{':
			depth++
		case ',':
			if depth == 1 {
				alts = append(alts, p[from:i])
				from = i + 1
			}
		case '}':
			depth--
			if depth == 0 {
				return append(alts, p[from:i]), i, nil
			}
		}
	}
	return nil, 0, errors.New("unclosed '{'")
}

func (n *nfa) closure(states []int) []int {
	seen := map[int]bool{}
	stack := slices.Clone(states)
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[s] {
			continue
		}
		seen[s] = true
		stack = append(stack, n.eps[s]...)
	}
	out := make([]int, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func setKey(states []int) string {
	var b strings.Builder
	for _, s := range states {
		b.WriteString(strconv.Itoa(s))
		b.WriteByte(',')
	}
	return b.String()
}

// dfa is the compiled automaton of every pattern rule.
type dfa struct {
	next   []uint32 // [state*256 + byte]; state 0 is dead
	accept map[uint32][]*policy.Rule
	start  map[policy.Kind]uint32 // 0: the kind has no patterns
}

// errTooComplex reports patterns whose automaton would not fit.
var errTooComplex = fmt.Errorf("the patterns of this kind need more than %d automaton states; use fewer or simpler patterns", maxDFAStates)

// buildDFA compiles the pattern rules of each kind.
func buildDFA(byKind map[policy.Kind][]*policy.Rule) (*dfa, error) {
	n := &nfa{rule: map[int]*policy.Rule{}}
	starts := map[policy.Kind][]int{}
	kinds := slices.Sorted(func(yield func(policy.Kind) bool) {
		for k := range byKind {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range kinds {
		for _, r := range byKind[k] {
			s := n.state()
			end, err := n.glob(r.Pattern.String(), s)
			if err != nil {
				return nil, fmt.Errorf("pattern %q: %w", r.Pattern, err)
			}
			n.rule[end] = r
			starts[k] = append(starts[k], s)
		}
	}
	d := &dfa{next: make([]uint32, 256), accept: map[uint32][]*policy.Rule{}, start: map[policy.Kind]uint32{}}
	ids := map[string]uint32{"": 0}
	var sets [][]int
	sets = append(sets, nil) // the dead state
	intern := func(states []int) (uint32, error) {
		key := setKey(states)
		if id, ok := ids[key]; ok {
			return id, nil
		}
		if len(sets) >= maxDFAStates {
			return 0, errTooComplex
		}
		id := uint32(len(sets))
		ids[key] = id
		sets = append(sets, states)
		d.next = append(d.next, make([]uint32, 256)...)
		for _, s := range states {
			if r, ok := n.rule[s]; ok {
				d.accept[id] = append(d.accept[id], r)
			}
		}
		return id, nil
	}
	for _, k := range kinds {
		id, err := intern(n.closure(starts[k]))
		if err != nil {
			return nil, err
		}
		d.start[k] = id
	}
	for id := 1; id < len(sets); id++ {
		for b := range 256 {
			var to []int
			for _, s := range sets[id] {
				for _, e := range n.trans[s] {
					if e.on.has(byte(b)) {
						to = append(to, e.to)
					}
				}
			}
			if len(to) == 0 {
				continue
			}
			next, err := intern(n.closure(to))
			if err != nil {
				return nil, err
			}
			d.next[id*256+b] = next
		}
	}
	return d, nil
}

// run feeds path through the automaton from the start of kind and returns
// the rules that match it, as the kernel does.
func (d *dfa) run(k policy.Kind, path string) []*policy.Rule {
	s := d.start[k]
	for i := 0; i < len(path) && s != 0; i++ {
		s = d.next[int(s)*256+int(path[i])]
	}
	return d.accept[s]
}
