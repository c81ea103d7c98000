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
	}
	return root
}

func TestTree(t *testing.T) {
	root := fakeProc(t, map[uint32][2]string{
		1:  {"/usr/lib/systemd/systemd", "1 (systemd) S 0 1 1 0 -1"},
		2:  {"", "2 (kthreadd) S 0 0 0 0 -1"},
		50: {"/usr/bin/bash", "50 (my (odd) sh) S 1 50 50 0 -1"},
	})
	tr := New(3, root)
	tr.Seed()
	if tr.Len() != 2 {
		t.Fatalf("seeded %d processes, want 2 (a kernel thread has no exe)", tr.Len())
	}
	if p, ok := tr.Lookup(50); !ok || p.Exe != "/usr/bin/bash" || p.PPID != 1 {
		t.Errorf("Lookup(50) = %+v, %v", p, ok)
	}
	tr.Exec(60, 50, "/usr/bin/curl")
	if p, _ := tr.Lookup(60); p.Exe != "/usr/bin/curl" || p.PPID != 50 {
		t.Errorf("after exec: %+v", p)
	}
	// Full at 3: the next process evicts the longest unseen (1).
	tr.Exec(70, 60, "/usr/bin/sleep")
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
	tr.Exit(70)
	if _, ok := tr.Lookup(70); ok {
		t.Errorf("an exited process not in procfs is still known")
	}
	if _, ok := tr.Lookup(99); ok {
		t.Errorf("an unknown pid was found")
	}
}
