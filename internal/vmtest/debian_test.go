package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDebianLayout(t *testing.T) {
	l := debianLayout()
	tests := []struct{ in, want string }{
		{"/bin/x", "/usr/bin/x"},
		{"/sbin/x", "/usr/sbin/x"},
		{"/lib/systemd/system/a.service", "/usr/lib/systemd/system/a.service"},
		{"/usr/bin/x", "/usr/bin/x"},
		{"/root/dist", "/root/dist"},
		{"/binary", "/binary"},
	}
	for _, tt := range tests {
		if got := l.path(tt.in); got != tt.want {
			t.Errorf("path(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestBuildSystemImage builds an image over a small root archive: the
// root's entries come first, unchanged, then the boot files and the
// caller's, at their merged-/usr paths; dynamic programs are allowed.
func TestBuildSystemImage(t *testing.T) {
	dir := t.TempDir()
	tree := writeTree(t, filepath.Join(dir, "root"), map[string]string{"usr/bin/true": "#!/bin/sh\n", "etc/os-release": "ID=debian\n"}, 0o644)
	if err := os.Symlink("usr/bin", filepath.Join(tree, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(tree, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(tree, "tmp"), os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	owned := os.Geteuid() == 0
	if owned {
		if err := os.Chown(filepath.Join(tree, "etc/os-release"), 1000, 100); err != nil {
			t.Fatal(err)
		}
	}
	rootArchive := filepath.Join(dir, "root.cpio")
	if err := writeTreeArchive(rootArchive, tree); err != nil {
		t.Fatal(err)
	}
	ini, err := BuildSystemImage(filepath.Join(dir, "image"), rootArchive, Guest{
		Files:    []File{{HostPath: "/bin/ls", GuestPath: "/bin/ls2"}},
		Commands: []Command{{Name: "x", Path: "/usr/bin/true", Args: []string{"a b"}}},
		Env:      []string{"GLOBAL=1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := imageEntries(t, ini.Path)
	for name, mode := range map[string]uint32{
		"usr/bin/true":                      0o100644,
		"bin":                               0o120777,
		"tmp":                               0o041777,
		"init":                              0o100755,
		"usr/bin/ls2":                       0o100755,
		"usr/lib/vmtest/run":                0o100755,
		"etc/systemd/system/vmtest.service": 0o100644,
		"etc/systemd/system/multi-user.target.wants/vmtest.service": 0o120777,
	} {
		if e, ok := got[name]; !ok || e.mode != mode {
			t.Errorf("%s: present %v, mode %o, want %o", name, ok, e.mode, mode)
		}
	}
	if e := got["etc/os-release"]; owned && (e.uid != 1000 || e.gid != 100) {
		t.Errorf("etc/os-release owned by %d:%d, want 1000:100 as in the tree", e.uid, e.gid)
	}
	if got["init"].data != systemInitScript || !strings.Contains(got["init"].data, "exec chroot . /lib/systemd/systemd") {
		t.Errorf("init:\n%s", got["init"].data)
	}
	runner := got["usr/lib/vmtest/run"].data
	for _, want := range []string{"export GLOBAL='1'\n", "export KUBEARMOR_VMTEST='1'\n", "'/usr/bin/uname' '-r'",
		"exec '/usr/bin/true' 'a b'", "exec 3>/dev/ttyS1", "systemctl poweroff --force --force\n"} {
		if !strings.Contains(runner, want) {
			t.Errorf("runner lacks %q:\n%s", want, runner)
		}
	}
	if strings.Contains(runner, "busybox") || strings.Contains(runner, "mount") {
		t.Errorf("the runner sets the guest up; systemd does that:\n%s", runner)
	}
	// The root's directories are not written again (their modes stay).
	n := 0
	b, _ := os.ReadFile(ini.Path)
	for _, e := range readCPIO(t, b) {
		if e.name == "usr" || e.name == "tmp" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("usr and tmp appear %d times in all, want once each (from the root)", n)
	}
	if _, err := BuildSystemImage(filepath.Join(dir, "libs"), rootArchive, Guest{Files: []File{
		{HostPath: "/bin/ls", GuestPath: "/usr/bin/ls3", Libraries: true},
	}}); err == nil {
		t.Error("host libraries over the guest's own: no error")
	}
	if _, err := BuildSystemImage(filepath.Join(dir, "clash"), rootArchive, Guest{Files: []File{
		{HostPath: "/bin/ls", GuestPath: systemRunner},
	}}); err == nil {
		t.Error("a file over the runner: no error")
	}
}
