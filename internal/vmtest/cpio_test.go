package vmtest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is a parsed newc entry.
type cpioEntry struct {
	name       string
	mode       uint32
	uid, gid   uint32
	nlink      uint32
	rmaj, rmin uint32
	data       string
}

// readCPIO parses a newc archive, or several one after another (as the
// kernel unpacks them), checking magic and alignment.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var entries []cpioEntry
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) {
			t.Fatalf("truncated header at %d", off)
		}
		h := string(b[off : off+110])
		if h[:6] != "070701" {
			t.Fatalf("bad magic %q at %d", h[:6], off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(h[6+8*i:14+8*i], 16, 32)
			if err != nil {
				t.Fatalf("field %d at %d: %v", i, off, err)
			}
			return uint32(v)
		}
		namesize, size := int(field(11)), int(field(6))
		nameStart := off + 110
		name := string(b[nameStart : nameStart+namesize-1])
		if b[nameStart+namesize-1] != 0 {
			t.Fatalf("name %q not NUL-terminated", name)
		}
		dataStart := align(nameStart + namesize)
		e := cpioEntry{name: name, mode: field(1), uid: field(2), gid: field(3), nlink: field(4), rmaj: field(9), rmin: field(10),
			data: string(b[dataStart : dataStart+size])}
		off = align(dataStart + size)
		if name == "TRAILER!!!" {
			if off == len(b) {
				return entries
			}
			continue // the next archive's header must follow
		}
		entries = append(entries, e)
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	steps := []error{
		w.File("/a/b/file.txt", 0o644, 5, strings.NewReader("hello")),
		w.Dir("/tmp", 0o777|fs.ModeSticky),
		w.Symlink("/a/link", "b/file.txt"),
		w.CharDev("/dev/console", 0o600, 5, 1),
		w.File("/setuid", 0o755|fs.ModeSetuid, 3, strings.NewReader("abc")),
		w.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got := map[string]cpioEntry{}
	var order []string
	for _, e := range readCPIO(t, buf.Bytes()) {
		got[e.name] = e
		order = append(order, e.name)
	}
	want := []struct {
		name string
		mode uint32
		data string
	}{
		{"a", 0o040755, ""},
		{"a/b", 0o040755, ""},
		{"a/b/file.txt", 0o100644, "hello"},
		{"tmp", 0o041777, ""},
		{"a/link", 0o120777, "b/file.txt"},
		{"dev", 0o040755, ""},
		{"dev/console", 0o020600, ""},
		{"setuid", 0o104755, "abc"},
	}
	if len(order) != len(want) {
		t.Fatalf("entries %v, want %d", order, len(want))
	}
	for i, w := range want {
		e := got[w.name]
		if order[i] != w.name || e.mode != w.mode || e.data != w.data {
			t.Errorf("entry %d = %q mode %o data %q, want %q mode %o data %q", i, order[i], e.mode, e.data, w.name, w.mode, w.data)
		}
	}
	if c := got["dev/console"]; c.rmaj != 5 || c.rmin != 1 {
		t.Errorf("dev/console is %d,%d, want 5,1", c.rmaj, c.rmin)
	}

	// The cpio tool, if there, must agree that the archive is well formed.
	if _, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command("cpio", "-t", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cpio -t: %v: %s", err, out)
		}
		if got, want := strings.Fields(string(out)), order; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("cpio -t lists %v, want %v", got, want)
		}
	}
}

func TestCPIOWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		do   func(w *cpioWriter) error
	}{
		{"relative path", func(w *cpioWriter) error { return w.Dir("etc", 0o755) }},
		{"root", func(w *cpioWriter) error { return w.File("/", 0o644, 0, strings.NewReader("")) }},
		{"short data", func(w *cpioWriter) error { return w.File("/x", 0o644, 10, strings.NewReader("abc")) }},
		{"file over dir", func(w *cpioWriter) error {
			if err := w.Dir("/d", 0o755); err != nil {
				return nil
			}
			return w.File("/d", 0o644, 0, strings.NewReader(""))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(newCPIOWriter(&bytes.Buffer{})); err == nil {
				t.Error("no error")
			}
		})
	}
}
