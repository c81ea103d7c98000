//go:build linux

package bpflsm

import (
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/policy"
)

// TestDirectoryCache checks that the directory cache speeds up decisions
// and never outlives the path it was made for: renaming a directory or
// moving a mount must not let a blocked file through.
func TestDirectoryCache(t *testing.T) {
	e, _ := loadEnforcer(t)
	root := t.TempDir()
	mk := func(p string) {
		t.Helper()
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	touch := func(p string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk(root + "/open")
	touch(root + "/open/secret")
	mk(root + "/m1/d")
	if err := unix.Mount("tmpfs", root+"/m1", "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(root+"/moved", unix.MNT_DETACH)
	defer unix.Unmount(root+"/m1", unix.MNT_DETACH)
	mk(root + "/m1/d")
	touch(root + "/m1/d/x")
	mk(root + "/moved")

	set := setOf(t, 2,
		policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: root + "/protected/secret"},
		policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: root + "/moved/d/x"},
		policy.Rule{Kind: policy.KindFile, Action: policy.ActionAudit, Match: policy.MatchPath, Path: root + "/other"},
	)
	if err := e.Apply(set); err != nil {
		t.Fatal(err)
	}
	defer e.Apply(setOf(t, 3))
	before := e.Stats().Cached
	for range 10 {
		if errno := openFile(root+"/open/secret", unix.O_RDONLY); errno != 0 {
			t.Fatalf("open before the rename: %v", errno)
		}
		if errno := openFile(root+"/m1/d/x", unix.O_RDONLY); errno != 0 {
			t.Fatalf("open before the move: %v", errno)
		}
	}
	if got := e.Stats().Cached - before; got < 16 {
		t.Errorf("%d of 20 repeated opens were decided from the cache, want at least 16", got)
	}

	// The cached directory becomes the protected one.
	if err := os.Rename(root+"/open", root+"/protected"); err != nil {
		t.Fatal(err)
	}
	if errno := openFile(root+"/protected/secret", unix.O_RDONLY); errno != syscall.EACCES {
		t.Errorf("open after renaming the cached directory: %v, want EACCES", errno)
	}
	// The mount holding a cached directory moves under the protected path.
	if err := unix.Mount(root+"/m1", root+"/moved", "", unix.MS_MOVE, ""); err != nil {
		t.Fatal(err)
	}
	if errno := openFile(root+"/moved/d/x", unix.O_RDONLY); errno != syscall.EACCES {
		t.Errorf("open after moving the mount: %v, want EACCES", errno)
	}
}
