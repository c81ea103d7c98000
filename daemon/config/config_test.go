package config

import (
	"bytes"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubearmor/kubearmor-host/daemon/monitor"
	"github.com/kubearmor/kubearmor-host/enforcer"
)

// defaults is what a machine with no file, no environment and no flags gets.
func defaults() Config {
	return Config{
		PolicyDir:                      "/etc/kubearmor/policies",
		Enforcer:                       EnforcerAuto,
		HostDefaultFilePosture:         PostureAudit,
		HostDefaultNetworkPosture:      PostureAudit,
		HostDefaultCapabilitiesPosture: PostureAudit,
		HostName:                       "testhost",
		LogLevel:                       slog.LevelInfo,
		LogTarget:                      LogTargetAuto,
		AlertTarget:                    AlertTargetAuto,
		AlertSource:                    enforcer.AlertEBPF,
		UnprivilegedUserNamespaces:     "audit",
		HostVisibility:                 monitor.Process | monitor.File | monitor.Network | monitor.Capabilities,
		HostLogTarget:                  HostLogTargetNone,
		ReloadDebounce:                 200 * time.Millisecond,
		BPFPinPath:                     "/sys/fs/bpf/kubearmor",
		StateDir:                       "/var/lib/kubearmor",
		APISocket:                      "/run/kubearmor/kubearmor.sock",
		TelemetryRate:                  20000,
	}
}

// loadTest loads with the default file at dir/kubearmor.yaml (written when
// yaml is not nil) and a fixed kernel host name.
func loadTest(t *testing.T, dir string, yaml *string, args []string, env map[string]string) (Config, error) {
	t.Helper()
	file := filepath.Join(dir, "kubearmor.yaml")
	if yaml != nil {
		if err := os.WriteFile(file, []byte(*yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	fs := NewFlagSet("kubearmor")
	fs.SetOutput(&bytes.Buffer{})
	// Value.Set leaves Changed false: this stands in for the default path.
	if err := fs.Lookup(ConfigFlag).Value.Set(file); err != nil {
		t.Fatal(err)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return load(fs, lookup, func() (string, error) { return "testhost", nil })
}

func ptr(s string) *string { return &s }

func TestLoad(t *testing.T) {
	const file = "kubearmor.yaml" // replaced by the full path in errors
	tests := []struct {
		name    string
		yaml    *string
		args    []string
		env     map[string]string
		want    func(c *Config)
		labels  map[string]string
		origins map[string]string
		wantErr string // exact, with @FILE@ standing for the file's path
	}{
		{
			name:    "no file means defaults",
			want:    func(c *Config) {},
			origins: map[string]string{KeyPolicyDir: "default", KeyHostName: "default (kernel host name)"},
		},
		{
			name: "empty file means defaults",
			yaml: ptr("# nothing here\n"),
			want: func(c *Config) { c.File = "@FILE@" },
		},
		{
			name: "file sets every kind of key",
			yaml: ptr(`policyDir: /srv/policies/
enforcer: bpflsm
hostDefaultFilePosture: block
hostName: node-1.example
nodeLabels:
  kubearmor.io/Zone: Eu-West
  tier: db
logLevel: debug
reloadDebounce: 1s
telemetryRate: 50000
`),
			want: func(c *Config) {
				c.TelemetryRate = 50000
				c.File = "@FILE@"
				c.PolicyDir = "/srv/policies"
				c.Enforcer = EnforcerBPFLSM
				c.HostDefaultFilePosture = PostureBlock
				c.HostName = "node-1.example"
				c.LogLevel = slog.LevelDebug
				c.ReloadDebounce = time.Second
			},
			labels:  map[string]string{"kubearmor.io/Zone": "Eu-West", "tier": "db"},
			origins: map[string]string{KeyEnforcer: "file @FILE@:2", KeyReloadDebounce: "file @FILE@:9", KeyStateDir: "default"},
		},
		{
			name: "environment beats file",
			yaml: ptr("hostDefaultFilePosture: block\nreloadDebounce: 1s\n"),
			env: map[string]string{
				"KUBEARMOR_HOST_DEFAULT_FILE_POSTURE": "audit",
				"KUBEARMOR_RELOAD_DEBOUNCE":           "500ms",
				"KUBEARMOR_NODE_LABELS":               "a=1,b=2",
				"KUBEARMOR_BPF_PIN_PATH":              "/sys/fs/bpf/ka",
				"KUBEARMOR_LOG_TARGET":                "", // empty is unset
			},
			want: func(c *Config) {
				c.File = "@FILE@"
				c.ReloadDebounce = 500 * time.Millisecond
				c.BPFPinPath = "/sys/fs/bpf/ka"
			},
			labels: map[string]string{"a": "1", "b": "2"},
			origins: map[string]string{
				KeyHostDefaultFilePosture: "environment KUBEARMOR_HOST_DEFAULT_FILE_POSTURE",
				KeyLogTarget:              "default",
			},
		},
		{
			name: "flag beats environment and file",
			yaml: ptr("hostDefaultNetworkPosture: audit\nnodeLabels: {a: x}\n"),
			env:  map[string]string{"KUBEARMOR_HOST_DEFAULT_NETWORK_POSTURE": "audit", "KUBEARMOR_ALERT_TARGET": "stdout"},
			args: []string{"--hostDefaultNetworkPosture=block", "--nodeLabels=", "--reloadDebounce", "0s", "--hostName=h2", "--alertTarget=journald"},
			want: func(c *Config) {
				c.File = "@FILE@"
				c.HostDefaultNetworkPosture = PostureBlock
				c.ReloadDebounce = 0
				c.HostName = "h2"
				c.AlertTarget = AlertTargetJournald
			},
			labels:  map[string]string{},
			origins: map[string]string{KeyHostDefaultNetworkPosture: "flag --hostDefaultNetworkPosture", KeyAlertTarget: "flag --alertTarget"},
		},
		{
			name: "explicit empty --config reads no file",
			yaml: ptr("enforcer: bpflsm\n"),
			args: []string{"--config="},
			want: func(c *Config) {},
		},
		{
			name:    "bad enum in file names file, line and key",
			yaml:    ptr("# comment\n\nenforcer: auto\n\n\n\nhostDefaultFilePosture: deny\n"),
			wantErr: `@FILE@:7: hostDefaultFilePosture: must be "audit" or "block", got "deny"`,
		},
		{
			name: "visibility off, logs to journald",
			yaml: ptr("hostVisibility: none\nhostLogTarget: journald\n"),
			want: func(c *Config) { c.File, c.HostVisibility, c.HostLogTarget = "@FILE@", 0, HostLogTargetJournald },
		},
		{
			name: "visibility of some kinds",
			yaml: ptr("hostVisibility: network, process\n"),
			want: func(c *Config) { c.File, c.HostVisibility = "@FILE@", monitor.Network|monitor.Process },
		},
		{
			name:    "bad visibility kind names file, line and key",
			yaml:    ptr("\nhostVisibility: process,files\n"),
			wantErr: `@FILE@:2: hostVisibility: must be a comma-separated list of process, file, network, capabilities, or none: "process,files": unknown kind "files" (want process, file, network, capabilities or none)`,
		},
		{
			name:    "none with other kinds",
			args:    []string{"--hostVisibility=none,file"},
			wantErr: `flag --hostVisibility: must be a comma-separated list of process, file, network, capabilities, or none: "none,file": none cannot be combined with other kinds`,
		},
		{
			name:    "unknown key suggests the right one",
			yaml:    ptr("hostDefaultFilePostur: block\n"),
			wantErr: `@FILE@:1: hostDefaultFilePostur: unknown key (did you mean "hostDefaultFilePosture"?)`,
		},
		{
			name:    "keys are case-sensitive",
			yaml:    ptr("policydir: /x\n"),
			wantErr: `@FILE@:1: policydir: unknown key (did you mean "policyDir"? keys are case-sensitive)`,
		},
		{
			name:    "unrelated unknown key",
			yaml:    ptr("visibility: process,file\n"),
			wantErr: `@FILE@:1: visibility: unknown key`,
		},
		{
			name:    "every problem in the file is reported",
			yaml:    ptr("enforcer: selinux\nlogLevel: loud\nfoo: 1\n"),
			wantErr: "@FILE@:1: enforcer: must be \"auto\", \"bpflsm\", \"apparmor\" or \"none\", got \"selinux\"\n@FILE@:2: logLevel: must be \"debug\", \"info\", \"warn\" or \"error\", got \"loud\"\n@FILE@:3: foo: unknown key",
		},
		{
			name:    "integer where a duration string is needed",
			yaml:    ptr("reloadDebounce: 200\n"),
			wantErr: `@FILE@:1: reloadDebounce: must be a duration such as "200ms", got int 200 (quote it if a string is meant)`,
		},
		{
			name:    "bool where a string is needed",
			yaml:    ptr("hostName: true\n"),
			wantErr: `@FILE@:1: hostName: must be a string, got bool true (quote it if a string is meant)`,
		},
		{
			name:    "list where a string is needed",
			yaml:    ptr("policyDir:\n  - /a\n"),
			wantErr: `@FILE@:2: policyDir: must be a string, got a list`,
		},
		{
			name:    "key without value",
			yaml:    ptr("logTarget:\n"),
			wantErr: `@FILE@:1: logTarget: has no value (remove the line to use the default)`,
		},
		{
			name:    "duplicate key",
			yaml:    ptr("logLevel: info\nlogLevel: debug\n"),
			wantErr: `@FILE@:2: logLevel: duplicate key (first set on line 1)`,
		},
		{
			name:    "relative path",
			yaml:    ptr("stateDir: var/lib/kubearmor\n"),
			wantErr: `@FILE@:1: stateDir: must be an absolute path, got "var/lib/kubearmor"`,
		},
		{
			name:    "metrics on a public address",
			yaml:    ptr("stateDir: /var/lib/kubearmor\nmetricsAddress: 0.0.0.0:9102\n"),
			wantErr: `@FILE@:2: metricsAddress: must be on a loopback address (127.0.0.1, ::1, localhost), got "0.0.0.0:9102"`,
		},
		{
			name:    "telemetry rate zero",
			yaml:    ptr("telemetryRate: 0\n"),
			wantErr: `@FILE@:1: telemetryRate: must be a whole number of events per second from 1 to 10000000, got "0"`,
		},
		{
			name:    "telemetry rate not a number",
			yaml:    ptr("telemetryRate: fast\n"),
			wantErr: `@FILE@:1: telemetryRate: must be a whole number of events per second from 1 to 10000000, got "fast"`,
		},
		{
			name:    "metrics without a port",
			yaml:    ptr("metricsAddress: 127.0.0.1\n"),
			wantErr: `@FILE@:1: metricsAddress: must be host:port on a loopback address, or empty: address 127.0.0.1: missing port in address`,
		},
		{
			name:    "bad label value names the label's line",
			yaml:    ptr("nodeLabels:\n  ok: fine\n  zone: -bad-\n"),
			wantErr: `@FILE@:3: nodeLabels: label "zone": value "-bad-" must be at most 63 characters [A-Za-z0-9_.-], starting and ending with a letter or digit`,
		},
		{
			name:    "hostname label is reserved",
			yaml:    ptr("nodeLabels:\n  kubearmor.io/hostname: x\n"),
			wantErr: `@FILE@:2: nodeLabels: label "kubearmor.io/hostname" is derived from hostName; set hostName instead`,
		},
		{
			name:    "labels must be a mapping",
			yaml:    ptr("nodeLabels: a=b\n"),
			wantErr: `@FILE@:1: nodeLabels: must be a mapping of label: value, got str a=b (quote it if a string is meant)`,
		},
		{
			name:    "top level must be a mapping",
			yaml:    ptr("- policyDir\n"),
			wantErr: `@FILE@:1: must be a mapping of key: value, got a list`,
		},
		{
			name:    "two documents",
			yaml:    ptr("enforcer: auto\n---\nenforcer: none\n"),
			wantErr: `@FILE@:2: only one YAML document is allowed`,
		},
		{
			name:    "yaml syntax error",
			yaml:    ptr("enforcer: [auto\n"),
			wantErr: `parse config @FILE@: yaml: line 1: did not find expected ',' or ']'`,
		},
		{
			name:    "bad environment value names the variable",
			env:     map[string]string{"KUBEARMOR_LOG_LEVEL": "verbose"},
			wantErr: `environment KUBEARMOR_LOG_LEVEL: must be "debug", "info", "warn" or "error", got "verbose"`,
		},
		{
			name:    "bad environment labels",
			env:     map[string]string{"KUBEARMOR_NODE_LABELS": "a=1,b"},
			wantErr: `environment KUBEARMOR_NODE_LABELS: must be key=value pairs separated by commas, got "b"`,
		},
		{
			name:    "bad flag value names the flag",
			args:    []string{"--reloadDebounce=soon"},
			wantErr: `flag --reloadDebounce: must be a duration such as "200ms", got "soon"`,
		},
		{
			name:    "debounce out of range",
			args:    []string{"--reloadDebounce=5m"},
			wantErr: `flag --reloadDebounce: must be between 0s and 1m0s, got "5m"`,
		},
		{
			name:    "bad host name flag",
			args:    []string{"--hostName=my host"},
			wantErr: `flag --hostName: must contain only letters, digits, '-', '_' and '.', got "my host"`,
		},
		{
			name:    "missing explicit config file",
			args:    []string{"--config=/nonexistent/kubearmor.yaml"},
			wantErr: `read config /nonexistent/kubearmor.yaml: open /nonexistent/kubearmor.yaml: no such file or directory`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, file)
			got, err := loadTest(t, dir, tt.yaml, tt.args, tt.env)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "@FILE@", path)
				if err == nil {
					t.Fatalf("got no error, want %q", want)
				}
				if err.Error() != want {
					t.Fatalf("error:\n got %q\nwant %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := defaults()
			tt.want(&want)
			if want.File == "@FILE@" {
				want.File = path
			}
			// Unexported fields are checked below.
			gotCmp, wantCmp := got, want
			gotCmp.nodeLabels, gotCmp.origins, wantCmp.nodeLabels, wantCmp.origins = nil, nil, nil, nil
			if gotCmp.String() != wantCmp.String() || gotCmp.File != wantCmp.File {
				t.Errorf("config:\n got %s\nwant %s", gotCmp, wantCmp)
			}
			if tt.labels == nil {
				tt.labels = map[string]string{}
			}
			if !maps.Equal(got.NodeLabels(), tt.labels) {
				t.Errorf("labels: got %v, want %v", got.NodeLabels(), tt.labels)
			}
			for k, o := range tt.origins {
				o = strings.ReplaceAll(o, "@FILE@", path)
				if got.Origin(k) != o {
					t.Errorf("Origin(%s) = %q, want %q", k, got.Origin(k), o)
				}
			}
		})
	}
}

func TestLoadPublic(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "k.yaml")
	if err := os.WriteFile(file, []byte("hostDefaultCapabilitiesPosture: block\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KUBEARMOR_ENFORCER": "apparmor"}
	cfg, err := Load([]string{"--config", file, "--logLevel=warn"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HostDefaultCapabilitiesPosture != PostureBlock || cfg.Enforcer != EnforcerAppArmor || cfg.LogLevel != slog.LevelWarn {
		t.Errorf("got %s", cfg)
	}
	if cfg.HostDefaultProcessPosture() != cfg.HostDefaultFilePosture {
		t.Errorf("process posture %q differs from file posture %q", cfg.HostDefaultProcessPosture(), cfg.HostDefaultFilePosture)
	}
	h, _ := os.Hostname()
	if cfg.HostName != h {
		t.Errorf("hostName = %q, want the kernel's %q", cfg.HostName, h)
	}

	if _, err := Load([]string{"--config", file, "--nosuchflag"}, nil); err == nil || err.Error() != "parse flags: unknown flag: --nosuchflag" {
		t.Errorf("unknown flag: got %v", err)
	}
	if _, err := Load([]string{"--config", file, "extra"}, nil); err == nil || err.Error() != `parse flags: unexpected argument "extra"` {
		t.Errorf("extra argument: got %v", err)
	}
}

func TestHelp(t *testing.T) {
	fs := NewFlagSet("kubearmor")
	var out bytes.Buffer
	fs.SetOutput(&out)
	if err := fs.Parse([]string{"--help"}); !errors.Is(err, pflag.ErrHelp) {
		t.Fatalf("got %v, want ErrHelp", err)
	}
	help := out.String()
	for _, k := range keys() {
		if !strings.Contains(help, "--"+k.name+" ") || !strings.Contains(help, EnvName(k.name)) {
			t.Errorf("help lacks --%s or %s:\n%s", k.name, EnvName(k.name), help)
		}
		if k.def != "" && !strings.Contains(help, `(default "`+k.def+`")`) {
			t.Errorf("help lacks default of %s", k.name)
		}
	}
}

func TestEnvName(t *testing.T) {
	tests := map[string]string{
		KeyPolicyDir:                      "KUBEARMOR_POLICY_DIR",
		KeyHostDefaultFilePosture:         "KUBEARMOR_HOST_DEFAULT_FILE_POSTURE",
		KeyHostDefaultCapabilitiesPosture: "KUBEARMOR_HOST_DEFAULT_CAPABILITIES_POSTURE",
		KeyBPFPinPath:                     "KUBEARMOR_BPF_PIN_PATH",
		KeyHostName:                       "KUBEARMOR_HOST_NAME",
		KeyNodeLabels:                     "KUBEARMOR_NODE_LABELS",
		"enforcer":                        "KUBEARMOR_ENFORCER",
		"BPFPinPath":                      "KUBEARMOR_BPF_PIN_PATH",
		"ipv6Enabled":                     "KUBEARMOR_IPV6_ENABLED",
	}
	for in, want := range tests {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLogValueAndCopies(t *testing.T) {
	cfg, err := loadTest(t, t.TempDir(), nil, []string{"--nodeLabels=b=2,a=1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `file="(none)" policyDir="/etc/kubearmor/policies" enforcer="auto" hostDefaultFilePosture="audit" ` +
		`hostDefaultNetworkPosture="audit" hostDefaultCapabilitiesPosture="audit" hostName="testhost" ` +
		`nodeLabels="a=1,b=2" logLevel="info" logTarget="auto" alertTarget="auto" alertSource="ebpf" unprivilegedUserNamespaces="audit" hostVisibility="process,file,network,capabilities" hostLogTarget="none" reloadDebounce="200ms" ` +
		`bpfPinPath="/sys/fs/bpf/kubearmor" stateDir="/var/lib/kubearmor" apiSocket="/run/kubearmor/kubearmor.sock" metricsAddress="" telemetryRate="20000"`
	if got := cfg.String(); got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", cfg)
	if !strings.Contains(buf.String(), "config.hostDefaultFilePosture=audit") {
		t.Errorf("LogValue not used: %s", buf.String())
	}
	cfg.NodeLabels()["a"] = "changed"
	if cfg.NodeLabels()["a"] != "1" {
		t.Error("NodeLabels handed out its own map")
	}
}

func TestFromFlagsNeedsItsFlagSet(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	if _, err := FromFlags(fs, nil); err == nil || !strings.Contains(err.Error(), "no --config flag") {
		t.Errorf("got %v", err)
	}
}

func TestKernelHostName(t *testing.T) {
	tests := []struct {
		name     string
		hostname func() (string, error)
		wantErr  string
	}{
		{"bad kernel host name is reported as the default", func() (string, error) { return "bad host", nil },
			`default (kernel host name): hostName: must contain only letters, digits, '-', '_' and '.', got "bad host"`},
		{"no kernel host name", func() (string, error) { return "", errors.New("uname: boom") },
			`load config: hostName not set and the kernel host name is unavailable: uname: boom`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := NewFlagSet("kubearmor")
			if err := fs.Parse([]string{"--config="}); err != nil {
				t.Fatal(err)
			}
			_, err := load(fs, nil, tt.hostname)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("got %v, want %q", err, tt.wantErr)
			}
		})
	}
	// Set explicitly, the kernel's name is never asked for.
	fs := NewFlagSet("kubearmor")
	if err := fs.Parse([]string{"--config=", "--hostName=node1"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(fs, nil, func() (string, error) { return "", errors.New("must not be called") })
	if err != nil || cfg.HostName != "node1" {
		t.Errorf("got %v, %v", cfg.HostName, err)
	}
}
