package apparmor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// removeFile is where the kernel takes the name of a profile to remove.
const removeFile = "/sys/kernel/security/apparmor/.remove"

// Loader puts profiles in force with apparmor_parser. They go to the kernel
// only, through the parser's standard input: nothing is written to
// /etc/apparmor.d or the parser's cache, so a reboot starts without them,
// and no profile of ours can break boot.
type Loader struct {
	Parser string // apparmor_parser's path
	loaded []string
}

// Replace makes profiles the ones in force: each is loaded or replaced
// (the kernel swaps a profile atomically), then the ones of the last call
// that are gone are removed. A process under a replaced profile keeps
// running under the new one.
func (l *Loader) Replace(profiles []Profile) error {
	var text bytes.Buffer
	var names []string
	for _, p := range profiles {
		text.WriteString(p.Text)
		names = append(names, p.Name)
	}
	cmd := exec.Command(l.Parser, "--replace", "--skip-cache", "--quiet")
	cmd.Stdin = &text
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apparmor_parser --replace: %w: %s", err, strings.TrimSpace(string(out)))
	}
	var errs []error
	for _, name := range l.loaded {
		if !slices.Contains(names, name) {
			errs = append(errs, remove(name))
		}
	}
	l.loaded = names
	return errors.Join(errs...)
}

// RemoveAll removes every profile loaded by Replace.
func (l *Loader) RemoveAll() error {
	var errs []error
	for _, name := range l.loaded {
		errs = append(errs, remove(name))
	}
	l.loaded = nil
	return errors.Join(errs...)
}

// remove asks the kernel to drop a profile: processes under it become
// unconfined. A profile already gone is not an error.
func remove(name string) error {
	err := os.WriteFile(removeFile, []byte(name), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("apparmor: remove profile %s: %w", name, err)
	}
	return nil
}
