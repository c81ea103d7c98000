package vmtest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestParseCandidate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"linux-image-6.1.0-56-cloud-amd64:\n  Installed: (none)\n  Candidate: 6.1.192-2\n  Version table:\n", "6.1.192-2"},
		{"x:\n  Installed: (none)\n  Candidate: (none)\n", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := parseCandidate([]byte(tt.in)); got != tt.want {
			t.Errorf("parseCandidate(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKernelPackages(t *testing.T) {
	t.Setenv(KernelsEnv, "  ")
	if got := KernelPackages(); len(got) != 2 {
		t.Errorf("blank %s: %v, want the defaults", KernelsEnv, got)
	}
	t.Setenv(KernelsEnv, "linux-image-a  linux-image-b")
	if got := KernelPackages(); len(got) != 2 || got[0] != "linux-image-a" || got[1] != "linux-image-b" {
		t.Errorf("KernelPackages() = %v", got)
	}
	t.Setenv(CacheDirEnv, "/x")
	if got := CacheDir(); got != "/x" {
		t.Errorf("CacheDir() = %q", got)
	}
}

func TestCachedKernel(t *testing.T) {
	kernels := t.TempDir()
	for _, v := range []string{"1.0-1", "1.0-2"} {
		dir := filepath.Join(kernels, "linux-image-x_"+v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, modulesDir), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"vmlinuz-6.1.0-x", "config-6.1.0-x", "modules/overlay.ko"} {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	k, err := loadCachedKernel(kernels, "linux-image-x", "1.0-1")
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "6.1.0-x" || k.Version != "1.0-1" || filepath.Base(k.Config) != "config-6.1.0-x" ||
		len(k.Modules) != 1 || filepath.Base(k.Modules[0]) != "overlay.ko" {
		t.Errorf("loadCachedKernel = %+v", k)
	}
	// An entry of the layout before modules is not complete.
	if err := os.Remove(filepath.Join(kernels, "linux-image-x_1.0-1", "modules", "overlay.ko")); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCachedKernel(kernels, "linux-image-x", "1.0-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an entry without its modules: %v, want fs.ErrNotExist", err)
	}
	if _, err := loadCachedKernel(kernels, "linux-image-x", "9"); err == nil {
		t.Error("missing version: no error")
	}
	k, err = newestCachedKernel(kernels, "linux-image-x")
	if err != nil || k.Version != "1.0-2" {
		t.Errorf("newestCachedKernel = %+v, %v; want version 1.0-2", k, err)
	}
}
