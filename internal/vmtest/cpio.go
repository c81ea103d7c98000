package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"strconv"
	"strings"
)

// cpioWriter writes a "newc" cpio archive, the format the kernel unpacks as
// an initramfs. Writing it ourselves lets us add device nodes and root-owned
// files without staging a directory tree or needing the cpio tool.
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool // directories already in the archive
	uid  uint32          // owner of the entries written next; root if not set
	gid  uint32
}

// File type bits of the cpio mode field (as in stat's st_mode).
const (
	cpioModeDir     = 0o040000
	cpioModeRegular = 0o100000
	cpioModeSymlink = 0o120000
	cpioModeCharDev = 0o020000
)

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{".": true, "": true}}
}

// cleanName turns a guest path into an archive name: relative, clean.
func cleanName(name string) (string, error) {
	if !strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("guest path %q is not absolute", name)
	}
	clean := strings.TrimPrefix(path.Clean(name), "/")
	if clean == "" {
		return "", fmt.Errorf("guest path %q names the root", name)
	}
	return clean, nil
}

// Dir adds a directory and any missing parents.
func (c *cpioWriter) Dir(name string, perm fs.FileMode) error {
	n, err := cleanName(name)
	if err != nil {
		return err
	}
	return c.dir(n, perm)
}

func (c *cpioWriter) dir(n string, perm fs.FileMode) error {
	if c.dirs[n] {
		return nil
	}
	if err := c.dir(path.Dir(n), 0o755); err != nil {
		return err
	}
	c.dirs[n] = true
	return c.header(n, cpioModeDir|modeBits(perm), 2, 0, 0, 0)
}

// File adds a regular file of size bytes read from r.
func (c *cpioWriter) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	n, err := c.entryName(name)
	if err != nil {
		return err
	}
	if size < 0 || size > math.MaxUint32 {
		return fmt.Errorf("cpio %s: size %d does not fit the newc format", name, size)
	}
	if err := c.header(n, cpioModeRegular|modeBits(perm), 1, uint32(size), 0, 0); err != nil {
		return err
	}
	copied, err := io.CopyN(c.w, r, size)
	if err != nil {
		return fmt.Errorf("cpio %s: copied %d of %d bytes: %w", name, copied, size, err)
	}
	return c.pad(size)
}

// Symlink adds a symbolic link name -> target.
func (c *cpioWriter) Symlink(name, target string) error {
	n, err := c.entryName(name)
	if err != nil {
		return err
	}
	if err := c.header(n, cpioModeSymlink|0o777, 1, uint32(len(target)), 0, 0); err != nil {
		return err
	}
	if _, err := c.w.WriteString(target); err != nil {
		return err
	}
	return c.pad(int64(len(target)))
}

// CharDev adds a character device node.
func (c *cpioWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	n, err := c.entryName(name)
	if err != nil {
		return err
	}
	return c.header(n, cpioModeCharDev|modeBits(perm), 1, 0, major, minor)
}

// SetOwner makes the entries written next owned by uid:gid.
func (c *cpioWriter) SetOwner(uid, gid uint32) { c.uid, c.gid = uid, gid }

// Close writes the trailer and flushes. It does not close the underlying writer.
func (c *cpioWriter) Close() error {
	if err := c.header("TRAILER!!!", 0, 1, 0, 0, 0); err != nil {
		return err
	}
	return c.w.Flush()
}

// entryName cleans name and adds its parent directories.
func (c *cpioWriter) entryName(name string) (string, error) {
	n, err := cleanName(name)
	if err != nil {
		return "", err
	}
	if c.dirs[n] {
		return "", fmt.Errorf("cpio %s: already added as a directory", name)
	}
	return n, c.dir(path.Dir(n), 0o755)
}

func (c *cpioWriter) header(name string, mode, nlink, size, rdevMajor, rdevMinor uint32) error {
	c.ino++
	// magic, then 13 fields of 8 hex digits: ino, mode, uid, gid, nlink,
	// mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check.
	// mtime is 0 so archives are reproducible.
	_, err := fmt.Fprintf(c.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\x00",
		c.ino, mode, c.uid, c.gid, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0, name)
	if err != nil {
		return fmt.Errorf("cpio %s: %w", name, err)
	}
	return c.pad(int64(110 + len(name) + 1))
}

// pad aligns the stream to 4 bytes after n bytes of header or data.
func (c *cpioWriter) pad(n int64) error {
	if r := n % 4; r != 0 {
		_, err := c.w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

// modeBits converts permission and setuid/setgid/sticky bits to st_mode bits.
func modeBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// archiveDirs lists the directories of a newc archive, so that a second
// archive written over it (the kernel unpacks both) does not write them
// again: the kernel would give each the second entry's mode and owner.
func archiveDirs(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	dirs := map[string]bool{".": true, "": true}
	var off int64
	skip := func(n int64) error {
		_, err := r.Discard(int(n))
		off += n
		return err
	}
	align := func() error { return skip((4 - off%4) % 4) }
	hdr := make([]byte, 110)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return nil, fmt.Errorf("read archive %s: %w", path, err)
		}
		off += 110
		if string(hdr[:6]) != "070701" {
			return nil, fmt.Errorf("read archive %s: bad magic at %d", path, off-110)
		}
		field := func(i int) int64 {
			v, _ := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
			return int64(v)
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := make([]byte, namesize)
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, fmt.Errorf("read archive %s: %w", path, err)
		}
		off += namesize
		n := strings.TrimRight(string(name), "\x00")
		if n == "TRAILER!!!" {
			return dirs, nil
		}
		if mode&0o170000 == cpioModeDir {
			dirs[n] = true
		}
		if err := align(); err != nil {
			return nil, err
		}
		if err := skip(size); err != nil {
			return nil, err
		}
		if err := align(); err != nil {
			return nil, err
		}
	}
}
