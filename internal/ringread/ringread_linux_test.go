//go:build linux

package ringread

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// TestEach writes records from a BPF program that asks for no wakeup, as
// the batching programs do below their threshold: the reader still sees
// each one by polling, in order, and returns nil once the ring is flushed.
func TestEach(t *testing.T) {
	testutils.RequireRoot(t)
	rb, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096})
	testutils.RequireFeature(t, "BPF ring buffer", err)
	defer rb.Close()
	// r1 = ring, r2 = &value on the stack, r3 = 8, r4 = BPF_RB_NO_WAKEUP.
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SocketFilter,
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R6, asm.R1, 0, asm.Word), // skb->len: the value written
			asm.StoreMem(asm.RFP, -8, asm.R6, asm.DWord),
			asm.LoadMapPtr(asm.R1, rb.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			asm.Mov.Imm(asm.R3, 8),
			asm.Mov.Imm(asm.R4, 1),
			asm.FnRingbufOutput.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
		License: "GPL",
	})
	testutils.RequireFeature(t, "socket filter program", err)
	defer prog.Close()
	rd, err := ringbuf.NewReader(rb)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for n := range 3 {
		in := make([]byte, 14+n+1) // skb->len counts what follows the Ethernet header: n+1
		if _, err := prog.Run(&ebpf.RunOptions{Data: in}); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	done := make(chan error, 1)
	go func() {
		done <- Each(rd, 5*time.Millisecond, func(raw []byte) {
			got = append(got, binary.NativeEndian.Uint64(raw))
			if len(got) == 3 {
				rd.Flush()
			}
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("records not read: the reader did not poll")
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("read %v, want [1 2 3]", got)
	}
}
