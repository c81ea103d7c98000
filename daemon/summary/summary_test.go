package summary

import (
	"net/netip"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/monitor"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

func TestSummary(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	server := netip.MustParseAddrPort("10.0.0.1:443")
	peer := netip.MustParseAddrPort("[::ffff:10.0.0.9]:50000")
	tcp := monitor.Event{Family: 2, SockType: 1, Protocol: 6}
	ev := func(typ monitor.Type, sec int, local, remote netip.AddrPort, ret int32) monitor.Event {
		e := tcp
		e.Type, e.Time, e.Local, e.Remote, e.Ret = typ, t0.Add(time.Duration(sec)*time.Second), local, remote, ret
		return e
	}
	log := func(e monitor.Event) record.Log {
		l, _ := record.FromMonitor(e, record.LogContext{Process: func(uint32) record.Process { return record.Process{Exe: "/usr/sbin/nginx"} }})
		return l
	}
	s := New(3)
	for _, e := range []monitor.Event{
		ev(monitor.Bind, 1, server, netip.AddrPort{}, 0),
		ev(monitor.Listen, 1, server, netip.AddrPort{}, 0),
		ev(monitor.Accept, 2, server, peer, 5),
		ev(monitor.Accept, 3, server, netip.MustParseAddrPort("[::ffff:10.0.0.9]:50001"), 6), // same peer, new port: same row
		ev(monitor.Connect, 4, netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:5432"), -115),
		ev(monitor.Connect, 5, netip.MustParseAddrPort("10.0.0.1:40001"), netip.MustParseAddrPort("10.0.0.3:5432"), -111), // refused: no row
	} {
		s.Add(e, log(e))
	}
	want := map[Direction][]NetRow{
		Bind:    {{NetKey{Bind, "TCP", "/usr/sbin/nginx", server.Addr(), 443}, 1, t0.Add(time.Second)}},
		Ingress: {{NetKey{Ingress, "TCP", "/usr/sbin/nginx", netip.MustParseAddr("10.0.0.9"), 443}, 2, t0.Add(3 * time.Second)}},
		Egress:  {{NetKey{Egress, "TCP", "/usr/sbin/nginx", netip.MustParseAddr("10.0.0.2"), 5432}, 1, t0.Add(4 * time.Second)}},
	}
	for d, rows := range want {
		got := s.Network(d)
		if len(got) != len(rows) || (len(got) > 0 && got[0] != rows[0]) {
			t.Errorf("%s rows %v, want %v", d, got, rows)
		}
	}
	// Bounded: a fourth row evicts the least recently seen (the bind).
	e := ev(monitor.Connect, 6, netip.MustParseAddrPort("10.0.0.1:40002"), netip.MustParseAddrPort("10.0.0.4:53"), 0)
	s.Add(e, log(e))
	if len(s.Network(Bind)) != 0 || len(s.Network(Egress)) != 2 || s.Evicted() != 1 {
		t.Errorf("after a fourth row: bind %v, egress %v, evicted %d", s.Network(Bind), s.Network(Egress), s.Evicted())
	}
}

func TestActivity(t *testing.T) {
	s := New(10)
	exe := func(pid uint32) record.Process {
		return record.Process{Exe: map[uint32]string{1: "/bin/bash", 2: "/usr/bin/cat"}[pid]}
	}
	for i, e := range []monitor.Event{
		{Type: monitor.Exec, PID: 2, PPID: 1, Path: "/usr/bin/cat"},
		{Type: monitor.Open, PID: 2, PPID: 1, Path: "/etc/passwd", Ret: 3},
		{Type: monitor.Open, PID: 2, PPID: 1, Path: "/etc/passwd", Ret: -13},
		{Type: monitor.Exit, PID: 2, PPID: 1},
	} {
		e.Time = time.Unix(int64(i), 0)
		l, _ := record.FromMonitor(e, record.LogContext{Process: exe})
		s.Add(e, l)
	}
	files := s.Activity("File")
	if len(files) != 1 || files[0].Count != 2 || files[0].LastResult != "Permission denied" || files[0].Source != "/usr/bin/cat" {
		t.Errorf("file rows %+v", files)
	}
	procs := s.Activity("Process")
	if len(procs) != 1 || procs[0].Source != "/bin/bash" || procs[0].Resource != "/usr/bin/cat" || procs[0].Count != 1 {
		t.Errorf("process rows %+v", procs)
	}
}
