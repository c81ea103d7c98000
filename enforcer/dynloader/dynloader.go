// Package dynloader finds the system's dynamic loaders: the ELF
// interpreters of programs every Debian system has. The enforcers need
// them because a loader run as a program (ld.so PROGRAM) runs PROGRAM
// without an exec of it.
package dynloader

import (
	"debug/elf"
	"path/filepath"
	"slices"
)

// hints are programs every system has; their interpreters are its loaders.
func hints() []string { return []string{"/bin/sh", "/usr/bin/env", "/usr/bin/ls"} }

// System returns the system's loaders, each once, as the programs name them
// (PT_INTERP, cleaned; often a symlink).
func System() []string {
	var out []string
	for _, hint := range hints() {
		if interp := Interpreter(hint); interp != "" && !slices.Contains(out, interp) {
			out = append(out, interp)
		}
	}
	return out
}

// Interpreter returns the PT_INTERP of the ELF file at path, "" if it has
// none or cannot be read.
func Interpreter(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP || p.Filesz < 2 {
			continue
		}
		b := make([]byte, p.Filesz)
		if _, err := p.ReadAt(b, 0); err != nil {
			return ""
		}
		return filepath.Clean(string(b[:len(b)-1]))
	}
	return ""
}
