// Package systemd holds kubearmor.service and its drop-in for AppArmor
// hosts, embedded so that tests can hold the daemon to what the unit grants
// it (its capabilities) and check the unit itself.
package systemd

import (
	_ "embed"
	"fmt"
	"strings"
	"time"
)

// Unit is the text of kubearmor.service.
//
//go:embed kubearmor.service
var Unit string

// AppArmorDropIn is the text of apparmor.conf, the drop-in an AppArmor
// host installs.
//
//go:embed apparmor.conf
var AppArmorDropIn string

// Capabilities returns the unit's CapabilityBoundingSet=, lower case
// without the CAP_ prefix (as setpriv takes them).
func Capabilities() []string { return capabilities(Unit) }

// AppArmorCapabilities returns what the AppArmor drop-in adds to them.
func AppArmorCapabilities() []string { return capabilities(AppArmorDropIn) }

func capabilities(unit string) []string {
	var caps []string
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "CapabilityBoundingSet="); ok {
			for _, c := range strings.Fields(v) {
				caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
		}
	}
	return caps
}

// StartTimeout returns the unit's TimeoutStartSec=, which the tests wait
// for a daemon to start, so they allow what systemd allows.
func StartTimeout() (time.Duration, error) {
	for _, l := range strings.Split(Unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "TimeoutStartSec="); ok {
			d, err := ParseTimespan(v)
			if err != nil {
				return 0, fmt.Errorf("kubearmor.service TimeoutStartSec=: %w", err)
			}
			return d, nil
		}
	}
	return 0, fmt.Errorf("kubearmor.service sets no TimeoutStartSec=")
}

// ParseTimespan parses a time span as a unit writes it and systemctl show
// prints it ("60s", "1min 30s", "100ms"), in the units up to minutes and
// hours that a start or restart takes; "infinity" and longer units are
// errors.
func ParseTimespan(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.ReplaceAll(strings.ReplaceAll(s, "min", "m"), " ", ""))
	if err != nil {
		return 0, fmt.Errorf("time span %q: %w", s, err)
	}
	return d, nil
}
