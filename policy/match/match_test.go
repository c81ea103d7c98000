package match_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// set parses policies written as the spec bodies of KubeArmorHostPolicy
// documents, one per element, named p0, p1, ...
func set(t *testing.T, postures policy.Postures, specs ...string) *policy.Set {
	t.Helper()
	var docs []*policy.Document
	for i, spec := range specs {
		y := fmt.Sprintf("apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: p%d\nspec:\n%s",
			i, indent(spec))
		d, err := policy.Parse(fmt.Sprintf("p%d.yaml", i), []byte(y))
		if err != nil {
			t.Fatalf("parse spec %d: %v\n%s", i, err, y)
		}
		docs = append(docs, d...)
	}
	s, err := policy.NewSet(1, postures, docs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func indent(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

var (
	audit = policy.Postures{File: policy.PostureAudit, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}
	block = policy.Postures{File: policy.PostureBlock, Network: policy.PostureBlock, Capabilities: policy.PostureBlock}
)

type query struct {
	name string
	op   match.Op
	s    match.Subject
	o    match.Object
	want match.Decision
}

func exec(exe, path string) (match.Subject, match.Object) {
	return match.Subject{Exe: exe}, match.Object{Path: path}
}

func dec(v match.Verdict, id uint32) match.Decision { return match.Decision{Verdict: v, RuleID: id} }

var (
	tcp4   = policy.Socket{Family: 2, Type: 1, Protocol: 0}
	udp6   = policy.Socket{Family: 10, Type: 2, Protocol: 17}
	icmp4  = policy.Socket{Family: 2, Type: 2, Protocol: 1}
	raw4   = policy.Socket{Family: 2, Type: 3, Protocol: 255}
	unixSk = policy.Socket{Family: 1, Type: 1}
)

func TestSemantics(t *testing.T) {
	tests := []struct {
		name     string
		postures policy.Postures
		specs    []string
		queries  []query
	}{
		{
			name:  "Block is the default action, and only the named path is blocked",
			specs: []string{"process:\n  matchPaths:\n  - path: /bin/sleep"},
			queries: []query{
				{name: "named", op: match.OpExec, s: match.Subject{Exe: "/bin/sh"}, o: match.Object{Path: "/bin/sleep"}, want: dec(match.Block, 1)},
				{name: "other", op: match.OpExec, s: match.Subject{Exe: "/bin/sh"}, o: match.Object{Path: "/bin/true"}, want: dec(match.NoMatch, 0)},
				{name: "prefix", op: match.OpExec, s: match.Subject{Exe: "/bin/sh"}, o: match.Object{Path: "/bin/sleep2"}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:  "Audit lets the operation through and reports the rule",
			specs: []string{"action: Audit\nseverity: 7\nprocess:\n  matchPaths:\n  - path: /bin/sleep"},
			queries: []query{
				{op: match.OpExec, o: match.Object{Path: "/bin/sleep"}, want: dec(match.Audit, 1)},
			},
		},
		{
			name: "Block beats Audit beats Allow on the same object, whatever the order",
			specs: []string{
				"process:\n  matchPaths:\n  - path: /x/a\n    action: Allow\n  - path: /x/a\n    action: Audit\n  - path: /x/b\n    action: Allow",
				"process:\n  matchPaths:\n  - path: /x/a\n    action: Block\n  - path: /x/b\n    action: Audit",
			},
			queries: []query{
				{name: "all three", op: match.OpExec, o: match.Object{Path: "/x/a"}, want: dec(match.Block, 4)},
				{name: "audit and allow", op: match.OpExec, o: match.Object{Path: "/x/b"}, want: dec(match.Audit, 5)},
			},
		},
		{
			name: "within an action the most specific rule is reported",
			specs: []string{
				"process:\n  matchDirectories:\n  - dir: /usr/\n    recursive: true\n  - dir: /usr/local/\n    recursive: true\n  - dir: /usr/local/bin/",
				"process:\n  matchPaths:\n  - path: /usr/local/bin/tool\n  - path: /usr/local/bin/tool\n    fromSource:\n    - path: /bin/sh\n  - path: /usr/local/bin/tool",
			},
			queries: []query{
				{name: "exact path over directories; fromSource over none", op: match.OpExec, s: match.Subject{Exe: "/bin/sh"}, o: match.Object{Path: "/usr/local/bin/tool"}, want: dec(match.Block, 5)},
				{name: "exact path, lower ID among equals", op: match.OpExec, s: match.Subject{Exe: "/bin/bash"}, o: match.Object{Path: "/usr/local/bin/tool"}, want: dec(match.Block, 4)},
				{name: "parent directory over ancestors", op: match.OpExec, o: match.Object{Path: "/usr/local/bin/other"}, want: dec(match.Block, 3)},
				{name: "deeper recursive directory", op: match.OpExec, o: match.Object{Path: "/usr/local/lib/x/y"}, want: dec(match.Block, 2)},
				{name: "shallow recursive directory", op: match.OpExec, o: match.Object{Path: "/usr/bin/x"}, want: dec(match.Block, 1)},
			},
		},
		{
			name:  "matchDirectories: direct children only unless recursive; the directory itself counts",
			specs: []string{"file:\n  matchDirectories:\n  - dir: /etc/flat/\n  - dir: /etc/deep/\n    recursive: true"},
			queries: []query{
				{name: "flat child", op: match.OpOpenRead, o: match.Object{Path: "/etc/flat/a"}, want: dec(match.Block, 1)},
				{name: "flat grandchild", op: match.OpOpenRead, o: match.Object{Path: "/etc/flat/a/b"}, want: dec(match.NoMatch, 0)},
				{name: "flat dir itself", op: match.OpOpenRead, o: match.Object{Path: "/etc/flat"}, want: dec(match.Block, 1)},
				{name: "deep grandchild", op: match.OpOpenRead, o: match.Object{Path: "/etc/deep/a/b/c"}, want: dec(match.Block, 2)},
				{name: "sibling with a common prefix", op: match.OpOpenRead, o: match.Object{Path: "/etc/deeper/a"}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:  "fromSource: the rule applies only when the named program acts",
			specs: []string{"process:\n  matchPaths:\n  - path: /usr/bin/nc\n    fromSource:\n    - path: /bin/bash\n    - dir: /opt/tools/\n      recursive: true"},
			queries: []query{
				{name: "named path", op: match.OpExec, s: match.Subject{Exe: "/bin/bash"}, o: match.Object{Path: "/usr/bin/nc"}, want: dec(match.Block, 1)},
				{name: "in named dir", op: match.OpExec, s: match.Subject{Exe: "/opt/tools/x/run"}, o: match.Object{Path: "/usr/bin/nc"}, want: dec(match.Block, 1)},
				{name: "another program", op: match.OpExec, s: match.Subject{Exe: "/bin/dash"}, o: match.Object{Path: "/usr/bin/nc"}, want: dec(match.NoMatch, 0)},
				{name: "unknown caller", op: match.OpExec, s: match.Subject{Exe: ""}, o: match.Object{Path: "/usr/bin/nc"}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:     "an Allow rule without fromSource makes a host-wide allow-list; process shares the file posture",
			postures: policy.Postures{File: policy.PostureBlock, Network: policy.PostureAudit, Capabilities: policy.PostureAudit},
			specs:    []string{"action: Allow\nprocess:\n  matchDirectories:\n  - dir: /usr/bin/\n    recursive: true"},
			queries: []query{
				{name: "allowed", op: match.OpExec, s: match.Subject{Exe: "/bin/sh"}, o: match.Object{Path: "/usr/bin/ls"}, want: dec(match.Allow, 1)},
				{name: "not allowed: posture block", op: match.OpExec, s: match.Subject{Exe: "/bin/sh"}, o: match.Object{Path: "/tmp/x"}, want: dec(match.PostureBlock, 0)},
				{name: "other kinds untouched", op: match.OpOpenRead, s: match.Subject{Exe: "/bin/sh"}, o: match.Object{Path: "/tmp/x"}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:     "an Allow rule with fromSource makes an allow-list for that source only",
			postures: audit,
			specs:    []string{"action: Allow\nfile:\n  matchDirectories:\n  - dir: /etc/default/\n    fromSource:\n    - path: /usr/bin/head"},
			queries: []query{
				{name: "head reads its directory", op: match.OpOpenRead, s: match.Subject{Exe: "/usr/bin/head"}, o: match.Object{Path: "/etc/default/grub"}, want: dec(match.Allow, 1)},
				{name: "head reads elsewhere: posture", op: match.OpOpenRead, s: match.Subject{Exe: "/usr/bin/head"}, o: match.Object{Path: "/etc/passwd"}, want: dec(match.PostureAudit, 0)},
				{name: "cat is untouched", op: match.OpOpenRead, s: match.Subject{Exe: "/usr/bin/cat"}, o: match.Object{Path: "/etc/passwd"}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:     "readOnly applies whatever the action",
			postures: block,
			specs: []string{
				"file:\n  matchPaths:\n  - path: /etc/hosts\n    readOnly: true",
				"action: Allow\nfile:\n  matchPaths:\n  - path: /srv/data\n    readOnly: true",
				"action: Audit\nfile:\n  matchPaths:\n  - path: /var/log/app\n    readOnly: true",
			},
			queries: []query{
				{name: "Block+readOnly lets reads pass", op: match.OpOpenRead, o: match.Object{Path: "/etc/hosts"}, want: dec(match.PostureBlock, 0)},
				{name: "Block+readOnly blocks writes", op: match.OpOpenWrite, o: match.Object{Path: "/etc/hosts"}, want: dec(match.Block, 1)},
				{name: "Block+readOnly blocks unlink", op: match.OpUnlink, o: match.Object{Path: "/etc/hosts"}, want: dec(match.Block, 1)},
				{name: "Allow+readOnly allows reads", op: match.OpOpenRead, o: match.Object{Path: "/srv/data"}, want: dec(match.Allow, 2)},
				{name: "Allow+readOnly: a write falls to the posture", op: match.OpOpenWrite, o: match.Object{Path: "/srv/data"}, want: dec(match.PostureBlock, 0)},
				{name: "Audit+readOnly audits writes", op: match.OpRename, o: match.Object{Path: "/var/log/app"}, want: dec(match.Audit, 3)},
			},
		},
		{
			name:     "ownerOnly applies whatever the action",
			postures: audit,
			specs: []string{
				"file:\n  matchPaths:\n  - path: /home/u/secret\n    ownerOnly: true",
				"action: Allow\nfile:\n  matchPaths:\n  - path: /home/u/shared\n    ownerOnly: true",
				"process:\n  matchPaths:\n  - path: /home/u/bin/tool\n    ownerOnly: true",
			},
			queries: []query{
				{name: "owner reads", op: match.OpOpenRead, s: match.Subject{UID: 1000}, o: match.Object{Path: "/home/u/secret", OwnerUID: 1000}, want: dec(match.PostureAudit, 0)},
				{name: "other user blocked", op: match.OpOpenRead, s: match.Subject{UID: 0}, o: match.Object{Path: "/home/u/secret", OwnerUID: 1000}, want: dec(match.Block, 1)},
				{name: "Allow+ownerOnly: owner allowed", op: match.OpOpenWrite, s: match.Subject{UID: 1000}, o: match.Object{Path: "/home/u/shared", OwnerUID: 1000}, want: dec(match.Allow, 2)},
				{name: "Allow+ownerOnly: other user falls to posture", op: match.OpOpenRead, s: match.Subject{UID: 1001}, o: match.Object{Path: "/home/u/shared", OwnerUID: 1000}, want: dec(match.PostureAudit, 0)},
				{name: "process: owner runs it", op: match.OpExec, s: match.Subject{UID: 1000}, o: match.Object{Path: "/home/u/bin/tool", OwnerUID: 1000}, want: dec(match.NoMatch, 0)},
				{name: "process: other user blocked", op: match.OpExec, s: match.Subject{UID: 1001}, o: match.Object{Path: "/home/u/bin/tool", OwnerUID: 1000}, want: dec(match.Block, 3)},
			},
		},
		{
			name:  "matchPatterns and execname (rules are numbered paths, directories, patterns)",
			specs: []string{"process:\n  matchPatterns:\n  - pattern: /home/*/.cache/**\n  matchPaths:\n  - execname: nc"},
			queries: []query{
				{name: "pattern at depth", op: match.OpExec, o: match.Object{Path: "/home/bob/.cache/a/b/run"}, want: dec(match.Block, 2)},
				{name: "pattern: * stops at /", op: match.OpExec, o: match.Object{Path: "/home/a/b/.cache/run"}, want: dec(match.NoMatch, 0)},
				{name: "execname anywhere", op: match.OpExec, o: match.Object{Path: "/tmp/x/nc"}, want: dec(match.Block, 1)},
				{name: "execname is the whole name", op: match.OpExec, o: match.Object{Path: "/usr/bin/ncat"}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:     "network: protocols, fromSource, posture; local sockets are never governed",
			postures: block,
			specs: []string{
				"network:\n  matchProtocols:\n  - protocol: raw\n  - protocol: icmp\n    fromSource:\n    - path: /bin/ping\n    action: Allow\n  - protocol: TCP\n    action: Allow",
			},
			queries: []query{
				{name: "raw blocked", op: match.OpSocketCreate, o: match.Object{Socket: raw4}, want: dec(match.Block, 1)},
				{name: "ping may use icmp", op: match.OpSocketCreate, s: match.Subject{Exe: "/bin/ping"}, o: match.Object{Socket: icmp4}, want: dec(match.Allow, 2)},
				{name: "tcp allowed host-wide", op: match.OpConnect, o: match.Object{Socket: tcp4}, want: dec(match.Allow, 3)},
				{name: "udp falls to the network posture", op: match.OpConnect, o: match.Object{Socket: udp6}, want: dec(match.PostureBlock, 0)},
				{name: "unix sockets untouched", op: match.OpConnect, o: match.Object{Socket: unixSk}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:  "network: all",
			specs: []string{"action: Audit\nnetwork:\n  matchProtocols:\n  - protocol: all\n    fromSource:\n    - path: /usr/bin/curl"},
			queries: []query{
				{name: "curl over udp", op: match.OpBind, s: match.Subject{Exe: "/usr/bin/curl"}, o: match.Object{Socket: udp6}, want: dec(match.Audit, 1)},
				{name: "others", op: match.OpBind, s: match.Subject{Exe: "/usr/bin/wget"}, o: match.Object{Socket: udp6}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:     "capabilities, with fromSource and the capabilities posture",
			postures: policy.Postures{File: policy.PostureAudit, Network: policy.PostureAudit, Capabilities: policy.PostureBlock},
			specs:    []string{"capabilities:\n  matchCapabilities:\n  - capability: net_raw\n  - capability: sys_admin\n    fromSource:\n    - path: /usr/sbin/mount\n    action: Allow"},
			queries: []query{
				{name: "net_raw blocked", op: match.OpCapable, o: match.Object{Capability: 13}, want: dec(match.Block, 1)},
				{name: "mount may use sys_admin", op: match.OpCapable, s: match.Subject{Exe: "/usr/sbin/mount"}, o: match.Object{Capability: 21}, want: dec(match.Allow, 2)},
				{name: "mount: anything else is outside its allow-list", op: match.OpCapable, s: match.Subject{Exe: "/usr/sbin/mount"}, o: match.Object{Capability: 0}, want: dec(match.PostureBlock, 0)},
				{name: "others: not allow-listed", op: match.OpCapable, s: match.Subject{Exe: "/bin/sh"}, o: match.Object{Capability: 21}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:  "syscalls are audit-only, by name, path and directory",
			specs: []string{"action: Block\nsyscalls:\n  matchSyscalls:\n  - syscall: [unlinkat, rmdir]\n  matchPaths:\n  - syscall: [chmod]\n    path: /etc/\n    recursive: true\n  - syscall: [open]\n    path: /etc/shadow"},
			queries: []query{
				{name: "named syscall", op: match.OpSyscall, o: match.Object{Syscall: "rmdir", Path: "/x"}, want: dec(match.Audit, 1)},
				{name: "in directory", op: match.OpSyscall, o: match.Object{Syscall: "chmod", Path: "/etc/a/b"}, want: dec(match.Audit, 2)},
				{name: "outside directory", op: match.OpSyscall, o: match.Object{Syscall: "chmod", Path: "/tmp/a"}, want: dec(match.NoMatch, 0)},
				{name: "exact path", op: match.OpSyscall, o: match.Object{Syscall: "open", Path: "/etc/shadow"}, want: dec(match.Audit, 3)},
			},
		},
		{
			name:  "kinds do not cross: a process rule does not govern opening the file",
			specs: []string{"process:\n  matchPaths:\n  - path: /bin/sleep"},
			queries: []query{
				{op: match.OpOpenRead, o: match.Object{Path: "/bin/sleep"}, want: dec(match.NoMatch, 0)},
			},
		},
		{
			name:     "a path too long to resolve fails closed where the kind blocks",
			postures: audit,
			specs: []string{
				"process:\n  matchDirectories:\n  - dir: /tmp/\n    recursive: true",
				"action: Audit\nfile:\n  matchPaths:\n  - path: /etc/shadow",
			},
			queries: []query{
				{name: "process has a Block rule", op: match.OpExec, o: match.Object{Path: "/tmp/a/a/a", PathTooLong: true}, want: dec(match.PostureBlock, 0)},
				{name: "file has Audit rules only", op: match.OpOpenRead, o: match.Object{Path: "/a/a/a", PathTooLong: true}, want: dec(match.PostureAudit, 0)},
			},
		},
		{
			name:     "a file no host mount shows: execname and filelessExec only, and the posture of an allow-list",
			postures: block,
			specs: []string{
				"process:\n  matchPaths:\n  - path: /bin/sleep\n  - execname: nc\n  matchPatterns:\n  - pattern: /tmp/**",
				"presets:\n- name: filelessExec\n  action: Audit",
				"action: Allow\nfile:\n  matchDirectories:\n  - dir: /etc/\n    recursive: true",
			},
			queries: []query{
				{name: "its namespace's name is not the host's", op: match.OpExec, o: match.Object{Path: "/bin/sleep", NoHostPath: true}, want: dec(match.Audit, 4)},
				{name: "nor is a pattern matched on it", op: match.OpExec, o: match.Object{Path: "/tmp/x", NoHostPath: true}, want: dec(match.Audit, 4)},
				{name: "execname is a name", op: match.OpExec, o: match.Object{Path: "/x/nc", NoHostPath: true}, want: dec(match.Block, 2)},
				{name: "an executable mapping of it", op: match.OpExecMap, o: match.Object{Path: "memfd:x", NoHostPath: true}, want: dec(match.Audit, 4)},
				{name: "the file allow-list refuses it", op: match.OpOpenRead, o: match.Object{Path: "/etc/passwd", NoHostPath: true}, want: dec(match.PostureBlock, 0)},
				{name: "the same host path is allowed", op: match.OpOpenRead, o: match.Object{Path: "/etc/passwd"}, want: dec(match.Allow, 5)},
			},
		},
		{
			name:     "executable mappings: Block and Audit rules decide, no posture",
			postures: block,
			specs:    []string{"process:\n  matchPaths:\n  - path: /bin/sh\n    action: Allow\n  - path: /usr/bin/nc\n  matchDirectories:\n  - dir: /tmp/\n    recursive: true\n    action: Audit"},
			queries: []query{
				{name: "a library no rule names loads", op: match.OpExecMap, o: match.Object{Path: "/lib/libc.so.6"}, want: dec(match.NoMatch, 0)},
				{name: "but its exec would get the posture", op: match.OpExec, o: match.Object{Path: "/lib/libc.so.6"}, want: dec(match.PostureBlock, 0)},
				{name: "a blocked program the loader maps", op: match.OpExecMap, o: match.Object{Path: "/usr/bin/nc"}, want: dec(match.Block, 2)},
				{name: "an audited directory", op: match.OpExecMap, o: match.Object{Path: "/tmp/x.so"}, want: dec(match.Audit, 3)},
				{name: "an allowed program", op: match.OpExecMap, o: match.Object{Path: "/bin/sh"}, want: dec(match.Allow, 1)},
			},
		},
		{
			name:  "anonymous memory made executable: only anonymousMapExec",
			specs: []string{"process:\n  matchPatterns:\n  - pattern: /**", "presets:\n- name: anonymousMapExec\n  action: Audit\n- name: anonymousMapExec"},
			queries: []query{
				{name: "Block before Audit", op: match.OpExecAnon, want: dec(match.Block, 3)},
				{name: "a file is not anonymous", op: match.OpExec, o: match.Object{Path: "/x"}, want: dec(match.Block, 1)},
			},
		},
		{
			name:  "no rules of a kind: nothing matches, even unresolvable paths",
			specs: []string{"process:\n  matchPaths:\n  - path: /bin/sleep"},
			queries: []query{
				{op: match.OpOpenWrite, o: match.Object{Path: "/x", PathTooLong: true}, want: dec(match.NoMatch, 0)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			postures := tt.postures
			if postures == (policy.Postures{}) {
				postures = audit
			}
			m := match.New(set(t, postures, tt.specs...))
			for _, q := range tt.queries {
				if got := m.Decide(q.op, q.s, q.o); got != q.want {
					t.Errorf("%s: %v by %+v on %+v: got %v, want %v", q.name, q.op, q.s, q.o, got, q.want)
				}
			}
		})
	}
}

func TestVerdictProperties(t *testing.T) {
	tests := []struct {
		v               match.Verdict
		denied, alerted bool
	}{
		{match.NoMatch, false, false},
		{match.Allow, false, false},
		{match.Audit, false, true},
		{match.Block, true, true},
		{match.PostureAudit, false, true},
		{match.PostureBlock, true, true},
	}
	for _, tt := range tests {
		if tt.v.Denied() != tt.denied || tt.v.Alerted() != tt.alerted {
			t.Errorf("%v: Denied %v Alerted %v, want %v %v", tt.v, tt.v.Denied(), tt.v.Alerted(), tt.denied, tt.alerted)
		}
	}
}
