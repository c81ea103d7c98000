package overlaylayout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

func release(t *testing.T) string {
	t.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(uts.Release[:])
}

// TestFind: where the running kernel has overlay (built in, as on the
// development host, or loaded, as in the guests), its layout is found and
// is plausible: the upper dentry follows the embedded inode.
func TestFind(t *testing.T) {
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fs), "\toverlay\n") {
		if testutils.InGuest() {
			t.Fatal("the guest has no overlay (the harness loads the module)")
		}
		t.Skip("this kernel has no overlay file system loaded")
	}
	l, err := Find("/lib/modules", release(t))
	if err != nil {
		t.Fatal(err)
	}
	if l.Upper <= l.Inode {
		t.Errorf("layout %+v: the upper dentry is not after the inode", l)
	}
	t.Logf("struct ovl_inode: vfs_inode at %d, __upperdentry at %d", l.Inode, l.Upper)
}

// TestModuleFile reads the layout from the module file, plain and
// xz-compressed and found through modules.dep, as a kernel that has not
// loaded overlay yet needs, and holds it to the loaded module's types. The
// guests load overlay from /lib/modules/<release>/overlay.ko.
func TestModuleFile(t *testing.T) {
	testutils.RequireGuest(t)
	rel := release(t)
	loaded, err := btf.LoadKernelModuleSpec("overlay")
	if err != nil {
		t.Fatalf("the loaded module's BTF: %v", err)
	}
	want, err := fromSpec(loaded)
	if err != nil {
		t.Fatal(err)
	}
	base, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join("/lib/modules", rel, "overlay.ko")
	// A module directory of our own, with the module compressed.
	dir := filepath.Join(t.TempDir(), rel)
	if err := os.MkdirAll(filepath.Join(dir, "kernel/fs/overlayfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "kernel/fs/overlayfs/overlay.ko.xz"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := xz.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dep := "kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz\nkernel/fs/overlayfs/overlay.ko.xz:\n"
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	found, err := moduleFile(dir)
	if err != nil || found != filepath.Join(dir, "kernel/fs/overlayfs/overlay.ko.xz") {
		t.Fatalf("moduleFile = %q, %v", found, err)
	}
	for _, file := range []string{plain, found} {
		spec, err := fromModuleFile(file, base)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		got, err := fromSpec(spec)
		if err != nil || got != want {
			t.Errorf("%s: layout %+v, %v; the loaded module's %+v", file, got, err, want)
		}
	}
	if _, err := moduleFile(t.TempDir()); err != ErrNoOverlay {
		t.Errorf("a directory without modules.dep: %v, want ErrNoOverlay", err)
	}
}
