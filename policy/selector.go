package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Label keys with a meaning on a standalone host.
const (
	LabelHostname      = "kubearmor.io/hostname"    // exact name, "*", or a comma-separated list
	LabelHostnameRegex = "kubearmor.io/hostnamereg" // RE2 regular expression, unanchored as in KubeArmor
	LabelK8sHostname   = "kubernetes.io/hostname"   // the same as kubearmor.io/hostname, for copied policies
)

// Host is what a nodeSelector is matched against.
type Host struct {
	Name   string
	Labels map[string]string // extra labels from the daemon's nodeLabels setting
}

// Selector is a compiled nodeSelector.
type Selector struct {
	labels map[string]string
	re     *regexp.Regexp
}

func compileSelector(ns NodeSelector, e *errs, path string) Selector {
	sel := Selector{labels: ns.MatchLabels}
	if v, ok := ns.MatchLabels[LabelHostnameRegex]; ok {
		re, err := regexp.Compile(v)
		if err != nil {
			e.add(ns.LineOf("matchLabels"), path+".matchLabels."+LabelHostnameRegex, "invalid regular expression: %v", err)
		}
		sel.re = re
	}
	for k, v := range ns.MatchLabels {
		if (k == LabelHostname || k == LabelK8sHostname) && strings.TrimSpace(v) == "" {
			e.add(ns.LineOf("matchLabels"), path+".matchLabels."+k, "must name a host, a comma-separated list of hosts, or \"*\"")
		}
	}
	return sel
}

// Empty reports whether the selector has no labels, which on a standalone
// host means "this host": the file sits in this host's policy directory.
func (s Selector) Empty() bool { return len(s.labels) == 0 }

// Selects reports whether the selector picks host h. When it does not, the
// reason says which label failed, for the warning the daemon logs.
func (s Selector) Selects(h Host) (bool, string) {
	keys := make([]string, 0, len(s.labels))
	for k := range s.labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := s.labels[k]
		switch k {
		case LabelHostname, LabelK8sHostname:
			if !hostnameIn(h.Name, v) {
				return false, fmt.Sprintf("nodeSelector %s=%s does not name this host %q", k, v, h.Name)
			}
		case LabelHostnameRegex:
			if s.re == nil || !s.re.MatchString(h.Name) {
				return false, fmt.Sprintf("nodeSelector %s=%s does not match this host %q", k, v, h.Name)
			}
		default:
			have, ok := h.Labels[k]
			if !ok {
				return false, fmt.Sprintf("nodeSelector label %s is not set on this host (see the nodeLabels setting)", k)
			}
			if have != v {
				return false, fmt.Sprintf("nodeSelector %s=%s does not match this host's %s=%s", k, v, k, have)
			}
		}
	}
	return true, ""
}

func hostnameIn(host, list string) bool {
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "*" || strings.EqualFold(name, host) {
			return true
		}
	}
	return false
}

// String renders the selector as key=value pairs.
func (s Selector) String() string {
	parts := make([]string, 0, len(s.labels))
	for k, v := range s.labels {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
