package detect

import (
	"errors"
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	bpfOK := Feature{Status: Supported, Reason: "bpf is in the LSM list and a probe program attached to bprm_check_security"}
	bpfNo := Feature{Status: NotSupported, Reason: "bpf is not in the active LSM list (lockdown,capability); add it with the lsm= boot parameter, e.g. lsm=lockdown,capability,bpf"}
	bpfUnsure := Feature{Status: Inconclusive, Reason: "bpf is in the LSM list, but probing needs root"}
	aaOK := Feature{Status: Supported, Reason: "AppArmor is enabled and in the LSM list, and apparmor_parser works (AppArmor parser version 3.0.8)"}
	aaNo := Feature{Status: NotSupported, Reason: "AppArmor is not built into this kernel"}

	tests := []struct {
		name       string
		configured string
		bpf, aa    Feature
		want       Enforcer
		reason     []string // substrings of Choice.Reason, or of the error
		wantErr    error
	}{
		{"auto prefers BPF-LSM", "auto", bpfOK, aaOK, BPFLSM,
			[]string{"BPF-LSM: bpf is in the LSM list and a probe program attached to bprm_check_security"}, nil},
		{"auto falls back to AppArmor", "auto", bpfNo, aaOK, AppArmor,
			[]string{"AppArmor: AppArmor is enabled", "BPF-LSM is not available: bpf is not in the active LSM list"}, nil},
		{"auto treats inconclusive BPF-LSM as unavailable", "auto", bpfUnsure, aaOK, AppArmor,
			[]string{"probing needs root"}, nil},
		{"auto observe-only", "auto", bpfNo, aaNo, None,
			[]string{"observe-only", "BPF-LSM is not available: bpf is not in", "AppArmor is not available: AppArmor is not built"}, nil},
		{"empty means auto", "", bpfOK, aaNo, BPFLSM, []string{"BPF-LSM:"}, nil},
		{"case and spaces ignored", " BPFLSM ", bpfOK, aaNo, BPFLSM, []string{"configured"}, nil},
		{"bpflsm available", "bpflsm", bpfOK, aaOK, BPFLSM, []string{"BPF-LSM (configured): bpf is in the LSM list"}, nil},
		{"bpflsm unavailable is an error, not AppArmor", "bpflsm", bpfNo, aaOK, None,
			[]string{`"bpflsm"`, "BPF-LSM is not available: bpf is not in the active LSM list"}, ErrUnavailable},
		{"bpflsm inconclusive is an error", "bpflsm", bpfUnsure, aaOK, None,
			[]string{"could not be confirmed", "probing needs root"}, ErrUnavailable},
		{"bpflsm not probed", "bpflsm", Feature{}, aaOK, None, []string{"not probed"}, ErrUnavailable},
		{"apparmor available", "apparmor", bpfOK, aaOK, AppArmor, []string{"AppArmor (configured)"}, nil},
		{"apparmor unavailable is an error, not observe-only", "apparmor", bpfOK, aaNo, None,
			[]string{"AppArmor is not available: AppArmor is not built"}, ErrUnavailable},
		{"none", "none", bpfOK, aaOK, None, []string{"turned off by configuration"}, nil},
		{"unknown", "selinux", bpfOK, aaOK, None, []string{`"selinux"`, "auto, bpflsm, apparmor, none"}, ErrUnknownEnforcer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Choose(tt.configured, Report{BPFLSM: tt.bpf, AppArmor: tt.aa})
			text := got.Reason
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Choose(%q) error = %v, want %v", tt.configured, err, tt.wantErr)
				}
				text = err.Error()
			} else if err != nil {
				t.Fatalf("Choose(%q) error = %v", tt.configured, err)
			}
			if got.Enforcer != tt.want {
				t.Errorf("Choose(%q) = %v, want %v", tt.configured, got.Enforcer, tt.want)
			}
			for _, s := range tt.reason {
				if !strings.Contains(text, s) {
					t.Errorf("Choose(%q) says %q, want it to contain %q", tt.configured, text, s)
				}
			}
		})
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{BPFLSM.String(), "BPFLSM"},
		{AppArmor.String(), "AppArmor"},
		{None.String(), "none"},
		{Supported.String(), "Supported"},
		{NotSupported.String(), "NotSupported"},
		{Inconclusive.String(), "Inconclusive"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
