package dynloader

import (
	"os"
	"path/filepath"
	"testing"
)

// TestInterpreter: a file that is not ELF, or is missing, has no
// interpreter; the system's loaders are absolute paths that exist, and a
// system whose env is dynamic has one.
func TestInterpreter(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{notELF, false},
		{filepath.Join(t.TempDir(), "missing"), false},
	} {
		if got := Interpreter(tc.path); (got != "") != tc.want {
			t.Errorf("Interpreter(%s) = %q", tc.path, got)
		}
	}
	sys := System()
	for _, l := range sys {
		if !filepath.IsAbs(l) {
			t.Errorf("loader %q is not an absolute path", l)
		}
		if _, err := os.Stat(l); err != nil {
			t.Errorf("loader %s: %v", l, err)
		}
	}
	if Interpreter("/usr/bin/env") != "" && len(sys) == 0 {
		t.Error("env has an interpreter, System found none")
	}
}
