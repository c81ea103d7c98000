// Package apparmor compiles a policy set into AppArmor profiles, the
// fallback enforcer's form of the rules where BPF-LSM is not available.
//
// The profiles, each allowing everything the set does not restrict (so that
// confining a process never takes from it more than the rules say):
//
//   - kubearmor-host, attached to /**: every program executed after the
//     profiles load that no more specific profile claims (KubeArmor's host
//     profile attaches to shells only). Its rules are the set's rules
//     without fromSource.
//   - kubearmor-source-<hash of the entry>, one per fromSource entry,
//     attached to that executable (or directory of them): the host-wide
//     rules and the rules that name the source.
//   - kubearmor-parser, attached to apparmor_parser, allowing everything:
//     the daemon's own parser must be able to load the next set whatever
//     allow-list the current one has (SelfProfile).
//
// Programs they run move to their own profile if they have one (pix), else
// stay in the caller's; a distribution's profile for a program is not
// overridden.
//
// Rules map as the reference matcher (policy/match) defines them: Block is
// "audit deny" (AppArmor's plain deny is silent; alerts come from the audit
// records), Audit is an audited allow, Allow an allow that, with a block
// posture, leaves the kind's blanket permission out of the profile. Deny
// beats allow and audit flags add up, which gives Block > Audit > Allow.
// What AppArmor cannot express is reported per rule as a Limitation and
// left out; nothing is enforced more strictly than the rule says.
//
// Other names. A program a process Block rule names may not be mapped
// executable either ("m"), so the dynamic loader cannot run it (ld.so
// PROGRAM). What AppArmor cannot
// follow is reported per rule as Partial: it names a file by its path in the
// process's own mount namespace (a chroot is no way around it, a bind mount
// or overlay made in a new mount namespace is), it attaches profiles at exec
// only (a program the loader runs stays in the loader's profile, for
// fromSource and for an allow-list that allows the loader), an audited "m"
// would audit every exec's own mappings again (so the loader's run of an
// audited program is not audited), and it does not
// see memfds or anonymous memory (the presets).
package apparmor

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kubearmor/kubearmor-host/enforcer/dynloader"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// HostProfile is the name of the profile of host-wide rules.
const HostProfile = "kubearmor-host"

// sourceProfilePrefix names the profiles of fromSource rules.
const sourceProfilePrefix = "kubearmor-source-"

// Profile is one AppArmor profile.
type Profile struct {
	Name   string
	Attach string // the attachment (an AppArmor glob)
	Text   string // the profile, as apparmor_parser reads it
}

// Limitation is a rule, or part of one, that AppArmor cannot express: it is
// not enforced by this enforcer.
type Limitation struct {
	Rule   uint32
	Origin policy.Origin
	Reason string
}

func (l Limitation) String() string {
	return fmt.Sprintf("rule %d (%s): %s", l.Rule, l.Origin, l.Reason)
}

// Compiled is a set's profiles and what they leave out: rules not enforced
// at all (Limitations), and rules enforced but for a way around them that
// AppArmor cannot close (Partial).
type Compiled struct {
	Profiles    []Profile
	Limitations []Limitation
	Partial     []Limitation
}

// Features are what the kernel's AppArmor mediates, where the profiles
// depend on it.
type Features struct {
	// Network: the kernel mediates the network rules apparmor_parser 3.0
	// writes (features/network). Debian's 6.1 and 6.12 kernels have only
	// network_v8, the newer form, so their network rules are left out.
	Network bool
	// Loaders are the system's dynamic loaders, by every name AppArmor
	// may see (as programs name them, and their targets).
	Loaders []string
}

// KernelFeatures reads the running kernel's AppArmor features and the
// system's loaders.
func KernelFeatures() Features {
	_, err := os.Stat("/sys/kernel/security/apparmor/features/network")
	f := Features{Network: err == nil}
	for _, l := range dynloader.System() {
		f.Loaders = append(f.Loaders, l)
		if real, err := filepath.EvalSymlinks(l); err == nil && real != l {
			f.Loaders = append(f.Loaders, real)
		}
	}
	return f
}

// Compile translates set into profiles for a kernel with features f. It
// fails only on a rule it cannot read; what AppArmor cannot express is in
// Limitations.
func Compile(set *policy.Set, f Features) (*Compiled, error) {
	c := &Compiled{}
	var hostWide []*policy.Rule
	type source struct {
		src   policy.Source
		rules []*policy.Rule
	}
	var sources []*source
	find := func(s policy.Source) *source {
		for _, x := range sources {
			if x.src == s {
				return x
			}
		}
		x := &source{src: s}
		sources = append(sources, x)
		return x
	}
	for r := range set.Rules() {
		if reason := unsupported(r, f); reason != "" {
			c.limit(r, reason)
			continue
		}
		c.partial(r, set, f)
		if len(r.Sources) == 0 {
			hostWide = append(hostWide, r)
			continue
		}
		for _, s := range r.Sources {
			find(s).rules = append(find(s).rules, r)
		}
	}
	host, err := c.profile(HostProfile, "/**", set.Postures(), hostWide, nil)
	if err != nil {
		return nil, err
	}
	c.Profiles = append(c.Profiles, host)
	for i, s := range sources {
		for _, other := range sources[:i] {
			if overlaps(s.src, other.src) {
				for _, r := range s.rules {
					c.limit(r, fmt.Sprintf("fromSource %s overlaps %s: AppArmor attaches one profile per program, so the longer match alone applies",
						sourceString(s.src), sourceString(other.src)))
				}
			}
		}
		p, err := c.profile(sourceProfileName(s.src), attachment(s.src), set.Postures(), hostWide, s.rules)
		if err != nil {
			return nil, err
		}
		c.Profiles = append(c.Profiles, p)
	}
	return c, nil
}

// limit records a limitation once, however many profiles hold the rule.
func (c *Compiled) limit(r *policy.Rule, reason string) {
	l := Limitation{Rule: r.ID, Origin: r.Origin, Reason: reason}
	if !slices.Contains(c.Limitations, l) {
		c.Limitations = append(c.Limitations, l)
	}
}

// Ways around a rule that AppArmor cannot close (Compiled.Partial).
const (
	partialOtherNames = "AppArmor decides on a file's path in the process's own mount namespace: through a bind mount or an overlay " +
		"made in a new mount namespace (unshare -Urm, where unprivileged user namespaces are allowed) the file has a name this rule does not cover"
	partialLoaderSource = "a program the dynamic loader runs (ld.so PROGRAM) stays in the loader's profile, as AppArmor attaches profiles " +
		"at exec only: this fromSource rule does not follow it"
	partialLoaderAudit = "AppArmor audits a mapping only with an audit rule that would audit every exec's own mappings too: " +
		"this program run by the dynamic loader (ld.so PROGRAM) is not audited"
	partialLoaderAllowed = "this rule allows the dynamic loader, and AppArmor decides the programs a loader maps by Block rules only: " +
		"under this allow-list, ld.so PROGRAM runs any PROGRAM"
)

// partial records the ways around r that AppArmor cannot close.
func (c *Compiled) partial(r *policy.Rule, set *policy.Set, f Features) {
	note := func(reason string) {
		c.Partial = append(c.Partial, Limitation{Rule: r.ID, Origin: r.Origin, Reason: reason})
	}
	if r.Kind != policy.KindProcess && r.Kind != policy.KindFile {
		return
	}
	// An execname rule covers the name below every directory, however
	// the process reached it.
	if r.Match != policy.MatchExecName {
		note(partialOtherNames)
	}
	if len(r.Sources) > 0 {
		note(partialLoaderSource)
	}
	if r.Kind == policy.KindProcess && r.Action == policy.ActionAudit {
		note(partialLoaderAudit)
	}
	if r.Kind == policy.KindProcess && r.Action == policy.ActionAllow && set.Postures().For(policy.KindProcess) == policy.PostureBlock {
		m := match.New(set)
		for _, l := range f.Loaders {
			for _, src := range subjectsOf(r) {
				if d := m.Decide(match.OpExec, src, match.Object{Path: l}); d.Verdict == match.Allow && d.RuleID == r.ID {
					note(partialLoaderAllowed)
					return
				}
			}
		}
	}
}

// subjectsOf are subjects a rule applies to: any, or one of its sources.
func subjectsOf(r *policy.Rule) []match.Subject {
	if len(r.Sources) == 0 {
		return []match.Subject{{}}
	}
	var out []match.Subject
	for _, s := range r.Sources {
		exe := s.Path
		if exe == "" {
			exe = s.Dir + "kubearmor-any-program"
		}
		out = append(out, match.Subject{Exe: exe})
	}
	return out
}

// unsupported says why AppArmor cannot enforce r at all, or "".
func unsupported(r *policy.Rule, f Features) string {
	switch {
	case r.Kind == policy.KindNetwork && !f.Network:
		return "this kernel's AppArmor does not mediate the network rules apparmor_parser writes (no features/network)"
	case r.Kind == policy.KindSyscall:
		return "AppArmor does not mediate system calls"
	case r.Match == policy.MatchPreset && r.Preset == policy.PresetFilelessExec:
		return "AppArmor cannot tell a program in a memfd, or on a mount only a private namespace has, from any other"
	case r.Match == policy.MatchPreset:
		return "AppArmor does not mediate anonymous memory made executable"
	case r.OwnerOnly && r.Action != policy.ActionAllow:
		return "ownerOnly on a Block or Audit rule means other users' access, which this enforcer does not express yet"
	case r.Kind == policy.KindNetwork && networkRules(r.Protocol) == nil:
		return fmt.Sprintf("AppArmor's network rules cannot name protocol %s", r.Protocol)
	}
	return ""
}

// allowList reports whether Allow rules of kind k, in profile rules, make an
// allow-list; with an audit posture that is a limitation (AppArmor cannot
// allow the rest silently and audit it), and the Allow rules are dropped.
func (c *Compiled) allowList(k policy.Kind, posture policy.Posture, rules []*policy.Rule) (bool, []*policy.Rule) {
	var allows, out []*policy.Rule
	for _, r := range rules {
		if r.Kind == k && r.Action == policy.ActionAllow {
			allows = append(allows, r)
			continue
		}
		out = append(out, r)
	}
	if len(allows) == 0 {
		return false, rules
	}
	if posture != policy.PostureBlock {
		for _, r := range allows {
			c.limit(r, "an allow-list with the audit posture needs \"allow the rest and audit it\", which AppArmor cannot express; not enforced")
		}
		return false, out
	}
	return true, rules
}

// profile writes one profile: the blanket permissions of the kinds without
// an allow-list, then the rules.
func (c *Compiled) profile(name, attach string, postures policy.Postures, hostWide, own []*policy.Rule) (Profile, error) {
	rules := append(slices.Clone(hostWide), own...)
	var b strings.Builder
	b.WriteString("# Generated by kubearmor from the policy set; replaced on every change.\n")
	b.WriteString(header(name, attach))
	listed := map[policy.Kind]bool{}
	for _, k := range []policy.Kind{policy.KindProcess, policy.KindFile, policy.KindNetwork, policy.KindCapabilities} {
		var on bool
		on, rules = c.allowList(k, postures.For(k), rules)
		listed[k] = on
	}
	b.WriteString("  # Everything the rules do not restrict.\n")
	// No change_profile: "-> **" would include unconfined, a way out of
	// every rule. ptrace may read any process but trace only the confined.
	writeBlanket(&b, listed, "  ptrace (read),\n  ptrace (trace) peer=kubearmor-*,\n")
	for _, r := range rules {
		lines, err := ruleLines(r)
		if err != nil {
			return Profile{}, err
		}
		fmt.Fprintf(&b, "  # rule %d: %s\n", r.ID, r.Origin)
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s,\n", l)
		}
	}
	b.WriteString("}\n")
	return Profile{Name: name, Attach: attach, Text: b.String()}, nil
}

// qualifier is the rule's action as an AppArmor prefix.
func qualifier(a policy.Action) string {
	switch a {
	case policy.ActionBlock:
		return "audit deny "
	case policy.ActionAudit:
		return "audit "
	}
	return ""
}

// ruleLines translates one rule (without the trailing commas).
func ruleLines(r *policy.Rule) ([]string, error) {
	q := qualifier(r.Action)
	switch r.Kind {
	case policy.KindProcess, policy.KindFile:
		glob, err := pathGlob(r)
		if err != nil {
			return nil, err
		}
		perms := "rwlkm" // allowing a file allows mapping it (libraries)
		if r.Action == policy.ActionBlock {
			perms = "rwlk"
		}
		if r.Kind == policy.KindProcess {
			// Allowed and audited execs move to the program's own
			// profile, if it has one, as the blanket rule does. A
			// blocked program may not be mapped executable either (the
			// loader's way to run it).
			perms = "pix"
			if r.Action == policy.ActionBlock {
				perms = "mx"
			}
		} else if r.ReadOnly && r.Action != policy.ActionAllow {
			perms = "wl" // what breaks readOnly: writes and links
		} else if r.ReadOnly {
			perms = "rm"
		}
		owner := ""
		if r.OwnerOnly {
			owner = "owner "
		}
		return []string{q + owner + glob + " " + perms}, nil
	case policy.KindNetwork:
		var out []string
		for _, n := range networkRules(r.Protocol) {
			out = append(out, q+"network "+n)
		}
		return out, nil
	case policy.KindCapabilities:
		return []string{q + "capability " + r.Capability.String()}, nil
	}
	return nil, fmt.Errorf("rule %d (%s): kind %s has no AppArmor form", r.ID, r.Origin, r.Kind)
}

// pathGlob is the rule's object as an AppArmor path glob.
func pathGlob(r *policy.Rule) (string, error) {
	switch r.Match {
	case policy.MatchPath:
		return quote(literal(r.Path)), nil
	case policy.MatchExecName:
		return quote("/{,**/}" + literal(r.Path)), nil
	case policy.MatchDir:
		if r.Recursive {
			return quote(literal(r.Path) + "**"), nil
		}
		return quote(literal(r.Path) + "*"), nil
	case policy.MatchPattern:
		// Policy globs are AppArmor's syntax, but for "[!": AppArmor's
		// negation is "[^" only.
		return quote(strings.ReplaceAll(r.Pattern.String(), "[!", "[^")), nil
	}
	return "", fmt.Errorf("rule %d (%s): match %s has no AppArmor path form", r.ID, r.Origin, r.Match)
}

// otherFamilies are the socket families network rules do not govern,
// allowed whatever the network allow-list says.
var otherFamilies = []string{"unix", "netlink", "alg", "vsock", "key", "bluetooth", "can", "xdp", "bridge", "mctp"}

// networkRules are the AppArmor network rules (without "network") for a
// protocol, nil where its rules cannot name it.
func networkRules(p policy.Protocol) []string {
	both := func(s string) []string { return []string{"inet " + s, "inet6 " + s} }
	switch p {
	case policy.ProtoAll:
		return []string{"inet", "inet6", "packet"}
	case policy.ProtoTCP:
		// By type: AppArmor compares the protocol number the caller gave,
		// and socket(AF_INET, SOCK_STREAM, 0) gives 0, which an "inet tcp"
		// rule does not match. The type also covers SCTP's stream sockets
		// (and dgram ICMP's for udp), which the rule does not name.
		return both("stream")
	case policy.ProtoUDP:
		return both("dgram")
	case policy.ProtoICMP:
		return []string{"inet icmp"}
	case policy.ProtoRaw:
		return []string{"inet raw", "inet6 raw", "packet raw"}
	case policy.ProtoStream:
		return both("stream")
	case policy.ProtoDgram:
		return both("dgram")
	case policy.ProtoRDM:
		return both("rdm")
	case policy.ProtoSeqPacket:
		return both("seqpacket")
	case policy.ProtoPacket:
		return []string{"packet"}
	}
	return nil // icmpv6, sctp, dccp: not protocol names AppArmor's rules know
}

// sourceProfileName names a fromSource entry's profile after the entry, so
// that the name stays with the program when other entries come or go: a
// process keeps the profile it was attached to across replacements.
func sourceProfileName(s policy.Source) string {
	sum := sha256.Sum256([]byte(attachment(s)))
	return sourceProfilePrefix + hex.EncodeToString(sum[:6])
}

// attachment is a fromSource entry as a profile attachment.
func attachment(s policy.Source) string {
	switch {
	case s.Path != "":
		return literal(s.Path)
	case s.Recursive:
		return literal(s.Dir) + "**"
	}
	return literal(s.Dir) + "*"
}

func sourceString(s policy.Source) string {
	if s.Path != "" {
		return s.Path
	}
	if s.Recursive {
		return s.Dir + " (recursive)"
	}
	return s.Dir
}

// overlaps reports whether some program is under both sources.
func overlaps(a, b policy.Source) bool {
	covers := func(dir policy.Source, p string) bool {
		rest, ok := strings.CutPrefix(p, dir.Dir)
		return ok && (dir.Recursive || !strings.Contains(rest, "/"))
	}
	switch {
	case a.Path != "" && b.Path != "":
		return false // distinct entries are distinct paths
	case a.Path != "":
		return covers(b, a.Path)
	case b.Path != "":
		return covers(a, b.Path)
	}
	return strings.HasPrefix(a.Dir, b.Dir) && (b.Recursive || a.Dir == b.Dir) ||
		strings.HasPrefix(b.Dir, a.Dir) && (a.Recursive || a.Dir == b.Dir)
}

// literal escapes AppArmor's glob characters in a path that means itself.
func literal(p string) string {
	var b strings.Builder
	for _, c := range p {
		if strings.ContainsRune(`*?[]{}^\"!@`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// quote puts a path in double quotes when it holds white space.
func quote(p string) string {
	if strings.ContainsAny(p, " \t") {
		return `"` + p + `"`
	}
	return p
}

// SelfProfile allows everything to the daemon's apparmor_parser, which
// would else be confined by the host profile (it is started after the
// profiles load) and could not load the next set under an allow-list.
// Any process may exec the parser into it: loading profiles needs
// CAP_MAC_ADMIN, which the host profile grants unless an allow-list of
// capabilities leaves it out; root can manage AppArmor under this
// enforcer, as under AppArmor itself.
func SelfProfile(parser string) Profile {
	const name = "kubearmor-parser"
	attach := literal(parser)
	var b strings.Builder
	b.WriteString("# Generated by kubearmor: its own apparmor_parser, unrestricted.\n")
	b.WriteString(header(name, attach))
	writeBlanket(&b, nil, "  ptrace,\n")
	b.WriteString("}\n")
	return Profile{Name: name, Attach: attach, Text: b.String()}
}

// header opens a profile: every one of ours has the same flags, so that
// a profile can be renamed and reattached by replacing its header.
func header(name, attach string) string {
	return "profile " + name + " " + quote(attach) + " flags=(attach_disconnected,mediate_deleted) {\n"
}

// writeBlanket writes the permissions the rules do not restrict: of each
// kind without an allow-list (listed), and the rest, with ptrace as given.
func writeBlanket(b *strings.Builder, listed map[policy.Kind]bool, ptrace string) {
	if !listed[policy.KindFile] {
		b.WriteString("  /{,**} rwlkm,\n")
	}
	if !listed[policy.KindProcess] {
		b.WriteString("  /** pix,\n")
	}
	if !listed[policy.KindNetwork] {
		b.WriteString("  network,\n")
	} else {
		// Network rules govern IPv4, IPv6 and packet sockets only: an
		// allow-list of them leaves local plumbing alone.
		for _, f := range otherFamilies {
			fmt.Fprintf(b, "  network %s,\n", f)
		}
	}
	if !listed[policy.KindCapabilities] {
		b.WriteString("  capability,\n")
	}
	b.WriteString("  signal,\n" + ptrace + "  unix,\n  dbus,\n  mount,\n  umount,\n  pivot_root,\n")
}
