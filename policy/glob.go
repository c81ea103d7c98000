package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Glob is a matchPatterns pattern with AppArmor's glob syntax, which KubeArmor
// policies are written in:
//
//	syntax  matches
//	a*      any characters except '/', possibly none ("a" then anything)
//	a**     any characters including '/'
//	a?      one character except '/'
//	[abc]   one character of a class ([a-z] ranges, [^abc] negation); never '/'
//	{a,b}   one of the alternatives, which may hold globs and nest
//	\x      the character x literally
//
// It compiles to an anchored RE2 expression, so matching is linear in the path
// length whatever the pattern.
type Glob struct {
	src string
	re  *regexp.Regexp
}

// maxGlobAlternation bounds nesting of {..} so a hostile policy cannot build a
// huge expression.
const maxGlobAlternation = 8

// CompileGlob parses an absolute glob pattern.
func CompileGlob(pattern string) (*Glob, error) {
	if !strings.HasPrefix(pattern, "/") {
		return nil, errors.New("must be an absolute pattern starting with '/'")
	}
	var b strings.Builder
	b.WriteString(`^`)
	depth := 0
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			if i+1 < len(pattern) && pattern[i+1] == '*' {
				for i+1 < len(pattern) && pattern[i+1] == '*' {
					i++
				}
				b.WriteString(`.*`)
			} else {
				b.WriteString(`[^/]*`)
			}
		case '?':
			b.WriteString(`[^/]`)
		case '[':
			end, class, err := globClass(pattern, i)
			if err != nil {
				return nil, err
			}
			b.WriteString(class)
			i = end
		case '{':
			depth++
			if depth > maxGlobAlternation {
				return nil, fmt.Errorf("alternations nest deeper than %d", maxGlobAlternation)
			}
			b.WriteString(`(?:`)
		case ',':
			if depth == 0 {
				b.WriteString(`,`)
			} else {
				b.WriteString(`|`)
			}
		case '}':
			if depth == 0 {
				return nil, fmt.Errorf("unbalanced '}' at offset %d", i)
			}
			depth--
			b.WriteString(`)`)
		case '\\':
			if i+1 == len(pattern) {
				return nil, errors.New("trailing backslash")
			}
			i++
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	if depth != 0 {
		return nil, errors.New("unclosed '{'")
	}
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("compile %q: %w", pattern, err)
	}
	return &Glob{src: pattern, re: re}, nil
}

// globClass translates the bracket expression starting at pattern[start].
func globClass(pattern string, start int) (end int, class string, err error) {
	var b strings.Builder
	b.WriteString(`[`)
	i := start + 1
	if i < len(pattern) && (pattern[i] == '^' || pattern[i] == '!') {
		b.WriteString(`^/`)
		i++
	}
	first := i
	for ; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == ']' && i > first:
			b.WriteString(`]`)
			return i, b.String(), nil
		case c == '/':
			return 0, "", fmt.Errorf("'/' cannot be in a character class (offset %d)", i)
		case c == '\\' && i+1 < len(pattern):
			i++
			if pattern[i] == '/' {
				return 0, "", fmt.Errorf("'/' cannot be in a character class (offset %d)", i)
			}
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		case c == '-' && i > first && i+1 < len(pattern) && pattern[i+1] != ']':
			// A range spanning '/' would match it: a class is one
			// character of a path component.
			lo, hi := pattern[i-1], pattern[i+1]
			if hi == '\\' && i+2 < len(pattern) {
				hi = pattern[i+2]
			}
			if lo <= '/' && '/' <= hi {
				return 0, "", fmt.Errorf("character range %c-%c includes '/' (offset %d)", lo, hi, i)
			}
			b.WriteByte('-')
		case c == '[' || c == ']' || c == '^' || c == '\\' || c == '-':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return 0, "", fmt.Errorf("unclosed '[' at offset %d", start)
}

// Match reports whether path matches the pattern.
func (g *Glob) Match(path string) bool { return g.re.MatchString(path) }

// String returns the pattern as written.
func (g *Glob) String() string {
	if g == nil {
		return ""
	}
	return g.src
}
