package detect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeSys builds a fake /sys with the given files (path relative to /sys -> content).
func fakeSys(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestProberBPFLSM(t *testing.T) {
	eperm := syscall.EPERM
	tests := []struct {
		name       string
		files      map[string]string
		attach     error
		privileged bool
		canMount   bool
		want       Status
		reason     string
		wantNote   string
	}{
		{
			name:       "listed and attaches",
			files:      map[string]string{"kernel/security/lsm": "lockdown,capability,bpf\n", "kernel/btf/vmlinux": ""},
			privileged: true,
			want:       Supported,
			reason:     "bpf is in the LSM list and a probe program attached to bprm_check_security",
		},
		{
			name:   "not listed",
			files:  map[string]string{"kernel/security/lsm": "lockdown,capability,landlock,yama,apparmor", "kernel/btf/vmlinux": ""},
			want:   NotSupported,
			reason: "bpf is not in the active LSM list (lockdown,capability,landlock,yama,apparmor); add it with the lsm= boot parameter, e.g. lsm=lockdown,capability,landlock,yama,apparmor,bpf",
		},
		{
			name:       "listed but refused as root",
			files:      map[string]string{"kernel/security/lsm": "capability,bpf", "kernel/btf/vmlinux": ""},
			attach:     eperm,
			privileged: true,
			want:       NotSupported,
			reason:     "the kernel refused a probe program on bprm_check_security: operation not permitted",
		},
		{
			name:   "listed but refused without privileges",
			files:  map[string]string{"kernel/security/lsm": "capability,bpf", "kernel/btf/vmlinux": ""},
			attach: eperm,
			want:   Inconclusive,
			reason: "probing needs root",
		},
		{
			name:       "no BTF",
			files:      map[string]string{"kernel/security/lsm": "capability,bpf"},
			privileged: true,
			want:       NotSupported,
			reason:     "no BTF",
		},
		{
			name:   "securityfs not mounted, not root",
			files:  map[string]string{"kernel/btf/vmlinux": ""},
			want:   Inconclusive,
			reason: "securityfs is not mounted on",
		},
		{
			name:       "securityfs not mounted, root mounts it",
			files:      map[string]string{"kernel/btf/vmlinux": ""},
			canMount:   true,
			privileged: true,
			want:       Supported,
			wantNote:   "securityfs was not mounted; mounted it on",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := fakeSys(t, tt.files)
			p := fakeProber(sys)
			p.attachBPFLSM = func() error { return tt.attach }
			p.privileged = func() bool { return tt.privileged }
			if tt.canMount {
				p.mountSecurityFS = func(dir string) error {
					if err := os.MkdirAll(dir, 0o755); err != nil {
						return err
					}
					return os.WriteFile(filepath.Join(dir, "lsm"), []byte("capability,bpf"), 0o644)
				}
			}
			r := p.probe(context.Background())
			if r.BPFLSM.Status != tt.want {
				t.Errorf("BPFLSM = %v (%s), want %v", r.BPFLSM.Status, r.BPFLSM.Reason, tt.want)
			}
			if !strings.Contains(r.BPFLSM.Reason, tt.reason) {
				t.Errorf("BPFLSM reason %q, want it to contain %q", r.BPFLSM.Reason, tt.reason)
			}
			if tt.attach != nil && !errors.Is(r.BPFLSM.Err, tt.attach) {
				t.Errorf("BPFLSM.Err = %v, want %v", r.BPFLSM.Err, tt.attach)
			}
			if tt.wantNote != "" && !strings.Contains(strings.Join(r.Notes, "\n"), tt.wantNote) {
				t.Errorf("notes %q, want one containing %q", r.Notes, tt.wantNote)
			}
		})
	}
}

func TestProberAppArmor(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		parserErr error
		want      Status
		reasons   []string
	}{
		{
			name:  "enabled, listed, parser works",
			files: map[string]string{"kernel/security/lsm": "capability,apparmor", "module/apparmor/parameters/enabled": "Y\n"},
			want:  Supported,
			reasons: []string{
				"AppArmor is enabled and in the LSM list, and apparmor_parser works (AppArmor parser version 3.0.8)",
			},
		},
		{
			name:      "nothing there",
			files:     map[string]string{"kernel/security/lsm": "lockdown,capability,landlock,bpf"},
			parserErr: errors.New("apparmor_parser is not installed (apt-get install apparmor)"),
			want:      NotSupported,
			reasons: []string{
				"AppArmor is not built into this kernel",
				"apparmor is not in the active LSM list (lockdown,capability,landlock,bpf)",
				"apparmor_parser is not installed",
			},
		},
		{
			name:    "disabled",
			files:   map[string]string{"kernel/security/lsm": "capability,apparmor", "module/apparmor/parameters/enabled": "N\n"},
			want:    NotSupported,
			reasons: []string{"AppArmor is disabled", `"N"`},
		},
		{
			name:    "LSM list unknown",
			files:   map[string]string{"module/apparmor/parameters/enabled": "Y\n"},
			want:    Inconclusive,
			reasons: []string{"cannot tell whether apparmor is an active LSM"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeProber(fakeSys(t, tt.files))
			p.apparmorParserVersion = func(context.Context) (string, error) {
				if tt.parserErr != nil {
					return "", tt.parserErr
				}
				return "AppArmor parser version 3.0.8", nil
			}
			r := p.probe(context.Background())
			if r.AppArmor.Status != tt.want {
				t.Errorf("AppArmor = %v (%s), want %v", r.AppArmor.Status, r.AppArmor.Reason, tt.want)
			}
			for _, s := range tt.reasons {
				if !strings.Contains(r.AppArmor.Reason, s) {
					t.Errorf("AppArmor reason %q, want it to contain %q", r.AppArmor.Reason, s)
				}
			}
		})
	}
}

func TestParseLSMs(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"lockdown,capability,landlock,bpf", "lockdown|capability|landlock|bpf"},
		{"capability,bpf\n", "capability|bpf"},
		{"", ""},
		{",,bpf,", "bpf"},
	}
	for _, tt := range tests {
		if got := strings.Join(parseLSMs(tt.in), "|"); got != tt.want {
			t.Errorf("parseLSMs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// fakeProber probes sys and touches nothing real.
func fakeProber(sys string) prober {
	return prober{
		sysfs:             sys,
		release:           func() (string, error) { return "6.1.0-test", nil },
		securityFSMounted: func(string) (bool, error) { return false, nil },
		attachBPFLSM:      func() error { return nil },
		privileged:        func() bool { return true },
		apparmorParserVersion: func(context.Context) (string, error) {
			return "", errors.New("apparmor_parser is not installed")
		},
	}
}
