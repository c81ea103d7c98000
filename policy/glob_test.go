package policy

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		nomatch []string
	}{
		// Literals, including characters that mean something to regexp.
		{`/etc/passwd`, []string{"/etc/passwd"}, []string{"/etc/passwdx", "/etc/passw", "/etc/passwd/", "/ETC/passwd", "x/etc/passwd"}},
		{`/a.b`, []string{"/a.b"}, []string{"/axb"}},
		{`/a+b(c)|^$`, []string{"/a+b(c)|^$"}, []string{"/aab(c)", "/a+b(c)"}},
		{`/a,b`, []string{"/a,b"}, []string{"/a", "/b"}},
		{`/a]b`, []string{"/a]b"}, nil},
		{`/é`, []string{"/é"}, []string{"/e"}},

		// * stays within one component.
		{`/etc/*`, []string{"/etc/a", "/etc/", "/etc/.hidden", "/etc/a.b"}, []string{"/etc", "/etc/a/b", "/etcx"}},
		{`/etc/*.conf`, []string{"/etc/a.conf", "/etc/.conf"}, []string{"/etc/a/b.conf", "/etc/a.confx"}},
		{`/a*b`, []string{"/ab", "/axxb"}, []string{"/a/b", "/axb/c"}},
		{`/*/bin`, []string{"/usr/bin", "//bin"}, []string{"/bin", "/usr/local/bin"}},

		// ** crosses components; more stars are the same as two.
		{`/etc/**`, []string{"/etc/", "/etc/a", "/etc/a/b/c"}, []string{"/etc", "/etcx/a"}},
		{`/**/bin/sh`, []string{"/usr/bin/sh", "/a/b/bin/sh", "//bin/sh"}, []string{"/bin/sh"}},
		{`/a/***`, []string{"/a/b/c", "/a/"}, []string{"/a"}},
		{`/a**b`, []string{"/ab", "/a/x/b"}, []string{"/a/x/c"}},

		// ? is one character, not '/'; one character is one rune.
		{`/a?`, []string{"/ab", "/a.", "/aé"}, []string{"/a", "/abc", "/a/"}},
		{`/a/??`, []string{"/a/bc"}, []string{"/a/b", "/a/b/"}},

		// Character classes.
		{`/a/[abc]`, []string{"/a/a", "/a/c"}, []string{"/a/d", "/a/ab", "/a/"}},
		{`/a/[a-c]x`, []string{"/a/bx"}, []string{"/a/dx", "/a/-x"}},
		{`/a/[^abc]`, []string{"/a/d", "/a/."}, []string{"/a/a", "/a//", "/a/"}},
		{`/a/[!abc]`, []string{"/a/d"}, []string{"/a/b", "/a//"}},
		{`/a/[]x]`, []string{"/a/]", "/a/x"}, []string{"/a/y"}},
		{`/a/[^]]`, []string{"/a/x"}, []string{"/a/]", "/a//"}},
		{`/a/[a-]`, []string{"/a/a", "/a/-"}, []string{"/a/b"}},
		{`/a/[-a]`, []string{"/a/-", "/a/a"}, []string{"/a/b"}},
		{`/a/[\]]`, []string{"/a/]"}, []string{"/a/\\"}},
		{`/a/[[]`, []string{"/a/["}, []string{"/a/]"}},
		{`/a/[a^]`, []string{"/a/^", "/a/a"}, []string{"/a/b"}},
		{`/a/[\\]`, []string{"/a/\\"}, []string{"/a/a"}},
		{`/a/[*?]`, []string{"/a/*", "/a/?"}, []string{"/a/b"}},

		// Alternation, nested, empty, with globs inside.
		{`/a/{b,c}`, []string{"/a/b", "/a/c"}, []string{"/a/d", "/a/bc", "/a/{b,c}"}},
		{`/a/{b,c{d,e}}`, []string{"/a/b", "/a/cd", "/a/ce"}, []string{"/a/c", "/a/bd"}},
		{`/a/{,x}y`, []string{"/a/y", "/a/xy"}, []string{"/a/xxy"}},
		{`/a/{}`, []string{"/a/"}, []string{"/a/b"}},
		{`/a/{b*,c/**}`, []string{"/a/b", "/a/bzz", "/a/c/d/e"}, []string{"/a/b/z", "/a/c"}},
		{`/{{{{{{{{a}}}}}}}}`, []string{"/a"}, []string{"/b"}},
		{`/{usr/,}bin/{ba,da,}sh`, []string{"/bin/sh", "/usr/bin/bash", "/bin/dash"}, []string{"/usr/bin/zsh", "/sbin/sh"}},

		// Escapes.
		{`/a/\*`, []string{"/a/*"}, []string{"/a/b"}},
		{`/a/\?`, []string{"/a/?"}, []string{"/a/b"}},
		{`/a/\[b]`, []string{"/a/[b]"}, []string{"/a/b"}},
		{`/a/\{b,c\}`, []string{"/a/{b,c}"}, []string{"/a/b"}},
		{`/a/{b\,c,d}`, []string{"/a/b,c", "/a/d"}, []string{"/a/b", "/a/c"}},
		{`/a/\\`, []string{`/a/\`}, []string{"/a/"}},
		{`/a/\b`, []string{"/a/b"}, []string{`/a/\b`}},
		{`/a/\é`, []string{"/a/é"}, []string{"/a/e"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			g, err := CompileGlob(tt.pattern)
			if err != nil {
				t.Fatalf("CompileGlob(%q): %v", tt.pattern, err)
			}
			if g.String() != tt.pattern {
				t.Errorf("String() = %q", g.String())
			}
			for _, p := range tt.match {
				if !g.Match(p) {
					t.Errorf("%q does not match %q (regexp %s)", tt.pattern, p, g.re)
				}
			}
			for _, p := range tt.nomatch {
				if g.Match(p) {
					t.Errorf("%q matches %q (regexp %s)", tt.pattern, p, g.re)
				}
			}
		})
	}
	if (*Glob)(nil).String() != "" {
		t.Error("nil Glob String() is not empty")
	}
}

func TestGlobErrors(t *testing.T) {
	tests := []struct {
		pattern string
		want    string
	}{
		{``, "must be an absolute pattern starting with '/'"},
		{`a/*`, "must be an absolute pattern starting with '/'"},
		{`*/a`, "must be an absolute pattern starting with '/'"},
		{`{/a,/b}`, "must be an absolute pattern starting with '/'"},
		{`/a[`, "unclosed '[' at offset 2"},
		{`/a[]`, "unclosed '[' at offset 2"},
		{`/a[^]`, "unclosed '[' at offset 2"},
		{`/a[bc\]`, "unclosed '[' at offset 2"},
		{`/a[b/c]`, "'/' cannot be in a character class (offset 4)"},
		{`/a[^/]`, "'/' cannot be in a character class (offset 4)"},
		{`/a{b`, "unclosed '{'"},
		{`/a{b{c}`, "unclosed '{'"},
		{`/a}`, "unbalanced '}' at offset 2"},
		{`/a{b}}`, "unbalanced '}' at offset 5"},
		{`/a\`, "trailing backslash"},
		{`/{{{{{{{{{a}}}}}}}}}`, "alternations nest deeper than 8"},
		{`/a[z-a]`, "compile \"/a[z-a]\": error parsing regexp: invalid character class range: `z-a`"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			g, err := CompileGlob(tt.pattern)
			if err == nil {
				t.Fatalf("CompileGlob(%q) = %s, want error %q", tt.pattern, g.re, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("CompileGlob(%q) error %q, want %q", tt.pattern, err, tt.want)
			}
		})
	}
}

// TestGlobClassNeverMatchesSlash: the documented syntax says a class never
// matches '/', and a literal '/' in a class is refused. A range spanning '/'
// (0x2f) or an escaped '/' must not sneak it back in: either the pattern is
// refused or it does not match across a component boundary.
func TestGlobClassNeverMatchesSlash(t *testing.T) {
	tests := []struct {
		pattern, probe string
	}{
		{`/a[.-0]b`, "/a/b"}, // '.' is 0x2e, '0' is 0x30
		{`/a[+-1]b`, "/a/b"}, // '+' .. '1' spans '/' too
		{`/a[\/]b`, "/a/b"},
		{`/a[x\/]b`, "/a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			g, err := CompileGlob(tt.pattern)
			if err != nil {
				return // refusing the pattern is fine
			}
			if g.Match(tt.probe) {
				t.Errorf("%q matches %q: the class matched '/' (regexp %s)", tt.pattern, tt.probe, g.re)
			}
		})
	}
}

func TestGlobLongInputs(t *testing.T) {
	// Matching is linear: a pathological pattern against a long path returns.
	g, err := CompileGlob("/" + strings.Repeat("**a", 50) + "b")
	if err != nil {
		t.Fatal(err)
	}
	if g.Match("/" + strings.Repeat("a", 4000)) {
		t.Error("matched without the final b")
	}
}
