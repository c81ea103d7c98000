// Package config loads the kubearmor daemon's configuration.
//
// Sources, in increasing priority: built-in defaults, the YAML file
// (/etc/kubearmor/kubearmor.yaml unless --config names another), the
// environment (KUBEARMOR_<KEY_IN_UPPER_SNAKE>, e.g.
// KUBEARMOR_HOST_DEFAULT_FILE_POSTURE) and command-line flags (--<key>, e.g.
// --hostDefaultFilePosture=block). Every key has a default, unknown keys are
// rejected, and each source is validated on its own before the merge, so an
// error names where a bad value came from: the file and line, the
// environment variable, or the flag.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/kubearmor/kubearmor-host/daemon/monitor"
	"github.com/kubearmor/kubearmor-host/enforcer"
)

// DefaultFile is read when --config is not given; it may be missing.
const DefaultFile = "/etc/kubearmor/kubearmor.yaml"

// ConfigFlag names the flag that selects the config file.
const ConfigFlag = "config"

// Enforcer selects how policies are enforced.
type Enforcer string

// Enforcers.
const (
	EnforcerAuto     Enforcer = "auto"
	EnforcerBPFLSM   Enforcer = "bpflsm"
	EnforcerAppArmor Enforcer = "apparmor"
	EnforcerNone     Enforcer = "none"
)

// Posture is what an operation that no rule matches gets, in a kind that a
// policy has turned into an allow-list.
type Posture string

// Postures.
const (
	PostureAudit Posture = "audit"
	PostureBlock Posture = "block"
)

// LogTarget is where daemon log records go.
type LogTarget string

// Log targets.
const (
	LogTargetAuto     LogTarget = "auto"
	LogTargetJournald LogTarget = "journald"
	LogTargetStderr   LogTarget = "stderr"
)

// AlertTarget is where alert records go.
type AlertTarget string

// Alert targets.
const (
	AlertTargetAuto     AlertTarget = "auto"
	AlertTargetJournald AlertTarget = "journald"
	AlertTargetStdout   AlertTarget = "stdout"
)

// HostLogTarget is where visibility logs go.
type HostLogTarget string

// Visibility log targets.
const (
	HostLogTargetNone     HostLogTarget = "none"
	HostLogTargetJournald HostLogTarget = "journald"
	HostLogTargetStdout   HostLogTarget = "stdout"
)

// Config is the daemon's effective configuration. It is a value: copies share
// nothing mutable (labels are only handed out as copies).
type Config struct {
	// File is the config file that was read, or "" when none was.
	File string

	PolicyDir                      string
	Enforcer                       Enforcer
	HostDefaultFilePosture         Posture
	HostDefaultNetworkPosture      Posture
	HostDefaultCapabilitiesPosture Posture
	HostName                       string
	LogLevel                       slog.Level
	LogTarget                      LogTarget
	AlertTarget                    AlertTarget
	AlertSource                    enforcer.AlertSource
	UnprivilegedUserNamespaces     string // allow, audit or block
	HostVisibility                 monitor.Kinds
	HostLogTarget                  HostLogTarget
	ReloadDebounce                 time.Duration
	BPFPinPath                     string
	StateDir                       string
	APISocket                      string
	MetricsAddress                 string // "" when off
	TelemetryRate                  uint32 // per CPU per second

	nodeLabels map[string]string
	origins    map[string]string
}

// HostDefaultProcessPosture is the posture for process rules, which share the
// file posture as in KubeArmor.
func (c Config) HostDefaultProcessPosture() Posture { return c.HostDefaultFilePosture }

// NodeLabels returns a copy of the extra host labels.
func (c Config) NodeLabels() map[string]string {
	m := make(map[string]string, len(c.nodeLabels))
	for k, v := range c.nodeLabels {
		m[k] = v
	}
	return m
}

// Origin says where a key's value came from: "default", "file PATH:LINE",
// "environment KUBEARMOR_X" or "flag --x"; "" for an unknown key.
func (c Config) Origin(key string) string { return c.origins[key] }

// Error is a bad setting and where it came from.
type Error struct {
	// Where is "PATH:LINE", "flag --KEY" or "environment KUBEARMOR_KEY".
	Where string
	Key   string
	Err   error
}

func (e *Error) Error() string {
	if strings.HasPrefix(e.Where, "flag ") || strings.HasPrefix(e.Where, "environment ") || e.Key == "" {
		return e.Where + ": " + e.Err.Error()
	}
	return e.Where + ": " + e.Key + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// NewFlagSet returns a flag set with --config and one string flag per key.
// Callers may add their own flags (--version, --cleanup) before parsing it
// and then call FromFlags. -h/--help prints the usage, listing every key with
// its environment variable and default, to the set's output (stdout).
func NewFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(os.Stdout)
	fs.SortFlags = false
	fs.String(ConfigFlag, DefaultFile, "YAML config `file`; a missing default file is fine, a missing named file is an error")
	for _, k := range keys() {
		// pflag shows the first `quoted` word as the value's name.
		usage := k.usage
		switch k.kind {
		case kindEnum:
			usage += " (`" + strings.Join(k.enum, "|") + "`)"
		case kindDuration:
			usage = "`duration`: " + usage
		}
		fs.String(k.name, k.def, usage+" (env "+EnvName(k.name)+")")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\n"+
			"Each setting is taken from, in increasing priority: its default, the config file,\n"+
			"the environment variable shown, the flag. Unknown keys and bad values are errors.\n\n"+
			"Flags:\n%s", fs.Name(), fs.FlagUsages())
	}
	return fs
}

// Load parses args (without the program name) and builds the configuration.
// lookupEnv is os.LookupEnv in the daemon; tests pass their own. On -h/--help
// it prints the usage and returns pflag.ErrHelp.
func Load(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	fs := NewFlagSet("kubearmor")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("parse flags: unexpected argument %q", fs.Arg(0))
	}
	return FromFlags(fs, lookupEnv)
}

// FromFlags builds the configuration from a parsed flag set made by
// NewFlagSet, the environment and the config file it names.
func FromFlags(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) (Config, error) {
	return load(fs, lookupEnv, os.Hostname)
}

// source is one layer's validated values.
type source struct {
	values  map[string]any
	origins map[string]string
}

func load(flags *pflag.FlagSet, lookupEnv func(string) (string, bool), hostname func() (string, error)) (Config, error) {
	ks := keys()
	for _, k := range append([]key{{name: ConfigFlag}}, ks...) {
		if flags.Lookup(k.name) == nil {
			return Config{}, fmt.Errorf("load config: flag set has no --%s flag (make it with NewFlagSet)", k.name)
		}
	}

	file, data, err := readFile(flags)
	if err != nil {
		return Config{}, err
	}
	fileSrc, err := checkYAML(file, data, ks)
	if err != nil {
		return Config{}, err
	}
	envSrc, err := fromEnv(ks, lookupEnv)
	if err != nil {
		return Config{}, err
	}
	flagSrc, err := fromFlags(ks, flags)
	if err != nil {
		return Config{}, err
	}

	// Viper does the layering; every value it sees has been validated above.
	// "::" as key delimiter because label keys contain dots.
	v := viper.NewWithOptions(viper.KeyDelimiter("::"))
	for _, k := range ks {
		def, err := k.parse(k.def)
		if k.kind == kindString || err != nil {
			def = k.def // hostName: computed below; others cannot fail
		}
		v.SetDefault(k.name, def)
	}
	if file != "" {
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, fmt.Errorf("read config %s: %w", file, err)
		}
	}
	// The environment is merged as a layer above the file rather than with
	// viper's BindEnv, because BindEnv reads os.Getenv and Load must honour
	// lookupEnv (tests, and callers that sanitise the environment).
	// MergeConfigMap rewrites the map it is given, so it gets its own.
	envMap := map[string]any{}
	for name, val := range envSrc.values {
		if name != KeyNodeLabels { // labels are layered below
			envMap[name] = val
		}
	}
	if err := v.MergeConfigMap(envMap); err != nil {
		return Config{}, fmt.Errorf("merge environment: %w", err)
	}
	for _, k := range ks {
		if k.kind == kindLabels {
			continue // viper would need a string->map hook; labels are layered below
		}
		if err := v.BindPFlag(k.name, flags.Lookup(k.name)); err != nil {
			return Config{}, fmt.Errorf("bind flag --%s: %w", k.name, err)
		}
	}
	var raw rawConfig
	err = v.UnmarshalExact(&raw, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
	)))
	if err != nil {
		return Config{}, fmt.Errorf("load config: %w", err)
	}

	origins := map[string]string{}
	for _, k := range ks {
		origins[k.name] = "default"
	}
	for _, src := range []source{fileSrc, envSrc, flagSrc} {
		for name, o := range src.origins {
			origins[name] = o
		}
	}

	// Viper lower-cases map keys, and label keys are case-sensitive, so the
	// labels are taken from the highest-priority source that set them.
	labels := map[string]string{}
	for _, src := range []source{fileSrc, envSrc, flagSrc} {
		if l, ok := src.values[KeyNodeLabels]; ok {
			labels = l.(map[string]string)
		}
	}

	if origins[KeyHostName] == "default" {
		h, err := hostname()
		if err != nil {
			return Config{}, fmt.Errorf("load config: hostName not set and the kernel host name is unavailable: %w", err)
		}
		raw.HostName = h
		origins[KeyHostName] = "default (kernel host name)"
	}
	return raw.build(ks, labels, origins, file)
}

// rawConfig is what viper decodes into; build turns it into a Config.
type rawConfig struct {
	PolicyDir                      string            `mapstructure:"policyDir"`
	Enforcer                       string            `mapstructure:"enforcer"`
	HostDefaultFilePosture         string            `mapstructure:"hostDefaultFilePosture"`
	HostDefaultNetworkPosture      string            `mapstructure:"hostDefaultNetworkPosture"`
	HostDefaultCapabilitiesPosture string            `mapstructure:"hostDefaultCapabilitiesPosture"`
	HostName                       string            `mapstructure:"hostName"`
	NodeLabels                     map[string]string `mapstructure:"nodeLabels"`
	LogLevel                       string            `mapstructure:"logLevel"`
	LogTarget                      string            `mapstructure:"logTarget"`
	AlertTarget                    string            `mapstructure:"alertTarget"`
	AlertSource                    string            `mapstructure:"alertSource"`
	UnprivilegedUserNamespaces     string            `mapstructure:"unprivilegedUserNamespaces"`
	HostVisibility                 string            `mapstructure:"hostVisibility"`
	HostLogTarget                  string            `mapstructure:"hostLogTarget"`
	ReloadDebounce                 time.Duration     `mapstructure:"reloadDebounce"`
	BPFPinPath                     string            `mapstructure:"bpfPinPath"`
	StateDir                       string            `mapstructure:"stateDir"`
	APISocket                      string            `mapstructure:"apiSocket"`
	MetricsAddress                 string            `mapstructure:"metricsAddress"`
	TelemetryRate                  string            `mapstructure:"telemetryRate"`
}

func (r rawConfig) build(ks []key, labels map[string]string, origins map[string]string, file string) (Config, error) {
	// Validate again after the merge: this catches a key missing from the
	// table or the struct, and the kernel host name, which no source checked.
	strs := map[string]string{
		KeyPolicyDir:                      r.PolicyDir,
		KeyEnforcer:                       r.Enforcer,
		KeyHostDefaultFilePosture:         r.HostDefaultFilePosture,
		KeyHostDefaultNetworkPosture:      r.HostDefaultNetworkPosture,
		KeyHostDefaultCapabilitiesPosture: r.HostDefaultCapabilitiesPosture,
		KeyHostName:                       r.HostName,
		KeyLogLevel:                       r.LogLevel,
		KeyLogTarget:                      r.LogTarget,
		KeyAlertTarget:                    r.AlertTarget,
		KeyAlertSource:                    r.AlertSource,
		KeyUnprivilegedUserNamespaces:     r.UnprivilegedUserNamespaces,
		KeyHostVisibility:                 r.HostVisibility,
		KeyHostLogTarget:                  r.HostLogTarget,
		KeyBPFPinPath:                     r.BPFPinPath,
		KeyStateDir:                       r.StateDir,
		KeyAPISocket:                      r.APISocket,
		KeyMetricsAddress:                 r.MetricsAddress,
		KeyTelemetryRate:                  r.TelemetryRate,
	}
	typed := map[string]any{}
	for _, k := range ks {
		switch k.kind {
		case kindLabels:
			continue
		case kindDuration:
			if _, err := k.parse(r.ReloadDebounce.String()); err != nil {
				return Config{}, &Error{Where: origins[k.name], Key: k.name, Err: err}
			}
			continue
		}
		s, ok := strs[k.name]
		if !ok {
			return Config{}, fmt.Errorf("load config: key %s has no field", k.name)
		}
		val, err := k.parse(s)
		if err != nil {
			return Config{}, &Error{Where: origins[k.name], Key: k.name, Err: err}
		}
		typed[k.name] = val
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(typed[KeyLogLevel].(string))); err != nil {
		return Config{}, &Error{Where: origins[KeyLogLevel], Key: KeyLogLevel, Err: err}
	}
	vis, _ := monitor.ParseKinds(typed[KeyHostVisibility].(string)) // parse checked it
	return Config{
		File:                           file,
		PolicyDir:                      typed[KeyPolicyDir].(string),
		Enforcer:                       Enforcer(typed[KeyEnforcer].(string)),
		HostDefaultFilePosture:         Posture(typed[KeyHostDefaultFilePosture].(string)),
		HostDefaultNetworkPosture:      Posture(typed[KeyHostDefaultNetworkPosture].(string)),
		HostDefaultCapabilitiesPosture: Posture(typed[KeyHostDefaultCapabilitiesPosture].(string)),
		HostName:                       typed[KeyHostName].(string),
		LogLevel:                       level,
		LogTarget:                      LogTarget(typed[KeyLogTarget].(string)),
		AlertTarget:                    AlertTarget(typed[KeyAlertTarget].(string)),
		AlertSource:                    enforcer.AlertSource(typed[KeyAlertSource].(string)),
		UnprivilegedUserNamespaces:     typed[KeyUnprivilegedUserNamespaces].(string),
		HostVisibility:                 vis,
		HostLogTarget:                  HostLogTarget(typed[KeyHostLogTarget].(string)),
		ReloadDebounce:                 r.ReloadDebounce,
		BPFPinPath:                     typed[KeyBPFPinPath].(string),
		StateDir:                       typed[KeyStateDir].(string),
		APISocket:                      typed[KeyAPISocket].(string),
		MetricsAddress:                 typed[KeyMetricsAddress].(string),
		TelemetryRate:                  typed[KeyTelemetryRate].(uint32),
		nodeLabels:                     labels,
		origins:                        origins,
	}, nil
}

// readFile returns the config file's name and contents, or "" when the
// default file is absent.
func readFile(flags *pflag.FlagSet) (string, []byte, error) {
	name, err := flags.GetString(ConfigFlag)
	if err != nil {
		return "", nil, fmt.Errorf("read --%s: %w", ConfigFlag, err)
	}
	explicit := flags.Changed(ConfigFlag)
	if explicit && name == "" {
		return "", nil, nil // --config= : deliberately no file
	}
	data, err := os.ReadFile(name)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return "", nil, nil
		}
		return "", nil, fmt.Errorf("read config %s: %w", name, err)
	}
	return name, data, nil
}

func fromEnv(ks []key, lookupEnv func(string) (string, bool)) (source, error) {
	src := source{values: map[string]any{}, origins: map[string]string{}}
	if lookupEnv == nil {
		return src, nil
	}
	for _, k := range ks {
		name := EnvName(k.name)
		s, ok := lookupEnv(name)
		if !ok || s == "" {
			continue // as viper does: an empty variable is unset
		}
		val, err := k.parse(s)
		if err != nil {
			return source{}, &Error{Where: "environment " + name, Key: k.name, Err: err}
		}
		src.values[k.name] = val
		src.origins[k.name] = "environment " + name
	}
	return src, nil
}

func fromFlags(ks []key, flags *pflag.FlagSet) (source, error) {
	src := source{values: map[string]any{}, origins: map[string]string{}}
	for _, k := range ks {
		if !flags.Changed(k.name) {
			continue
		}
		s, err := flags.GetString(k.name)
		if err != nil {
			return source{}, fmt.Errorf("read flag --%s: %w", k.name, err)
		}
		val, err := k.parse(s)
		if err != nil {
			return source{}, &Error{Where: "flag --" + k.name, Key: k.name, Err: err}
		}
		src.values[k.name] = val
		src.origins[k.name] = "flag --" + k.name
	}
	return src, nil
}

// LogValue lets the daemon log the effective configuration at start:
// logger.Info("config", "config", cfg). No key holds a secret today; when one
// does, this is where it gets redacted.
func (c Config) LogValue() slog.Value {
	file := c.File
	if file == "" {
		file = "(none)"
	}
	return slog.GroupValue(
		slog.String("file", file),
		slog.String(KeyPolicyDir, c.PolicyDir),
		slog.String(KeyEnforcer, string(c.Enforcer)),
		slog.String(KeyHostDefaultFilePosture, string(c.HostDefaultFilePosture)),
		slog.String(KeyHostDefaultNetworkPosture, string(c.HostDefaultNetworkPosture)),
		slog.String(KeyHostDefaultCapabilitiesPosture, string(c.HostDefaultCapabilitiesPosture)),
		slog.String(KeyHostName, c.HostName),
		slog.String(KeyNodeLabels, formatLabels(c.nodeLabels)),
		slog.String(KeyLogLevel, strings.ToLower(c.LogLevel.String())),
		slog.String(KeyLogTarget, string(c.LogTarget)),
		slog.String(KeyAlertTarget, string(c.AlertTarget)),
		slog.String(KeyAlertSource, string(c.AlertSource)),
		slog.String(KeyUnprivilegedUserNamespaces, c.UnprivilegedUserNamespaces),
		slog.String(KeyHostVisibility, c.HostVisibility.String()),
		slog.String(KeyHostLogTarget, string(c.HostLogTarget)),
		slog.Duration(KeyReloadDebounce, c.ReloadDebounce),
		slog.String(KeyBPFPinPath, c.BPFPinPath),
		slog.String(KeyStateDir, c.StateDir),
		slog.String(KeyAPISocket, c.APISocket),
		slog.String(KeyMetricsAddress, c.MetricsAddress),
		slog.Uint64(KeyTelemetryRate, uint64(c.TelemetryRate)),
	)
}

// String renders the configuration as "key=value" pairs, one per key, in
// table order.
func (c Config) String() string {
	var b strings.Builder
	for i, a := range c.LogValue().Group() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", a.Key, a.Value.String())
	}
	return b.String()
}
