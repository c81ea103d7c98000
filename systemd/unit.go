// Package systemd holds kubearmor.service and its drop-in for AppArmor
// hosts, embedded so that tests can hold the daemon to what the unit grants
// it (its capabilities) and check the unit itself.
package systemd

import (
	_ "embed"
	"strings"
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
