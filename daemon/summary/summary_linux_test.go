//go:build linux

package summary

import (
	"context"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/cilium/ebpf/rlimit"

	"github.com/kubearmor/kubearmor-host/daemon/monitor"
	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

func TestMain(m *testing.M) {
	os.Exit(testutils.RunWithLeakCheck(m))
}

// TestLoopbackSummary: a loopback server and a client, observed by the real
// monitors, make one ingress, one egress and one bind-point row.
func TestLoopbackSummary(t *testing.T) {
	testutils.RequireRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	m, err := monitor.Load(monitor.Options{Kinds: monitor.Network, Only: uint32(os.Getpid())})
	testutils.RequireFeature(t, "tracing programs (tp_btf)", err)
	defer m.Close()
	events := make(chan monitor.Event, 1024)
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(context.Background(), events) })

	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // plain TCP, whatever Go's default
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	for range 3 {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		c.Close()
	}
	ln.Close()
	m.Detach()
	wg.Wait()
	close(events)

	self, _ := os.Executable()
	sum := New(100)
	lc2 := record.LogContext{Process: func(uint32) record.Process { return record.Process{Exe: self} }}
	for ev := range events {
		if l, ok := record.FromMonitor(ev, lc2); ok {
			sum.Add(ev, l)
		}
	}
	loopback := func(rows []NetRow, want NetKey, count uint64) {
		t.Helper()
		if len(rows) != 1 || rows[0].NetKey != want || rows[0].Count != count {
			t.Errorf("%s rows %v, want one %v x%d", want.Direction, rows, want, count)
		}
	}
	lo := ln.Addr().(*net.TCPAddr).AddrPort().Addr()
	loopback(sum.Network(Bind), NetKey{Bind, "TCP", self, lo, port}, 1)
	loopback(sum.Network(Egress), NetKey{Egress, "TCP", self, lo, port}, 3)
	loopback(sum.Network(Ingress), NetKey{Ingress, "TCP", self, lo, port}, 3)
}
