package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/kubearmor/kubearmor-host/daemon/monitor"
)

// Key names, as spelled in the YAML file and on the command line.
const (
	KeyPolicyDir                      = "policyDir"
	KeyEnforcer                       = "enforcer"
	KeyHostDefaultFilePosture         = "hostDefaultFilePosture"
	KeyHostDefaultNetworkPosture      = "hostDefaultNetworkPosture"
	KeyHostDefaultCapabilitiesPosture = "hostDefaultCapabilitiesPosture"
	KeyHostName                       = "hostName"
	KeyNodeLabels                     = "nodeLabels"
	KeyLogLevel                       = "logLevel"
	KeyLogTarget                      = "logTarget"
	KeyAlertTarget                    = "alertTarget"
	KeyAlertSource                    = "alertSource"
	KeyUnprivilegedUserNamespaces     = "unprivilegedUserNamespaces"
	KeyHostVisibility                 = "hostVisibility"
	KeyHostLogTarget                  = "hostLogTarget"
	KeyReloadDebounce                 = "reloadDebounce"
	KeyBPFPinPath                     = "bpfPinPath"
	KeyStateDir                       = "stateDir"
	KeyAPISocket                      = "apiSocket"
	KeyMetricsAddress                 = "metricsAddress"
	KeyTelemetryRate                  = "telemetryRate"
)

// EnvPrefix starts the name of every environment variable this package reads.
const EnvPrefix = "KUBEARMOR_"

// maxReloadDebounce bounds reloadDebounce: policies are meant to be enforced
// within about a second of a file change, and a typo like "200s" should not
// silently delay enforcement by minutes.
const maxReloadDebounce = time.Minute

// hostNameLabel is the label the policy loader derives from hostName; setting
// it through nodeLabels would make two sources disagree about the host.
const hostNameLabel = "kubearmor.io/hostname"

type kind int

const (
	kindString kind = iota
	kindEnum
	kindPath
	kindDuration
	kindLabels
	kindVisibility
	kindLoopback // host:port on a loopback address, or empty
	kindRate     // events per second, 1 to maxTelemetryRate
)

// maxTelemetryRate bounds telemetryRate: beyond it the limit limits nothing
// a CPU can produce, and a typo (an extra zero or two) should not pass for
// a setting.
const maxTelemetryRate = 10_000_000

// key describes one setting. Defaults, env bindings, flags, the YAML check,
// the help text and validation are all derived from this one table.
type key struct {
	name  string
	kind  kind
	enum  []string
	def   string // in the syntax a flag takes; hostName's default is computed at load
	usage string
}

// keys returns the table of settings. It is a function so the table cannot be
// changed by anyone at run time.
func keys() []key {
	postures := []string{"audit", "block"}
	return []key{
		{name: KeyPolicyDir, kind: kindPath, def: "/etc/kubearmor/policies",
			usage: "directory of KubeArmorHostPolicy YAML files"},
		{name: KeyEnforcer, kind: kindEnum, enum: []string{"auto", "bpflsm", "apparmor", "none"}, def: "auto",
			usage: "enforcer; auto picks bpflsm, then apparmor, then observe-only"},
		{name: KeyHostDefaultFilePosture, kind: kindEnum, enum: postures, def: "audit",
			usage: "what file and process operations no rule matches get, in an allow-listed kind"},
		{name: KeyHostDefaultNetworkPosture, kind: kindEnum, enum: postures, def: "audit",
			usage: "what network operations no rule matches get, in an allow-listed kind"},
		{name: KeyHostDefaultCapabilitiesPosture, kind: kindEnum, enum: postures, def: "audit",
			usage: "what capability uses no rule matches get, in an allow-listed kind"},
		{name: KeyHostName, kind: kindString, def: "",
			usage: "host name matched by policy nodeSelectors (default: the kernel's)"},
		{name: KeyNodeLabels, kind: kindLabels, def: "",
			usage: "extra host labels for policy nodeSelectors, as `key=value,...`"},
		{name: KeyLogLevel, kind: kindEnum, enum: []string{"debug", "info", "warn", "error"}, def: "info",
			usage: "least severe level of daemon log records to write"},
		{name: KeyLogTarget, kind: kindEnum, enum: []string{"auto", "journald", "stderr"}, def: "auto",
			usage: "where daemon logs go; auto means journald when stderr is connected to the journal"},
		{name: KeyAlertTarget, kind: kindEnum, enum: []string{"auto", "journald", "stdout"}, def: "auto",
			usage: "where alert records go"},
		{name: KeyAlertSource, kind: kindEnum, enum: []string{"ebpf", "audit", "both"}, def: "ebpf",
			usage: "where the AppArmor enforcer's alerts come from: ebpf (refusals seen at the kernel's LSM entry points), audit (AppArmor's records in the kernel audit log; experimental) or both (each decision's two alerts linked); BPF-LSM alerts always come from its own programs"},
		{name: KeyUnprivilegedUserNamespaces, kind: kindEnum, enum: []string{"allow", "audit", "block"}, def: "audit",
			usage: "what the BPF-LSM enforcer does when a process without CAP_SYS_ADMIN on the host creates a user namespace (the way to unprivileged mounts, overlays and chroots): allow, audit (an alert) or block"},
		{name: KeyHostVisibility, kind: kindVisibility, def: "process,file,network,capabilities",
			usage: "what the monitors observe for logs and summaries: process, file, network, capabilities, or none"},
		{name: KeyHostLogTarget, kind: kindEnum, enum: []string{"none", "journald", "stdout"}, def: "none",
			usage: "where visibility logs go besides the local API (alerts always go to alertTarget)"},
		{name: KeyReloadDebounce, kind: kindDuration, def: "200ms",
			usage: "quiet period after a policy file change before reloading"},
		{name: KeyBPFPinPath, kind: kindPath, def: "/sys/fs/bpf/kubearmor",
			usage: "bpffs directory where programs and maps are pinned"},
		{name: KeyStateDir, kind: kindPath, def: "/var/lib/kubearmor",
			usage: "directory for persistent daemon state"},
		{name: KeyAPISocket, kind: kindPath, def: "/run/kubearmor/kubearmor.sock",
			usage: "unix socket of the local gRPC API (karmor's), root-only"},
		{name: KeyTelemetryRate, kind: kindRate, def: "20000",
			usage: "visibility events per second per CPU that the kernel lets through (bursts of twice that); the rest are counted as throttled"},
		{name: KeyMetricsAddress, kind: kindLoopback, def: "",
			usage: "loopback host:port to serve Prometheus metrics on, e.g. 127.0.0.1:9102; empty: off"},
	}
}

// EnvName returns the environment variable for a key:
// hostDefaultFilePosture -> KUBEARMOR_HOST_DEFAULT_FILE_POSTURE,
// bpfPinPath -> KUBEARMOR_BPF_PIN_PATH.
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	runes := []rune(key)
	for i, r := range runes {
		// A word starts at an upper-case letter that follows a lower-case one,
		// or that starts a capitalised word after an acronym ("BPFPin").
		if i > 0 && unicode.IsUpper(r) {
			prevLower := unicode.IsLower(runes[i-1]) || unicode.IsDigit(runes[i-1])
			nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
			if prevLower || (unicode.IsUpper(runes[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// parse validates a value given as text (a flag, an environment variable, a
// YAML scalar) and returns it in its typed form.
func (k key) parse(s string) (any, error) {
	switch k.kind {
	case kindEnum:
		if !slices.Contains(k.enum, s) {
			return nil, fmt.Errorf("must be %s, got %q", orList(k.enum), s)
		}
		return s, nil
	case kindPath:
		if s == "" {
			return nil, fmt.Errorf("must be an absolute path, got an empty string")
		}
		if !filepath.IsAbs(s) {
			return nil, fmt.Errorf("must be an absolute path, got %q", s)
		}
		return filepath.Clean(s), nil
	case kindDuration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("must be a duration such as \"200ms\", got %q", s)
		}
		if d < 0 || d > maxReloadDebounce {
			return nil, fmt.Errorf("must be between 0s and %s, got %q", maxReloadDebounce, s)
		}
		return d, nil
	case kindLabels:
		return parseLabelList(s)
	case kindLoopback:
		return s, checkLoopback(s)
	case kindRate:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n < 1 || n > maxTelemetryRate {
			return nil, fmt.Errorf("must be a whole number of events per second from 1 to %d, got %q", maxTelemetryRate, s)
		}
		return uint32(n), nil
	case kindVisibility:
		if _, err := monitor.ParseKinds(s); err != nil {
			return nil, fmt.Errorf("must be a comma-separated list of process, file, network, capabilities, or none: %w", err)
		}
		return s, nil
	default:
		return s, checkHostName(s)
	}
}

// checkLoopback accepts "" and host:port where host is a loopback IP
// address or localhost: the counters say what the host does and how much
// the daemon misses, which is not for the network.
func checkLoopback(s string) error {
	if s == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be host:port on a loopback address, or empty: %w", err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("must be host:port with a port from 1 to 65535, got %q", s)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return fmt.Errorf("must be on a loopback address (127.0.0.1, ::1, localhost), got %q", s)
	}
	return nil
}

// checkHostName rejects what cannot be a host name, so a stray quote or space
// in a config file does not make every nodeSelector silently miss.
func checkHostName(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) > 253 {
		return fmt.Errorf("must be at most 253 characters, got %d", len(s))
	}
	for _, r := range s {
		if r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '.' || r == '_') {
			return fmt.Errorf("must contain only letters, digits, '-', '_' and '.', got %q", s)
		}
	}
	return nil
}

// parseLabelList parses "key=value,key2=value2" (flags and environment).
// An empty string is an empty set, so a flag can clear labels set in the file.
func parseLabelList(s string) (map[string]string, error) {
	labels := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return labels, nil
	}
	for item := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("must be key=value pairs separated by commas, got %q", item)
		}
		if _, dup := labels[k]; dup {
			return nil, fmt.Errorf("label %q given twice", k)
		}
		if err := checkLabel(k, v); err != nil {
			return nil, err
		}
		labels[k] = v
	}
	return labels, nil
}

// checkLabel applies Kubernetes' label syntax, since policies written for
// KubeArmor select on labels in that syntax.
func checkLabel(k, v string) error {
	if k == hostNameLabel {
		return fmt.Errorf("label %q is derived from hostName; set hostName instead", k)
	}
	name := k
	if prefix, n, ok := strings.Cut(k, "/"); ok {
		name = n
		if prefix == "" || len(prefix) > 253 || !labelChars(prefix, false) {
			return fmt.Errorf("label key %q: prefix must be a DNS subdomain", k)
		}
	}
	if name == "" || len(name) > 63 || !labelChars(name, true) {
		return fmt.Errorf("label key %q: name must be 1-63 characters [A-Za-z0-9_.-], starting and ending with a letter or digit", k)
	}
	if v != "" && (len(v) > 63 || !labelChars(v, true)) {
		return fmt.Errorf("label %q: value %q must be at most 63 characters [A-Za-z0-9_.-], starting and ending with a letter or digit", k, v)
	}
	return nil
}

func labelChars(s string, underscore bool) bool {
	for i, r := range s {
		alnum := r <= unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))
		if i == 0 || i == len(s)-1 {
			if !alnum {
				return false
			}
			continue
		}
		if !alnum && r != '-' && r != '.' && !(underscore && r == '_') {
			return false
		}
	}
	return true
}

// orList renders choices as `"a", "b" or "c"`.
func orList(choices []string) string {
	q := make([]string, len(choices))
	for i, c := range choices {
		q[i] = fmt.Sprintf("%q", c)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// formatLabels renders labels sorted, in the syntax parseLabelList accepts.
func formatLabels(labels map[string]string) string {
	ks := make([]string, 0, len(labels))
	for k := range labels {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}
