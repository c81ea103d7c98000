package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ulikunitz/xz"
)

// Environment variables that choose kernels and where they are cached.
const (
	// KernelsEnv lists Debian kernel image packages to boot, space separated.
	KernelsEnv = "KUBEARMOR_VM_KERNELS"
	// CacheDirEnv replaces DefaultCacheDir as the root of the cache; kernels
	// go under <root>/vm/kernels/<package>_<version>/.
	CacheDirEnv = "KUBEARMOR_CACHE_DIR"
)

// DefaultCacheDir is the cache root when CacheDirEnv is not set.
const DefaultCacheDir = "/var/cache/kubearmor-host"

// DefaultKernelPackages are the kernels the guest tests boot unless
// KernelsEnv says otherwise: bookworm's own 6.1 and its 6.12 backport, both
// Debian cloud builds (small, no initramfs needed, BPF-LSM and AppArmor built in).
func DefaultKernelPackages() []string {
	return []string{
		"linux-image-6.1.0-56-cloud-amd64",
		"linux-image-6.12.117+deb12-cloud-amd64",
	}
}

// KernelPackages returns the kernel packages named by KernelsEnv, or
// DefaultKernelPackages when it is unset or blank.
func KernelPackages() []string {
	if pkgs := strings.Fields(os.Getenv(KernelsEnv)); len(pkgs) > 0 {
		return pkgs
	}
	return DefaultKernelPackages()
}

// CacheDir returns the cache root: CacheDirEnv, or DefaultCacheDir.
func CacheDir() string {
	if dir := os.Getenv(CacheDirEnv); dir != "" {
		return dir
	}
	return DefaultCacheDir
}

// Kernel is an unpacked kernel in the cache.
type Kernel struct {
	Package string // Debian package, e.g. linux-image-6.1.0-56-cloud-amd64
	Version string // package version, e.g. 6.1.192-2
	Release string // uname -r of the kernel, e.g. 6.1.0-56-cloud-amd64
	Dir     string // cache directory holding the files below
	Vmlinuz string // path of the bootable image
	Config  string // path of the build config (may be empty if the package has none)
	// Modules are the guest modules (guestModules) from the package,
	// uncompressed, which the guest loads at boot.
	Modules []string
	// Downloaded is true if FetchKernel had to download it, false if cached.
	Downloaded bool
}

// String names the kernel for logs.
func (k Kernel) String() string {
	return fmt.Sprintf("%s (%s %s)", k.Release, k.Package, k.Version)
}

// FetchKernel returns the kernel of the Debian package pkg, downloading it
// with apt-get into cacheDir (see CacheDir) unless the version apt would
// install is already there. Without apt (or with the package gone from the
// lists) the newest cached version is used.
func FetchKernel(ctx context.Context, cacheDir, pkg string) (Kernel, error) {
	kernelsDir := filepath.Join(cacheDir, "vm", "kernels")
	version, err := candidateVersion(ctx, pkg)
	if err != nil {
		// Offline or without the package in the lists: a cached copy will do.
		if k, cacheErr := newestCachedKernel(kernelsDir, pkg); cacheErr == nil {
			return k, nil
		}
		return Kernel{}, err
	}
	k, err := loadCachedKernel(kernelsDir, pkg, version)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	return downloadKernel(ctx, kernelsDir, pkg)
}

// candidateVersion asks apt which version of pkg it would download.
func candidateVersion(ctx context.Context, pkg string) (string, error) {
	cmd := exec.CommandContext(ctx, "apt-cache", "policy", pkg)
	cmd.Env = append(os.Environ(), "LANG=C", "LC_ALL=C")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache policy %s: %w", pkg, err)
	}
	version := parseCandidate(out)
	if version == "" {
		return "", fmt.Errorf("apt-cache policy %s: no candidate version and nothing cached; run apt-get update (or check the package name)", pkg)
	}
	return version, nil
}

// parseCandidate extracts the "Candidate:" version from apt-cache policy
// output, or "" if there is none.
func parseCandidate(out []byte) string {
	for _, line := range strings.Split(string(out), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "(none)" {
			return ""
		}
		return v
	}
	return ""
}

// guestModules are the modules the guests load at boot, as the kernel
// package has them under lib/modules/<release>/ (maybe compressed): Debian's
// cloud kernels build overlayfs as a module, and the tests of rules reached
// through an overlay need it.
func guestModules() []string {
	return []string{"kernel/fs/overlayfs/overlay.ko"}
}

// modulesDir is where a cache entry keeps its modules.
const modulesDir = "modules"

// kernelDirName is the cache directory name of a package version.
func kernelDirName(pkg, version string) string {
	return pkg + "_" + version
}

// loadCachedKernel reads a complete cache entry. The entry is created by
// renaming a finished temporary directory, so if it exists it is complete.
func loadCachedKernel(kernelsDir, pkg, version string) (Kernel, error) {
	dir := filepath.Join(kernelsDir, kernelDirName(pkg, version))
	vmlinuz, err := filepath.Glob(filepath.Join(dir, "vmlinuz-*"))
	if err != nil {
		return Kernel{}, fmt.Errorf("read kernel cache %s: %w", dir, err)
	}
	if len(vmlinuz) != 1 {
		if _, err := os.Stat(dir); err != nil {
			return Kernel{}, fmt.Errorf("read kernel cache: %w", err)
		}
		return Kernel{}, fmt.Errorf("read kernel cache %s: want one vmlinuz-*, found %d; remove the directory to fetch again", dir, len(vmlinuz))
	}
	release := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	k := Kernel{Package: pkg, Version: version, Release: release, Dir: dir, Vmlinuz: vmlinuz[0]}
	if config := filepath.Join(dir, "config-"+release); fileExists(config) {
		k.Config = config
	}
	for _, m := range guestModules() {
		p := filepath.Join(dir, modulesDir, filepath.Base(m))
		if !fileExists(p) {
			// An entry made before the guests loaded modules: fetch again.
			return Kernel{}, fmt.Errorf("read kernel cache %s: no %s: %w", dir, filepath.Base(m), fs.ErrNotExist)
		}
		k.Modules = append(k.Modules, p)
	}
	return k, nil
}

// extractModules copies the guest modules from the unpacked package root
// into entry/modules, uncompressed (the 6.12 packages xz them; busybox's
// insmod takes a plain module).
func extractModules(root, release, entry string) error {
	dst := filepath.Join(entry, modulesDir)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, m := range guestModules() {
		src := filepath.Join(root, "lib", "modules", release, m)
		var r io.Reader
		f, err := os.Open(src)
		if errors.Is(err, fs.ErrNotExist) {
			if f, err = os.Open(src + ".xz"); err == nil {
				if r, err = xz.NewReader(f); err != nil {
					f.Close()
					return fmt.Errorf("read %s.xz: %w", src, err)
				}
			}
		} else {
			r = f
		}
		if err != nil {
			return fmt.Errorf("module %s: %w", m, err)
		}
		out, err := os.Create(filepath.Join(dst, filepath.Base(m)))
		if err == nil {
			_, err = io.Copy(out, r)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("module %s: %w", m, err)
		}
	}
	return nil
}

// newestCachedKernel picks the cached entry of pkg whose version sorts last.
// Lexical order is good enough to pick among a few rebuilds of one ABI.
func newestCachedKernel(kernelsDir, pkg string) (Kernel, error) {
	dirs, err := filepath.Glob(filepath.Join(kernelsDir, kernelDirName(pkg, "*")))
	if err != nil || len(dirs) == 0 {
		return Kernel{}, fmt.Errorf("no cached kernel for %s in %s", pkg, kernelsDir)
	}
	sort.Strings(dirs)
	version := strings.TrimPrefix(filepath.Base(dirs[len(dirs)-1]), pkg+"_")
	return loadCachedKernel(kernelsDir, pkg, version)
}

// downloadKernel fetches pkg with apt-get, unpacks it, and moves the vmlinuz
// and config into the cache. Concurrent fetches of one kernel are harmless:
// each works in its own temporary directory and the first rename wins.
func downloadKernel(ctx context.Context, kernelsDir, pkg string) (Kernel, error) {
	if err := os.MkdirAll(kernelsDir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("create kernel cache: %w", err)
	}
	tmp, err := os.MkdirTemp(kernelsDir, ".fetch-")
	if err != nil {
		return Kernel{}, fmt.Errorf("create kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	// apt drops privileges to _apt, which cannot write our 0700 temp dir;
	// we are root, so tell it not to.
	download := exec.CommandContext(ctx, "apt-get", "download", "-o", "APT::Sandbox::User=root", pkg)
	download.Dir = tmp
	if out, err := download.CombinedOutput(); err != nil {
		return Kernel{}, fmt.Errorf("apt-get download %s: %w: %s (if the package lists are stale, run apt-get update)",
			pkg, err, tail(out, 5))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return Kernel{}, fmt.Errorf("apt-get download %s: want one .deb, found %d", pkg, len(debs))
	}
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-f", debs[0], "Version").Output()
	if err != nil {
		return Kernel{}, fmt.Errorf("dpkg-deb -f %s Version: %w", debs[0], err)
	}
	version := strings.TrimSpace(string(out))
	unpacked := filepath.Join(tmp, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], unpacked).CombinedOutput(); err != nil {
		return Kernel{}, fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, tail(out, 5))
	}

	entry := filepath.Join(tmp, "entry")
	if err := os.Mkdir(entry, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("create kernel cache: %w", err)
	}
	boot := filepath.Join(unpacked, "boot")
	vmlinuz, _ := filepath.Glob(filepath.Join(boot, "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		return Kernel{}, fmt.Errorf("unpack %s: want one boot/vmlinuz-*, found %d", debs[0], len(vmlinuz))
	}
	release := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	for _, name := range []string{"vmlinuz-" + release, "config-" + release} {
		if err := os.Rename(filepath.Join(boot, name), filepath.Join(entry, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Kernel{}, fmt.Errorf("unpack %s: %w", debs[0], err)
		}
	}
	if err := extractModules(unpacked, release, entry); err != nil {
		return Kernel{}, fmt.Errorf("unpack %s: %w", debs[0], err)
	}
	final := filepath.Join(kernelsDir, kernelDirName(pkg, version))
	if _, err := loadCachedKernel(kernelsDir, pkg, version); errors.Is(err, fs.ErrNotExist) {
		os.RemoveAll(final) // an entry of an older layout, or none
	}
	if err := os.Rename(entry, final); err != nil && !fileExists(final) {
		return Kernel{}, fmt.Errorf("store kernel in cache: %w", err)
	}
	k, err := loadCachedKernel(kernelsDir, pkg, version)
	k.Downloaded = err == nil
	return k, err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
