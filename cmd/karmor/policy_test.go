package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubearmor/kubearmor-host/enforcer/bpflsm"
	"github.com/kubearmor/kubearmor-host/policy"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	head := "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorHostPolicy\nmetadata:\n  name: "
	good := write("good.yaml", head+"good\nspec:\n  process:\n    matchPaths:\n    - path: /bin/sleep\n")
	dup := write("dup.yaml", head+"good\nspec:\n  process:\n    matchPaths:\n    - path: /bin/true\n")
	bad := write("bad.yaml", head+"bad\nspec:\n  process:\n    matchPaths:\n    - path: bin/sleep\n  action: Deny\n")
	file := write("file.yaml", head+"files\nspec:\n  syscalls:\n    matchPaths:\n    - path: /tmp/x\n      syscall: [kill]\n")
	other := write("other.yaml", head+"other\nspec:\n  nodeSelector:\n    matchLabels:\n      kubearmor.io/hostname: web1\n  process:\n    matchPaths:\n    - path: /bin/sleep\n")
	bpf := func(s *policy.Set) error { _, err := bpflsm.Compile(s); return err }

	tests := []struct {
		name   string
		files  []string
		check  func(*policy.Set) error
		ok     bool
		stdout string
		stderr []string
	}{
		{"good", []string{good}, nil, true, "1 file(s) valid: 1 policies, 1 rules\n", nil},
		{"bad, with file:line errors", []string{good, bad}, nil, false, "",
			[]string{bad + ":8: spec.process.matchPaths[0].path: must be an absolute path", bad + ":9: spec.action: must be Allow, Audit or Block"}},
		{"duplicate names across files", []string{good, dup}, nil, false, "", []string{dup + ":1: metadata.name: policy \"good\" is already defined at " + good + ":1"}},
		{"rules the enforcer cannot enforce", []string{file}, bpf, false, "", []string{file + ":8: spec.syscalls.matchPaths[0]: system call kill takes no path"}},
		{"observe-only takes every valid rule", []string{file}, nil, true, "1 file(s) valid: 1 policies, 1 rules\n", nil},
		{"another host is a warning", []string{other}, nil, true, "1 file(s) valid", []string{"warning: policy other would not apply to host \"me\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ok := validate(&out, &errOut, tt.files, policy.Host{Name: "me"}, tt.check)
			if ok != tt.ok {
				t.Errorf("ok = %v, want %v; stderr:\n%s", ok, tt.ok, errOut.String())
			}
			if !strings.HasPrefix(out.String(), tt.stdout) {
				t.Errorf("stdout %q, want prefix %q", out.String(), tt.stdout)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut.String())
				}
			}
		})
	}
}
