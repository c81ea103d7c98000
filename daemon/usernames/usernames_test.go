package usernames

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	write := func(s string, mtime time.Time) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, mtime, mtime)
	}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	write("root:x:0:0:root:/root:/bin/bash\n# comment:x:5:5\nalice:x:1000:1000::/home/alice:/bin/sh\nbroken line\nbad:x:notanumber:0\ntwin:x:1000:1000::/:/bin/sh\n", t0)
	now := t0
	c := New(path)
	c.now = func() time.Time { return now }
	tests := []struct {
		uid  uint32
		want string
	}{{0, "root"}, {1000, "alice"}, {5, ""}, {4242, ""}}
	for _, tt := range tests {
		if got := c.Name(tt.uid); got != tt.want {
			t.Errorf("Name(%d) = %q, want %q", tt.uid, got, tt.want)
		}
	}
	// A new user: not seen within the recheck interval, seen after it.
	write("root:x:0:0:root:/root:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\n", t0.Add(time.Minute))
	now = now.Add(recheck / 2)
	if got := c.Name(1001); got != "" {
		t.Errorf("Name(1001) within the recheck interval = %q, want the cached answer \"\"", got)
	}
	now = now.Add(recheck)
	if got := c.Name(1001); got != "bob" {
		t.Errorf("Name(1001) after the file changed = %q, want bob", got)
	}
	if got := c.Name(1000); got != "" {
		t.Errorf("Name(1000) after alice was removed = %q", got)
	}
	if got := New(filepath.Join(t.TempDir(), "none")).Name(0); got != "" {
		t.Errorf("without a passwd file: %q", got)
	}
}
