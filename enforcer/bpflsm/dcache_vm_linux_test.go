//go:build linux

package bpflsm

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/policy"
)

// TestDirectoryCache checks that the directory cache speeds up decisions
// and never outlives the path it was made for: renaming a directory or
// moving a mount must not let a blocked file through. It also holds the
// fast path for names no rule can match to the rules: a name as long as a
// blocked sibling's is still looked up, and a new set that names a file
// the fast path let through blocks it at once.
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
	mk(root + "/named")
	for _, n := range []string{"aaaa", "bbbb", "cc"} {
		touch(root + "/named/" + n)
	}

	rules := []policy.Rule{
		{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: root + "/protected/secret"},
		{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: root + "/moved/d/x"},
		{Kind: policy.KindFile, Action: policy.ActionAudit, Match: policy.MatchPath, Path: root + "/other"},
		{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: root + "/named/aaaa"},
	}
	if err := e.Apply(setOf(t, 2, rules...)); err != nil {
		t.Fatal(err)
	}
	defer e.Apply(setOf(t, 9))
	for range 3 {
		for _, c := range []struct {
			name string
			want syscall.Errno
		}{{"aaaa", syscall.EACCES}, {"bbbb", 0}, {"cc", 0}} {
			if errno := openFile(root+"/named/"+c.name, unix.O_RDONLY); errno != c.want {
				t.Fatalf("open named/%s: %v, want %v", c.name, errno, c.want)
			}
		}
	}
	cc := policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: root + "/named/cc"}
	if err := e.Apply(setOf(t, 3, append(slices.Clone(rules), cc)...)); err != nil {
		t.Fatal(err)
	}
	if errno := openFile(root+"/named/cc", unix.O_RDONLY); errno != syscall.EACCES {
		t.Fatalf("open named/cc once a new set names it: %v, want EACCES", errno)
	}
	if err := e.Apply(setOf(t, 4, rules...)); err != nil {
		t.Fatal(err)
	}
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

// TestFileCache checks the file cache, which lets a repeated open or exec
// of a file no rule can name skip even the directory cache, against what
// could give the cached file another path: a rename of the file itself, a
// hard link, a rename of its directory (Audit rules on the new names, since
// a Block rule would refuse the rename or link itself), and a new policy
// set.
func TestFileCache(t *testing.T) {
	e, _ := loadEnforcer(t)
	root := t.TempDir()
	dir := root + "/d"
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"plain", "other", "linked"} {
		if err := os.WriteFile(dir+"/"+n, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rule := func(a policy.Action, p string) policy.Rule {
		return policy.Rule{Kind: policy.KindFile, Action: a, Match: policy.MatchPath, Path: p}
	}
	rules := []policy.Rule{rule(policy.ActionAudit, dir+"/renamed"), rule(policy.ActionAudit, dir+"/link"),
		rule(policy.ActionAudit, root+"/moved/other")}
	if err := e.Apply(setOf(t, 2, rules...)); err != nil {
		t.Fatal(err)
	}
	defer e.Apply(setOf(t, 9))
	open := func(p string, want syscall.Errno) {
		t.Helper()
		if errno := openFile(p, unix.O_RDONLY); errno != want {
			t.Fatalf("open %s: %v, want %v", p, errno, want)
		}
	}
	// audited opens p and checks that a rule decided it, not a cache.
	audited := func(p string) {
		t.Helper()
		before := e.Stats().Audited
		open(p, 0)
		if got := e.Stats().Audited - before; got != 1 {
			t.Errorf("open %s: audited %d times, want once: a stale cache entry decided it", p, got)
		}
	}
	warm := func(paths ...string) {
		t.Helper()
		for range 5 {
			for _, p := range paths {
				open(p, 0)
			}
		}
	}
	warm(dir+"/plain", dir+"/other", dir+"/linked")
	before := e.Stats().Cached
	warm(dir + "/plain")
	if got := e.Stats().Cached - before; got != 5 {
		t.Errorf("%d of 5 repeated opens were decided from a cache, want 5", got)
	}

	// The cached file takes a name a rule names.
	if err := os.Rename(dir+"/plain", dir+"/renamed"); err != nil {
		t.Fatal(err)
	}
	audited(dir + "/renamed")
	// A cached file gets a second name a rule names.
	warm(dir + "/linked")
	if err := os.Link(dir+"/linked", dir+"/link"); err != nil {
		t.Fatal(err)
	}
	audited(dir + "/link")
	// The cached file's directory moves under a named path.
	warm(dir + "/other")
	if err := os.Rename(dir, root+"/moved"); err != nil {
		t.Fatal(err)
	}
	audited(root + "/moved/other")
	// A new set names a cached file.
	warm(root + "/moved/linked")
	if err := e.Apply(setOf(t, 3, append(slices.Clone(rules), rule(policy.ActionBlock, root+"/moved/linked"))...)); err != nil {
		t.Fatal(err)
	}
	open(root+"/moved/linked", syscall.EACCES)
}

// TestEpochsAfterChange checks that the caches' epochs move twice for a
// rename or a mount: in the LSM hook, before the change, and once it is
// done (the fexit programs), so that an entry cached by a walk between the
// two is stale; and only once when the rename is refused, as nothing moved.
func TestEpochsAfterChange(t *testing.T) {
	e, _ := loadEnforcer(t)
	root := t.TempDir()
	if err := e.Apply(setOf(t, 2, policy.Rule{Kind: policy.KindFile, Action: policy.ActionBlock, Match: policy.MatchPath, Path: root + "/denied"})); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"/a/sub"} {
		if err := os.MkdirAll(root+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(root+"/f", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func() [2]uint64 {
		var out [2]uint64
		for i := range out {
			if err := e.objs.Epoch.Lookup(uint32(i), &out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	tests := []struct {
		name             string
		change           func() error
		namespace, names uint64 // how far each epoch moves
	}{
		{"directory rename", func() error { return os.Rename(root+"/a", root+"/b") }, 2, 2},
		{"file rename", func() error { return os.Rename(root+"/f", root+"/g") }, 0, 2},
		{"refused rename", func() error {
			// Refused by the hook itself: vfs_rename never runs.
			if err := os.Rename(root+"/b", root+"/denied"); !errors.Is(err, syscall.EACCES) {
				return fmt.Errorf("rename to a blocked name: %v, want EACCES", err)
			}
			return nil
		}, 1, 1},
		{"mount", func() error { return unix.Mount("tmpfs", root+"/b/sub", "tmpfs", 0, "") }, 2, 2},
		{"unmount", func() error { return unix.Unmount(root+"/b/sub", 0) }, 2, 2},
	}
	for _, tt := range tests {
		before := read()
		if err := tt.change(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		after := read()
		if got := [2]uint64{after[0] - before[0], after[1] - before[1]}; got != [2]uint64{tt.namespace, tt.names} {
			t.Errorf("%s moved the epochs by %v, want [namespace names] = [%d %d]", tt.name, got, tt.namespace, tt.names)
		}
	}
}
