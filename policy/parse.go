package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Schema identifiers a host policy must carry.
const (
	APIVersion     = "security.kubearmor.com/v1"
	KindHostPolicy = "KubeArmorHostPolicy"
)

// Limits. Paths longer than MaxPathLen cannot be matched by the kernel side
// (its path buffer is PATH_MAX), so they are refused here rather than
// silently truncated.
const (
	MaxFileSize = 4 << 20
	MaxPathLen  = 4095
	MaxNameLen  = 255 // one path component (NAME_MAX)
	maxTags     = 64
	maxTagLen   = 256
	maxMessage  = 1024
)

// Document is one parsed, validated policy document.
type Document struct {
	File     string
	Line     int
	Name     string
	Selector Selector
	Rules    []Rule // IDs are assigned by NewSet
}

// ParseFile reads and parses one policy file.
func ParseFile(path string) ([]*Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}}
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses every YAML document in data. The file name is used in errors
// only. Any error rejects the whole file: a file is the unit an administrator
// edits, so it is applied whole or not at all.
func Parse(file string, data []byte) ([]*Document, error) {
	e := &errs{file: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*Document
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, msg := 0, err.Error()
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				line, _ = strconv.Atoi(m[1])
				msg = m[2]
			}
			e.add(line, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
			return nil, e.err()
		}
		if len(n.Content) == 0 || n.Content[0].Kind == yaml.ScalarNode && n.Content[0].ShortTag() == "!!null" {
			continue // an empty document between separators
		}
		if d := parseDocument(e, n.Content[0]); d != nil {
			docs = append(docs, d)
		}
	}
	if len(e.list) == 0 && len(docs) == 0 {
		e.add(0, "", "no policy document in file")
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return docs, nil
}

func parseDocument(e *errs, n *yaml.Node) *Document {
	before := len(e.list)
	var hp HostPolicy
	(&decoder{errs: e}).decode(n, reflect.ValueOf(&hp).Elem(), "")
	decoded := len(e.list)
	// Validate even after decoding errors so the user sees every problem at
	// once, but drop complaints about fields that did not decode: they would
	// only repeat the first error.
	defer func() { e.list = append(e.list[:decoded], dropDecoded(e.list[before:decoded], e.list[decoded:])...) }()
	b := &builder{e: e, spec: &hp.Spec, specLine: hp.LineOf("spec"), before: before}
	d := &Document{File: e.file, Line: n.Line, Name: hp.Metadata.Name}
	b.header(&hp)
	d.Selector = compileSelector(hp.Spec.NodeSelector, e, "spec.nodeSelector")
	d.Rules = b.rules(d.Name)
	if len(e.list) > before {
		return nil
	}
	return d
}

func dropDecoded(decodeErrs, validationErrs ErrorList) ErrorList {
	// A validation error is dropped when its field, a field above it, or a
	// field below it failed to decode. Sets keep this linear.
	failed := make(map[string]bool)
	above := make(map[string]bool) // every field that has a failed field below it
	for _, d := range decodeErrs {
		if d.Field == "" {
			return nil // the document itself did not decode
		}
		failed[d.Field] = true
		for f := parentField(d.Field); f != ""; f = parentField(f) {
			above[f] = true
		}
	}
	var out ErrorList
	for _, v := range validationErrs {
		shadowed := above[v.Field]
		for f := v.Field; f != "" && !shadowed; f = parentField(f) {
			shadowed = failed[f]
		}
		if !shadowed {
			out = append(out, v)
		}
	}
	return out
}

// parentField strips the last ".key" or "[i]" from a field path.
func parentField(f string) string {
	i := strings.LastIndexAny(f, ".[")
	if i < 0 {
		return ""
	}
	return f[:i]
}

// builder validates one document and turns it into rules.
type builder struct {
	e        *errs
	spec     *Spec
	specLine int
	before   int // errors from earlier documents of the file
}

var dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func (b *builder) header(hp *HostPolicy) {
	switch {
	case !hp.Has("apiVersion"):
		b.e.add(hp.Line(), "apiVersion", "is required (%s)", APIVersion)
	case hp.APIVersion != APIVersion:
		b.e.add(hp.LineOf("apiVersion"), "apiVersion", "must be %s, got %q", APIVersion, hp.APIVersion)
	}
	switch {
	case !hp.Has("kind"):
		b.e.add(hp.Line(), "kind", "is required (%s)", KindHostPolicy)
	case hp.Kind != KindHostPolicy:
		b.e.add(hp.LineOf("kind"), "kind", "must be %s, got %q", KindHostPolicy, hp.Kind)
	}
	name := hp.Metadata.Name
	nameLine := lineOr(hp.Metadata.LineOf("name"), hp.LineOf("metadata"))
	switch {
	case name == "":
		b.e.add(nameLine, "metadata.name", "is required")
	case len(name) > 253 || !dnsSubdomain.MatchString(name):
		b.e.add(nameLine, "metadata.name",
			"must be a lower-case DNS subdomain name (a-z, 0-9, '-' and '.'; at most 253 characters), got %q", name)
	}
	if !hp.Written("spec") {
		b.e.add(hp.Line(), "spec", "is required")
	}
}

// lineOr returns line, or fallback when line is unknown (0).
func lineOr(line, fallback int) int {
	if line > 0 {
		return line
	}
	return fallback
}

// level is one place severity/tags/message/action can be written.
type level struct {
	inh  Inherited
	pos  Pos
	path string
}

func (b *builder) checkLevel(l level) {
	if l.pos.Has("severity") && (l.inh.Severity < 1 || l.inh.Severity > 10) {
		b.e.add(l.pos.LineOf("severity"), join(l.path, "severity"), "must be between 1 and 10, got %d", l.inh.Severity)
	}
	if l.pos.Has("action") {
		if _, ok := ParseAction(l.inh.Action); !ok {
			b.e.add(l.pos.LineOf("action"), join(l.path, "action"), "must be Allow, Audit or Block, got %q", l.inh.Action)
		}
	}
	if len(l.inh.Tags) > maxTags {
		b.e.add(l.pos.LineOf("tags"), join(l.path, "tags"), "at most %d tags", maxTags)
	}
	for i, t := range l.inh.Tags {
		if t == "" || len(t) > maxTagLen || strings.ContainsFunc(t, isControl) {
			b.e.add(l.pos.LineOf("tags"), fmt.Sprintf("%s[%d]", join(l.path, "tags"), i),
				"must be non-empty printable text of at most %d bytes", maxTagLen)
		}
	}
	if len(l.inh.Message) > maxMessage || strings.ContainsFunc(l.inh.Message, func(r rune) bool { return r != '\t' && isControl(r) }) {
		b.e.add(l.pos.LineOf("message"), join(l.path, "message"), "must be printable text of at most %d bytes", maxMessage)
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// resolve applies inheritance: the innermost level that wrote a value wins.
// Action defaults to Block and severity to 1 when no level writes them.
func resolve(r *Rule, levels ...level) {
	r.Action, r.Severity = ActionBlock, 1
	for i := len(levels) - 1; i >= 0; i-- { // outermost first, inner overrides
		l := levels[i]
		if l.pos.Has("severity") {
			r.Severity = l.inh.Severity
		}
		if l.pos.Has("tags") {
			r.Tags = l.inh.Tags
		}
		if l.pos.Has("message") {
			r.Message = l.inh.Message
		}
		if a, ok := ParseAction(l.inh.Action); ok && l.pos.Has("action") {
			r.Action = a
		}
	}
}

func (b *builder) rules(policy string) []Rule {
	s := b.spec
	top := level{s.Inherited, s.Pos, "spec"}
	b.checkLevel(top)
	var out []Rule
	add := func(r Rule, levels ...level) {
		r.Policy = policy
		resolve(&r, levels...)
		out = append(out, r)
	}
	origin := func(p Pos, path string) Origin { return Origin{File: b.e.file, Line: p.Line(), Field: path} }

	proc := level{s.Process.Inherited, s.Process.Pos, "spec.process"}
	b.checkLevel(proc)
	for i, m := range s.Process.MatchPaths {
		path := fmt.Sprintf("spec.process.matchPaths[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		r := Rule{Kind: KindProcess, Origin: origin(m.Pos, path), OwnerOnly: m.OwnerOnly,
			Sources: b.sources(m.FromSource, path+".fromSource")}
		switch {
		case m.Path != "" && m.ExecName != "":
			b.e.add(m.Line(), path, "set either path or execname, not both")
		case m.Path != "":
			r.Match, r.Path = MatchPath, m.Path
			b.checkPath(m.Pos, path, "path", m.Path)
		case m.ExecName != "":
			r.Match, r.Path = MatchExecName, m.ExecName
			b.checkName(m.Pos, path, "execname", m.ExecName)
		default:
			b.e.add(m.Line(), path, "one of path or execname is required")
		}
		add(r, l, proc, top)
	}
	for i, m := range s.Process.MatchDirectories {
		path := fmt.Sprintf("spec.process.matchDirectories[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		b.checkDir(m.Pos, path, "dir", m.Dir)
		add(Rule{Kind: KindProcess, Origin: origin(m.Pos, path), Match: MatchDir, Path: m.Dir, Recursive: m.Recursive,
			OwnerOnly: m.OwnerOnly, Sources: b.sources(m.FromSource, path+".fromSource")}, l, proc, top)
	}
	for i, m := range s.Process.MatchPatterns {
		path := fmt.Sprintf("spec.process.matchPatterns[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		add(Rule{Kind: KindProcess, Origin: origin(m.Pos, path), Match: MatchPattern,
			Pattern: b.glob(m.Pos, path, m.Pattern), OwnerOnly: m.OwnerOnly}, l, proc, top)
	}

	file := level{s.File.Inherited, s.File.Pos, "spec.file"}
	b.checkLevel(file)
	for i, m := range s.File.MatchPaths {
		path := fmt.Sprintf("spec.file.matchPaths[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		b.checkPath(m.Pos, path, "path", m.Path)
		add(Rule{Kind: KindFile, Origin: origin(m.Pos, path), Match: MatchPath, Path: m.Path,
			ReadOnly: m.ReadOnly, OwnerOnly: m.OwnerOnly, Sources: b.sources(m.FromSource, path+".fromSource")}, l, file, top)
	}
	for i, m := range s.File.MatchDirectories {
		path := fmt.Sprintf("spec.file.matchDirectories[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		b.checkDir(m.Pos, path, "dir", m.Dir)
		add(Rule{Kind: KindFile, Origin: origin(m.Pos, path), Match: MatchDir, Path: m.Dir, Recursive: m.Recursive,
			ReadOnly: m.ReadOnly, OwnerOnly: m.OwnerOnly, Sources: b.sources(m.FromSource, path+".fromSource")}, l, file, top)
	}
	for i, m := range s.File.MatchPatterns {
		path := fmt.Sprintf("spec.file.matchPatterns[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		add(Rule{Kind: KindFile, Origin: origin(m.Pos, path), Match: MatchPattern, Pattern: b.glob(m.Pos, path, m.Pattern),
			ReadOnly: m.ReadOnly, OwnerOnly: m.OwnerOnly}, l, file, top)
	}

	net := level{s.Network.Inherited, s.Network.Pos, "spec.network"}
	b.checkLevel(net)
	for i, m := range s.Network.MatchProtocols {
		path := fmt.Sprintf("spec.network.matchProtocols[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		p, ok := ParseProtocol(m.Protocol)
		if !ok {
			b.e.add(m.LineOf("protocol"), path+".protocol", "unknown protocol %q (known: %s)", m.Protocol, knownProtocols())
		}
		add(Rule{Kind: KindNetwork, Origin: origin(m.Pos, path), Match: MatchProtocol, Protocol: p,
			Sources: b.sources(m.FromSource, path+".fromSource")}, l, net, top)
	}

	caps := level{s.Capabilities.Inherited, s.Capabilities.Pos, "spec.capabilities"}
	b.checkLevel(caps)
	for i, m := range s.Capabilities.MatchCapabilities {
		path := fmt.Sprintf("spec.capabilities.matchCapabilities[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		c, ok := ParseCapability(m.Capability)
		if !ok {
			b.e.add(m.LineOf("capability"), path+".capability", "unknown capability %q (use names like net_raw or sys_admin)", m.Capability)
		}
		add(Rule{Kind: KindCapabilities, Origin: origin(m.Pos, path), Match: MatchCapability, Capability: c,
			Sources: b.sources(m.FromSource, path+".fromSource")}, l, caps, top)
	}

	for i, m := range s.Presets {
		path := fmt.Sprintf("spec.presets[%d]", i)
		l := level{m.Inherited, m.Pos, path}
		b.checkLevel(l)
		p, ok := ParsePreset(m.Name)
		switch {
		case !m.Has("name"):
			b.e.add(m.Line(), path+".name", "is required (%s or %s)", PresetFilelessExec, PresetAnonMapExec)
		case !ok && slices.Contains([]string{"exec", "protectEnv", "protectProc"}, m.Name):
			b.e.add(m.LineOf("name"), path+".name", "preset %q is not supported for hosts (supported: %s, %s)", m.Name,
				PresetFilelessExec, PresetAnonMapExec)
		case !ok:
			b.e.add(m.LineOf("name"), path+".name", "unknown preset %q (known: %s, %s)", m.Name, PresetFilelessExec, PresetAnonMapExec)
		}
		if a, ok := ParseAction(m.Action); ok && a == ActionAllow && m.Has("action") {
			b.e.add(m.LineOf("action"), path+".action", "a preset is Audit or Block, got %q", m.Action)
		}
		add(Rule{Kind: KindProcess, Origin: origin(m.Pos, path), Match: MatchPreset, Preset: p}, l, top)
	}

	out = append(out, b.syscallRules(policy, top)...)
	if len(out) == 0 && len(b.e.list) == b.before {
		b.e.add(lineOr(s.Line(), b.specLine), "spec", "has no rules: add process, file, network, capabilities, syscalls rules or presets")
	}
	return out
}

// syscallRules builds the audit-only syscalls section. It has no action of
// its own; severity, tags and message inherit from the spec.
func (b *builder) syscallRules(policy string, top level) []Rule {
	s := b.spec.Syscalls
	sec := level{Inherited{Severity: s.Severity, Tags: s.Tags, Message: s.Message}, s.Pos, "spec.syscalls"}
	b.checkLevel(sec)
	var out []Rule
	mk := func(p Pos, path string, inh Inherited, names []string, from []FromSource) Rule {
		l := level{inh, p, path}
		b.checkLevel(l)
		r := Rule{Policy: policy, Kind: KindSyscall, Origin: Origin{File: b.e.file, Line: p.Line(), Field: path},
			Match: MatchSyscall, Sources: b.sources(from, path+".fromSource")}
		resolve(&r, l, sec, top)
		r.Action = ActionAudit
		if len(names) == 0 {
			b.e.add(p.Line(), path+".syscall", "lists no system calls")
		}
		for i, n := range names {
			if _, ok := SyscallNumber(n); !ok {
				b.e.add(p.LineOf("syscall"), fmt.Sprintf("%s.syscall[%d]", path, i), "unknown x86_64 system call %q", n)
			}
			r.Syscalls = append(r.Syscalls, strings.ToLower(n))
		}
		return r
	}
	for i, m := range s.MatchSyscalls {
		path := fmt.Sprintf("spec.syscalls.matchSyscalls[%d]", i)
		out = append(out, mk(m.Pos, path, Inherited{Severity: m.Severity, Tags: m.Tags, Message: m.Message}, m.Syscalls, m.FromSource))
	}
	for i, m := range s.MatchPaths {
		path := fmt.Sprintf("spec.syscalls.matchPaths[%d]", i)
		r := mk(m.Pos, path, Inherited{Severity: m.Severity, Tags: m.Tags, Message: m.Message}, m.Syscalls, m.FromSource)
		r.Path, r.Recursive = m.Path, m.Recursive
		switch {
		case m.Path == "":
			b.e.add(m.Line(), path+".path", "is required")
		case strings.HasSuffix(m.Path, "/"):
			b.checkDir(m.Pos, path, "path", m.Path)
		default:
			b.checkPath(m.Pos, path, "path", m.Path)
			if m.Recursive {
				b.e.add(m.LineOf("recursive"), path+".recursive", "applies to directories only (a path ending in '/')")
			}
		}
		out = append(out, r)
	}
	return out
}

func (b *builder) sources(from []FromSource, path string) []Source {
	var out []Source
	for i, s := range from {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case s.Path != "" && s.Dir != "":
			b.e.add(s.Line(), p, "set either path or dir, not both")
		case s.Path != "":
			b.checkPath(s.Pos, p, "path", s.Path)
			if s.Recursive {
				b.e.add(s.LineOf("recursive"), p+".recursive", "applies to dir only")
			}
			out = append(out, Source{Path: s.Path})
		case s.Dir != "":
			b.checkDir(s.Pos, p, "dir", s.Dir)
			out = append(out, Source{Dir: s.Dir, Recursive: s.Recursive})
		default:
			b.e.add(s.Line(), p, "one of path or dir is required")
		}
	}
	return out
}

func (b *builder) glob(p Pos, path, pattern string) *Glob {
	if pattern == "" {
		b.e.add(p.Line(), path+".pattern", "is required")
		return nil
	}
	if err := checkText(pattern); err != nil {
		b.e.add(p.LineOf("pattern"), path+".pattern", "%v", err)
		return nil
	}
	g, err := CompileGlob(pattern)
	if err != nil {
		b.e.add(p.LineOf("pattern"), path+".pattern", "%v", err)
	}
	return g
}

func (b *builder) checkPath(p Pos, path, key, v string) {
	if err := CheckPath(v); err != nil {
		b.e.add(p.LineOf(key), join(path, key), "%v", err)
	}
}

func (b *builder) checkDir(p Pos, path, key, v string) {
	if err := CheckDir(v); err != nil {
		b.e.add(p.LineOf(key), join(path, key), "%v", err)
	}
}

func (b *builder) checkName(p Pos, path, key, v string) {
	switch {
	case strings.Contains(v, "/"):
		b.e.add(p.LineOf(key), join(path, key), "must be a file name without '/', got %q", v)
	case len(v) > MaxNameLen:
		b.e.add(p.LineOf(key), join(path, key), "is %d bytes; a file name has at most %d", len(v), MaxNameLen)
	case v == "." || v == "..":
		b.e.add(p.LineOf(key), join(path, key), "must be a file name, got %q", v)
	default:
		if err := checkText(v); err != nil {
			b.e.add(p.LineOf(key), join(path, key), "%v", err)
		}
	}
}

func checkText(s string) error {
	if strings.ContainsFunc(s, isControl) {
		return errors.New("must not contain control characters")
	}
	return nil
}

// CheckPath validates an absolute file path as KubeArmor does (absolute, not
// ending in '/'), and also requires it to be clean and short enough for the
// kernel to match: no empty, "." or ".." components, at most MaxPathLen bytes
// and MaxNameLen per component.
func CheckPath(p string) error {
	if p == "" {
		return errors.New("is required")
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("must be an absolute path starting with '/', got %q", p)
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("must not end in '/' (use matchDirectories with dir: for a directory), got %q", p)
	}
	return checkComponents(p)
}

// CheckDir validates a directory: absolute and ending in '/'.
func CheckDir(d string) error {
	if d == "" {
		return errors.New("is required")
	}
	if !strings.HasPrefix(d, "/") {
		return fmt.Errorf("must be an absolute directory starting with '/', got %q", d)
	}
	if !strings.HasSuffix(d, "/") {
		return fmt.Errorf("must end in '/', got %q", d)
	}
	if d == "/" {
		return nil
	}
	return checkComponents(strings.TrimSuffix(d, "/"))
}

func checkComponents(p string) error {
	if len(p) > MaxPathLen {
		return fmt.Errorf("is %d bytes long; the longest path that can be enforced is %d bytes", len(p), MaxPathLen)
	}
	if err := checkText(p); err != nil {
		return err
	}
	for c := range strings.SplitSeq(p[1:], "/") {
		switch {
		case c == "":
			return fmt.Errorf("must not contain empty components (\"//\"), got %q", p)
		case c == "." || c == "..":
			return fmt.Errorf("must not contain %q components, got %q", c, p)
		case len(c) > MaxNameLen:
			return fmt.Errorf("has a %d-byte component; at most %d bytes are allowed per component", len(c), MaxNameLen)
		}
	}
	return nil
}

func knownProtocols() string {
	var names []string
	for _, n := range protocolNames {
		if n != "" {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}
