package policy

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestInDir(t *testing.T) {
	tests := []struct {
		path, dir string
		recursive bool
		want      bool
	}{
		{"/a/b/c", "/a/b/", false, true},
		{"/a/b/c", "/a/b/", true, true},
		{"/a/b/c/d", "/a/b/", false, false},
		{"/a/b/c/d", "/a/b/", true, true},
		// The directory itself is in it.
		{"/a/b", "/a/b/", false, true},
		{"/a/b", "/a/b/", true, true},
		// Prefix traps.
		{"/a/bx", "/a/b/", false, false},
		{"/a/bx", "/a/b/", true, false},
		{"/a/bx/c", "/a/b/", true, false},
		{"/a", "/a/b/", true, false},
		{"/a/", "/a/b/", true, false},
		{"/", "/a/", true, false},
		{"", "/a/", true, false},
		// The root directory.
		{"/x", "/", false, true},
		{"/x/y", "/", false, false},
		{"/x/y", "/", true, true},
		// Hidden and odd names are ordinary names.
		{"/a/.b", "/a/", false, true},
		{"/a/..", "/a/", false, true},
	}
	for _, tt := range tests {
		if got := InDir(tt.path, tt.dir, tt.recursive); got != tt.want {
			t.Errorf("InDir(%q, %q, %v) = %v, want %v", tt.path, tt.dir, tt.recursive, got, tt.want)
		}
	}
}

// TestInDirRootItself: "the directory itself is in it too" holds for every
// directory but "/": a rule on dir "/" does not cover "/" itself.
func TestInDirRootItself(t *testing.T) {
	for _, recursive := range []bool{false, true} {
		if !InDir("/", "/", recursive) {
			t.Errorf("InDir(\"/\", \"/\", %v) = false, want true (as InDir(\"/a\", \"/a/\", %v) is)", recursive, recursive)
		}
	}
}

func TestSourceMatches(t *testing.T) {
	tests := []struct {
		src  Source
		exe  string
		want bool
	}{
		{Source{Path: "/usr/bin/bash"}, "/usr/bin/bash", true},
		{Source{Path: "/usr/bin/bash"}, "/usr/bin/bash2", false},
		{Source{Path: "/usr/bin/bash"}, "/bin/bash", false},
		{Source{Path: "/usr/bin/bash"}, "/usr/bin/", false},
		{Source{Dir: "/usr/bin/"}, "/usr/bin/bash", true},
		{Source{Dir: "/usr/bin/"}, "/usr/bin/x/y", false},
		{Source{Dir: "/usr/bin/"}, "/usr/binx/y", false},
		{Source{Dir: "/usr/", Recursive: true}, "/usr/bin/x/y", true},
		{Source{Dir: "/usr/", Recursive: true}, "/usrx/bin", false},
		// A path wins over a dir when both are set (Parse never does that).
		{Source{Path: "/a/b", Dir: "/a/"}, "/a/c", false},
	}
	for _, tt := range tests {
		if got := tt.src.Matches(tt.exe); got != tt.want {
			t.Errorf("%+v.Matches(%q) = %v, want %v", tt.src, tt.exe, got, tt.want)
		}
	}
	strs := []struct {
		src  Source
		want string
	}{
		{Source{Path: "/bin/x"}, "/bin/x"},
		{Source{Dir: "/bin/"}, "/bin/"},
		{Source{Dir: "/bin/", Recursive: true}, "/bin/ (recursive)"},
	}
	for _, tt := range strs {
		if got := tt.src.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestParseAction(t *testing.T) {
	tests := []struct {
		in   string
		want Action
		ok   bool
	}{
		{"Allow", ActionAllow, true},
		{"allow", ActionAllow, true},
		{"AUDIT", ActionAudit, true},
		{"Block", ActionBlock, true},
		{"block", ActionBlock, true},
		{"Deny", 0, false},
		{"", 0, false},
		{" Block", 0, false},
		{"Blocked", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseAction(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseAction(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && !strings.EqualFold(got.String(), tt.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if s := Action(0).String(); s != "Action(0)" {
		t.Errorf("Action(0).String() = %q", s)
	}
}

func TestParsePosture(t *testing.T) {
	tests := []struct {
		in   string
		want Posture
		ok   bool
	}{
		{"audit", PostureAudit, true},
		{"Audit", PostureAudit, true},
		{"block", PostureBlock, true},
		{"BLOCK", PostureBlock, true},
		{"allow", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParsePosture(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParsePosture(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if PostureAudit.String() != "audit" || PostureBlock.String() != "block" || Posture(9).String() != "Posture(9)" {
		t.Error("Posture.String")
	}
}

func TestPosturesFor(t *testing.T) {
	p := Postures{File: PostureBlock, Network: PostureAudit, Capabilities: PostureBlock}
	q := Postures{File: PostureAudit, Network: PostureBlock, Capabilities: PostureAudit}
	tests := []struct {
		p    Postures
		k    Kind
		want Posture
	}{
		{p, KindFile, PostureBlock},
		{p, KindProcess, PostureBlock}, // process shares the file posture
		{q, KindProcess, PostureAudit},
		{p, KindNetwork, PostureAudit},
		{q, KindNetwork, PostureBlock},
		{p, KindCapabilities, PostureBlock},
		{q, KindCapabilities, PostureAudit},
		{p, KindSyscall, PostureAudit}, // syscalls only audit
		{p, Kind(0), PostureAudit},
	}
	for _, tt := range tests {
		if got := tt.p.For(tt.k); got != tt.want {
			t.Errorf("%+v.For(%v) = %v, want %v", tt.p, tt.k, got, tt.want)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{KindProcess.String(), "Process"},
		{KindFile.String(), "File"},
		{KindNetwork.String(), "Network"},
		{KindCapabilities.String(), "Capabilities"},
		{KindSyscall.String(), "Syscall"},
		{Kind(0).String(), "Kind(0)"},
		{MatchPath.String(), "path"},
		{MatchExecName.String(), "execname"},
		{MatchDir.String(), "dir"},
		{MatchPattern.String(), "pattern"},
		{MatchProtocol.String(), "protocol"},
		{MatchCapability.String(), "capability"},
		{MatchSyscall.String(), "syscall"},
		{MatchType(99).String(), "MatchType(99)"},
		{Origin{File: "a.yaml", Line: 3, Field: "spec.file.matchPaths[0]"}.String(), "a.yaml:3: spec.file.matchPaths[0]"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestRuleObject(t *testing.T) {
	g, err := CompileGlob("/etc/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		r           Rule
		want        string
		constrained bool
	}{
		{Rule{Match: MatchPath, Path: "/etc/shadow", ReadOnly: true}, "/etc/shadow", true},
		{Rule{Match: MatchExecName, Path: "nc"}, "nc", false},
		{Rule{Match: MatchDir, Path: "/etc/", OwnerOnly: true}, "/etc/", true},
		{Rule{Match: MatchPattern, Pattern: g}, "/etc/*.conf", false},
		{Rule{Match: MatchProtocol, Protocol: ProtoICMPv6}, "icmpv6", false},
		{Rule{Match: MatchCapability, Capability: 21}, "sys_admin", false},
		{Rule{Match: MatchSyscall, Syscalls: []string{"open", "openat"}}, "open,openat", false},
		{Rule{Match: MatchSyscall, Syscalls: []string{"unlink"}, Path: "/etc/"}, "unlink /etc/", false},
	}
	for _, tt := range tests {
		if got := tt.r.Object(); got != tt.want {
			t.Errorf("Object() = %q, want %q", got, tt.want)
		}
		if got := tt.r.Constrained(); got != tt.constrained {
			t.Errorf("%q: Constrained() = %v", tt.want, got)
		}
	}
}

func doc(file string, line int, name string, paths ...string) *Document {
	d := &Document{File: file, Line: line, Name: name}
	for _, p := range paths {
		d.Rules = append(d.Rules, Rule{Policy: name, Kind: KindFile, Action: ActionBlock, Severity: 1, Match: MatchPath, Path: p,
			Origin: Origin{File: file, Line: line + 1, Field: "spec.file.matchPaths[0]"}})
	}
	return d
}

func TestNewSet(t *testing.T) {
	tests := []struct {
		name     string
		docs     []*Document
		paths    []string // rule paths in ID order
		policies []PolicyRef
		errs     []string
	}{
		{
			name: "empty",
		},
		{
			name:  "numbering follows document order",
			docs:  []*Document{doc("a.yaml", 1, "a", "/1", "/2"), doc("b.yaml", 1, "b"), doc("b.yaml", 9, "c", "/3")},
			paths: []string{"/1", "/2", "/3"},
			policies: []PolicyRef{
				{Name: "a", File: "a.yaml", Line: 1, FirstRule: 1, NumRules: 2},
				{Name: "b", File: "b.yaml", Line: 1, FirstRule: 3, NumRules: 0},
				{Name: "c", File: "b.yaml", Line: 9, FirstRule: 3, NumRules: 1},
			},
		},
		{
			name: "duplicate names across files name both locations",
			docs: []*Document{doc("a.yaml", 2, "x", "/1"), doc("b.yaml", 7, "x", "/2")},
			errs: []string{`b.yaml:7: metadata.name: policy "x" is already defined at a.yaml:2`},
		},
		{
			name: "duplicate names in one file, every duplicate reported",
			docs: []*Document{doc("a.yaml", 1, "x", "/1"), doc("a.yaml", 10, "x", "/2"), doc("a.yaml", 20, "y"), doc("a.yaml", 30, "x")},
			errs: []string{
				`a.yaml:10: metadata.name: policy "x" is already defined at a.yaml:1`,
				`a.yaml:30: metadata.name: policy "x" is already defined at a.yaml:1`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSet(3, Postures{File: PostureBlock}, tt.docs)
			if tt.errs != nil {
				if s != nil {
					t.Error("NewSet returned a set with an error")
				}
				var list ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("error %v is not an ErrorList", err)
				}
				if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.errs) {
					t.Errorf("errors:\n%s\nwant:\n%s", err, strings.Join(tt.errs, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Version() != 3 || s.Postures() != (Postures{File: PostureBlock}) {
				t.Errorf("version %d postures %+v", s.Version(), s.Postures())
			}
			var paths []string
			for r := range s.Rules() {
				paths = append(paths, r.Path)
				if got, ok := s.Rule(r.ID); !ok || got != r {
					t.Errorf("Rule(%d) does not return the rule with that ID", r.ID)
				}
			}
			if !slices.Equal(paths, tt.paths) || s.Len() != len(tt.paths) {
				t.Errorf("rules %v (Len %d), want %v", paths, s.Len(), tt.paths)
			}
			if got := s.Policies(); !reflect.DeepEqual(got, tt.policies) {
				t.Errorf("policies %+v, want %+v", got, tt.policies)
			}
			for _, id := range []uint32{0, uint32(s.Len() + 1)} {
				if _, ok := s.Rule(id); ok {
					t.Errorf("Rule(%d) found a rule", id)
				}
			}
		})
	}
}

// TestSetIsImmutable: a Set does not share rules with the documents it was
// built from, and Policies returns a copy.
func TestSetIsImmutable(t *testing.T) {
	d := doc("a.yaml", 1, "a", "/1", "/2")
	s, err := NewSet(1, Postures{}, []*Document{d})
	if err != nil {
		t.Fatal(err)
	}
	d.Rules[0].Path = "/changed"
	if r, _ := s.Rule(1); r.Path != "/1" || d.Rules[0].ID != 0 {
		t.Errorf("set rule follows the document: %q, document rule ID %d", r.Path, d.Rules[0].ID)
	}
	p := s.Policies()
	p[0].Name = "changed"
	if s.Policies()[0].Name != "a" {
		t.Error("Policies() returned the set's own slice")
	}
	// Early break of the iterator.
	n := 0
	for range s.Rules() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("iterated %d rules after break", n)
	}
}
