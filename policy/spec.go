package policy

// The types in this file mirror the KubeArmorHostPolicy YAML schema
// (security.kubearmor.com/v1). They hold exactly what the user wrote; defaults
// and inheritance are applied when a document is turned into Rules.

// Pos records where a YAML mapping and each of its keys sit, so validation can
// name the line of the offending field.
type Pos struct {
	line  int
	keys  map[string]int // keys written with a value
	empty map[string]int // keys written with no value ("severity:"), which count as not set
}

func (p *Pos) setPos(line int, keys, empty map[string]int) {
	p.line, p.keys, p.empty = line, keys, empty
}

// Line is the line of the mapping itself.
func (p Pos) Line() int { return p.line }

// LineOf is the line of key within the mapping, or of the mapping when the key
// is absent.
func (p Pos) LineOf(key string) int {
	if l, ok := p.keys[key]; ok {
		return l
	}
	if l, ok := p.empty[key]; ok {
		return l
	}
	return p.line
}

// Written reports whether key was written in the YAML, with a value or not.
func (p Pos) Written(key string) bool {
	_, ok := p.keys[key]
	_, empty := p.empty[key]
	return ok || empty
}

// Has reports whether key was written in the YAML with a value.
func (p Pos) Has(key string) bool {
	_, ok := p.keys[key]
	return ok
}

// HostPolicy is one KubeArmorHostPolicy document.
type HostPolicy struct {
	Pos
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`
}

// Metadata is the part of Kubernetes object metadata a host policy may carry.
type Metadata struct {
	Pos
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Inherited fields: severity, tags, message and action, at spec, section and
// rule level; the innermost value written wins.
type Inherited struct {
	Severity int      `yaml:"severity"`
	Tags     []string `yaml:"tags"`
	Message  string   `yaml:"message"`
	Action   string   `yaml:"action"`
}

// Spec is the body of a host policy.
type Spec struct {
	Pos
	NodeSelector NodeSelector `yaml:"nodeSelector"`
	Process      Process      `yaml:"process"`
	File         File         `yaml:"file"`
	Network      Network      `yaml:"network"`
	Capabilities Capabilities `yaml:"capabilities"`
	Syscalls     Syscalls     `yaml:"syscalls"`
	Presets      []PresetRule `yaml:"presets"`
	Inherited    `yaml:",inline"`
}

// PresetRule audits or blocks a behaviour named by KubeArmor's presets
// (spec.presets in its container policies; accepted here for hosts).
type PresetRule struct {
	Pos
	Name      string `yaml:"name"`
	Inherited `yaml:",inline"`
}

// NodeSelector chooses the hosts a policy applies to.
type NodeSelector struct {
	Pos
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// FromSource is one fromSource entry as written: the executable performing the
// operation.
type FromSource struct {
	Pos
	Path      string `yaml:"path"`
	Dir       string `yaml:"dir"`
	Recursive bool   `yaml:"recursive"`
}

// Process holds exec rules.
type Process struct {
	Pos
	MatchPaths       []ProcessPath      `yaml:"matchPaths"`
	MatchDirectories []ProcessDirectory `yaml:"matchDirectories"`
	MatchPatterns    []ProcessPattern   `yaml:"matchPatterns"`
	Inherited        `yaml:",inline"`
}

// ProcessPath matches one executable by full path, or by name in any directory.
type ProcessPath struct {
	Pos
	Path       string       `yaml:"path"`
	ExecName   string       `yaml:"execname"`
	OwnerOnly  bool         `yaml:"ownerOnly"`
	FromSource []FromSource `yaml:"fromSource"`
	Inherited  `yaml:",inline"`
}

// ProcessDirectory matches executables in a directory.
type ProcessDirectory struct {
	Pos
	Dir        string       `yaml:"dir"`
	Recursive  bool         `yaml:"recursive"`
	OwnerOnly  bool         `yaml:"ownerOnly"`
	FromSource []FromSource `yaml:"fromSource"`
	Inherited  `yaml:",inline"`
}

// ProcessPattern matches executables by an AppArmor-style glob.
type ProcessPattern struct {
	Pos
	Pattern   string `yaml:"pattern"`
	OwnerOnly bool   `yaml:"ownerOnly"`
	Inherited `yaml:",inline"`
}

// File holds file access rules.
type File struct {
	Pos
	MatchPaths       []FilePath      `yaml:"matchPaths"`
	MatchDirectories []FileDirectory `yaml:"matchDirectories"`
	MatchPatterns    []FilePattern   `yaml:"matchPatterns"`
	Inherited        `yaml:",inline"`
}

// FilePath matches one file.
type FilePath struct {
	Pos
	Path       string       `yaml:"path"`
	ReadOnly   bool         `yaml:"readOnly"`
	OwnerOnly  bool         `yaml:"ownerOnly"`
	FromSource []FromSource `yaml:"fromSource"`
	Inherited  `yaml:",inline"`
}

// FileDirectory matches a directory and what is in it.
type FileDirectory struct {
	Pos
	Dir        string       `yaml:"dir"`
	Recursive  bool         `yaml:"recursive"`
	ReadOnly   bool         `yaml:"readOnly"`
	OwnerOnly  bool         `yaml:"ownerOnly"`
	FromSource []FromSource `yaml:"fromSource"`
	Inherited  `yaml:",inline"`
}

// FilePattern matches files by an AppArmor-style glob.
type FilePattern struct {
	Pos
	Pattern   string `yaml:"pattern"`
	ReadOnly  bool   `yaml:"readOnly"`
	OwnerOnly bool   `yaml:"ownerOnly"`
	Inherited `yaml:",inline"`
}

// Network holds socket rules.
type Network struct {
	Pos
	MatchProtocols []NetworkProtocol `yaml:"matchProtocols"`
	Inherited      `yaml:",inline"`
}

// NetworkProtocol matches sockets of one protocol.
type NetworkProtocol struct {
	Pos
	Protocol   string       `yaml:"protocol"`
	FromSource []FromSource `yaml:"fromSource"`
	Inherited  `yaml:",inline"`
}

// Capabilities holds capability rules.
type Capabilities struct {
	Pos
	MatchCapabilities []CapabilityMatch `yaml:"matchCapabilities"`
	Inherited         `yaml:",inline"`
}

// CapabilityMatch matches the use of one capability.
type CapabilityMatch struct {
	Pos
	Capability string       `yaml:"capability"`
	FromSource []FromSource `yaml:"fromSource"`
	Inherited  `yaml:",inline"`
}

// Syscalls holds audit-only system call rules. KubeArmor gives this section no
// action: it only ever audits.
type Syscalls struct {
	Pos
	MatchSyscalls []SyscallMatch     `yaml:"matchSyscalls"`
	MatchPaths    []SyscallPathMatch `yaml:"matchPaths"`
	Severity      int                `yaml:"severity"`
	Tags          []string           `yaml:"tags"`
	Message       string             `yaml:"message"`
}

// SyscallMatch audits the listed system calls.
type SyscallMatch struct {
	Pos
	Syscalls   []string     `yaml:"syscall"`
	FromSource []FromSource `yaml:"fromSource"`
	Severity   int          `yaml:"severity"`
	Tags       []string     `yaml:"tags"`
	Message    string       `yaml:"message"`
}

// SyscallPathMatch audits the listed system calls on a path or directory.
type SyscallPathMatch struct {
	Pos
	Path       string       `yaml:"path"`
	Recursive  bool         `yaml:"recursive"`
	Syscalls   []string     `yaml:"syscall"`
	FromSource []FromSource `yaml:"fromSource"`
	Severity   int          `yaml:"severity"`
	Tags       []string     `yaml:"tags"`
	Message    string       `yaml:"message"`
}
