package bpflsm

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestCompileGolden pins the map contents compiled from the policies in
// testdata/*.yaml, in a readable form, so that a change to the layout or to
// the ranking shows up in review.
func TestCompileGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			docs, err := policy.ParseFile(in)
			if err != nil {
				t.Fatal(err)
			}
			set, err := policy.NewSet(3, policy.Postures{File: policy.PostureBlock, Network: policy.PostureAudit, Capabilities: policy.PostureAudit}, docs)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Compile(set)
			if err != nil {
				t.Fatal(err)
			}
			got := dumpSpec(spec)
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("compiled maps differ from %s (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

// dumpSpec renders a Spec with node names spelled out.
func dumpSpec(s *Spec) string {
	var b strings.Builder
	names := map[uint32]string{}
	entry := make([]string, len(s.Trie)) // what each trie entry is for
	for i, e := range s.Trie {
		name := string(e.Key.Name[:e.Key.Len])
		switch {
		case e.Val.Node == rootNode:
			entry[i] = "/"
		case strings.HasPrefix(name, "\x00"): // a source class, maybe shared
			where := map[string]string{"\x00s": "", "\x00p": "in ", "\x00a": "below "}[name]
			entry[i] = "sources(" + where + names[e.Key.Parent] + ")"
		case e.Key.Parent == execNameParent:
			entry[i] = "name:" + name
		case e.Key.Parent == rootNode:
			entry[i] = "/" + name
		default:
			entry[i] = names[e.Key.Parent] + "/" + name
		}
		if _, ok := names[e.Val.Node]; !ok {
			names[e.Val.Node] = entry[i]
		}
	}
	nodeName := func(n uint32) string {
		switch n & 0xff000000 {
		case pseudoProtocol:
			return "protocol:" + policy.Protocol(n&0xff).String()
		case pseudoCapabilty:
			return "capability:" + policy.Capability(n&0xff).String()
		case pseudoDFA:
			return fmt.Sprintf("pattern-state:%d", n&0xffffff)
		}
		return names[n]
	}
	fmt.Fprintf(&b, "version %d\n\ntrie:\n", s.Version)
	for i, e := range s.Trie {
		if entry[i] != names[e.Val.Node] {
			fmt.Fprintf(&b, "  %3d %-28s the class of %s\n", e.Val.Node, entry[i], names[e.Val.Node])
			continue
		}
		fmt.Fprintf(&b, "  %3d %-28s flags %#x children's name lengths %s\n", e.Val.Node, names[e.Val.Node], e.Val.Flags, lengths(e.Val.Lens))
	}
	b.WriteString("\nrules: node source type access -> [allow owner/other] [audit owner/other] [block owner/other]\n")
	types := map[uint8]string{keyAncestor: "ancestor", keyParent: "parent", keySelf: "self", keyName: "name", keyExact: "exact", keyPattern: "pattern"}
	accesses := map[uint8]string{1: "exec", 2: "read", 3: "write", 4: "net", 5: "cap"}
	for _, e := range s.Rules {
		src := "*"
		if e.Key.Source != 0 {
			src = names[e.Key.Source]
		}
		fmt.Fprintf(&b, "  %-22s %-14s %-8s %-5s -> %v\n", nodeName(e.Key.Node), src, types[e.Key.Type], accesses[e.Key.Access], e.Val.Rule)
	}
	fmt.Fprintf(&b, "\npattern automaton: %d states\n", len(s.DFA)/256)
	b.WriteString("\nkinds:\n")
	for k, c := range s.Kinds {
		if c != (lsmKindCfg{}) {
			fmt.Fprintf(&b, "  %-12s rules %d block %d host-allow-list %d source-allow-list %d sourced %d posture %d execname %d patterns-from %d execname lengths %s\n",
				policy.Kind(k), c.HasRules, c.HasBlock, c.HostAllowlist, c.SrcAllowlist, c.HasSourced, c.Posture, c.HasNames, c.DfaStart, lengths(c.NameLens))
		}
	}
	return b.String()
}

// lengths spells out a len_bit set: "{3,6,63+}".
func lengths(bits uint64) string {
	var l []string
	for n := range 64 {
		if bits&lenBit(n) != 0 {
			l = append(l, strconv.Itoa(n))
		}
	}
	if len(l) > 0 && l[len(l)-1] == "63" {
		l[len(l)-1] = "63+"
	}
	return "{" + strings.Join(l, ",") + "}"
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name string
		rule policy.Rule
		want string
	}{
		{"a path on a syscall that takes none", policy.Rule{Kind: policy.KindSyscall, Match: policy.MatchSyscall, Syscalls: []string{"kill"},
			Path: "/tmp/x", Action: policy.ActionAudit}, "system call kill takes no path, so it cannot match path /tmp/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule.Origin = policy.Origin{File: "p.yaml", Line: 7, Field: "spec.x[0]"}
			set, err := policy.NewSet(1, policy.Postures{}, []*policy.Document{{File: "p.yaml", Name: "p", Rules: []policy.Rule{tt.rule}}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = Compile(set)
			if err == nil || !strings.Contains(err.Error(), "p.yaml:7: spec.x[0]: "+tt.want) {
				t.Errorf("error %v, want one naming p.yaml:7 and %q", err, tt.want)
			}
		})
	}
}

// TestKernelNumbering pins the C enums to the Go values they mirror.
func TestKernelNumbering(t *testing.T) {
	pairs := []struct {
		name     string
		c, goVal uint32
	}{
		{"NOMATCH", uint32(lsmKaVerdictKA_NOMATCH), uint32(match.NoMatch)},
		{"ALLOW", uint32(lsmKaVerdictKA_ALLOW), uint32(match.Allow)},
		{"AUDIT", uint32(lsmKaVerdictKA_AUDIT), uint32(match.Audit)},
		{"BLOCK", uint32(lsmKaVerdictKA_BLOCK), uint32(match.Block)},
		{"POSTURE_AUDIT", uint32(lsmKaVerdictKA_POSTURE_AUDIT), uint32(match.PostureAudit)},
		{"POSTURE_BLOCK", uint32(lsmKaVerdictKA_POSTURE_BLOCK), uint32(match.PostureBlock)},
		{"OP_EXEC", uint32(lsmKaOpKA_OP_EXEC), uint32(match.OpExec)},
		{"OP_OPEN_READ", uint32(lsmKaOpKA_OP_OPEN_READ), uint32(match.OpOpenRead)},
		{"OP_OPEN_WRITE", uint32(lsmKaOpKA_OP_OPEN_WRITE), uint32(match.OpOpenWrite)},
		{"OP_CREATE", uint32(lsmKaOpKA_OP_CREATE), uint32(match.OpCreate)},
		{"OP_UNLINK", uint32(lsmKaOpKA_OP_UNLINK), uint32(match.OpUnlink)},
		{"OP_RMDIR", uint32(lsmKaOpKA_OP_RMDIR), uint32(match.OpRmdir)},
		{"OP_MKDIR", uint32(lsmKaOpKA_OP_MKDIR), uint32(match.OpMkdir)},
		{"OP_RENAME", uint32(lsmKaOpKA_OP_RENAME), uint32(match.OpRename)},
		{"OP_LINK", uint32(lsmKaOpKA_OP_LINK), uint32(match.OpLink)},
		{"OP_SYMLINK", uint32(lsmKaOpKA_OP_SYMLINK), uint32(match.OpSymlink)},
		{"OP_TRUNCATE", uint32(lsmKaOpKA_OP_TRUNCATE), uint32(match.OpTruncate)},
		{"OP_CHMOD", uint32(lsmKaOpKA_OP_CHMOD), uint32(match.OpChmod)},
		{"OP_CHOWN", uint32(lsmKaOpKA_OP_CHOWN), uint32(match.OpChown)},
		{"OP_SOCKET_CREATE", uint32(lsmKaOpKA_OP_SOCKET_CREATE), uint32(match.OpSocketCreate)},
		{"OP_CONNECT", uint32(lsmKaOpKA_OP_CONNECT), uint32(match.OpConnect)},
		{"OP_ACCEPT", uint32(lsmKaOpKA_OP_ACCEPT), uint32(match.OpAccept)},
		{"OP_BIND", uint32(lsmKaOpKA_OP_BIND), uint32(match.OpBind)},
		{"OP_CAPABLE", uint32(lsmKaOpKA_OP_CAPABLE), uint32(match.OpCapable)},
		{"PROTO_ALL", uint32(lsmKaProtoKA_PROTO_ALL), uint32(policy.ProtoAll)},
		{"PROTO_TCP", uint32(lsmKaProtoKA_PROTO_TCP), uint32(policy.ProtoTCP)},
		{"PROTO_UDP", uint32(lsmKaProtoKA_PROTO_UDP), uint32(policy.ProtoUDP)},
		{"PROTO_ICMP", uint32(lsmKaProtoKA_PROTO_ICMP), uint32(policy.ProtoICMP)},
		{"PROTO_ICMPV6", uint32(lsmKaProtoKA_PROTO_ICMPV6), uint32(policy.ProtoICMPv6)},
		{"PROTO_RAW", uint32(lsmKaProtoKA_PROTO_RAW), uint32(policy.ProtoRaw)},
		{"PROTO_SCTP", uint32(lsmKaProtoKA_PROTO_SCTP), uint32(policy.ProtoSCTP)},
		{"PROTO_STREAM", uint32(lsmKaProtoKA_PROTO_STREAM), uint32(policy.ProtoStream)},
		{"PROTO_DGRAM", uint32(lsmKaProtoKA_PROTO_DGRAM), uint32(policy.ProtoDgram)},
		{"PROTO_RDM", uint32(lsmKaProtoKA_PROTO_RDM), uint32(policy.ProtoRDM)},
		{"PROTO_SEQPACKET", uint32(lsmKaProtoKA_PROTO_SEQPACKET), uint32(policy.ProtoSeqPacket)},
		{"PROTO_DCCP", uint32(lsmKaProtoKA_PROTO_DCCP), uint32(policy.ProtoDCCP)},
		{"PROTO_PACKET", uint32(lsmKaProtoKA_PROTO_PACKET), uint32(policy.ProtoPacket)},
		{"KIND_PROCESS", uint32(lsmKaKindKA_KIND_PROCESS), uint32(policy.KindProcess)},
		{"KIND_FILE", uint32(lsmKaKindKA_KIND_FILE), uint32(policy.KindFile)},
		{"KIND_NETWORK", uint32(lsmKaKindKA_KIND_NETWORK), uint32(policy.KindNetwork)},
		{"KIND_CAPABILITIES", uint32(lsmKaKindKA_KIND_CAPABILITIES), uint32(policy.KindCapabilities)},
		{"KIND_SYSCALL", uint32(lsmKaKindKA_KIND_SYSCALL), uint32(policy.KindSyscall)},
		{"ACTION allow index", 0, uint32(policy.ActionAllow) - 1},
		{"ACTION audit index", 1, uint32(policy.ActionAudit) - 1},
		{"ACTION block index", 2, uint32(policy.ActionBlock) - 1},
	}
	for _, p := range pairs {
		if p.c != p.goVal {
			t.Errorf("%s: C %d, Go %d", p.name, p.c, p.goVal)
		}
	}
	if n := len(lsmTestInput{}.Path); policy.MaxPathLen+1 != n {
		t.Errorf("policy.MaxPathLen+1 = %d, kernel path buffer %d", policy.MaxPathLen+1, n)
	}
}

func TestDecodeAlert(t *testing.T) {
	h := lsmAlert{Ts: 5e9, Gen: 7<<1 | 1, Tgid: 10, Pid: 11, Ppid: 1, Uid: 1000, OwnerUid: 0, Rule: 3,
		Verdict: uint8(match.Block), Op: uint8(match.OpExec), Kind: uint8(policy.KindProcess), PathLen: 10, ExeLen: 9}
	copy(h.Comm[:], "sleep")
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, h)
	buf.WriteString("/bin/sleep/bin/bash")
	boot := func(ns uint64) time.Time { return time.Unix(0, int64(ns)) }
	ev, err := decodeAlert(buf.Bytes(), boot)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Version != 7 || ev.RuleID != 3 || ev.Verdict != match.Block || ev.Path != "/bin/sleep" || ev.Exe != "/bin/bash" ||
		ev.PID != 10 || ev.TID != 11 || ev.PPID != 1 || ev.UID != 1000 || ev.Comm != "sleep" || !ev.Time.Equal(time.Unix(5, 0)) {
		t.Errorf("decoded %+v", ev)
	}
	for _, bad := range [][]byte{buf.Bytes()[:10], buf.Bytes()[:len(buf.Bytes())-1]} {
		if _, err := decodeAlert(bad, boot); err == nil {
			t.Errorf("decoded a truncated record of %d bytes", len(bad))
		}
	}
}
