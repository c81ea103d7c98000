package policy

import (
	"fmt"
	"strings"
)

// Linux ABI numbers used to classify sockets. They are fixed by the kernel's
// user-space ABI, so the pure policy code carries them rather than importing
// an OS-specific package.
const (
	afInet   = 2
	afInet6  = 10
	afPacket = 17

	sockStream    = 1
	sockDgram     = 2
	sockRaw       = 3
	sockRDM       = 4
	sockSeqPacket = 5
	sockDCCP      = 6
	sockPacket    = 10

	ipprotoICMP    = 1
	ipprotoTCP     = 6
	ipprotoUDP     = 17
	ipprotoDCCP    = 33
	ipprotoICMPv6  = 58
	ipprotoSCTP    = 132
	ipprotoUDPLite = 136
	ipprotoMPTCP   = 262
)

// Protocol is a matchProtocols value.
type Protocol uint8

// Protocols KubeArmor accepts in matchProtocols.
const (
	ProtoAll Protocol = iota + 1
	ProtoTCP
	ProtoUDP
	ProtoICMP
	ProtoICMPv6
	ProtoRaw
	ProtoSCTP
	ProtoStream
	ProtoDgram
	ProtoRDM
	ProtoSeqPacket
	ProtoDCCP
	ProtoPacket
)

var protocolNames = [...]string{
	ProtoAll: "all", ProtoTCP: "tcp", ProtoUDP: "udp", ProtoICMP: "icmp", ProtoICMPv6: "icmpv6",
	ProtoRaw: "raw", ProtoSCTP: "sctp", ProtoStream: "stream", ProtoDgram: "dgram", ProtoRDM: "rdm",
	ProtoSeqPacket: "seqpacket", ProtoDCCP: "dccp", ProtoPacket: "packet",
}

func (p Protocol) String() string {
	if int(p) < len(protocolNames) && protocolNames[p] != "" {
		return protocolNames[p]
	}
	return fmt.Sprintf("Protocol(%d)", uint8(p))
}

// ParseProtocol accepts a protocol name in any letter case.
func ParseProtocol(s string) (Protocol, bool) {
	for p, name := range protocolNames {
		if name != "" && strings.EqualFold(s, name) {
			return Protocol(p), true
		}
	}
	return 0, false
}

// Socket describes a socket by the three numbers given to socket(2).
type Socket struct {
	Family, Type, Protocol int
}

// IsNetwork reports whether network rules govern the socket at all: IPv4,
// IPv6 and packet sockets. Unix and netlink sockets are local plumbing that
// every service depends on, so "network: all" must not cut them off.
func (s Socket) IsNetwork() bool {
	return s.Family == afInet || s.Family == afInet6 || s.Family == afPacket
}

func (s Socket) inet() bool { return s.Family == afInet || s.Family == afInet6 }

// Matches reports whether the socket is of protocol p.
func (p Protocol) Matches(s Socket) bool {
	if !s.IsNetwork() {
		return false
	}
	switch p {
	case ProtoAll:
		return true
	case ProtoTCP:
		return s.inet() && s.Type == sockStream &&
			(s.Protocol == 0 || s.Protocol == ipprotoTCP || s.Protocol == ipprotoMPTCP)
	case ProtoUDP:
		return s.inet() && s.Type == sockDgram &&
			(s.Protocol == 0 || s.Protocol == ipprotoUDP || s.Protocol == ipprotoUDPLite)
	case ProtoICMP:
		return s.Family == afInet && (s.Type == sockDgram || s.Type == sockRaw) && s.Protocol == ipprotoICMP
	case ProtoICMPv6:
		return s.Family == afInet6 && (s.Type == sockDgram || s.Type == sockRaw) && s.Protocol == ipprotoICMPv6
	case ProtoRaw:
		return s.Type == sockRaw
	case ProtoSCTP:
		return s.inet() && s.Protocol == ipprotoSCTP
	case ProtoStream:
		return s.inet() && s.Type == sockStream
	case ProtoDgram:
		return s.inet() && s.Type == sockDgram
	case ProtoRDM:
		return s.inet() && s.Type == sockRDM
	case ProtoSeqPacket:
		return s.inet() && s.Type == sockSeqPacket
	case ProtoDCCP:
		return s.inet() && (s.Type == sockDCCP || s.Protocol == ipprotoDCCP)
	case ProtoPacket:
		return s.Family == afPacket || s.Type == sockPacket
	}
	return false
}

// Capability is a Linux capability number (CAP_CHOWN is 0).
type Capability uint8

var capabilityNames = [...]string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
	"setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
	"ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
	"lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
	"wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

// MaxCapability is the highest capability number this build knows.
const MaxCapability = Capability(len(capabilityNames) - 1)

func (c Capability) String() string {
	if int(c) < len(capabilityNames) {
		return capabilityNames[c]
	}
	return fmt.Sprintf("cap_%d", uint8(c))
}

// ParseCapability accepts "net_raw", "NET_RAW" or "CAP_NET_RAW".
func ParseCapability(s string) (Capability, bool) {
	name := strings.ToLower(s)
	name = strings.TrimPrefix(name, "cap_")
	for i, n := range capabilityNames {
		if n == name {
			return Capability(i), true
		}
	}
	return 0, false
}

// SyscallNumber returns the x86_64 number of a system call name.
func SyscallNumber(name string) (int, bool) {
	n, ok := syscallNumbers[strings.ToLower(name)]
	return n, ok
}

// syscallNames is syscallNumbers the other way round (the numbers are
// distinct: TestSyscallNumber); read-only.
var syscallNames = func() map[int]string {
	m := make(map[int]string, len(syscallNumbers))
	for name, n := range syscallNumbers {
		m[n] = name
	}
	return m
}()

// SyscallName returns the x86_64 name of a system call number.
func SyscallName(nr int) (string, bool) {
	name, ok := syscallNames[nr]
	return name, ok
}
