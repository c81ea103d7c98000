package vmtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestShellQuote(t *testing.T) {
	for _, s := range []string{"", "plain", "with space", "it's", `"double" $HOME \back` + "`tick`", "new\nline", "-test.run=^TestA$/b|c"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+shellQuote(s)).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if string(out) != s {
			t.Errorf("shellQuote(%q) round-trips to %q", s, out)
		}
	}
}

func TestGuestPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/kubearmor", "/bin/kubearmor"},
		{"/usr/sbin/x", "/bin/x"},
		{"/sbin/x", "/bin/x"},
		{"/usr/bin", "/bin"},
		{"/usr/local/bin/karmor", "/usr/local/bin/karmor"},
		{"/var/run/x", "/run/x"},
		{"/etc/kubearmor/policies/a.yaml", "/etc/kubearmor/policies/a.yaml"},
		{"/usr/binary", "/usr/binary"},
	}
	l := busyboxLayout()
	for _, tt := range tests {
		if got := l.path(tt.in); got != tt.want {
			t.Errorf("path(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestInitScript(t *testing.T) {
	script, err := initScript([]Command{
		{Name: "a", Path: "/vmtest/a.test", Args: []string{"-test.run=A B"}, Dir: "/src/x", Env: []string{"FOO=it's"}},
		{Name: "b", Path: "/bin/true"},
	}, []string{"GLOBAL=1"}, "n0nce")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"/bin/busybox --install /bin\n", // hard links, not -s
		"export KUBEARMOR_VMTEST='1'\n",
		"export GLOBAL='1'\n",
		"m securityfs /sys/kernel/security\n",
		"m bpf /sys/fs/bpf\n",
		"m tracefs /sys/kernel/tracing\n",
		"m tmpfs /tmp",
		"m tmpfs /run",
		"ip link set lo up",
		"VMTEST_NONCE=n0nce\n",
		"mark begin 0\n(\nmkdir -p '/src/x' && cd '/src/x' || exit 125\nexport FOO='it'\\''s'\nexec '/vmtest/a.test' '-test.run=A B'\n) >&3 2>&3 </dev/null\nmark end 0 $?\n",
		"mark begin 1\n(\nmkdir -p '/' && cd '/' || exit 125\nexec '/bin/true'\n",
		"mark done\n",
		"poweroff -f\n",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("init script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "--install -s") {
		t.Error("applets must be hard links, not symlinks")
	}
	if out, err := exec.Command("/bin/sh", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v: %s", err, out)
	}
}

func TestInitScriptErrors(t *testing.T) {
	tests := []struct {
		name string
		cmds []Command
		env  []string
	}{
		{"relative program", []Command{{Name: "x", Path: "bin/true"}}, nil},
		{"bad env", nil, []string{"NOEQUALS"}},
		{"bad env key", nil, []string{"A-B=1"}},
		{"bad command env", []Command{{Name: "x", Path: "/bin/true", Env: []string{"1X=2"}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := initScript(tt.cmds, tt.env, "n"); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestCheckStatic(t *testing.T) {
	text := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkStatic(text); err != nil {
		t.Errorf("script: %v", err)
	}
	if _, err := os.Stat(BusyboxPath); err == nil {
		if err := checkStatic(BusyboxPath); err != nil {
			t.Errorf("%s: %v", BusyboxPath, err)
		}
	}
	if err := checkStatic("/bin/ls"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/ls: %v, want dynamically linked", err)
	}
}

func TestBuildInitramfs(t *testing.T) {
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skipf("needs busybox-static: %v", err)
	}
	dir := t.TempDir()
	tree := writeTree(t, filepath.Join(dir, "tree"), map[string]string{"a.txt": "A", "sub/b.txt": "B"}, 0o600)
	if err := os.Symlink("a.txt", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(dir, "single")
	if err := os.WriteFile(single, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ini, err := BuildInitramfs(filepath.Join(dir, "initramfs"), Guest{
		Files: []File{
			{HostPath: tree, GuestPath: "/data"},
			{HostPath: single, GuestPath: "/usr/bin/single", Mode: 0o755},
		},
		Commands: []Command{{Name: "x", Path: "/bin/true"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(ini.Commands); got != 3 {
		t.Errorf("%d commands, want the 2 built-in ones and x", got)
	}
	got := imageEntries(t, ini.Path)
	for name, mode := range map[string]uint32{
		"init":           0o100755,
		"bin/busybox":    0o100755,
		"dev/console":    0o020600,
		"usr/bin":        0o120777,
		"etc/passwd":     0o100644,
		"data/a.txt":     0o100600,
		"data/sub/b.txt": 0o100600,
		"data/link":      0o120777,
		"bin/single":     0o100755,
	} {
		if e, ok := got[name]; !ok || e.mode != mode {
			t.Errorf("%s: present %v, mode %o, want %o", name, ok, e.mode, mode)
		}
	}
	if _, err := BuildInitramfs(filepath.Join(dir, "dup"), Guest{Files: []File{
		{HostPath: single, GuestPath: "/x"}, {HostPath: single, GuestPath: "/x"},
	}}); err == nil {
		t.Error("two files for one guest path: no error")
	}
	if _, err := BuildInitramfs(filepath.Join(dir, "dyn"), Guest{Files: []File{
		{HostPath: "/bin/ls", GuestPath: "/bin/ls2"},
	}}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("dynamically linked")) {
		t.Errorf("dynamic binary: %v, want dynamically linked", err)
	}
	if _, err := BuildInitramfs(filepath.Join(dir, "static-as-dyn"), Guest{Files: []File{
		{HostPath: "/bin/busybox", GuestPath: "/bin/bb", Libraries: true},
	}}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("not dynamically linked")) {
		t.Errorf("static binary with Libraries: %v, want not dynamically linked", err)
	}
}

// TestSharedLibraries finds a dynamic program's loader and its libraries'
// libraries; two programs may share them in one guest.
func TestSharedLibraries(t *testing.T) {
	libs, err := sharedLibraries("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libpcre2-8.so.0"} {
		if !slices.Contains(libs, want) {
			t.Errorf("libraries of /bin/ls: %v, want %s among them", libs, want)
		}
	}
	dir := t.TempDir()
	ini, err := BuildInitramfs(filepath.Join(dir, "initramfs"), Guest{Files: []File{
		{HostPath: "/bin/ls", GuestPath: "/bin/ls2", Libraries: true},
		{HostPath: "/bin/cat", GuestPath: "/bin/cat2", Libraries: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := imageEntries(t, ini.Path)
	for _, name := range []string{"bin/ls2", "bin/cat2", "lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6"} {
		if e, ok := got[name]; !ok || e.mode&0o170000 != 0o100000 {
			t.Errorf("%s: present %v, mode %o, want a regular file", name, ok, e.mode)
		}
	}
}

// writeTree writes files (relative path -> content) under root, with
// their directories, and returns root.
func writeTree(t *testing.T, root string, files map[string]string, mode os.FileMode) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// imageEntries reads the initramfs at path into its entries by name.
func imageEntries(t *testing.T, path string) map[string]cpioEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpioEntry{}
	for _, e := range readCPIO(t, b) {
		got[e.name] = e
	}
	return got
}
