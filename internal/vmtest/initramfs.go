package vmtest

import (
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/kubearmor/kubearmor-host/internal/testutils"
)

// BusyboxPath is where the busybox-static package installs its binary.
const BusyboxPath = "/bin/busybox"

// File is a host file or directory tree to copy into the guest.
type File struct {
	HostPath  string
	GuestPath string // absolute; /sbin, /usr/bin and /usr/sbin are /bin in the guest
	// Mode sets the permissions of a single file; 0 keeps the host file's.
	// Directory trees always keep the host permissions.
	Mode fs.FileMode
	// Libraries marks a dynamically linked program (a single file): its
	// ELF interpreter and the shared libraries it needs are added too, at
	// their host paths. Without it a dynamic program is refused.
	Libraries bool
}

// Command is a program the guest's init runs, in order, after setting up
// the guest. Its stdout and stderr are sent back to the host, stdin is /dev/null.
// Its working directory is created if missing.
type Command struct {
	Name string   // names its output in Result.Outputs
	Path string   // guest path of the program (not looked up in PATH)
	Args []string // arguments after the program name
	Dir  string   // working directory; "/" if empty
	Env  []string // KEY=value, added to the guest environment
}

// Guest describes what a guest contains and runs.
type Guest struct {
	Files    []File
	Commands []Command
	Env      []string // KEY=value for every command; GuestEnv=1 is always set
}

// Initramfs is a guest image built by BuildInitramfs.
type Initramfs struct {
	Path     string
	Commands []Command // as run by the guest, built-in ones first
	nonce    string    // makes the result markers unforgeable by test output
}

// Built-in commands that run before the caller's, to report the kernel.
const (
	unameCommand = "uname -r"
	lsmCommand   = "lsm"
)

// Guest layout. Applets are hard links in /bin so that /bin/sleep execs
// as /bin/sleep (path-based rules see that path, not /bin/busybox); the
// usual other bin directories are symlinks to /bin.
func guestDirs() []string {
	return []string{"/bin", "/dev", "/etc", "/mnt", "/proc", "/root", "/run", "/sys", "/usr/local/bin", "/usr/local/sbin"}
}

func guestSymlinks() map[string]string {
	return map[string]string{"/sbin": "bin", "/usr/bin": "../bin", "/usr/sbin": "../bin", "/var/run": "../run"}
}

// guestEtc are minimal files that user lookups and resolvers read.
func guestEtc() map[string]string {
	return map[string]string{
		"/etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"/etc/group":    "root:x:0:\nnogroup:x:65534:\n",
		"/etc/hosts":    "127.0.0.1\tlocalhost vmtest\n::1\tlocalhost ip6-localhost\n",
		"/etc/hostname": "vmtest\n",
	}
}

// layout is what differs between the images a guest can boot: which
// directories are symlinks (a file must go where the link points, or the
// archive would make a directory where the guest has a link), whether a
// dynamically linked program can run, and which paths the image itself owns.
type layout struct {
	links    map[string]string // directory -> link target, relative to its parent
	dynamic  bool              // the guest has a libc and loader
	reserved map[string]bool
}

// busyboxLayout is BuildInitramfs's image.
func busyboxLayout() layout {
	reserved := map[string]bool{"/init": true, "/bin/busybox": true}
	for name := range guestEtc() {
		reserved[name] = true
	}
	return layout{links: guestSymlinks(), reserved: reserved}
}

// path maps a path under one of the symlinked directories to where the
// link points.
func (l layout) path(p string) string {
	p = path.Clean(p)
	for link, target := range l.links {
		if p == link {
			return path.Join(path.Dir(link), target)
		}
		if rest, ok := strings.CutPrefix(p, link+"/"); ok {
			return path.Join(path.Dir(link), target, rest)
		}
	}
	return p
}

// BuildInitramfs writes the guest's initramfs to dst: busybox, an /init
// script that sets up the guest and runs g.Commands, and g.Files.
func BuildInitramfs(dst string, g Guest) (*Initramfs, error) {
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	commands := append([]Command{
		{Name: unameCommand, Path: "/bin/uname", Args: []string{"-r"}},
		{Name: lsmCommand, Path: "/bin/cat", Args: []string{"/sys/kernel/security/lsm"}},
	}, g.Commands...)
	script, err := initScript(commands, g.Env, nonce)
	if err != nil {
		return nil, err
	}
	if err := checkStatic(BusyboxPath); err != nil {
		return nil, fmt.Errorf("%w (install busybox-static)", err)
	}

	f, err := os.Create(dst)
	if err != nil {
		return nil, fmt.Errorf("create initramfs: %w", err)
	}
	defer f.Close()
	w := newCPIOWriter(f)
	if err := writeBase(w, script); err != nil {
		return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	files := fileSet{layout: busyboxLayout(), seen: map[string]string{}}
	for _, file := range g.Files {
		if err := files.add(w, file); err != nil {
			return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	return &Initramfs{Path: dst, Commands: commands, nonce: nonce}, nil
}

// WithModules returns the image with the kernel's modules added (a second
// cpio archive after the first: the kernel unpacks both), written to dst.
// The busybox guest's /init loads them at boot.
func (ini *Initramfs) WithModules(dst string, k Kernel) (*Initramfs, error) {
	if len(k.Modules) == 0 {
		return ini, nil
	}
	out, err := os.Create(dst)
	if err != nil {
		return nil, fmt.Errorf("create initramfs: %w", err)
	}
	defer out.Close()
	in, err := os.Open(ini.Path)
	if err != nil {
		return nil, fmt.Errorf("read initramfs: %w", err)
	}
	defer in.Close()
	if _, err := io.Copy(out, in); err != nil {
		return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	w := newCPIOWriter(out)
	dir := path.Join("/lib/modules", k.Release)
	for _, d := range []string{"/lib", "/lib/modules", dir} {
		if err := w.Dir(d, 0o755); err != nil {
			return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
		}
	}
	for _, m := range k.Modules {
		if err := copyHostFile(w, m, path.Join(dir, filepath.Base(m)), 0o644); err != nil {
			return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
		}
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	c := *ini
	c.Path = dst
	return &c, nil
}

func newNonce() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make marker nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func writeBase(w *cpioWriter, script string) error {
	for _, d := range guestDirs() {
		if err := w.Dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := w.Dir("/tmp", 0o777|fs.ModeSticky); err != nil {
		return err
	}
	links := guestSymlinks()
	for _, name := range sortedKeys(links) {
		if err := w.Symlink(name, links[name]); err != nil {
			return err
		}
	}
	// The kernel opens /dev/console for init's stdio before init can
	// mount devtmpfs, so the node must be in the archive.
	if err := w.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := w.CharDev("/dev/null", 0o666, 1, 3); err != nil {
		return err
	}
	etc := guestEtc()
	for _, name := range sortedKeys(etc) {
		if err := w.File(name, 0o644, int64(len(etc[name])), strings.NewReader(etc[name])); err != nil {
			return err
		}
	}
	if err := w.File("/init", 0o755, int64(len(script)), strings.NewReader(script)); err != nil {
		return err
	}
	return copyHostFile(w, BusyboxPath, "/bin/busybox", 0o755)
}

// fileSet adds the caller's files to an image, once each.
type fileSet struct {
	layout layout
	seen   map[string]string // guest path -> host path
}

func (s fileSet) add(w *cpioWriter, f File) error {
	if !path.IsAbs(f.GuestPath) {
		return fmt.Errorf("add %s: guest path %q is not absolute", f.HostPath, f.GuestPath)
	}
	info, err := os.Stat(f.HostPath)
	if err != nil {
		return fmt.Errorf("add file: %w", err)
	}
	if !info.IsDir() && f.Libraries {
		if s.layout.dynamic {
			// The host's libraries would go over the guest's own.
			return fmt.Errorf("add %s: the guest has its own libraries; add it without Libraries", f.HostPath)
		}
		return s.addProgram(w, f)
	}
	if !info.IsDir() {
		return s.addOne(w, f.HostPath, s.layout.path(f.GuestPath), f.Mode)
	}
	return filepath.WalkDir(f.HostPath, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("add %s: %w", f.HostPath, err)
		}
		rel, err := filepath.Rel(f.HostPath, p)
		if err != nil {
			return err
		}
		dst := s.layout.path(path.Join(f.GuestPath, filepath.ToSlash(rel)))
		switch {
		case d.IsDir():
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("add %s: %w", p, err)
			}
			return w.Dir(dst, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("add %s: %w", p, err)
			}
			if err := s.claim(dst, p); err != nil {
				return err
			}
			return w.Symlink(dst, target)
		default:
			return s.addOne(w, p, dst, 0)
		}
	})
}

// claim records that dst comes from src, refusing a second source: the
// kernel would silently keep only one of them.
func (s fileSet) claim(dst, src string) error {
	if other, ok := s.seen[dst]; ok {
		return fmt.Errorf("add %s: guest path %s already comes from %s", src, dst, other)
	}
	if s.layout.reserved[dst] {
		return fmt.Errorf("add %s: guest path %s is part of the base image", src, dst)
	}
	s.seen[dst] = src
	return nil
}

func (s fileSet) addOne(w *cpioWriter, src, dst string, mode fs.FileMode) error {
	if err := s.claim(dst, src); err != nil {
		return err
	}
	info, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("add file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("add %s: not a regular file or directory", src)
	}
	if mode == 0 {
		mode = info.Mode()
	}
	if mode&0o111 != 0 && !s.layout.dynamic {
		// The guest has no libc or loader: a dynamic binary would fail
		// there with a confusing "not found".
		if err := checkStatic(src); err != nil {
			return err
		}
	}
	return copyHostFile(w, src, dst, mode)
}

// addProgram adds a dynamically linked program with its interpreter and
// libraries. Programs share libraries: one added already is not an error.
func (s fileSet) addProgram(w *cpioWriter, f File) error {
	libs, err := sharedLibraries(f.HostPath)
	if err != nil {
		return err
	}
	mode := f.Mode
	if mode == 0 {
		info, err := os.Stat(f.HostPath)
		if err != nil {
			return fmt.Errorf("add file: %w", err)
		}
		mode = info.Mode()
	}
	if err := s.claim(s.layout.path(f.GuestPath), f.HostPath); err != nil {
		return err
	}
	if err := copyHostFile(w, f.HostPath, s.layout.path(f.GuestPath), mode); err != nil {
		return err
	}
	for _, lib := range libs {
		if s.seen[lib] == lib {
			continue
		}
		if err := s.claim(lib, lib); err != nil {
			return err
		}
		// The host path may be a symlink (/lib64/ld-linux-x86-64.so.2):
		// the guest gets the file it points to, under the name the loader
		// looks for.
		if err := copyHostFile(w, lib, lib, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// libraryDirs are where the loader of a Debian amd64 host looks for
// libraries without an ld.so.cache, as the guest has none.
var libraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// sharedLibraries returns the ELF interpreter of program and the libraries
// it needs, directly or through other libraries, as host paths.
func sharedLibraries(program string) ([]string, error) {
	var out []string
	done := map[string]bool{}
	var visit func(file string, interp bool) error
	visit = func(file string, interp bool) error {
		ef, err := elf.Open(file)
		if err != nil {
			return fmt.Errorf("read libraries of %s: %w", file, err)
		}
		defer ef.Close()
		if interp {
			for _, p := range ef.Progs {
				if p.Type != elf.PT_INTERP {
					continue
				}
				b, err := io.ReadAll(p.Open())
				if err != nil {
					return fmt.Errorf("read interpreter of %s: %w", file, err)
				}
				loader := strings.TrimRight(string(b), "\x00")
				if !done[loader] {
					done[loader] = true
					out = append(out, loader)
				}
			}
		}
		needed, err := ef.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("read libraries of %s: %w", file, err)
		}
		for _, name := range needed {
			found := ""
			for _, dir := range libraryDirs {
				if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
					found = filepath.Join(dir, name)
					break
				}
			}
			if found == "" {
				return fmt.Errorf("%s needs %s, which is in none of %v", file, name, libraryDirs)
			}
			if done[found] {
				continue
			}
			done[found] = true
			out = append(out, found)
			if err := visit(found, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(program, true); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is not dynamically linked: add it without Libraries", program)
	}
	return out, nil
}

func copyHostFile(w *cpioWriter, src, dst string, mode fs.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("add file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("add file: %w", err)
	}
	return w.File(dst, mode, info.Size(), f)
}

// checkStatic returns an error if path is a dynamically linked ELF binary.
// Other files (scripts, data) pass.
func checkStatic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("check %s is static: %w", path, err)
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:]) != elf.ELFMAG {
		return nil // not ELF
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("check %s is static: %w", path, err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked, and the guest has no libc (build it with CGO_ENABLED=0)", path)
		}
	}
	return nil
}

var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func exports(env []string) (string, error) {
	var b strings.Builder
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envKey.MatchString(k) {
			return "", fmt.Errorf("environment entry %q is not KEY=value", kv)
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	return b.String(), nil
}

// initScript is the busybox guest's /init: it sets the guest up, runs the
// commands (see runCommands) and powers off.
func initScript(commands []Command, env []string, nonce string) (string, error) {
	var b strings.Builder
	b.WriteString(`#!/bin/busybox sh
# Generated by internal/vmtest: set up the guest, run the commands, power off.
/bin/busybox --install /bin
`)
	err := guestEnv(&b, "/usr/local/sbin:/usr/local/bin:/bin", env)
	if err != nil {
		return "", err
	}
	b.WriteString(`
m() { mkdir -p "$2"; mount -t "$1" $3 "$1" "$2" || echo "vmtest: mount $1 on $2 failed" >&2; }
m devtmpfs /dev
m proc /proc
m sysfs /sys
m securityfs /sys/kernel/security
m bpf /sys/fs/bpf
m tracefs /sys/kernel/tracing
m cgroup2 /sys/fs/cgroup
m tmpfs /tmp -omode=1777
m tmpfs /run -omode=0755
mkdir -p /var/tmp && chmod 1777 /var/tmp
for mod in /lib/modules/$(uname -r)/*.ko; do
	[ -e "$mod" ] || continue
	insmod "$mod" || echo "vmtest: insmod $mod failed" >&2
done
ip link set lo up || echo "vmtest: lo is not up" >&2
hostname vmtest
`)
	if err := runCommands(&b, commands, nonce); err != nil {
		return "", err
	}
	b.WriteString("poweroff -f\n")
	return b.String(), nil
}

// guestEnv writes the environment every command gets.
func guestEnv(b *strings.Builder, pathEnv string, env []string) error {
	exp, err := exports(append([]string{
		"PATH=" + pathEnv,
		"HOME=/root",
		"TMPDIR=/tmp",
		testutils.GuestEnv + "=1",
	}, env...))
	b.WriteString(exp)
	return err
}

// runCommands writes the script that runs the commands. Results go to the
// second serial port, kept apart from the kernel console, framed by
// markers that carry a nonce. Each marker starts with a newline so it
// always begins a line; the host drops that newline again (see parseResults).
func runCommands(b *strings.Builder, commands []Command, nonce string) error {
	b.WriteString(`stty -F /dev/ttyS1 raw -echo
exec 3>/dev/ttyS1
mark() { printf '\n@@vmtest-%s %s\n' "$VMTEST_NONCE" "$*" >&3; }
`)
	fmt.Fprintf(b, "VMTEST_NONCE=%s\n", nonce)
	for i, c := range commands {
		if !path.IsAbs(c.Path) {
			return fmt.Errorf("command %s: program path %q is not absolute", c.Name, c.Path)
		}
		dir := c.Dir
		if dir == "" {
			dir = "/"
		}
		cexp, err := exports(c.Env)
		if err != nil {
			return fmt.Errorf("command %s: %w", c.Name, err)
		}
		argv := []string{shellQuote(c.Path)}
		for _, a := range c.Args {
			argv = append(argv, shellQuote(a))
		}
		qdir := shellQuote(dir)
		fmt.Fprintf(b, "\nmark begin %d\n(\nmkdir -p %s && cd %s || exit 125\n%sexec %s\n) >&3 2>&3 </dev/null\nmark end %d $?\n",
			i, qdir, qdir, cexp, strings.Join(argv, " "), i)
	}
	b.WriteString(`
mark done
# Closing the last descriptor of the port waits for its output to drain.
exec 3>&-
`)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
