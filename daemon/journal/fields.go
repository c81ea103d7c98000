// Package journal writes entries to systemd-journald with its native
// protocol, and provides a log/slog handler on top of it.
//
// The native protocol keeps every field separate and typed by name
// (journalctl -o verbose, journalctl KUBEARMOR_POLICYNAME=...), which
// writing text to stderr cannot. Journald silently drops fields whose names
// break its rules, so names are validated here and an invalid one is an
// error, never a silent loss.
package journal

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Priority is a syslog priority, as journald's PRIORITY field takes it.
type Priority int

// Priorities, most severe first.
const (
	PriEmerg Priority = iota
	PriAlert
	PriCrit
	PriErr
	PriWarning
	PriNotice
	PriInfo
	PriDebug
)

// maxFieldName is journald's limit (JOURNAL_FIELD_NAME_MAX in systemd).
const maxFieldName = 64

// ValidFieldName returns an error when journald would drop a field of this
// name: it must be 1-64 characters of A-Z, 0-9 and _, and must not start with
// a digit or with _ (those are the fields journald itself adds and trusts).
func ValidFieldName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("journal field name is empty")
	case len(name) > maxFieldName:
		return fmt.Errorf("journal field name %q: longer than %d characters", name, maxFieldName)
	case name[0] == '_':
		return fmt.Errorf("journal field name %q: starts with _, which is reserved for trusted fields", name)
	case name[0] >= '0' && name[0] <= '9':
		return fmt.Errorf("journal field name %q: starts with a digit", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("journal field name %q: character %q is not A-Z, 0-9 or _", name, c)
		}
	}
	return nil
}

// FieldName builds a field name from a prefix and a free-form name:
// ("KUBEARMOR", "PolicyName") -> "KUBEARMOR_POLICYNAME",
// ("KUBEARMOR", "policy-name") -> "KUBEARMOR_POLICY_NAME". Letters are
// upper-cased and anything else but digits becomes _. It returns an error when
// the result is still not a valid field name (empty, too long, a leading
// digit without a prefix).
func FieldName(prefix, name string) (string, error) {
	n := sanitize(name)
	if n == "" {
		return "", fmt.Errorf("journal field name from %q: nothing left after removing invalid characters", name)
	}
	if p := strings.TrimSuffix(sanitize(prefix), "_"); p != "" {
		n = p + "_" + n
	}
	if err := ValidFieldName(n); err != nil {
		return "", err
	}
	return n, nil
}

// sanitize upper-cases ASCII letters, keeps digits, turns every other
// character into _, collapses runs of _ and trims them from both ends.
func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	under := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			c = '_'
		}
		if c == '_' {
			if under || b.Len() == 0 {
				continue
			}
			under = true
		} else {
			under = false
		}
		b.WriteByte(c)
	}
	return strings.TrimSuffix(b.String(), "_")
}

// appendField encodes one field in the native protocol: NAME=value\n, or,
// for a value containing a newline, NAME\n<64-bit little-endian length>value\n.
func appendField(b []byte, name, value string) []byte {
	if !strings.Contains(value, "\n") {
		b = append(b, name...)
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, name...)
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}
