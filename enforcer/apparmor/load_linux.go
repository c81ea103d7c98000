package apparmor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// removeFile is where the kernel takes the name of a profile to remove.
const removeFile = "/sys/kernel/security/apparmor/.remove"

// Loader puts profiles in force with apparmor_parser. Profiles go to the
// kernel only: nothing is written to /etc/apparmor.d or the parser's cache,
// so a reboot starts without them, and no profile of ours can break boot.
type Loader struct {
	Parser string // apparmor_parser's path
	Dir    string // where the profile files are written for the parser
	loaded []string
}

// Replace makes profiles the ones in force: each is loaded or replaced
// (the kernel swaps a profile atomically), then the ones of the last call
// that are gone are removed. A process under a replaced profile keeps
// running under the new one.
func (l *Loader) Replace(profiles []Profile) error {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return fmt.Errorf("apparmor: %w", err)
	}
	args := []string{"--replace", "--skip-cache", "--quiet"}
	var names []string
	for _, p := range profiles {
		file := filepath.Join(l.Dir, p.Name)
		if err := os.WriteFile(file, []byte(p.Text), 0o600); err != nil {
			return fmt.Errorf("apparmor: %w", err)
		}
		args = append(args, file)
		names = append(names, p.Name)
	}
	if out, err := exec.Command(l.Parser, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("apparmor_parser --replace: %w: %s", err, strings.TrimSpace(string(out)))
	}
	var errs []error
	for _, name := range l.loaded {
		if !slices.Contains(names, name) {
			errs = append(errs, remove(name))
			os.Remove(filepath.Join(l.Dir, name))
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
		os.Remove(filepath.Join(l.Dir, name))
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
