package apparmor

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
	"github.com/kubearmor/kubearmor-host/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// load parses policy files into a set with the given postures.
func load(t *testing.T, postures policy.Postures, files ...string) *policy.Set {
	t.Helper()
	var docs []*policy.Document
	for _, f := range files {
		d, err := policy.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d...)
	}
	set, err := policy.NewSet(1, postures, docs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// setOf makes a set of rules, numbered in order, as one policy of t.yaml.
func setOf(t *testing.T, postures policy.Postures, rules ...policy.Rule) *policy.Set {
	t.Helper()
	for i := range rules {
		rules[i].Origin = policy.Origin{File: "t.yaml", Line: i + 1, Field: "rule"}
	}
	set, err := policy.NewSet(1, postures, []*policy.Document{{File: "t.yaml", Line: 1, Name: "t", Rules: rules}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

var auditPostures = policy.Postures{File: policy.PostureAudit, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}

// parse checks a profile with the real apparmor_parser, compiling it
// without loading it (the development host has no AppArmor).
func parse(t *testing.T, p Profile) {
	t.Helper()
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Skipf("apparmor_parser not installed (apt-get install apparmor; make deps does): %v", err)
	}
	file := filepath.Join(t.TempDir(), p.Name)
	if err := os.WriteFile(file, []byte(p.Text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(parser, "--skip-kernel-load", "--skip-cache", "--quiet", file).CombinedOutput(); err != nil {
		t.Errorf("apparmor_parser rejects %s: %v\n%s\n%s", p.Name, err, out, p.Text)
	}
}

// TestCompileGolden compiles the test set and the parser's everything-set
// into profiles and limitations, as golden files, and has the real
// apparmor_parser compile every profile.
func TestCompileGolden(t *testing.T) {
	for _, tt := range []struct{ name, file string }{
		{"host", "testdata/host.yaml"},
		{"full", "../../policy/testdata/full.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.file); err != nil && testutils.InGuest() {
				t.Skipf("another package's testdata is not in the guest: %v", err)
			}
			c, err := Compile(load(t, auditPostures, tt.file), Features{Network: true})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, p := range c.Profiles {
				b.WriteString(p.Text)
				b.WriteString("\n")
				parse(t, p)
			}
			b.WriteString("# Limitations\n")
			for _, l := range c.Limitations {
				b.WriteString(l.String() + "\n")
			}
			b.WriteString("# Partial\n")
			for _, l := range c.Partial {
				b.WriteString(l.String() + "\n")
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("profiles differ from %s (go test -update to accept):\n%s", golden, b.String())
			}
		})
	}
}

// TestCompile holds single rules to their AppArmor form or limitation.
func TestCompile(t *testing.T) {
	blockPostures := policy.Postures{File: policy.PostureBlock, Network: policy.PostureBlock, Capabilities: policy.PostureBlock}
	tests := []struct {
		name      string
		postures  policy.Postures
		rule      policy.Rule
		want      []string // lines the host profile must have
		wantNot   []string // and must not
		limitedBy string   // a limitation's reason, or "" for none
	}{
		{name: "block exec", postures: auditPostures,
			rule: policy.Rule{Kind: policy.KindProcess, Action: policy.ActionBlock, Match: policy.MatchPath, Path: "/usr/bin/nc"},
			want: []string{"  audit deny /usr/bin/nc mx,", "  /** pix,", "  /{,**} rwlkm,"}},
		{name: "audit exec by name", postures: auditPostures,
			rule: policy.Rule{Kind: policy.KindProcess, Action: policy.ActionAudit, Match: policy.MatchExecName, Path: "nmap"},
			want: []string{"  audit /{,**/}nmap pix,"}},
		{name: "block a directory's files, not below", postures: auditPostures,
			rule: policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchDir, Path: "/etc/ssh/"},
			want: []string{"  audit deny /etc/ssh/* rwlk,"}},
		{name: "readOnly block denies writes", postures: auditPostures,
			rule: policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: "/etc/hosts", ReadOnly: true},
			want: []string{"  audit deny /etc/hosts wl,"}},
		{name: "glob characters in a path are literal", postures: auditPostures,
			rule: policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: "/srv/a b/*{x}"},
			want: []string{`  audit deny "/srv/a b/\*\{x\}" rwlk,`}},
		{name: "tcp", postures: auditPostures,
			rule: policy.Rule{Kind: policy.KindNetwork, Action: policy.ActionBlock, Match: policy.MatchProtocol, Protocol: policy.ProtoTCP},
			want: []string{"  audit deny network inet stream,", "  audit deny network inet6 stream,"}},
		{name: "capability", postures: auditPostures,
			rule: policy.Rule{Kind: policy.KindCapabilities, Action: policy.ActionAudit, Match: policy.MatchCapability, Capability: 13},
			want: []string{"  audit capability net_raw,"}},
		{name: "file allow-list with block posture", postures: blockPostures,
			rule:    policy.Rule{Kind: policy.KindFile, Action: policy.ActionAllow, Match: policy.MatchDir, Path: "/srv/", Recursive: true},
			want:    []string{"  /srv/** rwlkm,", "  /** pix,", "  network,"},
			wantNot: []string{"  /{,**} rwlkm,"}},
		{name: "allow-list with audit posture", postures: auditPostures,
			rule:      policy.Rule{Kind: policy.KindFile, Action: policy.ActionAllow, Match: policy.MatchPath, Path: "/srv/x"},
			want:      []string{"  /{,**} rwlkm,"},
			wantNot:   []string{"/srv/x"},
			limitedBy: "allow the rest and audit it"},
		{name: "syscalls", postures: auditPostures,
			rule:      policy.Rule{Kind: policy.KindSyscall, Action: policy.ActionAudit, Match: policy.MatchSyscall, Syscalls: []string{"unlink"}},
			limitedBy: "does not mediate system calls"},
		{name: "icmpv6", postures: auditPostures,
			rule:      policy.Rule{Kind: policy.KindNetwork, Action: policy.ActionBlock, Match: policy.MatchProtocol, Protocol: policy.ProtoICMPv6},
			wantNot:   []string{"icmp"},
			limitedBy: "cannot name protocol icmpv6"},
		{name: "filelessExec", postures: auditPostures,
			rule:      policy.Rule{Kind: policy.KindProcess, Action: policy.ActionBlock, Match: policy.MatchPreset, Preset: policy.PresetFilelessExec},
			wantNot:   []string{"memfd"},
			limitedBy: "memfd"},
		{name: "anonymousMapExec", postures: auditPostures,
			rule:      policy.Rule{Kind: policy.KindProcess, Action: policy.ActionAudit, Match: policy.MatchPreset, Preset: policy.PresetAnonMapExec},
			limitedBy: "anonymous memory"},
		{name: "ownerOnly block", postures: auditPostures,
			rule:      policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: "/x", OwnerOnly: true},
			wantNot:   []string{"/x "},
			limitedBy: "ownerOnly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile(setOf(t, tt.postures, tt.rule), Features{Network: true})
			if err != nil {
				t.Fatal(err)
			}
			host := c.Profiles[0]
			if host.Name != HostProfile || host.Attach != "/**" {
				t.Fatalf("first profile %s attached to %s", host.Name, host.Attach)
			}
			for _, w := range tt.want {
				if !strings.Contains(host.Text, w+"\n") {
					t.Errorf("profile lacks %q:\n%s", w, host.Text)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(host.Text, w) {
					t.Errorf("profile has %q:\n%s", w, host.Text)
				}
			}
			switch {
			case tt.limitedBy == "" && len(c.Limitations) > 0:
				t.Errorf("limitations %v, want none", c.Limitations)
			case tt.limitedBy != "" && (len(c.Limitations) != 1 || !strings.Contains(c.Limitations[0].Reason, tt.limitedBy)):
				t.Errorf("limitations %v, want one saying %q", c.Limitations, tt.limitedBy)
			}
			parse(t, host)
		})
	}
}

// TestPartial: the ways around a rule that AppArmor cannot close are
// reported per rule, and only for the rules they get around.
func TestPartial(t *testing.T) {
	const loader, realLoader = "/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
	f := Features{Network: true, Loaders: []string{loader, realLoader}}
	listed := policy.Postures{File: policy.PostureBlock, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}
	tests := []struct {
		name     string
		postures policy.Postures
		rule     policy.Rule
		want     []string // reasons, in order
	}{
		{"a path", auditPostures, policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: "/etc/shadow"},
			[]string{partialOtherNames}},
		{"a name, below every directory", auditPostures, policy.Rule{Kind: policy.KindProcess, Action: policy.ActionBlock, Match: policy.MatchExecName, Path: "nc"},
			nil},
		{"fromSource", auditPostures, policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: "/etc/shadow",
			Sources: []policy.Source{{Path: "/usr/bin/cat"}}}, []string{partialOtherNames, partialLoaderSource}},
		{"an allow-list that allows the loader", listed, policy.Rule{Kind: policy.KindProcess, Action: policy.ActionAllow, Match: policy.MatchDir,
			Path: "/usr/lib/", Recursive: true}, []string{partialOtherNames, partialLoaderAllowed}},
		{"an allow-list that does not", listed, policy.Rule{Kind: policy.KindProcess, Action: policy.ActionAllow, Match: policy.MatchDir,
			Path: "/usr/bin/", Recursive: true}, []string{partialOtherNames}},
		{"an allow-list of sources that allows the loader", listed, policy.Rule{Kind: policy.KindProcess, Action: policy.ActionAllow, Match: policy.MatchExecName,
			Path: "ld-linux-x86-64.so.2", Sources: []policy.Source{{Dir: "/usr/bin/"}}}, []string{partialLoaderSource, partialLoaderAllowed}},
		{"the loader allowed without an allow-list", auditPostures, policy.Rule{Kind: policy.KindProcess, Action: policy.ActionAllow, Match: policy.MatchPath,
			Path: realLoader}, []string{partialOtherNames}},
		{"an audited program", auditPostures, policy.Rule{Kind: policy.KindProcess, Action: policy.ActionAudit, Match: policy.MatchExecName, Path: "nmap"},
			[]string{partialLoaderAudit}},
		{"network", auditPostures, policy.Rule{Kind: policy.KindNetwork, Action: policy.ActionBlock, Match: policy.MatchProtocol, Protocol: policy.ProtoTCP},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile(setOf(t, tt.postures, tt.rule), f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range c.Partial {
				if l.Rule != 1 {
					t.Errorf("partial %v names another rule", l)
				}
				got = append(got, l.Reason)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("partial %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSourceProfiles: a fromSource rule gets a profile attached to its
// source with the host-wide rules too; overlapping sources are reported.
func TestSourceProfiles(t *testing.T) {
	rules := []policy.Rule{
		{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: "/etc/shadow"},
		{Kind: policy.KindNetwork, Action: policy.ActionBlock, Match: policy.MatchProtocol, Protocol: policy.ProtoRaw,
			Sources: []policy.Source{{Path: "/usr/bin/ping"}, {Dir: "/usr/bin/", Recursive: false}}},
	}
	c, err := Compile(setOf(t, auditPostures, rules...), Features{Network: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Profiles) != 3 {
		t.Fatalf("%d profiles, want the host's and one per source", len(c.Profiles))
	}
	for i, attach := range []string{"/**", "/usr/bin/ping", "/usr/bin/*"} {
		p := c.Profiles[i]
		if p.Attach != attach || !strings.Contains(p.Text, "audit deny /etc/shadow rwlk,") {
			t.Errorf("profile %s attached to %s, want %s, with the host-wide rule:\n%s", p.Name, p.Attach, attach, p.Text)
		}
		if raw := strings.Contains(p.Text, "audit deny network inet raw,"); raw != (i > 0) {
			t.Errorf("profile %s has the source's rule: %v, want %v", p.Name, raw, i > 0)
		}
		parse(t, p)
	}
	if len(c.Limitations) != 1 || !strings.Contains(c.Limitations[0].Reason, "overlaps") {
		t.Errorf("limitations %v, want the overlap of /usr/bin/ping and /usr/bin/", c.Limitations)
	}
}

// TestRetired: a source profile that is gone becomes the host profile
// under its name and attachment, so its processes keep the host-wide rules.
func TestRetired(t *testing.T) {
	c, err := Compile(setOf(t, auditPostures,
		policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: "/etc/shadow"}), Features{Network: true})
	if err != nil {
		t.Fatal(err)
	}
	text := retired(c.Profiles[0], "kubearmor-source-0123456789ab", "/opt/a b/**")
	if !strings.Contains(text, `profile kubearmor-source-0123456789ab "/opt/a b/**" flags=`) || !strings.Contains(text, "audit deny /etc/shadow rwlk,") ||
		strings.Contains(text, HostProfile) {
		t.Errorf("retired profile:\n%s", text)
	}
	parse(t, Profile{Name: "retired", Text: text})
	parse(t, SelfProfile("/usr/sbin/apparmor_parser"))
}

// TestNetworkAllowList: an allow-list of network protocols leaves the
// families network rules do not govern alone.
func TestNetworkAllowList(t *testing.T) {
	c, err := Compile(setOf(t, policy.Postures{File: policy.PostureAudit, Network: policy.PostureBlock, Capabilities: policy.PostureAudit},
		policy.Rule{Kind: policy.KindNetwork, Action: policy.ActionAllow, Match: policy.MatchProtocol, Protocol: policy.ProtoTCP}), Features{Network: true})
	if err != nil {
		t.Fatal(err)
	}
	host := c.Profiles[0].Text
	for _, want := range []string{"  network inet stream,\n", "  network unix,\n", "  network netlink,\n"} {
		if !strings.Contains(host, want) {
			t.Errorf("profile lacks %q:\n%s", want, host)
		}
	}
	if strings.Contains(host, "  network,\n") {
		t.Errorf("the blanket network rule is still there:\n%s", host)
	}
	parse(t, c.Profiles[0])
}
