package policy

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Socket families, types and protocols as Linux numbers them.
var sockets = map[string]Socket{
	"tcp4":        {2, 1, 0},
	"tcp4-proto":  {2, 1, 6},
	"tcp6":        {10, 1, 0},
	"mptcp":       {2, 1, 262},
	"udp4":        {2, 2, 0},
	"udp4-proto":  {2, 2, 17},
	"udp6":        {10, 2, 17},
	"udplite":     {2, 2, 136},
	"ping4":       {2, 2, 1}, // unprivileged ICMP socket
	"icmp4-raw":   {2, 3, 1}, // what ping uses with CAP_NET_RAW
	"ping6":       {10, 2, 58},
	"icmp6-raw":   {10, 3, 58},
	"ip-raw":      {2, 3, 255}, // IPPROTO_RAW
	"sctp-stream": {2, 1, 132},
	"sctp-seq":    {2, 5, 132},
	"sctp6-seq":   {10, 5, 132},
	"dccp":        {2, 6, 33},
	"dccp6-any":   {10, 6, 0},
	"rdm4":        {2, 4, 0},
	"packet-raw":  {17, 3, 768}, // htons(ETH_P_ALL)
	"packet-dgrm": {17, 2, 0},
	"sock-packet": {2, 10, 768}, // obsolete SOCK_PACKET on AF_INET
	"unix-stream": {1, 1, 0},
	"unix-dgram":  {1, 2, 0},
	"netlink-raw": {16, 3, 0},
	"netlink-dg":  {16, 2, 9},
}

func TestProtocolMatches(t *testing.T) {
	network := func() []string {
		var out []string
		for name, s := range sockets {
			if s.Family == 2 || s.Family == 10 || s.Family == 17 {
				out = append(out, name)
			}
		}
		return out
	}
	tests := []struct {
		p    Protocol
		want []string // the sockets it matches, every other one not
	}{
		{ProtoAll, network()},
		{ProtoTCP, []string{"tcp4", "tcp4-proto", "tcp6", "mptcp"}},
		{ProtoUDP, []string{"udp4", "udp4-proto", "udp6", "udplite"}},
		{ProtoICMP, []string{"ping4", "icmp4-raw"}},
		{ProtoICMPv6, []string{"ping6", "icmp6-raw"}},
		{ProtoRaw, []string{"icmp4-raw", "icmp6-raw", "ip-raw", "packet-raw"}},
		{ProtoSCTP, []string{"sctp-stream", "sctp-seq", "sctp6-seq"}},
		{ProtoStream, []string{"tcp4", "tcp4-proto", "tcp6", "mptcp", "sctp-stream"}},
		{ProtoDgram, []string{"udp4", "udp4-proto", "udp6", "udplite", "ping4", "ping6"}},
		{ProtoRDM, []string{"rdm4"}},
		{ProtoSeqPacket, []string{"sctp-seq", "sctp6-seq"}},
		{ProtoDCCP, []string{"dccp", "dccp6-any"}},
		{ProtoPacket, []string{"packet-raw", "packet-dgrm", "sock-packet"}},
		{Protocol(0), nil},
		{Protocol(200), nil},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			var got []string
			for name, s := range sockets {
				if tt.p.Matches(s) {
					got = append(got, name)
				}
			}
			sort.Strings(got)
			want := slices.Clone(tt.want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("%v matches %v, want %v", tt.p, got, want)
			}
		})
	}
}

func TestSocketIsNetwork(t *testing.T) {
	for name, s := range sockets {
		want := !strings.HasPrefix(name, "unix") && !strings.HasPrefix(name, "netlink")
		if got := s.IsNetwork(); got != want {
			t.Errorf("%s %+v IsNetwork() = %v, want %v", name, s, got, want)
		}
	}
}

func TestParseProtocol(t *testing.T) {
	tests := []struct {
		in   string
		want Protocol
		ok   bool
	}{
		{"all", ProtoAll, true},
		{"ALL", ProtoAll, true},
		{"tcp", ProtoTCP, true},
		{"TCP", ProtoTCP, true},
		{"udp", ProtoUDP, true},
		{"icmp", ProtoICMP, true},
		{"ICMPv6", ProtoICMPv6, true},
		{"raw", ProtoRaw, true},
		{"sctp", ProtoSCTP, true},
		{"stream", ProtoStream, true},
		{"dgram", ProtoDgram, true},
		{"rdm", ProtoRDM, true},
		{"seqpacket", ProtoSeqPacket, true},
		{"dccp", ProtoDCCP, true},
		{"packet", ProtoPacket, true},
		{"", 0, false},
		{"ip", 0, false},
		{"tcp6", 0, false},
		{" tcp", 0, false},
		{"Protocol(0)", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseProtocol(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseProtocol(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && got.String() != strings.ToLower(tt.in) {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), strings.ToLower(tt.in))
		}
	}
	for _, p := range []Protocol{0, 14, 255} {
		if want := "Protocol(" + strconv.Itoa(int(p)) + ")"; p.String() != want {
			t.Errorf("String() = %q, want %q", p.String(), want)
		}
	}
}

func TestParseCapability(t *testing.T) {
	tests := []struct {
		in   string
		want Capability
		ok   bool
	}{
		{"chown", 0, true},
		{"CHOWN", 0, true},
		{"net_bind_service", 10, true},
		{"net_raw", 13, true},
		{"NET_RAW", 13, true},
		{"cap_net_raw", 13, true},
		{"CAP_NET_RAW", 13, true},
		{"Cap_Net_Raw", 13, true},
		{"sys_ptrace", 19, true},
		{"sys_admin", 21, true},
		{"audit_read", 37, true},
		{"perfmon", 38, true},
		{"bpf", 39, true},
		{"checkpoint_restore", 40, true},
		{"", 0, false},
		{"cap_", 0, false},
		{"net raw", 0, false},
		{"netraw", 0, false},
		{"net-raw", 0, false},
		{"CAP_NET_RAW ", 0, false},
		{"cap_cap_net_raw", 0, false},
		{"all", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseCapability(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseCapability(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if MaxCapability != 40 {
		t.Errorf("MaxCapability = %d, want 40 (CAP_CHECKPOINT_RESTORE)", MaxCapability)
	}
	for c := Capability(0); c <= MaxCapability; c++ {
		for _, s := range []string{c.String(), strings.ToUpper(c.String()), "CAP_" + strings.ToUpper(c.String())} {
			if got, ok := ParseCapability(s); !ok || got != c {
				t.Errorf("ParseCapability(%q) = %v, %v; want %d", s, got, ok, c)
			}
		}
	}
	if s := Capability(41).String(); s != "cap_41" {
		t.Errorf("Capability(41).String() = %q", s)
	}
}

func TestSyscallNumber(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"read", 0, true},
		{"open", 2, true},
		{"OPEN", 2, true},
		{"Execve", 59, true},
		{"ptrace", 101, true},
		{"openat", 257, true},
		{"unlinkat", 263, true},
		{"execveat", 322, true},
		{"bpf", 321, true},
		{"openat2", 437, true},
		{"", 0, false},
		{"sys_open", 0, false},
		{"socketcall", 0, false}, // i386 only
		{"open ", 0, false},
	}
	for _, tt := range tests {
		got, ok := SyscallNumber(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("SyscallNumber(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	// The generated table maps names to distinct numbers, all lower-case.
	seen := map[int]string{}
	for name, n := range syscallNumbers {
		if name != strings.ToLower(name) {
			t.Errorf("syscall %q is not lower-case", name)
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("syscalls %q and %q both have number %d", prev, name, n)
		}
		seen[n] = name
	}
}

// TestSyscallName inverts SyscallNumber for every known call, and knows no
// name for a number no call has.
func TestSyscallName(t *testing.T) {
	for name, n := range syscallNumbers {
		if got, ok := SyscallName(n); !ok || got != name {
			t.Errorf("SyscallName(%d) = %q, %v; want %q", n, got, ok, name)
		}
	}
	for _, n := range []int{-1, 100000} {
		if got, ok := SyscallName(n); ok {
			t.Errorf("SyscallName(%d) = %q, want none", n, got)
		}
	}
}
