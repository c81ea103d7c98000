package proctree

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeProc makes a procfs-like tree: pid -> (exe, stat line).
func fakeProc(t *testing.T, procs map[uint32][2]string) string {
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(int(pid)))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if p[0] != "" {
			if err := os.Symlink(p[0], filepath.Join(dir, "exe")); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(p[1]), 0o644); err != nil {
			t.Fatal(err)
		}
		if pid == 50 {
			os.WriteFile(filepath.Join(dir, "status"), []byte("Name:\tbash\nUid:\t1000\t1000\t1000\t1000\n"), 0o644)
			os.Symlink("/home/u", filepath.Join(dir, "cwd"))
		}
	}
	return root
}

func TestTree(t *testing.T) {
	root := fakeProc(t, map[uint32][2]string{
		1:  {"/usr/lib/systemd/systemd", "1 (systemd) S 0 1 1 0 -1"},
		2:  {"", "2 (kthreadd) S 0 0 0 0 -1"},
		50: {"/usr/bin/bash", "50 (my (odd) sh) S 1 50 50 34817 -1"},
	})
	tr := New(3, root)
	tr.Seed()
	if tr.Len() != 2 {
		t.Fatalf("seeded %d processes, want 2 (a kernel thread has no exe)", tr.Len())
	}
	if p, ok := tr.Lookup(50); !ok || p.Exe != "/usr/bin/bash" || p.PPID != 1 || p.TTY != "pts1" || p.UID != 1000 || p.Cwd != "/home/u" {
		t.Errorf("Lookup(50) = %+v, %v", p, ok)
	}
	tr.Exec(Proc{PID: 60, PPID: 50, Exe: "/usr/bin/curl", Cwd: "/tmp", TTY: "pts1", UID: 1000})
	if p, _ := tr.Lookup(60); p.Exe != "/usr/bin/curl" || p.PPID != 50 || p.Cwd != "/tmp" {
		t.Errorf("after exec: %+v", p)
	}
	// Full at 3: the next process evicts the longest unseen (1).
	tr.Exec(Proc{PID: 70, PPID: 60, Exe: "/usr/bin/sleep"})
	if tr.Len() != 3 || tr.Evicted() != 1 {
		t.Errorf("len %d, evicted %d; want 3, 1", tr.Len(), tr.Evicted())
	}
	if _, ok := tr.procs.Get(1); ok {
		t.Errorf("pid 1, the longest unseen, was kept")
	}
	// Still found through procfs, and remembered again.
	if p, ok := tr.Lookup(1); !ok || p.Exe != "/usr/lib/systemd/systemd" {
		t.Errorf("Lookup(1) from procfs = %+v, %v", p, ok)
	}
	// A fork is its parent until it execs.
	tr.Fork(80, 60, 1001)
	if p, _ := tr.Lookup(80); p.Exe != "/usr/bin/curl" || p.PPID != 60 || p.UID != 1001 || p.Cwd != "/tmp" || p.TTY != "pts1" {
		t.Errorf("after fork: %+v", p)
	}
	tr.Exit(70)
	if _, ok := tr.Lookup(70); ok {
		t.Errorf("an exited process not in procfs is still known")
	}
	if _, ok := tr.Lookup(99); ok {
		t.Errorf("an unknown pid was found")
	}
}

func TestTTYName(t *testing.T) {
	tests := []struct {
		nr   uint64
		want string
	}{
		{0, ""},
		{34816, "pts0"},                // 136:0
		{34817 + 255, "pts256"},        // 137:0
		{1025, "tty1"},                 // 4:1
		{1088, "ttyS0"},                // 4:64
		{(1 << 20) | 0x1234, "18:308"}, // an odd one, by numbers (minor bits 8-19 from bits 20-31)
	}
	for _, tt := range tests {
		if got := ttyName(tt.nr); got != tt.want {
			t.Errorf("ttyName(%d) = %q, want %q", tt.nr, got, tt.want)
		}
	}
}
