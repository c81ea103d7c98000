package apparmor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Where the kernel takes profiles to load or replace, takes the name of a
// profile to remove, and lists the profiles loaded.
const (
	replaceFile  = "/sys/kernel/security/apparmor/.replace"
	removeFile   = "/sys/kernel/security/apparmor/.remove"
	profilesFile = "/sys/kernel/security/apparmor/profiles"
)

// capMACAdmin is CAP_MAC_ADMIN's number.
const capMACAdmin = 33

// CanLoad says why this process could not load profiles, or nil: it needs
// CAP_MAC_ADMIN and a writable securityfs (which a sandboxed service may
// not have; the AppArmor drop-in grants both).
func CanLoad() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read this process's capabilities: %w", err)
	}
	if data[capMACAdmin/32].Effective&(1<<(capMACAdmin%32)) == 0 {
		return errors.New("loading profiles needs CAP_MAC_ADMIN, which this process does not have")
	}
	if err := unix.Access(replaceFile, unix.W_OK); err != nil {
		return fmt.Errorf("loading profiles needs %s writable: %w", replaceFile, err)
	}
	return nil
}

// profilePrefix starts the name of every profile this package loads.
const profilePrefix = "kubearmor-"

// Loader puts profiles in force with apparmor_parser. They go to the kernel
// only, through the parser's standard input: nothing is written to
// /etc/apparmor.d or the parser's cache, so a reboot starts without them,
// and no profile of ours can break boot.
type Loader struct {
	Parser string // apparmor_parser's path
	loaded []string
	attach map[string]string // attachment of each loaded profile, when known
}

// Loaded lists the profiles of ours in the kernel: a previous daemon's,
// which Replace takes over.
func Loaded() ([]string, error) {
	b, err := os.ReadFile(profilesFile)
	if err != nil {
		return nil, fmt.Errorf("apparmor: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		// "name (mode)"
		if i := strings.LastIndex(line, " ("); i > 0 && strings.HasPrefix(line, profilePrefix) {
			names = append(names, line[:i])
		}
	}
	return names, nil
}

// Adopt takes over the profiles a previous daemon left loaded, so that the
// next Replace replaces or retires them instead of leaving them behind.
func (l *Loader) Adopt() error {
	names, err := Loaded()
	if err != nil {
		return err
	}
	for _, n := range names {
		if !slices.Contains(l.loaded, n) {
			l.loaded = append(l.loaded, n)
		}
	}
	return nil
}

// RemoveProfiles removes every profile of ours from the kernel, whoever
// loaded it (kubearmor --cleanup), and returns their names.
func RemoveProfiles() ([]string, error) {
	names, err := Loaded()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, remove(n))
	}
	return names, errors.Join(errs...)
}

// Replace makes profiles the ones in force: each is loaded or replaced
// (the kernel swaps a profile atomically; a process under it keeps running
// under the new one). A source profile of the last call that is gone is
// retired, not removed: it becomes a copy of the host profile under its
// old name and attachment, so that the processes under it keep the
// host-wide rules. Any other profile that is gone is removed.
func (l *Loader) Replace(profiles []Profile) error {
	if l.attach == nil {
		l.attach = map[string]string{}
	}
	var text bytes.Buffer
	var names []string
	var host *Profile
	for i, p := range profiles {
		text.WriteString(p.Text)
		names = append(names, p.Name)
		l.attach[p.Name] = p.Attach
		if p.Name == HostProfile {
			host = &profiles[i]
		}
	}
	var gone []string
	for _, name := range l.loaded {
		if slices.Contains(names, name) {
			continue
		}
		if attach, known := l.attach[name]; known && host != nil && strings.HasPrefix(name, sourceProfilePrefix) {
			text.WriteString(retired(*host, name, attach))
			names = append(names, name)
			continue
		}
		gone = append(gone, name)
	}
	cmd := exec.Command(l.Parser, "--replace", "--skip-cache", "--quiet")
	cmd.Stdin = &text
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apparmor_parser --replace: %w: %s", err, strings.TrimSpace(string(out)))
	}
	var errs []error
	for _, name := range gone {
		errs = append(errs, remove(name))
		delete(l.attach, name)
	}
	l.loaded = names
	return errors.Join(errs...)
}

// retired is the host profile under another profile's name and attachment.
func retired(host Profile, name, attach string) string {
	return strings.Replace(host.Text, header(HostProfile, host.Attach), header(name, attach), 1)
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
