package policy

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// y joins lines into a YAML text, one line each, so line numbers in the
// expected errors can be read off the test source: line n is the n-th
// argument.
func y(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// head is the header of every test document: lines 1-4; "spec:" is line 5.
var head = []string{
	"apiVersion: security.kubearmor.com/v1",
	"kind: KubeArmorHostPolicy",
	"metadata:",
	"  name: p",
}

// spec returns a document whose spec body starts on line 6.
func spec(body ...string) string {
	return y(slices.Concat(head, []string{"spec:"}, body)...)
}

// procRule is a valid process section, three lines long.
var procRule = []string{
	"  process:",
	"    matchPaths:",
	"    - path: /bin/x",
}

func mustParse(t *testing.T, file, src string) []*Document {
	t.Helper()
	docs, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v\n--- input:\n%s", err, src)
	}
	return docs
}

// errorLines renders an error from Parse one located error per line and
// checks that it is an ErrorList of *Error values sorted by line.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want policy.ErrorList: %v", err, err)
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].Line > list[i].Line {
			t.Errorf("errors not sorted by line: %d before %d", list[i-1].Line, list[i].Line)
		}
	}
	var pe *Error
	if len(list) > 0 && !errors.As(err, &pe) {
		t.Errorf("errors.As(err, *Error) failed on %v", err)
	}
	return strings.Split(err.Error(), "\n")
}

// ruleView is a Rule with the glob replaced by its source, so rules can be
// compared with reflect.DeepEqual.
type ruleView struct {
	Rule
	Glob string
}

func view(r Rule) ruleView {
	g := r.Pattern.String()
	r.Pattern = nil
	return ruleView{r, g}
}

func TestParseFullPolicy(t *testing.T) {
	const file = "testdata/full.yaml"
	docs, err := ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("got %d documents, want 1", len(docs))
	}
	d := docs[0]
	if d.File != file || d.Line != 2 || d.Name != "full-policy" {
		t.Errorf("document = %s:%d %q, want %s:2 \"full-policy\"", d.File, d.Line, d.Name, file)
	}
	if got, want := d.Selector.String(), "kubearmor.io/hostname=*"; got != want {
		t.Errorf("selector = %q, want %q", got, want)
	}
	if ok, why := d.Selector.Selects(Host{Name: "anything"}); !ok {
		t.Errorf("selector does not select any host: %s", why)
	}

	o := func(line int, field string) Origin { return Origin{File: file, Line: line, Field: field} }
	specTags := []string{"spec-tag"}
	const pol = "full-policy"
	want := []ruleView{
		{Rule: Rule{Policy: pol, Origin: o(21, "spec.process.matchPaths[0]"), Kind: KindProcess, Action: ActionAudit,
			Severity: 5, Tags: specTags, Message: "spec message", Match: MatchPath, Path: "/usr/bin/nc", OwnerOnly: true,
			Sources: []Source{{Path: "/usr/bin/bash"}, {Dir: "/opt/tools/", Recursive: true}}}},
		{Rule: Rule{Policy: pol, Origin: o(27, "spec.process.matchPaths[1]"), Kind: KindProcess, Action: ActionBlock,
			Severity: 5, Tags: specTags, Message: "spec message", Match: MatchExecName, Path: "nmap"}},
		{Rule: Rule{Policy: pol, Origin: o(30, "spec.process.matchDirectories[0]"), Kind: KindProcess, Action: ActionAudit,
			Severity: 5, Tags: specTags, Message: "spec message", Match: MatchDir, Path: "/tmp/", Recursive: true, OwnerOnly: true,
			Sources: []Source{{Dir: "/usr/sbin/"}}}},
		{Rule: Rule{Policy: pol, Origin: o(36, "spec.process.matchPatterns[0]"), Kind: KindProcess, Action: ActionAudit,
			Severity: 5, Tags: []string{"pat"}, Message: "spec message", Match: MatchPattern, OwnerOnly: true},
			Glob: "/home/*/bin/**"},
		{Rule: Rule{Policy: pol, Origin: o(43, "spec.file.matchPaths[0]"), Kind: KindFile, Action: ActionAllow,
			Severity: 9, Tags: specTags, Message: "file message", Match: MatchPath, Path: "/etc/shadow", ReadOnly: true, OwnerOnly: true,
			Sources: []Source{{Path: "/usr/bin/passwd"}}}},
		{Rule: Rule{Policy: pol, Origin: o(50, "spec.file.matchDirectories[0]"), Kind: KindFile, Action: ActionAllow,
			Severity: 4, Tags: specTags, Message: "file message", Match: MatchDir, Path: "/etc/ssh/", ReadOnly: true,
			Sources: []Source{{Path: "/usr/sbin/sshd"}}}},
		{Rule: Rule{Policy: pol, Origin: o(56, "spec.file.matchPatterns[0]"), Kind: KindFile, Action: ActionBlock,
			Severity: 4, Tags: specTags, Message: "file message", Match: MatchPattern, ReadOnly: true},
			Glob: "/var/log/{auth,sys}.log"},
		{Rule: Rule{Policy: pol, Origin: o(62, "spec.network.matchProtocols[0]"), Kind: KindNetwork, Action: ActionAudit,
			Severity: 4, Tags: []string{"net"}, Message: "spec message", Match: MatchProtocol, Protocol: ProtoTCP,
			Sources: []Source{{Path: "/usr/bin/curl"}}}},
		{Rule: Rule{Policy: pol, Origin: o(65, "spec.network.matchProtocols[1]"), Kind: KindNetwork, Action: ActionAudit,
			Severity: 4, Tags: []string{"net"}, Message: "no ping", Match: MatchProtocol, Protocol: ProtoICMP}},
		{Rule: Rule{Policy: pol, Origin: o(67, "spec.network.matchProtocols[2]"), Kind: KindNetwork, Action: ActionAudit,
			Severity: 4, Tags: []string{"net"}, Message: "spec message", Match: MatchProtocol, Protocol: ProtoRaw}},
		{Rule: Rule{Policy: pol, Origin: o(70, "spec.capabilities.matchCapabilities[0]"), Kind: KindCapabilities, Action: ActionAudit,
			Severity: 4, Tags: specTags, Message: "spec message", Match: MatchCapability, Capability: 13,
			Sources: []Source{{Path: "/usr/bin/ping"}}}},
		{Rule: Rule{Policy: pol, Origin: o(73, "spec.capabilities.matchCapabilities[1]"), Kind: KindCapabilities, Action: ActionBlock,
			Severity: 4, Tags: specTags, Message: "spec message", Match: MatchCapability, Capability: 21}},
		{Rule: Rule{Policy: pol, Origin: o(75, "spec.capabilities.matchCapabilities[2]"), Kind: KindCapabilities, Action: ActionAudit,
			Severity: 4, Tags: specTags, Message: "spec message", Match: MatchCapability, Capability: 19}},
		{Rule: Rule{Policy: pol, Origin: o(79, "spec.syscalls.matchSyscalls[0]"), Kind: KindSyscall, Action: ActionAudit,
			Severity: 3, Tags: specTags, Message: "spec message", Match: MatchSyscall, Syscalls: []string{"open", "openat"},
			Sources: []Source{{Dir: "/usr/bin/"}}}},
		{Rule: Rule{Policy: pol, Origin: o(83, "spec.syscalls.matchPaths[0]"), Kind: KindSyscall, Action: ActionAudit,
			Severity: 3, Tags: []string{"sys"}, Message: "spec message", Match: MatchSyscall, Syscalls: []string{"unlink"},
			Path: "/etc/passwd"}},
		{Rule: Rule{Policy: pol, Origin: o(86, "spec.syscalls.matchPaths[1]"), Kind: KindSyscall, Action: ActionAudit,
			Severity: 3, Tags: specTags, Message: "sys message", Match: MatchSyscall, Syscalls: []string{"rmdir", "unlinkat"},
			Path: "/var/lib/", Recursive: true}},
	}
	if len(d.Rules) != len(want) {
		t.Errorf("got %d rules, want %d", len(d.Rules), len(want))
	}
	for i := range min(len(d.Rules), len(want)) {
		if got := view(d.Rules[i]); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("rule %d:\n got %+v\nwant %+v", i, got, want[i])
		}
	}

	// The patterns were compiled, not just kept as text.
	if g := d.Rules[3].Pattern; g == nil || !g.Match("/home/alice/bin/x/y") || g.Match("/home/alice/sbin/x") {
		t.Errorf("process pattern %v does not match as written", g)
	}
	if g := d.Rules[6].Pattern; g == nil || !g.Match("/var/log/sys.log") || g.Match("/var/log/kern.log") {
		t.Errorf("file pattern %v does not match as written", g)
	}

	// NewSet numbers the rules 1..n in document order.
	s, err := NewSet(7, Postures{File: PostureBlock, Network: PostureAudit, Capabilities: PostureBlock}, docs)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version() != 7 || s.Len() != len(want) {
		t.Errorf("set version %d len %d, want 7 %d", s.Version(), s.Len(), len(want))
	}
	id := uint32(0)
	for r := range s.Rules() {
		id++
		if r.ID != id {
			t.Errorf("rule %d has ID %d", id, r.ID)
		}
		w := want[id-1]
		w.ID = id
		if got := view(*r); !reflect.DeepEqual(got, w) {
			t.Errorf("set rule %d:\n got %+v\nwant %+v", id, got, w)
		}
	}
	if got, want := s.Policies(), []PolicyRef{{Name: pol, File: file, Line: 2, FirstRule: 1, NumRules: 16}}; !reflect.DeepEqual(got, want) {
		t.Errorf("policies = %+v, want %+v", got, want)
	}
	wantCount := map[Kind]int{KindProcess: 4, KindFile: 3, KindNetwork: 3, KindCapabilities: 3, KindSyscall: 3}
	if got := s.CountByKind(); !reflect.DeepEqual(got, wantCount) {
		t.Errorf("CountByKind = %v, want %v", got, wantCount)
	}
	// Parse leaves IDs unset: they belong to the set.
	if d.Rules[0].ID != 0 {
		t.Errorf("Parse assigned ID %d", d.Rules[0].ID)
	}
}

func TestParseExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/policies/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example policies found: %v", err)
	}
	var docs []*Document
	for _, f := range files {
		d, err := ParseFile(f)
		if err != nil {
			t.Errorf("example %s: %v", f, err)
			continue
		}
		docs = append(docs, d...)
	}
	if _, err := NewSet(1, Postures{}, docs); err != nil {
		t.Errorf("examples do not form a set: %v", err)
	}
}

func TestParseMultipleDocuments(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		names []string
		lines []int
	}{
		{
			name:  "separators, empty and comment-only documents",
			src:   mustRead(t, "testdata/multi.yaml"),
			names: []string{"first", "second"},
			lines: []int{7, 18},
		},
		{
			name:  "trailing separator",
			src:   spec(procRule...) + "---\n",
			names: []string{"p"},
			lines: []int{1},
		},
		{
			name:  "trailing separator and comment",
			src:   spec(procRule...) + "---\n# the end\n",
			names: []string{"p"},
			lines: []int{1},
		},
		{
			name:  "document end markers",
			src:   "---\n" + spec(procRule...) + "...\n---\n" + strings.Replace(spec(procRule...), "name: p", "name: q", 1) + "...\n",
			names: []string{"p", "q"},
			lines: []int{2, 12},
		},
		{
			name:  "a policy tagged !!null is still a policy",
			src:   "--- !!null\n" + spec(procRule...),
			names: []string{"p"},
			lines: []int{1}, // the node starts at its tag
		},
		{
			name:  "explicit null document",
			src:   "--- ~\n---\n" + spec(procRule...),
			names: []string{"p"},
			lines: []int{3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := mustParse(t, "m.yaml", tt.src)
			var names []string
			var lines []int
			for _, d := range docs {
				names = append(names, d.Name)
				lines = append(lines, d.Line)
				if d.File != "m.yaml" {
					t.Errorf("document %s has file %q", d.Name, d.File)
				}
				for _, r := range d.Rules {
					if r.Origin.Line <= d.Line {
						t.Errorf("rule %s of %s at line %d, not after the document's line %d", r.Origin.Field, d.Name, r.Origin.Line, d.Line)
					}
				}
			}
			if !slices.Equal(names, tt.names) || !slices.Equal(lines, tt.lines) {
				t.Errorf("documents %v at lines %v, want %v at %v", names, lines, tt.names, tt.lines)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestParseInheritance writes severity, tags, message and action at every
// combination of rule, section and spec level, for every kind of rule, and
// checks that the innermost level wins and that unset fields take the
// defaults (Block, severity 1, no tags, no message).
func TestParseInheritance(t *testing.T) {
	type vals struct {
		sev    int
		tag    string
		msg    string
		action string
	}
	// Two value sets, because there are three levels plus a default but only
	// three actions: between them every level is told apart from the default.
	valueSets := []struct {
		name                string
		spec, section, rule vals
	}{
		{"A", vals{2, "spec", "spec msg", "Allow"}, vals{3, "section", "section msg", "Audit"}, vals{4, "rule", "rule msg", "Block"}},
		{"B", vals{5, "s", "s", "Block"}, vals{6, "c", "c", "Allow"}, vals{7, "r", "r", "Audit"}},
	}
	type section struct {
		name    string
		section string   // key under spec
		list    string   // key under the section
		entry   []string // the entry's lines, the first starting with "- "
		syscall bool
	}
	sections := []section{
		{"process path", "process", "matchPaths", []string{"- path: /bin/x"}, false},
		{"process execname", "process", "matchPaths", []string{"- execname: x"}, false},
		{"process dir", "process", "matchDirectories", []string{"- dir: /bin/"}, false},
		{"process pattern", "process", "matchPatterns", []string{"- pattern: /bin/*"}, false},
		{"file path", "file", "matchPaths", []string{"- path: /etc/x"}, false},
		{"file dir", "file", "matchDirectories", []string{"- dir: /etc/"}, false},
		{"file pattern", "file", "matchPatterns", []string{"- pattern: /etc/**"}, false},
		{"network", "network", "matchProtocols", []string{"- protocol: tcp"}, false},
		{"capabilities", "capabilities", "matchCapabilities", []string{"- capability: net_raw"}, false},
		{"syscalls", "syscalls", "matchSyscalls", []string{"- syscall: [open]"}, true},
		{"syscalls path", "syscalls", "matchPaths", []string{"- path: /etc/", "  syscall: [open]"}, true},
	}
	inh := func(indent string, v vals, withAction bool) []string {
		out := []string{
			fmt.Sprintf("%sseverity: %d", indent, v.sev),
			fmt.Sprintf("%stags: [%s]", indent, v.tag),
			fmt.Sprintf("%smessage: %q", indent, v.msg),
		}
		if withAction {
			out = append(out, indent+"action: "+v.action)
		}
		return out
	}
	for _, vs := range valueSets {
		for _, sec := range sections {
			for mask := range 8 {
				atSpec, atSection, atRule := mask&1 != 0, mask&2 != 0, mask&4 != 0
				name := fmt.Sprintf("%s/%s/spec=%v,section=%v,rule=%v", vs.name, sec.name, atSpec, atSection, atRule)
				t.Run(name, func(t *testing.T) {
					var body []string
					if atSpec {
						body = append(body, inh("  ", vs.spec, true)...)
					}
					body = append(body, "  "+sec.section+":")
					if atSection {
						// The syscalls section has no action: it only audits.
						body = append(body, inh("    ", vs.section, !sec.syscall)...)
					}
					body = append(body, "    "+sec.list+":")
					for _, l := range sec.entry {
						body = append(body, "    "+l)
					}
					if atRule {
						body = append(body, inh("      ", vs.rule, !sec.syscall)...)
					}
					docs := mustParse(t, "i.yaml", spec(body...))
					r := docs[0].Rules[0]

					want := vals{1, "", "", "Block"}
					var wantTags []string
					for _, l := range []struct {
						set bool
						v   vals
					}{{atSpec, vs.spec}, {atSection, vs.section}, {atRule, vs.rule}} {
						if l.set {
							want = l.v
							wantTags = []string{l.v.tag}
						}
					}
					if sec.syscall {
						want.action = "Audit" // whatever the spec says
					}
					if r.Severity != want.sev || !slices.Equal(r.Tags, wantTags) || r.Message != want.msg || r.Action.String() != want.action {
						t.Errorf("got severity %d tags %q message %q action %s; want %d %q %q %s\n%s",
							r.Severity, r.Tags, r.Message, r.Action, want.sev, wantTags, want.msg, want.action, spec(body...))
					}
				})
			}
		}
	}
}

func TestParseInheritanceDetails(t *testing.T) {
	tests := []struct {
		name    string
		body    []string
		sev     int
		tags    []string
		msg     string
		action  Action
		wantNil bool // tags must be nil, not just empty
	}{
		{
			name: "defaults",
			body: procRule,
			sev:  1, action: ActionBlock, wantNil: true,
		},
		{
			name: "empty tag list at rule level overrides inherited tags",
			body: []string{"  tags: [a, b]", "  process:", "    matchPaths:", "    - path: /bin/x", "      tags: []"},
			sev:  1, tags: []string{}, action: ActionBlock,
		},
		{
			name: "action in any letter case",
			body: []string{"  action: aLLoW", "  process:", "    matchPaths:", "    - path: /bin/x"},
			sev:  1, action: ActionAllow, wantNil: true,
		},
		{
			name: "fields of one level are inherited independently",
			body: []string{"  severity: 9", "  tags: [t]", "  process:", "    message: m", "    matchPaths:", "    - path: /bin/x", "      action: Audit"},
			sev:  9, tags: []string{"t"}, msg: "m", action: ActionAudit,
		},
		{
			name: "a sibling section's values do not leak",
			body: []string{"  file:", "    severity: 8", "    action: Allow", "    matchPaths:", "    - path: /etc/x", "  process:", "    matchPaths:", "    - path: /bin/x"},
			sev:  1, action: ActionBlock, wantNil: true,
		},
		{
			name: "spec action does not make syscalls rules block",
			body: []string{"  action: Block", "  severity: 6", "  syscalls:", "    matchSyscalls:", "    - syscall: [ptrace]"},
			sev:  6, action: ActionAudit, wantNil: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := mustParse(t, "d.yaml", spec(tt.body...))
			r := docs[0].Rules[0]
			if r.Severity != tt.sev || !slices.Equal(r.Tags, tt.tags) || r.Message != tt.msg || r.Action != tt.action {
				t.Errorf("got severity %d tags %q message %q action %s; want %d %q %q %s",
					r.Severity, r.Tags, r.Message, r.Action, tt.sev, tt.tags, tt.msg, tt.action)
			}
			if tt.wantNil && r.Tags != nil {
				t.Errorf("tags = %#v, want nil", r.Tags)
			}
			if !tt.wantNil && tt.tags != nil && r.Tags == nil {
				t.Errorf("tags = nil, want %#v", tt.tags)
			}
		})
	}
}

func TestParseAccepted(t *testing.T) {
	long := func(n int) string { return "/" + strings.Repeat("a", n-1) }
	// pathOf builds an absolute path of exactly n bytes out of 255-byte
	// components, the longest allowed.
	pathOf := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			c := min(255, n-b.Len()-1)
			b.WriteString("/" + strings.Repeat("c", c))
		}
		return b.String()
	}
	tests := []struct {
		name  string
		body  []string
		check func(t *testing.T, r Rule)
	}{
		{"capability NET_RAW", []string{"  capabilities:", "    matchCapabilities:", "    - capability: NET_RAW"},
			func(t *testing.T, r Rule) { wantEq(t, r.Capability, Capability(13)) }},
		{"capability cap_net_raw", []string{"  capabilities:", "    matchCapabilities:", "    - capability: cap_net_raw"},
			func(t *testing.T, r Rule) { wantEq(t, r.Capability, Capability(13)) }},
		{"capability CAP_NET_RAW", []string{"  capabilities:", "    matchCapabilities:", "    - capability: CAP_NET_RAW"},
			func(t *testing.T, r Rule) { wantEq(t, r.Capability, Capability(13)) }},
		{"capability chown is number 0", []string{"  capabilities:", "    matchCapabilities:", "    - capability: chown"},
			func(t *testing.T, r Rule) { wantEq(t, r.Capability, Capability(0)) }},
		{"protocol in upper case", []string{"  network:", "    matchProtocols:", "    - protocol: ICMPv6"},
			func(t *testing.T, r Rule) { wantEq(t, r.Protocol, ProtoICMPv6) }},
		{"syscall names are lower-cased", []string{"  syscalls:", "    matchSyscalls:", "    - syscall: [OpenAt, EXECVE]"},
			func(t *testing.T, r Rule) { wantEq(t, strings.Join(r.Syscalls, ","), "openat,execve") }},
		{"root directory", []string{"  file:", "    matchDirectories:", "    - dir: /", "      recursive: true"},
			func(t *testing.T, r Rule) { wantEq(t, r.Path, "/") }},
		{"255-byte component", []string{"  file:", "    matchPaths:", "    - path: " + long(256)},
			func(t *testing.T, r Rule) { wantEq(t, len(r.Path), 256) }},
		{"4095-byte path", []string{"  file:", "    matchPaths:", "    - path: " + pathOf(4095)},
			func(t *testing.T, r Rule) { wantEq(t, len(r.Path), 4095) }},
		{"255-byte execname", []string{"  process:", "    matchPaths:", "    - execname: " + strings.Repeat("e", 255)},
			func(t *testing.T, r Rule) { wantEq(t, len(r.Path), 255) }},
		{"dots inside names are fine", []string{"  file:", "    matchPaths:", "    - path: /a/.b/..c/d..", "      fromSource:", "      - path: /usr/bin/.x"},
			func(t *testing.T, r Rule) { wantEq(t, r.Path, "/a/.b/..c/d..") }},
		{"tab in a message", []string{"  message: \"a\\tb\"", "  process:", "    matchPaths:", "    - path: /bin/x"},
			func(t *testing.T, r Rule) { wantEq(t, r.Message, "a\tb") }},
		{"syscalls on a directory, not recursive", []string{"  syscalls:", "    matchPaths:", "    - path: /etc/", "      syscall: [unlink]"},
			func(t *testing.T, r Rule) { wantEq(t, r.Path+fmt.Sprint(r.Recursive), "/etc/false") }},
		{"hex severity", []string{"  severity: 0xa", "  process:", "    matchPaths:", "    - path: /bin/x"},
			func(t *testing.T, r Rule) { wantEq(t, r.Severity, 10) }},
		{"quoted label values and numbers", []string{"  nodeSelector:", "    matchLabels:", "      rack: 12", "      ssd: true", "  process:", "    matchPaths:", "    - path: /bin/x"},
			func(t *testing.T, r Rule) {}},
		{"empty sections next to a full one", []string{"  process: {}", "  file:", "  network:", "    matchProtocols: []", "  capabilities:", "    matchCapabilities:", "    - capability: kill"},
			func(t *testing.T, r Rule) { wantEq(t, r.Kind, KindCapabilities) }},
		{"64 tags of 256 bytes", []string{"  tags: [" + strings.TrimSuffix(strings.Repeat(strings.Repeat("t", 256)+",", 64), ",") + "]", "  process:", "    matchPaths:", "    - path: /bin/x"},
			func(t *testing.T, r Rule) { wantEq(t, len(r.Tags), 64) }},
		{"1024-byte message", []string{"  message: " + strings.Repeat("m", 1024), "  process:", "    matchPaths:", "    - path: /bin/x"},
			func(t *testing.T, r Rule) { wantEq(t, len(r.Message), 1024) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := mustParse(t, "a.yaml", spec(tt.body...))
			tt.check(t, docs[0].Rules[len(docs[0].Rules)-1])
		})
	}

	// A long but valid metadata.name, and a dotted one.
	for _, name := range []string{strings.Repeat("a", 253), "a.b-c.d0", "0x"} {
		src := strings.Replace(spec(procRule...), "name: p", "name: "+name, 1)
		if docs := mustParse(t, "n.yaml", src); docs[0].Name != name {
			t.Errorf("name = %q, want %q", docs[0].Name, name)
		}
	}
}

func wantEq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestParseErrors checks every class of error with its exact text: file,
// line, field path and message.
func TestParseErrors(t *testing.T) {
	// rest of a valid spec, appended after the line under test.
	rule := procRule
	pathOf := func(n int) string { // an absolute path of n bytes, 255-byte components
		var b strings.Builder
		for b.Len() < n {
			b.WriteString("/" + strings.Repeat("c", min(255, n-b.Len()-1)))
		}
		return b.String()
	}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		// Unknown fields.
		{
			name: "unknown top-level field",
			src:  y(slices.Concat(head, []string{"spex:", "  severity: 1"})...),
			want: []string{
				"f.yaml:1: spec: is required",
				"f.yaml:5: spex: unknown field (known fields: apiVersion, kind, metadata, spec)",
			},
		},
		{
			name: "unknown field in metadata",
			src:  y("apiVersion: security.kubearmor.com/v1", "kind: KubeArmorHostPolicy", "metadata:", "  name: p", "  namespace: x", "spec:", "  process:", "    matchPaths:", "    - path: /bin/x"),
			want: []string{"f.yaml:5: metadata.namespace: unknown field (known fields: annotations, labels, name)"},
		},
		{
			name: "unknown field in spec",
			src:  spec("  proces:", "    matchPaths:", "    - path: /bin/x"),
			want: []string{"f.yaml:6: spec.proces: unknown field (known fields: action, capabilities, file, message, network, nodeSelector, presets, process, severity, syscalls, tags)"},
		},
		{
			name: "unknown field in a section",
			src:  spec("  process:", "    matchPath:", "    - path: /bin/x"),
			want: []string{"f.yaml:7: spec.process.matchPath: unknown field (known fields: action, matchDirectories, matchPaths, matchPatterns, message, severity, tags)"},
		},
		{
			name: "unknown field in a rule",
			src:  spec("  process:", "    matchPaths:", "    - path: /bin/x", "      recursive: true"),
			want: []string{"f.yaml:9: spec.process.matchPaths[0].recursive: unknown field (known fields: action, execname, fromSource, message, ownerOnly, path, severity, tags)"},
		},
		{
			name: "readOnly is not a process field",
			src:  spec("  process:", "    matchDirectories:", "    - dir: /bin/", "      readOnly: true"),
			want: []string{"f.yaml:9: spec.process.matchDirectories[0].readOnly: unknown field (known fields: action, dir, fromSource, message, ownerOnly, recursive, severity, tags)"},
		},
		{
			name: "unknown field in fromSource",
			src:  spec("  file:", "    matchPaths:", "    - path: /etc/x", "      fromSource:", "      - path: /bin/a", "        dirr: /x/"),
			want: []string{"f.yaml:11: spec.file.matchPaths[0].fromSource[0].dirr: unknown field (known fields: dir, path, recursive)"},
		},
		{
			name: "fromSource is not allowed on patterns",
			src:  spec("  file:", "    matchPatterns:", "    - pattern: /etc/*", "      fromSource:", "      - path: /bin/a"),
			want: []string{"f.yaml:9: spec.file.matchPatterns[0].fromSource: unknown field (known fields: action, message, ownerOnly, pattern, readOnly, severity, tags)"},
		},
		{
			name: "the syscalls section has no action",
			src:  spec("  syscalls:", "    action: Block", "    matchSyscalls:", "    - syscall: [open]"),
			want: []string{"f.yaml:7: spec.syscalls.action: unknown field (known fields: matchPaths, matchSyscalls, message, severity, tags)"},
		},
		{
			name: "syscalls rules have no action",
			src:  spec("  syscalls:", "    matchSyscalls:", "    - syscall: [open]", "      action: Block"),
			want: []string{"f.yaml:9: spec.syscalls.matchSyscalls[0].action: unknown field (known fields: fromSource, message, severity, syscall, tags)"},
		},
		{
			name: "unknown field in nodeSelector",
			src:  spec(slices.Concat([]string{"  nodeSelector:", "    matchExpressions: []"}, rule)...),
			want: []string{"f.yaml:7: spec.nodeSelector.matchExpressions: unknown field (known fields: matchLabels)"},
		},

		// Wrong types.
		{
			name: "string where a list belongs",
			src:  spec(slices.Concat([]string{"  tags: foo"}, rule)...),
			want: []string{`f.yaml:6: spec.tags: must be a list, got "foo"`},
		},
		{
			name: "mapping where a list belongs",
			src:  spec("  process:", "    matchPaths:", "      path: /bin/x"),
			want: []string{"f.yaml:8: spec.process.matchPaths: must be a list, got a mapping"},
		},
		{
			name: "list where a string belongs",
			src:  spec("  process:", "    matchPaths:", "    - path: [/bin/x]"),
			want: []string{"f.yaml:8: spec.process.matchPaths[0].path: must be a string, got a list"},
		},
		{
			name: "mapping where a string belongs",
			src:  spec(slices.Concat([]string{"  message: {a: b}"}, rule)...),
			want: []string{"f.yaml:6: spec.message: must be a string, got a mapping"},
		},
		{
			name: "integer where a string belongs",
			src:  spec("  process:", "    matchPaths:", "    - path: 5"),
			want: []string{"f.yaml:8: spec.process.matchPaths[0].path: must be a string, got 5"},
		},
		{
			name: "bool where a string belongs",
			src:  spec(slices.Concat([]string{"  action: true"}, rule)...),
			want: []string{"f.yaml:6: spec.action: must be a string, got true"},
		},
		{
			name: "string where an integer belongs",
			src:  spec(slices.Concat([]string{"  severity: high"}, rule)...),
			want: []string{`f.yaml:6: spec.severity: must be an integer, got "high"`},
		},
		{
			name: "quoted number where an integer belongs",
			src:  spec(slices.Concat([]string{`  severity: "5"`}, rule)...),
			want: []string{`f.yaml:6: spec.severity: must be an integer, got "5"`},
		},
		{
			name: "float where an integer belongs",
			src:  spec(slices.Concat([]string{"  severity: 2.5"}, rule)...),
			want: []string{"f.yaml:6: spec.severity: must be an integer, got 2.5"},
		},
		{
			name: "bool where an integer belongs",
			src:  spec(slices.Concat([]string{"  severity: true"}, rule)...),
			want: []string{"f.yaml:6: spec.severity: must be an integer, got true"},
		},
		{
			name: "list where an integer belongs",
			src:  spec(slices.Concat([]string{"  severity: [1]"}, rule)...),
			want: []string{"f.yaml:6: spec.severity: must be an integer, got a list"},
		},
		{
			name: "integer out of range",
			src:  spec(slices.Concat([]string{"  severity: 4294967296"}, rule)...),
			want: []string{`f.yaml:6: spec.severity: must be an integer, got "4294967296"`},
		},
		{
			name: "integer where a bool belongs",
			src:  spec("  file:", "    matchDirectories:", "    - dir: /etc/", "      recursive: 1"),
			want: []string{"f.yaml:9: spec.file.matchDirectories[0].recursive: must be true or false, got 1"},
		},
		{
			name: "a quoted yes is not a bool",
			src:  spec("  file:", "    matchDirectories:", "    - dir: /etc/", "      readOnly: 'yes'"),
			want: []string{`f.yaml:9: spec.file.matchDirectories[0].readOnly: must be true or false, got "yes"`},
		},
		{
			name: "list where a mapping belongs",
			src:  spec("  process:", "  - matchPaths: []"),
			want: []string{"f.yaml:7: spec.process: must be a mapping, got a list"},
		},
		{
			name: "string where a mapping belongs",
			src:  y("apiVersion: security.kubearmor.com/v1", "kind: KubeArmorHostPolicy", "metadata: p", "spec:", "  process:", "    matchPaths:", "    - path: /bin/x"),
			want: []string{`f.yaml:3: metadata: must be a mapping, got "p"`},
		},
		{
			name: "list as a label value",
			src:  y("apiVersion: security.kubearmor.com/v1", "kind: KubeArmorHostPolicy", "metadata:", "  name: p", "  labels:", "    a: [b]", "spec:", "  process:", "    matchPaths:", "    - path: /bin/x"),
			want: []string{"f.yaml:6: metadata.labels.a: must be a string, got a list"},
		},
		{
			name: "empty label value",
			src:  spec(slices.Concat([]string{"  nodeSelector:", "    matchLabels:", "      team:"}, rule)...),
			want: []string{"f.yaml:8: spec.nodeSelector.matchLabels.team: must be a string, got nothing"},
		},
		{
			name: "list as a label key",
			src:  spec(slices.Concat([]string{"  nodeSelector:", "    matchLabels:", "      ? [a]", "      : b"}, rule)...),
			want: []string{"f.yaml:8: spec.nodeSelector.matchLabels: keys must be strings, got a list"},
		},
		{
			name: "integer as a field key",
			src:  spec(slices.Concat([]string{"  1: x"}, rule)...),
			want: []string{"f.yaml:6: spec: keys must be strings, got 1"},
		},

		// Duplicates and aliases.
		{
			name: "duplicate top-level key",
			src:  y("apiVersion: security.kubearmor.com/v1", "kind: KubeArmorHostPolicy", "kind: KubeArmorPolicy", "metadata:", "  name: p", "spec:", "  process:", "    matchPaths:", "    - path: /bin/x"),
			want: []string{"f.yaml:3: kind: duplicate key (first on line 2)"},
		},
		{
			name: "duplicate key in a rule",
			src:  spec("  process:", "    matchPaths:", "    - path: /bin/x", "      path: /bin/y"),
			want: []string{"f.yaml:9: spec.process.matchPaths[0].path: duplicate key (first on line 8)"},
		},
		{
			name: "duplicate section",
			src:  spec("  process:", "    matchPaths:", "    - path: /bin/x", "  process:", "    matchPaths:", "    - path: /bin/y"),
			want: []string{"f.yaml:9: spec.process: duplicate key (first on line 6)"},
		},
		{
			name: "duplicate label",
			src:  spec(slices.Concat([]string{"  nodeSelector:", "    matchLabels:", "      a: x", "      a: y"}, rule)...),
			want: []string{"f.yaml:9: spec.nodeSelector.matchLabels.a: duplicate key (first on line 8)"},
		},
		{
			name: "alias of a scalar",
			src:  spec("  process:", "    matchPaths:", "    - path: &p /bin/x", "    - path: *p"),
			want: []string{"f.yaml:9: spec.process.matchPaths[1].path: YAML aliases are not supported in policies"},
		},
		{
			name: "alias of a list",
			src:  spec("  process:", "    matchPaths: &l", "    - path: /bin/x", "  file:", "    matchPaths: *l"),
			want: []string{"f.yaml:10: spec.file.matchPaths: YAML aliases are not supported in policies"},
		},
		{
			name: "alias as a label value",
			src:  spec(slices.Concat([]string{"  nodeSelector:", "    matchLabels:", "      a: &v x", "      b: *v"}, rule)...),
			want: []string{"f.yaml:9: spec.nodeSelector.matchLabels.b: must be a string, got an alias"},
		},
		{
			name: "merge key",
			src:  spec("  process:", "    matchPaths:", "    - &r {path: /bin/x}", "    - <<: *r", "      ownerOnly: true"),
			want: []string{"f.yaml:9: spec.process.matchPaths[1]: keys must be strings, got <<"},
		},

		// YAML syntax.
		{
			name: "unclosed flow sequence",
			src:  spec("  tags: [a,"),
			want: []string{"f.yaml:6: invalid YAML: did not find expected node content"},
		},
		{
			name: "bad indentation",
			src:  y("apiVersion: security.kubearmor.com/v1", "  kind: KubeArmorHostPolicy"),
			want: []string{"f.yaml:2: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "syntax error in a later document keeps earlier errors",
			src:  spec(slices.Concat([]string{"  severity: 0"}, rule)...) + "---\n" + "a: [\n",
			want: []string{
				"f.yaml:6: spec.severity: must be between 1 and 10, got 0",
				"f.yaml:11: invalid YAML: did not find expected node content",
			},
		},

		// Header.
		{
			name: "wrong apiVersion",
			src:  strings.Replace(spec(rule...), "security.kubearmor.com/v1", "v1", 1),
			want: []string{`f.yaml:1: apiVersion: must be security.kubearmor.com/v1, got "v1"`},
		},
		{
			name: "missing apiVersion",
			src:  y(slices.Concat(head[1:], []string{"spec:"}, rule)...),
			want: []string{"f.yaml:1: apiVersion: is required (security.kubearmor.com/v1)"},
		},
		{
			name: "wrong kind",
			src:  strings.Replace(spec(rule...), "KubeArmorHostPolicy", "KubeArmorPolicy", 1),
			want: []string{`f.yaml:2: kind: must be KubeArmorHostPolicy, got "KubeArmorPolicy"`},
		},
		{
			name: "missing kind",
			src:  y(slices.Concat(head[:1], head[2:], []string{"spec:"}, rule)...),
			want: []string{"f.yaml:1: kind: is required (KubeArmorHostPolicy)"},
		},
		{
			name: "metadata without name",
			src:  y(slices.Concat(head[:3], []string{"  labels: {a: b}", "spec:"}, rule)...),
			want: []string{"f.yaml:4: metadata.name: is required"},
		},
		{
			name: "name with upper case and underscore",
			src:  strings.Replace(spec(rule...), "name: p", "name: My_Policy", 1),
			want: []string{`f.yaml:4: metadata.name: must be a lower-case DNS subdomain name (a-z, 0-9, '-' and '.'; at most 253 characters), got "My_Policy"`},
		},
		{
			name: "name starting with a dash",
			src:  strings.Replace(spec(rule...), "name: p", "name: -p", 1),
			want: []string{`f.yaml:4: metadata.name: must be a lower-case DNS subdomain name (a-z, 0-9, '-' and '.'; at most 253 characters), got "-p"`},
		},
		{
			name: "name of 254 characters",
			src:  strings.Replace(spec(rule...), "name: p", "name: "+strings.Repeat("a", 254), 1),
			want: []string{fmt.Sprintf(`f.yaml:4: metadata.name: must be a lower-case DNS subdomain name (a-z, 0-9, '-' and '.'; at most 253 characters), got %q`, strings.Repeat("a", 254))},
		},
		{
			name: "missing spec",
			src:  y(head...),
			want: []string{"f.yaml:1: spec: is required"},
		},
		{
			name: "spec without rules",
			src:  spec("  severity: 3", "  process:", "    matchPaths: []", "  file: {}"),
			want: []string{"f.yaml:6: spec: has no rules: add process, file, network, capabilities, syscalls rules or presets"},
		},
		{
			name: "empty flow spec",
			src:  y(slices.Concat(head, []string{"spec: {}"})...),
			want: []string{"f.yaml:5: spec: has no rules: add process, file, network, capabilities, syscalls rules or presets"},
		},

		// Inherited fields.
		{
			name: "action Deny",
			src:  spec(slices.Concat([]string{"  action: Deny"}, rule)...),
			want: []string{`f.yaml:6: spec.action: must be Allow, Audit or Block, got "Deny"`},
		},
		{
			name: "action Deny in a section and a rule",
			src:  spec("  file:", "    action: Deny", "    matchPaths:", "    - path: /etc/x", "      action: ''"),
			want: []string{
				`f.yaml:7: spec.file.action: must be Allow, Audit or Block, got "Deny"`,
				`f.yaml:10: spec.file.matchPaths[0].action: must be Allow, Audit or Block, got ""`,
			},
		},
		{
			name: "severity 0",
			src:  spec(slices.Concat([]string{"  severity: 0"}, rule)...),
			want: []string{"f.yaml:6: spec.severity: must be between 1 and 10, got 0"},
		},
		{
			name: "severity 11 in a rule",
			src:  spec("  network:", "    matchProtocols:", "    - protocol: tcp", "      severity: 11"),
			want: []string{"f.yaml:9: spec.network.matchProtocols[0].severity: must be between 1 and 10, got 11"},
		},
		{
			name: "negative severity in the syscalls section",
			src:  spec("  syscalls:", "    severity: -1", "    matchSyscalls:", "    - syscall: [open]"),
			want: []string{"f.yaml:7: spec.syscalls.severity: must be between 1 and 10, got -1"},
		},
		{
			name: "too many tags",
			src:  spec(slices.Concat([]string{"  tags: [" + strings.TrimSuffix(strings.Repeat("t,", 65), ",") + "]"}, rule)...),
			want: []string{"f.yaml:6: spec.tags: at most 64 tags"},
		},
		{
			name: "empty and over-long tags",
			src:  spec("  capabilities:", "    tags: ['', ok, "+strings.Repeat("t", 257)+"]", "    matchCapabilities:", "    - capability: kill"),
			want: []string{
				"f.yaml:7: spec.capabilities.tags[0]: must be non-empty printable text of at most 256 bytes",
				"f.yaml:7: spec.capabilities.tags[2]: must be non-empty printable text of at most 256 bytes",
			},
		},
		{
			name: "over-long message",
			src:  spec(slices.Concat([]string{"  message: " + strings.Repeat("m", 1025)}, rule)...),
			want: []string{"f.yaml:6: spec.message: must be printable text of at most 1024 bytes"},
		},
		{
			name: "message with a newline",
			src:  spec(slices.Concat([]string{`  message: "a\nb"`}, rule)...),
			want: []string{"f.yaml:6: spec.message: must be printable text of at most 1024 bytes"},
		},

		// Paths.
		{
			name: "relative path",
			src:  spec("  process:", "    matchPaths:", "    - path: bin/x"),
			want: []string{`f.yaml:8: spec.process.matchPaths[0].path: must be an absolute path starting with '/', got "bin/x"`},
		},
		{
			name: "path ending in slash",
			src:  spec("  file:", "    matchPaths:", "    - path: /etc/"),
			want: []string{`f.yaml:8: spec.file.matchPaths[0].path: must not end in '/' (use matchDirectories with dir: for a directory), got "/etc/"`},
		},
		{
			name: "dir not ending in slash",
			src:  spec("  file:", "    matchDirectories:", "    - dir: /etc"),
			want: []string{`f.yaml:8: spec.file.matchDirectories[0].dir: must end in '/', got "/etc"`},
		},
		{
			name: "relative dir",
			src:  spec("  process:", "    matchDirectories:", "    - dir: bin/"),
			want: []string{`f.yaml:8: spec.process.matchDirectories[0].dir: must be an absolute directory starting with '/', got "bin/"`},
		},
		{
			name: "missing dir",
			src:  spec("  process:", "    matchDirectories:", "    - recursive: true"),
			want: []string{`f.yaml:8: spec.process.matchDirectories[0].dir: is required`},
		},
		{
			name: "empty component",
			src:  spec("  file:", "    matchPaths:", "    - path: /etc//shadow"),
			want: []string{`f.yaml:8: spec.file.matchPaths[0].path: must not contain empty components ("//"), got "/etc//shadow"`},
		},
		{
			name: "dir ending in two slashes",
			src:  spec("  file:", "    matchDirectories:", "    - dir: /etc//"),
			want: []string{`f.yaml:8: spec.file.matchDirectories[0].dir: must not contain empty components ("//"), got "/etc/"`},
		},
		{
			name: "dot component",
			src:  spec("  file:", "    matchPaths:", "    - path: /etc/./shadow"),
			want: []string{`f.yaml:8: spec.file.matchPaths[0].path: must not contain "." components, got "/etc/./shadow"`},
		},
		{
			name: "dot-dot component",
			src:  spec("  file:", "    matchDirectories:", "    - dir: /etc/../root/"),
			want: []string{`f.yaml:8: spec.file.matchDirectories[0].dir: must not contain ".." components, got "/etc/../root"`},
		},
		{
			name: "control character",
			src:  spec("  file:", "    matchPaths:", `    - path: "/etc/sha\tdow"`),
			want: []string{`f.yaml:8: spec.file.matchPaths[0].path: must not contain control characters`},
		},
		{
			name: "DEL character",
			src:  spec("  file:", "    matchPaths:", `    - path: "/etc/x\x7f"`),
			want: []string{`f.yaml:8: spec.file.matchPaths[0].path: must not contain control characters`},
		},
		{
			name: "4096-byte path",
			src:  spec("  file:", "    matchPaths:", "    - path: "+pathOf(4096)),
			want: []string{`f.yaml:8: spec.file.matchPaths[0].path: is 4096 bytes long; the longest path that can be enforced is 4095 bytes`},
		},
		{
			name: "256-byte component",
			src:  spec("  file:", "    matchPaths:", "    - path: /etc/"+strings.Repeat("n", 256)),
			want: []string{`f.yaml:8: spec.file.matchPaths[0].path: has a 256-byte component; at most 255 bytes are allowed per component`},
		},

		// execname.
		{
			name: "execname with a slash",
			src:  spec("  process:", "    matchPaths:", "    - execname: bin/nc"),
			want: []string{`f.yaml:8: spec.process.matchPaths[0].execname: must be a file name without '/', got "bin/nc"`},
		},
		{
			name: "execname ..",
			src:  spec("  process:", "    matchPaths:", "    - execname: .."),
			want: []string{`f.yaml:8: spec.process.matchPaths[0].execname: must be a file name, got ".."`},
		},
		{
			name: "256-byte execname",
			src:  spec("  process:", "    matchPaths:", "    - execname: "+strings.Repeat("e", 256)),
			want: []string{`f.yaml:8: spec.process.matchPaths[0].execname: is 256 bytes; a file name has at most 255`},
		},
		{
			name: "execname with a control character",
			src:  spec("  process:", "    matchPaths:", `    - execname: "nc\r"`),
			want: []string{`f.yaml:8: spec.process.matchPaths[0].execname: must not contain control characters`},
		},
		{
			name: "both path and execname",
			src:  spec("  process:", "    matchPaths:", "    - path: /bin/nc", "      execname: nc"),
			want: []string{`f.yaml:8: spec.process.matchPaths[0]: set either path or execname, not both`},
		},
		{
			name: "neither path nor execname",
			src:  spec("  process:", "    matchPaths:", "    - ownerOnly: true"),
			want: []string{`f.yaml:8: spec.process.matchPaths[0]: one of path or execname is required`},
		},

		// Names.
		{
			name: "unknown protocol",
			src:  spec("  network:", "    matchProtocols:", "    - protocol: http"),
			want: []string{`f.yaml:8: spec.network.matchProtocols[0].protocol: unknown protocol "http" (known: all, tcp, udp, icmp, icmpv6, raw, sctp, stream, dgram, rdm, seqpacket, dccp, packet)`},
		},
		{
			name: "missing protocol",
			src:  spec("  network:", "    matchProtocols:", "    - fromSource:", "      - path: /bin/x"),
			want: []string{`f.yaml:8: spec.network.matchProtocols[0].protocol: unknown protocol "" (known: all, tcp, udp, icmp, icmpv6, raw, sctp, stream, dgram, rdm, seqpacket, dccp, packet)`},
		},
		{
			name: "unknown capability",
			src:  spec("  capabilities:", "    matchCapabilities:", "    - capability: net_rawx"),
			want: []string{`f.yaml:8: spec.capabilities.matchCapabilities[0].capability: unknown capability "net_rawx" (use names like net_raw or sys_admin)`},
		},
		{
			name: "preset: unknown, not for hosts, and Allow",
			src: spec("  presets:", "  - name: filelessexec", "  - name: protectEnv", "  - name: anonymousMapExec", "    action: Allow",
				"  - action: Block"),
			want: []string{
				`f.yaml:7: spec.presets[0].name: unknown preset "filelessexec" (known: filelessExec, anonymousMapExec)`,
				`f.yaml:8: spec.presets[1].name: preset "protectEnv" is not supported for hosts (supported: filelessExec, anonymousMapExec)`,
				`f.yaml:10: spec.presets[2].action: a preset is Audit or Block, got "Allow"`,
				`f.yaml:11: spec.presets[3].name: is required (filelessExec or anonymousMapExec)`,
			},
		},
		{
			name: "capability with a doubled prefix",
			src:  spec("  capabilities:", "    matchCapabilities:", "    - capability: CAP_CAP_KILL"),
			want: []string{`f.yaml:8: spec.capabilities.matchCapabilities[0].capability: unknown capability "CAP_CAP_KILL" (use names like net_raw or sys_admin)`},
		},
		{
			name: "unknown syscall",
			src:  spec("  syscalls:", "    matchSyscalls:", "    - syscall: [open, frobnicate, socketcall]"),
			want: []string{
				`f.yaml:8: spec.syscalls.matchSyscalls[0].syscall[1]: unknown x86_64 system call "frobnicate"`,
				`f.yaml:8: spec.syscalls.matchSyscalls[0].syscall[2]: unknown x86_64 system call "socketcall"`,
			},
		},
		{
			name: "no syscalls",
			src:  spec("  syscalls:", "    matchSyscalls:", "    - syscall: []"),
			want: []string{`f.yaml:8: spec.syscalls.matchSyscalls[0].syscall: lists no system calls`},
		},
		{
			name: "syscalls path recursive on a file",
			src:  spec("  syscalls:", "    matchPaths:", "    - path: /etc/passwd", "      recursive: true", "      syscall: [unlink]"),
			want: []string{`f.yaml:9: spec.syscalls.matchPaths[0].recursive: applies to directories only (a path ending in '/')`},
		},
		{
			name: "syscalls path missing",
			src:  spec("  syscalls:", "    matchPaths:", "    - syscall: [unlink]"),
			want: []string{`f.yaml:8: spec.syscalls.matchPaths[0].path: is required`},
		},
		{
			name: "syscalls path with an empty component",
			src:  spec("  syscalls:", "    matchPaths:", "    - path: /etc//", "      syscall: [unlink]"),
			want: []string{`f.yaml:8: spec.syscalls.matchPaths[0].path: must not contain empty components ("//"), got "/etc/"`},
		},

		// fromSource.
		{
			name: "fromSource with path and dir",
			src:  spec("  process:", "    matchPaths:", "    - path: /bin/x", "      fromSource:", "      - path: /bin/a", "        dir: /bin/"),
			want: []string{`f.yaml:10: spec.process.matchPaths[0].fromSource[0]: set either path or dir, not both`},
		},
		{
			name: "fromSource with neither",
			src:  spec("  network:", "    matchProtocols:", "    - protocol: udp", "      fromSource:", "      - recursive: true"),
			want: []string{`f.yaml:10: spec.network.matchProtocols[0].fromSource[0]: one of path or dir is required`},
		},
		{
			name: "fromSource path recursive",
			src:  spec("  capabilities:", "    matchCapabilities:", "    - capability: kill", "      fromSource:", "      - path: /bin/a", "        recursive: true"),
			want: []string{`f.yaml:11: spec.capabilities.matchCapabilities[0].fromSource[0].recursive: applies to dir only`},
		},
		{
			name: "fromSource dir without slash",
			src:  spec("  syscalls:", "    matchSyscalls:", "    - syscall: [open]", "      fromSource:", "      - dir: /usr/bin"),
			want: []string{`f.yaml:10: spec.syscalls.matchSyscalls[0].fromSource[0].dir: must end in '/', got "/usr/bin"`},
		},
		{
			name: "fromSource relative path",
			src:  spec("  file:", "    matchDirectories:", "    - dir: /etc/", "      fromSource:", "      - path: bash"),
			want: []string{`f.yaml:10: spec.file.matchDirectories[0].fromSource[0].path: must be an absolute path starting with '/', got "bash"`},
		},

		// nodeSelector.
		{
			name: "bad hostnamereg",
			src:  spec(slices.Concat([]string{"  nodeSelector:", "    matchLabels:", `      kubearmor.io/hostnamereg: "web[0-9"`}, rule)...),
			want: []string{"f.yaml:7: spec.nodeSelector.matchLabels.kubearmor.io/hostnamereg: invalid regular expression: error parsing regexp: missing closing ]: `[0-9`"},
		},
		{
			name: "empty hostname",
			src:  spec(slices.Concat([]string{"  nodeSelector:", "    matchLabels:", `      kubearmor.io/hostname: " "`}, rule)...),
			want: []string{`f.yaml:7: spec.nodeSelector.matchLabels.kubearmor.io/hostname: must name a host, a comma-separated list of hosts, or "*"`},
		},
		{
			name: "empty kubernetes hostname",
			src:  spec(slices.Concat([]string{"  nodeSelector:", "    matchLabels:", `      kubernetes.io/hostname: ""`}, rule)...),
			want: []string{`f.yaml:7: spec.nodeSelector.matchLabels.kubernetes.io/hostname: must name a host, a comma-separated list of hosts, or "*"`},
		},

		// Globs.
		{
			name: "relative pattern",
			src:  spec("  file:", "    matchPatterns:", "    - pattern: etc/*"),
			want: []string{`f.yaml:8: spec.file.matchPatterns[0].pattern: must be an absolute pattern starting with '/'`},
		},
		{
			name: "missing pattern",
			src:  spec("  file:", "    matchPatterns:", "    - readOnly: true"),
			want: []string{`f.yaml:8: spec.file.matchPatterns[0].pattern: is required`},
		},
		{
			name: "unclosed class",
			src:  spec("  process:", "    matchPatterns:", "    - pattern: /bin/[a-z"),
			want: []string{`f.yaml:8: spec.process.matchPatterns[0].pattern: unclosed '[' at offset 5`},
		},
		{
			name: "unclosed brace",
			src:  spec("  process:", "    matchPatterns:", "    - pattern: /bin/{a,b"),
			want: []string{`f.yaml:8: spec.process.matchPatterns[0].pattern: unclosed '{'`},
		},
		{
			name: "unbalanced brace",
			src:  spec("  process:", "    matchPatterns:", "    - pattern: /bin/a}"),
			want: []string{`f.yaml:8: spec.process.matchPatterns[0].pattern: unbalanced '}' at offset 6`},
		},
		{
			name: "trailing backslash",
			src:  spec("  process:", "    matchPatterns:", `    - pattern: /bin/a\`),
			want: []string{`f.yaml:8: spec.process.matchPatterns[0].pattern: trailing backslash`},
		},
		{
			name: "slash in a class",
			src:  spec("  file:", "    matchPatterns:", "    - pattern: /a[/b]c"),
			want: []string{`f.yaml:8: spec.file.matchPatterns[0].pattern: '/' cannot be in a character class (offset 3)`},
		},
		{
			name: "control character in a pattern",
			src:  spec("  file:", "    matchPatterns:", `    - pattern: "/a*\n"`),
			want: []string{`f.yaml:8: spec.file.matchPatterns[0].pattern: must not contain control characters`},
		},
		{
			name: "alternation nested too deep",
			src:  spec("  file:", "    matchPatterns:", "    - pattern: /{{{{{{{{{a}}}}}}}}}"),
			want: []string{`f.yaml:8: spec.file.matchPatterns[0].pattern: alternations nest deeper than 8`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Parse("f.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded with %d documents, want errors:\n%s\n--- input:\n%s", len(docs), strings.Join(tt.want, "\n"), tt.src)
			}
			if docs != nil {
				t.Errorf("Parse returned documents with an error")
			}
			if got := errorLines(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s\n--- input:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"), tt.src)
			}
		})
	}
}

// TestParseErrorLocations: every error names a line, so an administrator can
// find it, and a document of the wrong shape gets one error, not a cascade
// about the fields it could not have.
func TestParseErrorLocations(t *testing.T) {
	type loc struct {
		Line  int
		Field string
	}
	tests := []struct {
		name string
		src  string
		want []loc
	}{
		{
			name: "metadata missing",
			src:  y(slices.Concat(head[:2], []string{"spec:"}, procRule)...),
			want: []loc{{1, "metadata.name"}},
		},
		{
			name: "metadata empty",
			src:  y(slices.Concat(head[:2], []string{"metadata:", "spec:"}, procRule)...),
			want: []loc{{3, "metadata.name"}},
		},
		{
			name: "spec empty",
			src:  y(slices.Concat(head, []string{"spec:"})...),
			want: []loc{{5, "spec"}},
		},
		{
			name: "empty list entry",
			src:  spec("  process:", "    matchPaths:", "    -"),
			want: []loc{{8, "spec.process.matchPaths[0]"}},
		},
		{
			name: "empty fromSource entry",
			src:  spec("  file:", "    matchPaths:", "    - path: /etc/x", "      fromSource:", "      -"),
			want: []loc{{10, "spec.file.matchPaths[0].fromSource[0]"}},
		},
		{
			name: "document is a list",
			src:  "- a\n- b\n",
			want: []loc{{1, ""}},
		},
		{
			name: "document is a string",
			src:  "# a comment\nhello\n",
			want: []loc{{2, ""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.src))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("got %v, want an ErrorList", err)
			}
			var got []loc
			for _, e := range list {
				got = append(got, loc{e.Line, e.Field})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("errors at %v, want %v:\n%v", got, tt.want, err)
			}
		})
	}
}

// TestParseReportsEveryDocument: an error in one document must not hide the
// errors of the next one.
func TestParseReportsEveryDocument(t *testing.T) {
	src := spec(slices.Concat([]string{"  action: Deny"}, procRule)...) + // lines 1-9
		"---\n" + // line 10
		strings.Replace(y(slices.Concat(head, []string{"spec:", "  severity: 2"})...), "name: p", "name: q", 1) // lines 11-16
	_, err := Parse("f.yaml", []byte(src))
	want := []string{
		`f.yaml:6: spec.action: must be Allow, Audit or Block, got "Deny"`,
		`f.yaml:16: spec: has no rules: add process, file, network, capabilities, syscalls rules or presets`,
	}
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if got := errorLines(t, err); !slices.Equal(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestParseGolden parses every file under testdata/bad and compares the
// error listing with the .golden file beside it (go test -update rewrites
// them).
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/bad/*.yaml: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			docs, err := ParseFile(f)
			if err == nil {
				t.Fatalf("ParseFile succeeded with %d documents", len(docs))
			}
			got := strings.Join(errorLines(t, err), "\n") + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors for %s:\n%s\nwant (%s):\n%s", f, got, golden, want)
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	good := spec(procRule...)
	pad := func(n int) string { // good policy padded with a comment to n bytes
		return good + "#" + strings.Repeat("x", n-len(good)-2) + "\n"
	}
	tests := []struct {
		name    string
		content *string
		want    string // error text, "" for success
	}{
		{"exactly the size limit", ptr(pad(MaxFileSize)), ""},
		{"one byte over the size limit", ptr(pad(MaxFileSize + 1)), "%s: file is larger than 4194304 bytes"},
		{"empty file", ptr(""), "%s: no policy document in file"},
		{"comments only", ptr("# nothing\n# here\n"), "%s: no policy document in file"},
		{"separators only", ptr("---\n---\n...\n"), "%s: no policy document in file"},
		{"missing file", nil, "open %s: no such file or directory"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("p%d.yaml", i))
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			docs, err := ParseFile(path)
			if tt.want == "" {
				if err != nil || len(docs) != 1 {
					t.Fatalf("ParseFile = %d docs, %v; want 1 document", len(docs), err)
				}
				if docs[0].File != path {
					t.Errorf("document file %q, want %q", docs[0].File, path)
				}
				return
			}
			if want := fmt.Sprintf(tt.want, path); err == nil || err.Error() != want {
				t.Errorf("ParseFile error = %v, want %s", err, want)
			}
			if tt.content == nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("error %v is not os.ErrNotExist", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestParseManyErrorsIsFast: a file within the size limit full of mistakes
// is reported in time proportional to its size. (10000 entries each with a
// decoding and a validation error, 290 kB; a linear pass takes well under a
// second.)
func TestParseManyErrorsIsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 10000
	var b strings.Builder
	b.WriteString(spec("  file:", "    matchPaths:"))
	for range n {
		b.WriteString("    - {path: x, readOnly: 1}\n")
	}
	done := make(chan error, 1)
	go func() {
		_, err := Parse("f.yaml", []byte(b.String()))
		done <- err
	}()
	select {
	case err := <-done:
		// The first 100 errors and a count of the rest.
		if got := strings.Count(err.Error(), "\n") + 1; got != 101 || !strings.Contains(err.Error(), fmt.Sprintf("%d more errors not shown", 2*n-100)) {
			t.Errorf("%d error lines, want 101 ending in the count of the other %d", got, 2*n-100)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("Parse of %d bytes with %d errors took more than 3s", b.Len(), 2*n)
	}
}
