package record

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/daemon/monitor"
)

// TypeHostLog is the Type of visibility records.
const TypeHostLog = "HostLog"

// Log is one observed operation (visibility), as KubeArmor's Log message.
type Log struct {
	Timestamp         int64  `json:"Timestamp"`
	UpdatedTime       string `json:"UpdatedTime"`
	HostName          string `json:"HostName"`
	HostPPID          int32  `json:"HostPPID"`
	HostPID           int32  `json:"HostPID"`
	PPID              int32  `json:"PPID"`
	PID               int32  `json:"PID"`
	UID               int32  `json:"UID"`
	ProcessName       string `json:"ProcessName"`
	ParentProcessName string `json:"ParentProcessName"`
	Type              string `json:"Type"`
	Source            string `json:"Source"`
	Operation         string `json:"Operation"`
	Resource          string `json:"Resource"`
	Data              string `json:"Data,omitempty"`
	Result            string `json:"Result"`
	Cwd               string `json:"Cwd,omitempty"`      // the process's working directory when it exec'd
	TTY               string `json:"TTY,omitempty"`      // its controlling terminal ("pts0")
	UserName          string `json:"UserName,omitempty"` // UID's name in the passwd file (not a KubeArmor field)
}

// Process is what the daemon knows of a process beyond an event.
type Process struct {
	Exe string // its executable
	Cwd string // its working directory when it exec'd
	TTY string // its controlling terminal
}

// LogContext is what an observed event needs to become a Log.
type LogContext struct {
	HostName string
	// Process describes a live process, best effort ("" when unknown).
	Process func(pid uint32) Process
	// UserName names a uid, best effort ("" when unknown); nil: none.
	UserName func(uid uint32) string
}

// FromMonitor builds the Log of an observed event; ok is false for events
// that are not logged themselves (exits, which only end a process).
func FromMonitor(ev monitor.Event, c LogContext) (Log, bool) {
	l := Log{
		Timestamp:   ev.Time.Unix(),
		UpdatedTime: UpdatedTime(ev.Time),
		HostName:    c.HostName,
		HostPPID:    int32(ev.PPID),
		HostPID:     int32(ev.PID),
		PPID:        int32(ev.PPID),
		PID:         int32(ev.PID),
		UID:         int32(ev.UID),
		Type:        TypeHostLog,
		Result:      result(ev.Ret),
	}
	proc := func(pid uint32) Process {
		if c.Process == nil {
			return Process{}
		}
		return c.Process(pid)
	}
	self := proc(ev.PID)
	l.ProcessName, l.ParentProcessName = self.Exe, proc(ev.PPID).Exe
	l.Cwd, l.TTY = self.Cwd, self.TTY
	if c.UserName != nil {
		l.UserName = c.UserName(ev.UID)
	}
	l.Source = l.ProcessName
	switch ev.Type {
	case monitor.Exec:
		// The new program speaks for itself; its caller is the Source.
		l.Operation, l.Resource, l.Data = "Process", ev.Path, "syscall=SYS_EXECVE"
		l.ProcessName, l.Source, l.Result = ev.Path, l.ParentProcessName, ResultPassed
		l.Cwd, l.TTY = ev.Cwd, ev.TTY
	case monitor.Open:
		l.Operation, l.Resource = "File", ev.Path
		l.Data = "syscall=SYS_OPEN flags=" + OpenFlags(ev.OpenFlags)
	case monitor.Connect, monitor.Accept, monitor.Bind, monitor.Listen:
		l.Operation = "Network"
		l.Resource = netResource(ev)
		l.Data = "syscall=SYS_" + strings.ToUpper(ev.Type.String())
	default:
		return Log{}, false
	}
	if ev.Truncated {
		l.Data += " path=truncated"
	}
	if l.Source == "" {
		l.Source = ev.Comm
	}
	return l, true
}

// result renders a system call's result as KubeArmor does: Passed, or the
// error's text.
func result(ret int32) string {
	if ret >= 0 || ret == -int32(unix.EINPROGRESS) {
		return ResultPassed
	}
	msg := syscall.Errno(-ret).Error()
	if msg == "" {
		return "errno " + strconv.Itoa(int(-ret))
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// netResource describes an endpoint: the peer for connect and accept, the
// local address for bind and listen.
func netResource(ev monitor.Event) string {
	proto := ProtocolName(ev.SockType, ev.Protocol)
	switch ev.Type {
	case monitor.Connect, monitor.Accept:
		if !ev.Remote.IsValid() {
			return fmt.Sprintf("domain=%s protocol=%s", familyName(ev.Family), proto)
		}
		return fmt.Sprintf("remoteip=%s port=%d protocol=%s", ev.Remote.Addr().Unmap(), ev.Remote.Port(), proto)
	default:
		if !ev.Local.IsValid() {
			return fmt.Sprintf("domain=%s protocol=%s", familyName(ev.Family), proto)
		}
		return fmt.Sprintf("localip=%s port=%d protocol=%s", ev.Local.Addr().Unmap(), ev.Local.Port(), proto)
	}
}

// ProtocolName names a socket's protocol as policies do (matchProtocols).
func ProtocolName(sockType, proto uint16) string {
	switch proto {
	case unix.IPPROTO_TCP:
		return "TCP"
	case unix.IPPROTO_UDP:
		return "UDP"
	case unix.IPPROTO_ICMP:
		return "ICMP"
	case unix.IPPROTO_ICMPV6:
		return "ICMPv6"
	case unix.IPPROTO_SCTP:
		return "SCTP"
	case unix.IPPROTO_MPTCP:
		return "MPTCP"
	}
	switch sockType {
	case unix.SOCK_RAW:
		return "RAW"
	case unix.SOCK_STREAM:
		return "STREAM"
	case unix.SOCK_DGRAM:
		return "DGRAM"
	}
	return strconv.Itoa(int(proto))
}

func familyName(f uint8) string {
	switch f {
	case unix.AF_INET:
		return "AF_INET"
	case unix.AF_INET6:
		return "AF_INET6"
	case unix.AF_UNIX:
		return "AF_UNIX"
	case unix.AF_NETLINK:
		return "AF_NETLINK"
	case unix.AF_PACKET:
		return "AF_PACKET"
	}
	return strconv.Itoa(int(f))
}

// oLargefile is the kernel's O_LARGEFILE on x86-64; user space's is 0
// there, but the kernel sets it on every file a 64-bit process opens.
const oLargefile = 0o100000

// OpenFlags renders open(2) flags as "O_RDONLY|O_CLOEXEC".
func OpenFlags(f uint32) string {
	names := []string{[...]string{"O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE"}[f&unix.O_ACCMODE]}
	for _, b := range []struct {
		bit  uint32
		name string
	}{
		{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_NOCTTY, "O_NOCTTY"}, {unix.O_TRUNC, "O_TRUNC"},
		{unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"}, {unix.O_DSYNC, "O_DSYNC"},
		{unix.O_DIRECT, "O_DIRECT"}, {oLargefile, "O_LARGEFILE"}, {unix.O_DIRECTORY, "O_DIRECTORY"},
		{unix.O_NOFOLLOW, "O_NOFOLLOW"}, {unix.O_NOATIME, "O_NOATIME"}, {unix.O_CLOEXEC, "O_CLOEXEC"},
		{unix.O_PATH, "O_PATH"}, {unix.O_TMPFILE &^ unix.O_DIRECTORY, "O_TMPFILE"},
	} {
		if f&b.bit == b.bit {
			names = append(names, b.name)
			f &^= b.bit
		}
	}
	return strings.Join(names, "|")
}

// Priority: logs are informational.
func (l Log) Priority() int { return 6 }

// Summary is the one-line MESSAGE for journald.
func (l Log) Summary() string {
	return fmt.Sprintf("%s %s by %s (pid %d, uid %s): %s", strings.ToLower(l.Operation), l.Resource, l.Source, l.HostPID,
		uidName(l.UID, l.UserName), l.Result)
}

// Fields returns every field under its KubeArmor name; empty ones are left
// out.
func (l Log) Fields() map[string]string {
	return nonEmpty(map[string]string{
		"Timestamp":         strconv.FormatInt(l.Timestamp, 10),
		"UpdatedTime":       l.UpdatedTime,
		"HostName":          l.HostName,
		"HostPPID":          strconv.Itoa(int(l.HostPPID)),
		"HostPID":           strconv.Itoa(int(l.HostPID)),
		"PPID":              strconv.Itoa(int(l.PPID)),
		"PID":               strconv.Itoa(int(l.PID)),
		"UID":               strconv.Itoa(int(l.UID)),
		"ProcessName":       l.ProcessName,
		"ParentProcessName": l.ParentProcessName,
		"Type":              l.Type,
		"Source":            l.Source,
		"Operation":         l.Operation,
		"Resource":          l.Resource,
		"Data":              l.Data,
		"Result":            l.Result,
		"Cwd":               l.Cwd,
		"TTY":               l.TTY,
		"UserName":          l.UserName,
	})
}
