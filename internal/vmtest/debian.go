package vmtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// DebianRoot is a Debian system the guest boots with systemd as PID 1,
// instead of the busybox image: for tests of what the package and the
// unit do on a real installation (apt, systemctl, journald).
type DebianRoot struct {
	Suite   string   // e.g. "bookworm"
	Mirror  string   // e.g. "http://deb.debian.org/debian"
	Include []string // packages beyond debootstrap's minbase variant
}

// DefaultDebianRoot is a Debian 12 server as small as a real one gets:
// minbase, systemd as init, udev (device units; without it every unit
// that needs a device, such as the serial getty, waits 90 s for it), dbus
// (what systemctl and systemd-analyze talk to on a real host) and apparmor
// (Debian's default LSM: its parser, and its own profiles loaded at boot).
func DefaultDebianRoot() DebianRoot {
	return DebianRoot{
		Suite:   "bookworm",
		Mirror:  "http://deb.debian.org/debian",
		Include: []string{"systemd-sysv", "udev", "dbus", "apparmor", "python3-minimal"},
	}
}

// debianRecipe versions what FetchDebianRoot does to a fresh debootstrap:
// change it (and so the cache key) when the customisation changes.
const debianRecipe = "1"

// key names the cache entry of r.
func (r DebianRoot) key() string {
	sum := sha256.Sum256([]byte(strings.Join([]string{debianRecipe, r.Suite, r.Mirror, strings.Join(r.Include, ",")}, "\n")))
	return "debian-" + r.Suite + "-" + hex.EncodeToString(sum[:6])
}

// FetchDebianRoot returns the path of the root's newc cpio archive in the
// cache (cacheDir/vm/rootfs/<key>/root.cpio), making it with debootstrap on
// first use (about a minute and 100 MB of downloads).
func FetchDebianRoot(ctx context.Context, cacheDir string, r DebianRoot) (path string, built bool, err error) {
	dir := filepath.Join(cacheDir, "vm", "rootfs")
	archive := filepath.Join(dir, r.key(), "root.cpio")
	if _, err := os.Stat(archive); err == nil {
		return archive, false, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", false, errors.New("debootstrap is not installed (apt-get install debootstrap; make deps does)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("create rootfs cache: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", false, fmt.Errorf("create rootfs cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	args := []string{"--variant=minbase", "--include=" + strings.Join(r.Include, ","), r.Suite, root, r.Mirror}
	if out, err := exec.CommandContext(ctx, "debootstrap", args...).CombinedOutput(); err != nil {
		return "", false, fmt.Errorf("debootstrap %s: %w\n%s", strings.Join(args, " "), err, tail(out, 20))
	}
	if err := customize(ctx, root); err != nil {
		return "", false, err
	}
	entry := filepath.Join(tmp, "entry")
	if err := os.Mkdir(entry, 0o755); err != nil {
		return "", false, err
	}
	if err := writeTreeArchive(filepath.Join(entry, "root.cpio"), root); err != nil {
		return "", false, err
	}
	// The entry appears whole or not at all; a concurrent build that got
	// there first wins.
	if err := os.Rename(entry, filepath.Dir(archive)); err != nil {
		if _, statErr := os.Stat(archive); statErr != nil {
			return "", false, fmt.Errorf("store rootfs: %w", err)
		}
	}
	return archive, true, nil
}

// customize makes the fresh root a machine of its own and drops what a
// test guest never reads (documentation, translations, apt's downloads).
func customize(ctx context.Context, root string) error {
	files := map[string]string{
		"etc/hostname": "debian-vmtest\n",
		"etc/hosts":    "127.0.0.1\tlocalhost debian-vmtest\n::1\tlocalhost ip6-localhost\n",
		// Empty: systemd makes a transient one at boot, as on a first boot.
		"etc/machine-id": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("customize rootfs: %w", err)
		}
	}
	for _, p := range []string{"usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists"} {
		if err := os.RemoveAll(filepath.Join(root, p)); err != nil {
			return fmt.Errorf("customize rootfs: %w", err)
		}
	}
	for _, p := range []string{"var/cache/apt/archives/partial", "var/lib/apt/lists/partial"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			return fmt.Errorf("customize rootfs: %w", err)
		}
	}
	// The guest has no network: apt's daily timers would only fail.
	mask := exec.CommandContext(ctx, "systemctl", "--root="+root, "mask", "apt-daily.timer", "apt-daily-upgrade.timer")
	if out, err := mask.CombinedOutput(); err != nil {
		return fmt.Errorf("customize rootfs: systemctl mask: %w: %s", err, out)
	}
	return nil
}

// writeTreeArchive writes the directory tree at root as a newc archive.
// Owners and modes are kept; device nodes are left out (systemd mounts
// devtmpfs on /dev) and hard links become copies.
func writeTreeArchive(dst, root string) error {
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("write rootfs archive: %w", err)
	}
	defer f.Close()
	w := newCPIOWriter(f)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		name := "/" + filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		// Not all of it is root's: /var/log/journal, apt's partial directories.
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			w.SetOwner(st.Uid, st.Gid)
		}
		switch {
		case d.IsDir():
			return w.Dir(name, info.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetuid|fs.ModeSetgid))
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return w.Symlink(name, target)
		case d.Type().IsRegular():
			return copyHostFile(w, p, name, info.Mode())
		}
		return nil // devices, sockets, fifos
	})
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return fmt.Errorf("write rootfs archive %s: %w", dst, err)
	}
	return nil
}

// Paths of the system image's own files.
const (
	systemInit   = "/init"
	systemRunner = "/usr/lib/vmtest/run"
	systemUnit   = "/etc/systemd/system/vmtest.service"
)

// debianLayout is BuildSystemImage's image: merged /usr, and a libc.
func debianLayout() layout {
	return layout{
		links:    map[string]string{"/bin": "usr/bin", "/sbin": "usr/sbin", "/lib": "usr/lib", "/lib64": "usr/lib64"},
		dynamic:  true,
		reserved: map[string]bool{systemInit: true, systemRunner: true, systemUnit: true},
	}
}

// systemInitScript is the image's /init. The kernel unpacks the image into
// rootfs, its first mount, which cannot be moved or pivot_root'ed away
// from as a real root can; systemd runs on a bind mount of it, so mount
// namespaces (the units' sandboxing) work as they do on disk.
const systemInitScript = `#!/bin/sh
# Generated by internal/vmtest: boot systemd on a bind mount of rootfs.
mount -t proc proc /proc
mkdir -p /sysroot
mount --bind / /sysroot
umount /proc
cd /sysroot
mount --move . /
exec chroot . /lib/systemd/systemd
`

// systemUnitFile runs the commands once the system is up.
const systemUnitFile = `# Generated by internal/vmtest: run the guest commands, then power off.
[Unit]
Description=vmtest guest commands
After=multi-user.target

[Service]
Type=exec
ExecStart=` + systemRunner + `
`

// BuildSystemImage writes to dst a guest image that boots the Debian root
// archived at rootArchive (FetchDebianRoot) with systemd as PID 1, and
// runs g's commands from a unit once multi-user.target is reached. The
// commands' environment and output are as in BuildInitramfs's guests; the
// files g adds go over the root's.
func BuildSystemImage(dst, rootArchive string, g Guest) (*Initramfs, error) {
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	commands := append([]Command{
		{Name: unameCommand, Path: "/usr/bin/uname", Args: []string{"-r"}},
		{Name: lsmCommand, Path: "/usr/bin/cat", Args: []string{"/sys/kernel/security/lsm"}},
	}, g.Commands...)
	var runner strings.Builder
	runner.WriteString("#!/bin/sh\n# Generated by internal/vmtest: run by vmtest.service once the system is up.\n")
	if err := guestEnv(&runner, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", g.Env); err != nil {
		return nil, err
	}
	if err := runCommands(&runner, commands, nonce); err != nil {
		return nil, err
	}
	runner.WriteString("systemctl poweroff --force --force\n")

	f, err := os.Create(dst)
	if err != nil {
		return nil, fmt.Errorf("create system image: %w", err)
	}
	defer f.Close()
	root, err := os.Open(rootArchive)
	if err != nil {
		return nil, fmt.Errorf("create system image: %w", err)
	}
	defer root.Close()
	// The kernel unpacks archives one after another: the root, then ours.
	if _, err := io.Copy(f, root); err != nil {
		return nil, fmt.Errorf("write system image %s: %w", dst, err)
	}
	w := newCPIOWriter(f)
	// The root's directories are there already, with their modes (/root
	// is 0700): parents of our files must not be written again.
	if w.dirs, err = archiveDirs(rootArchive); err != nil {
		return nil, err
	}
	err = errors.Join(
		w.File(systemInit, 0o755, int64(len(systemInitScript)), strings.NewReader(systemInitScript)),
		w.File(systemRunner, 0o755, int64(runner.Len()), strings.NewReader(runner.String())),
		w.File(systemUnit, 0o644, int64(len(systemUnitFile)), strings.NewReader(systemUnitFile)),
		w.Symlink("/etc/systemd/system/multi-user.target.wants/vmtest.service", "../vmtest.service"),
	)
	files := fileSet{layout: debianLayout(), seen: map[string]string{}}
	for _, file := range g.Files {
		if err == nil {
			err = files.add(w, file)
		}
	}
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("write system image %s: %w", dst, err)
	}
	return &Initramfs{Path: dst, Commands: commands, nonce: nonce}, nil
}
