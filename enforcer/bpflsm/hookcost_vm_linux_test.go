package bpflsm

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// BenchmarkHookCost measures what the file_open program (and the
// mmap_file program, for an executable mapping) itself costs per call, from the kernel's own accounting of BPF run time (the trampoline
// around it is not in it), and how the enforcer decided: on the directory
// cache's fast path or by a walk. On the instruction-counting clock a
// nanosecond is one guest instruction, so the table says how many
// instructions each check takes; it points at where BenchmarkEnforcement's
// ratios come from.
func BenchmarkHookCost(b *testing.B) {
	testutils.RequireGuest(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Fatalf("enable BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	unnamed, named := "/etc/bench-unnamed", "/etc/bench-named"
	for _, p := range []string{unnamed, named} {
		if err := os.WriteFile(p, []byte("x\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		defer os.Remove(p)
	}
	const calls = 5000
	type row struct {
		name  string
		cells []string
	}
	var rows []row
	measure := func(name string, prog *ebpf.Program, e *Enforcer) {
		r := row{name: name}
		for _, file := range []string{unnamed, named} {
			for range calls / 5 { // warm the caches and the emulator's translations
				openOrFail(b, file)
			}
			var before enforcer.Stats
			if e != nil {
				before = e.Stats()
			}
			s0, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			for range calls {
				openOrFail(b, file)
			}
			s1, err := prog.Stats()
			if err != nil {
				b.Fatal(err)
			}
			n := s1.RunCount - s0.RunCount
			cell := fmt.Sprintf("%.0f ns (%d calls)", float64(s1.Runtime-s0.Runtime)/float64(n), n)
			if e != nil {
				after := e.Stats()
				cell += fmt.Sprintf(", %d decisions, %d cached", after.Decisions-before.Decisions, after.Cached-before.Cached)
			}
			r.cells = append(r.cells, cell)
		}
		rows = append(rows, r)
	}

	empty, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: "file_open", License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := link.AttachLSM(link.LSMOptions{Program: empty})
	if err != nil {
		b.Fatal(err)
	}
	measure("empty file_open LSM program", empty, nil)
	l.Close()
	empty.Close()

	// The executable-mapping check: mmap PROT_EXEC of a program file no
	// rule names, as the loader maps a library (each call also munmaps).
	var maps []row
	mapOnce := func() {
		fd, err := unix.Open("/bin/busybox", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		m, err := unix.Mmap(fd, 0, 4096, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
		unix.Close(fd)
		if err != nil {
			b.Fatalf("mmap: %v", err)
		}
		unix.Munmap(m)
	}
	measureMap := func(name string, prog *ebpf.Program) {
		for range calls / 5 {
			mapOnce()
		}
		s0, err := prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		for range calls {
			mapOnce()
		}
		s1, err := prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		n := s1.RunCount - s0.RunCount
		maps = append(maps, row{name: name, cells: []string{fmt.Sprintf("%.0f ns (%d calls)", float64(s1.Runtime-s0.Runtime)/float64(n), n)}})
	}
	emptyMap, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.LSM, AttachType: ebpf.AttachLSMMac, AttachTo: "mmap_file", License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		b.Fatal(err)
	}
	if l, err = link.AttachLSM(link.LSMOptions{Program: emptyMap}); err != nil {
		b.Fatal(err)
	}
	measureMap("empty mmap_file LSM program", emptyMap)
	l.Close()
	emptyMap.Close()

	for _, n := range []int{0, 1000, 10000} {
		e, err := Load(Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Apply(benchRules(b, n, named)); err != nil {
			e.Close()
			b.Fatal(err)
		}
		measure(fmt.Sprintf("kubearmor, %d rules", n), e.objs.FileOpen, e)
		measureMap(fmt.Sprintf("kubearmor, %d rules", n), e.objs.MmapFile)
		e.Close()
	}

	var out strings.Builder
	fmt.Fprintf(&out, "%s\nfile_open program run time per call (the kernel's BPF statistics; on the counting clock 1 ns is one instruction), %d open/close each:\n\n", benchBegin, calls)
	out.WriteString("| configuration | a file no rule names | a file an Audit rule names |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&out, "| %s | %s |\n", r.name, strings.Join(r.cells, " | "))
	}
	fmt.Fprintf(&out, "\nmmap_file program run time per call, an executable mapping of a file no rule names, %d mmap/munmap each:\n\n", calls)
	out.WriteString("| configuration | mmap PROT_EXEC |\n|---|---|\n")
	for _, r := range maps {
		fmt.Fprintf(&out, "| %s | %s |\n", r.name, strings.Join(r.cells, " | "))
	}
	fmt.Fprintf(&out, "%s\n", benchEnd)
	fmt.Println(out.String())
}

func openOrFail(t testing.TB, path string) {
	if errno := openFile(path, unix.O_RDONLY); errno != 0 {
		t.Fatalf("open %s: %v", path, errno)
	}
}
