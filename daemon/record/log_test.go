package record

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/daemon/monitor"
)

func TestFromMonitor(t *testing.T) {
	at := time.Date(2026, 11, 26, 6, 0, 0, 123456000, time.UTC)
	c := LogContext{HostName: "h1", Process: func(pid uint32) Process {
		return Process{Exe: map[uint32]string{7: "/usr/bin/bash", 42: "/usr/bin/curl"}[pid]}
	}}
	base := Log{Timestamp: at.Unix(), UpdatedTime: "2026-11-26T06:00:00.123456Z", HostName: "h1", HostPPID: 7, HostPID: 42,
		PPID: 7, PID: 42, UID: 1000, ProcessName: "/usr/bin/curl", ParentProcessName: "/usr/bin/bash", Type: "HostLog",
		Source: "/usr/bin/curl", Result: "Passed"}
	with := func(f func(*Log)) Log { l := base; f(&l); return l }
	server := netip.MustParseAddrPort("127.0.0.1:8080")
	peer := netip.MustParseAddrPort("127.0.0.1:40000")
	tests := []struct {
		name string
		ev   monitor.Event
		want Log
		ok   bool
	}{
		{"exec: the new program, its caller the source",
			monitor.Event{Type: monitor.Exec, Path: "/usr/bin/curl"},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data, l.Source = "Process", "/usr/bin/curl", "syscall=SYS_EXECVE", "/usr/bin/bash"
			}), true},
		{"open for reading",
			monitor.Event{Type: monitor.Open, Path: "/etc/hosts", Ret: 3, OpenFlags: unix.O_RDONLY | oLargefile | unix.O_CLOEXEC},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data = "File", "/etc/hosts", "syscall=SYS_OPEN flags=O_RDONLY|O_LARGEFILE|O_CLOEXEC"
			}), true},
		{"failed open: the error's text",
			monitor.Event{Type: monitor.Open, Path: "missing", Ret: -int32(unix.ENOENT), OpenFlags: unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data = "File", "missing", "syscall=SYS_OPEN flags=O_WRONLY|O_CREAT|O_TRUNC"
				l.Result = "No such file or directory"
			}), true},
		{"truncated path is said",
			monitor.Event{Type: monitor.Open, Path: "/x", Ret: 3, Truncated: true},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data = "File", "/x", "syscall=SYS_OPEN flags=O_RDONLY path=truncated"
			}), true},
		{"connect in progress passed: the peer",
			monitor.Event{Type: monitor.Connect, Ret: -int32(unix.EINPROGRESS), Family: unix.AF_INET, SockType: unix.SOCK_STREAM,
				Protocol: unix.IPPROTO_TCP, Remote: server},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data = "Network", "remoteip=127.0.0.1 port=8080 protocol=TCP", "syscall=SYS_CONNECT"
			}), true},
		{"refused connect",
			monitor.Event{Type: monitor.Connect, Ret: -int32(unix.ECONNREFUSED), Family: unix.AF_INET6, SockType: unix.SOCK_DGRAM,
				Protocol: unix.IPPROTO_UDP, Remote: netip.MustParseAddrPort("[::1]:53")},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data = "Network", "remoteip=::1 port=53 protocol=UDP", "syscall=SYS_CONNECT"
				l.Result = "Connection refused"
			}), true},
		{"accept: the peer, v4-mapped shown as v4",
			monitor.Event{Type: monitor.Accept, Ret: 5, Family: unix.AF_INET6, SockType: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP,
				Local: server, Remote: netip.AddrPortFrom(netip.AddrFrom16(peer.Addr().As16()), peer.Port())},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data = "Network", "remoteip=127.0.0.1 port=40000 protocol=TCP", "syscall=SYS_ACCEPT"
			}), true},
		{"bind: the local address",
			monitor.Event{Type: monitor.Bind, Family: unix.AF_INET, SockType: unix.SOCK_STREAM, Protocol: unix.IPPROTO_MPTCP, Local: server},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data = "Network", "localip=127.0.0.1 port=8080 protocol=MPTCP", "syscall=SYS_BIND"
			}), true},
		{"listen on a unix socket",
			monitor.Event{Type: monitor.Listen, Family: unix.AF_UNIX, SockType: unix.SOCK_STREAM},
			with(func(l *Log) {
				l.Operation, l.Resource, l.Data = "Network", "domain=AF_UNIX protocol=STREAM", "syscall=SYS_LISTEN"
			}), true},
		{"exit is not logged", monitor.Event{Type: monitor.Exit}, Log{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			ev.Time, ev.PID, ev.TID, ev.PPID, ev.UID = at, 42, 42, 7, 1000
			got, ok := FromMonitor(ev, c)
			if ok != tt.ok || got != tt.want {
				t.Errorf("FromMonitor(%+v)\n got %+v, %v\nwant %+v, %v", ev, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestLogJSONAndJournal(t *testing.T) {
	l := Log{Timestamp: 1, UpdatedTime: "t", HostName: "h", HostPID: 2, PID: 2, UID: 0, ProcessName: "/bin/true",
		Type: TypeHostLog, Source: "/bin/sh", Operation: "Process", Resource: "/bin/true", Result: ResultPassed}
	var buf bytes.Buffer
	if err := NewJSONWriter(&buf).Write(l); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Timestamp", "UpdatedTime", "HostName", "HostPID", "PPID", "UID", "ProcessName", "ParentProcessName",
		"Type", "Source", "Operation", "Resource", "Result"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %s: %s", k, buf.String())
		}
	}
	f := l.Fields()
	if f["Type"] != "HostLog" || f["ParentProcessName"] != "" || l.Priority() != 6 {
		t.Errorf("fields %v, priority %d", f, l.Priority())
	}
	if got, want := l.Summary(), "process /bin/true by /bin/sh (pid 2, uid 0): Passed"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}

func TestOpenFlags(t *testing.T) {
	tests := []struct {
		f    uint32
		want string
	}{
		{unix.O_RDONLY, "O_RDONLY"},
		{oLargefile | unix.O_CLOEXEC, "O_RDONLY|O_LARGEFILE|O_CLOEXEC"},
		{unix.O_RDWR | unix.O_CREAT | unix.O_EXCL, "O_RDWR|O_CREAT|O_EXCL"},
		{unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC, "O_WRONLY|O_APPEND|O_CLOEXEC"},
		{unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW, "O_RDONLY|O_DIRECTORY|O_NOFOLLOW"},
		{unix.O_RDWR | unix.O_TMPFILE, "O_RDWR|O_DIRECTORY|O_TMPFILE"},
	}
	for _, tt := range tests {
		if got := OpenFlags(tt.f); got != tt.want {
			t.Errorf("OpenFlags(%#o) = %q, want %q", tt.f, got, tt.want)
		}
	}
}
