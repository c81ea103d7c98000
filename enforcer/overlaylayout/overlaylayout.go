// Package overlaylayout finds where the overlay module's inode (struct
// ovl_inode) keeps its struct inode and its upper dentry, for the BPF
// programs that name what a process changes through an overlay only its own
// namespace mounts (bpf/lib/path.h). It reads the types from the running
// kernel's BTF when overlay is built in or loaded, and otherwise from the
// module file the kernel would load: a user's mount can load the module at
// any time, long after the programs were built.
package overlaylayout

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// Layout is the byte offsets of ovl_inode's vfs_inode and __upperdentry.
type Layout struct {
	Inode, Upper uint32
}

// ErrNoOverlay says that neither the kernel nor its module directory has
// overlay's types: the kernel has no overlay file system to mount.
var ErrNoOverlay = errors.New("overlay: no types in the kernel, no module file")

// maxModule bounds a decompressed module: overlay.ko is well under 1 MiB.
const maxModule = 64 << 20

// Find returns the layout for the running kernel, whose release names its
// module directory under modules (normally /lib/modules).
func Find(modules, release string) (Layout, error) {
	base, err := btf.LoadKernelSpec()
	if err != nil {
		return Layout{}, fmt.Errorf("kernel BTF: %w", err)
	}
	if l, err := fromSpec(base); err == nil {
		return l, nil // built in
	}
	if spec, err := btf.LoadKernelModuleSpec("overlay"); err == nil {
		return fromSpec(spec)
	}
	file, err := moduleFile(filepath.Join(modules, release))
	if err != nil {
		return Layout{}, err
	}
	spec, err := fromModuleFile(file, base)
	if err != nil {
		return Layout{}, fmt.Errorf("%s: %w", file, err)
	}
	l, err := fromSpec(spec)
	if err != nil {
		return Layout{}, fmt.Errorf("%s: %w", file, err)
	}
	return l, nil
}

// fromSpec reads the layout from types that hold struct ovl_inode.
func fromSpec(spec *btf.Spec) (Layout, error) {
	var st *btf.Struct
	if err := spec.TypeByName("ovl_inode", &st); err != nil {
		return Layout{}, fmt.Errorf("struct ovl_inode: %w", err)
	}
	var l Layout
	var haveInode, haveUpper bool
	for _, m := range st.Members {
		switch m.Name {
		case "vfs_inode":
			l.Inode, haveInode = m.Offset.Bytes(), true
		case "__upperdentry":
			l.Upper, haveUpper = m.Offset.Bytes(), true
		}
	}
	if !haveInode || !haveUpper || l.Upper == 0 {
		return Layout{}, fmt.Errorf("struct ovl_inode has no vfs_inode or __upperdentry")
	}
	return l, nil
}

// moduleFile finds overlay's module file in a kernel's module directory,
// as modules.dep lists it.
func moduleFile(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoOverlay
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), ":")
		switch filepath.Base(name) {
		case "overlay.ko", "overlay.ko.xz", "overlay.ko.zst", "overlay.ko.gz":
			return filepath.Join(dir, name), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read modules.dep: %w", err)
	}
	return "", ErrNoOverlay
}

// fromModuleFile reads the split BTF of a module file (compressed or not).
func fromModuleFile(file string, base *btf.Spec) (*btf.Spec, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch filepath.Ext(file) {
	case ".xz":
		if r, err = xz.NewReader(f); err != nil {
			return nil, err
		}
	case ".zst":
		d, err := zstd.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		r = d
	case ".gz":
		g, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer g.Close()
		r = g
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxModule+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if len(raw) > maxModule {
		return nil, fmt.Errorf("larger than %d bytes decompressed", maxModule)
	}
	ef, err := elf.NewFile(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	sec := ef.Section(".BTF")
	if sec == nil {
		return nil, errors.New("no .BTF section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .BTF: %w", err)
	}
	return btf.LoadSplitSpecFromReader(bytes.NewReader(data), base)
}

// Set writes the layout into a collection's ka_ovl_inode_off and
// ka_ovl_upper_off constants, where it has them.
func (l Layout) Set(spec *ebpf.CollectionSpec) error {
	for name, v := range map[string]uint32{"ka_ovl_inode_off": l.Inode, "ka_ovl_upper_off": l.Upper} {
		vs, ok := spec.Variables[name]
		if !ok {
			continue
		}
		if err := vs.Set(v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// Configure finds the running kernel's layout and sets it in spec. An error
// says it is unknown and what that costs; a kernel without overlay is none.
func Configure(spec *ebpf.CollectionSpec) error {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	l, err := Find("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	if errors.Is(err, ErrNoOverlay) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the overlay module's inode layout is unknown, so what a process changes through an overlay "+
			"only its own namespace mounts is named as a file no host mount shows: %w", err)
	}
	return l.Set(spec)
}
