package journal

import (
	"bytes"
	"strings"
	"testing"
)

func TestValidFieldName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
	}{
		{"MESSAGE", ""},
		{"KUBEARMOR_POLICY_NAME", ""},
		{"A1_2", ""},
		{strings.Repeat("A", 64), ""},
		{"", "journal field name is empty"},
		{strings.Repeat("A", 65), "longer than 64 characters"},
		{"_PID", "starts with _"},
		{"1ABC", "starts with a digit"},
		{"policy", `character 'p' is not A-Z, 0-9 or _`},
		{"POLICY-NAME", `character '-' is not A-Z, 0-9 or _`},
		{"POLICYÄ", `is not A-Z, 0-9 or _`},
	}
	for _, tt := range tests {
		err := ValidFieldName(tt.name)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("ValidFieldName(%q) = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestFieldName(t *testing.T) {
	tests := []struct {
		prefix, name, want, wantErr string
	}{
		{"KUBEARMOR", "PolicyName", "KUBEARMOR_POLICYNAME", ""},
		{"KUBEARMOR", "policy-name", "KUBEARMOR_POLICY_NAME", ""},
		{"KUBEARMOR_", "HostPID", "KUBEARMOR_HOSTPID", ""},
		{"kubearmor", "a..b//c", "KUBEARMOR_A_B_C", ""},
		{"KUBEARMOR", "_private_", "KUBEARMOR_PRIVATE", ""},
		{"KUBEARMOR", "2fa", "KUBEARMOR_2FA", ""},
		{"", "policy_file", "POLICY_FILE", ""},
		{"", "2fa", "", "starts with a digit"},
		{"KUBEARMOR", "---", "", "nothing left"},
		{"KUBEARMOR", strings.Repeat("x", 60), "", "longer than 64"},
	}
	for _, tt := range tests {
		got, err := FieldName(tt.prefix, tt.name)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("FieldName(%q, %q) = %q, %v; want error %q", tt.prefix, tt.name, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("FieldName(%q, %q) = %q, %v; want %q", tt.prefix, tt.name, got, err, tt.want)
		}
	}
}

func TestAppendField(t *testing.T) {
	tests := []struct {
		name, value string
		want        []byte
	}{
		{"A", "b c", []byte("A=b c\n")},
		{"A", "", []byte("A=\n")},
		{"A", "x=y", []byte("A=x=y\n")},
		{"A", "l1\nl2", append(append([]byte("A\n"), 5, 0, 0, 0, 0, 0, 0, 0), []byte("l1\nl2\n")...)},
	}
	for _, tt := range tests {
		if got := appendField(nil, tt.name, tt.value); !bytes.Equal(got, tt.want) {
			t.Errorf("appendField(%q, %q) = %q, want %q", tt.name, tt.value, got, tt.want)
		}
	}
}
