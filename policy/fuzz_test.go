package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic; when it
// fails, the error is a sorted ErrorList naming the file; when it succeeds,
// every rule satisfies the invariants the compilers rely on.
func FuzzParse(f *testing.F) {
	var seeds []string
	for _, pat := range []string{"../examples/policies/*.yaml", "testdata/*.yaml", "testdata/bad/*.yaml"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	if len(seeds) == 0 {
		f.Fatal("no seed files")
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(spec(procRule...) + "---\n" + spec(procRule...))) // duplicate names
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("x: &a [*a]\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Parse("fuzz.yaml", data)
		if err != nil {
			checkErrorList(t, err)
			if docs != nil {
				t.Fatalf("Parse returned %d documents with an error", len(docs))
			}
			return
		}
		if len(docs) == 0 {
			t.Fatal("Parse succeeded without documents")
		}
		for _, d := range docs {
			checkDocument(t, d)
		}
		s, err := NewSet(1, Postures{}, docs)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("NewSet error %T: %v", err, err)
			}
			for _, e := range list {
				if e.Field != "metadata.name" || !strings.Contains(e.Msg, "is already defined at fuzz.yaml:") {
					t.Fatalf("NewSet failed with something else than a duplicate name: %v", e)
				}
			}
			return
		}
		id := uint32(0)
		for r := range s.Rules() {
			id++
			if r.ID != id {
				t.Fatalf("rule ID %d at position %d", r.ID, id)
			}
		}
	})
}

func checkErrorList(t *testing.T, err error) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("Parse error is not a non-empty ErrorList: %T %v", err, err)
	}
	for i, e := range list {
		if e.File != "fuzz.yaml" || e.Line < 0 || e.Msg == "" {
			t.Fatalf("malformed error %#v", e)
		}
		if i > 0 && list[i-1].Line > e.Line {
			t.Fatalf("errors not sorted by line:\n%v", err)
		}
	}
}

func checkDocument(t *testing.T, d *Document) {
	t.Helper()
	if d.File != "fuzz.yaml" || d.Line <= 0 {
		t.Fatalf("document at %s:%d", d.File, d.Line)
	}
	if d.Name == "" || len(d.Name) > 253 || !dnsSubdomain.MatchString(d.Name) {
		t.Fatalf("document name %q", d.Name)
	}
	if len(d.Rules) == 0 {
		t.Fatalf("document %q has no rules", d.Name)
	}
	// The selector never panics, whatever host it is asked about.
	d.Selector.Selects(Host{Name: "h", Labels: map[string]string{"a": "b"}})
	_ = d.Selector.String()

	for i := range d.Rules {
		r := &d.Rules[i]
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("rule %s (%s %s %q): "+format, append([]any{r.Origin, r.Kind, r.Match, r.Object()}, args...)...)
		}
		if r.ID != 0 || r.Policy != d.Name {
			fail("ID %d policy %q", r.ID, r.Policy)
		}
		if r.Origin.File != "fuzz.yaml" || r.Origin.Line <= 0 || !strings.HasPrefix(r.Origin.Field, "spec.") {
			fail("bad origin")
		}
		if r.Origin.Line < d.Line {
			fail("rule before its document at line %d", d.Line)
		}
		if r.Severity < 1 || r.Severity > 10 {
			fail("severity %d", r.Severity)
		}
		if r.Action != ActionAllow && r.Action != ActionAudit && r.Action != ActionBlock {
			fail("action %v", r.Action)
		}
		if len(r.Tags) > maxTags || len(r.Message) > maxMessage || strings.ContainsFunc(r.Message, func(c rune) bool { return c != '\t' && isControl(c) }) {
			fail("tags %d message %d bytes", len(r.Tags), len(r.Message))
		}
		for _, tag := range r.Tags {
			if tag == "" || len(tag) > maxTagLen || strings.ContainsFunc(tag, isControl) {
				fail("tag %q", tag)
			}
		}
		for _, s := range r.Sources {
			switch {
			case s.Path != "" && s.Dir == "" && !s.Recursive:
				if err := CheckPath(s.Path); err != nil {
					fail("source path: %v", err)
				}
			case s.Path == "" && s.Dir != "":
				if err := CheckDir(s.Dir); err != nil {
					fail("source dir: %v", err)
				}
			default:
				fail("source %+v", s)
			}
		}
		if r.ReadOnly && r.Kind != KindFile {
			fail("readOnly on a %v rule", r.Kind)
		}
		if r.Recursive && r.Match != MatchDir && !(r.Match == MatchSyscall && strings.HasSuffix(r.Path, "/")) {
			fail("recursive on a non-directory")
		}
		switch r.Kind {
		case KindProcess, KindFile:
			switch r.Match {
			case MatchPath:
				if err := CheckPath(r.Path); err != nil {
					fail("%v", err)
				}
			case MatchExecName:
				if r.Kind != KindProcess || r.Path == "" || len(r.Path) > MaxNameLen || strings.Contains(r.Path, "/") ||
					r.Path == "." || r.Path == ".." || strings.ContainsFunc(r.Path, isControl) {
					fail("bad execname")
				}
			case MatchDir:
				if err := CheckDir(r.Path); err != nil {
					fail("%v", err)
				}
			case MatchPattern:
				if r.Pattern == nil || !strings.HasPrefix(r.Pattern.String(), "/") || len(r.Sources) != 0 {
					fail("bad pattern rule")
				}
				r.Pattern.Match(r.Pattern.String()) // must not panic
			default:
				fail("match type for %v", r.Kind)
			}
		case KindNetwork:
			if r.Match != MatchProtocol || r.Protocol < ProtoAll || r.Protocol > ProtoPacket {
				fail("bad network rule")
			}
		case KindCapabilities:
			if r.Match != MatchCapability || r.Capability > MaxCapability {
				fail("bad capability rule")
			}
		case KindSyscall:
			if r.Match != MatchSyscall || r.Action != ActionAudit || len(r.Syscalls) == 0 {
				fail("bad syscall rule")
			}
			for _, n := range r.Syscalls {
				if _, ok := SyscallNumber(n); !ok || n != strings.ToLower(n) {
					fail("syscall %q", n)
				}
			}
			if r.Path != "" {
				check := CheckPath
				if strings.HasSuffix(r.Path, "/") {
					check = CheckDir
				}
				if err := check(r.Path); err != nil {
					fail("%v", err)
				}
			}
		default:
			fail("kind")
		}
	}
}

// FuzzCompileGlob: compiling never panics; a compiled glob keeps its source,
// a pattern without glob syntax matches exactly itself, matching an
// arbitrary path never panics, and without "**", braces or escapes nothing
// but a literal '/' matches a '/' (so a match has as many components as the
// pattern).
func FuzzCompileGlob(f *testing.F) {
	for _, s := range []string{"/etc/*", "/a/**", "/a?", "/a/[^b-d]", "/{a,b{c,d}}", `/a\*`, "/a[", "/a}", `/a\`, "/a[.-0]b"} {
		f.Add(s, "/a/b")
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		g, err := CompileGlob(pattern)
		if err != nil {
			if g != nil {
				t.Fatal("glob returned with an error")
			}
			return
		}
		if g.String() != pattern {
			t.Fatalf("String() = %q, want %q", g.String(), pattern)
		}
		if g.Match(path) && !strings.Contains(pattern, "**") && !strings.ContainsAny(pattern, `{\\`) &&
			strings.Count(path, "/") != strings.Count(pattern, "/") {
			t.Fatalf("%q matches %q across a '/' (regexp %s)", pattern, path, g.re)
		}
		if !strings.ContainsAny(pattern, `*?[]{},\`) && (!g.Match(pattern) || g.Match(pattern+"x")) {
			t.Fatalf("literal %q does not match exactly itself (regexp %s)", pattern, g.re)
		}
	})
}
