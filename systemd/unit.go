// Package systemd holds kubearmor.service, embedded so that tests can hold
// the daemon to what the unit grants it (its capabilities) and check the
// unit itself.
package systemd

import (
	_ "embed"
	"strings"
)

// Unit is the text of kubearmor.service.
//
//go:embed kubearmor.service
var Unit string

// Capabilities returns the unit's CapabilityBoundingSet=, lower case
// without the CAP_ prefix (as setpriv takes them).
func Capabilities() []string {
	var caps []string
	for _, l := range strings.Split(Unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "CapabilityBoundingSet="); ok {
			for _, c := range strings.Fields(v) {
				caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
		}
	}
	return caps
}
