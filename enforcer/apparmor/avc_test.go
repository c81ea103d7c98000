package apparmor

import (
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"

	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// TestParseAVC reads AppArmor records (the file and capability ones as the
// guests' kernels wrote them in TestEnforce: 6.1, and 6.12 with class=; the
// others in AppArmor's formats for them), and leaves alone what is not a
// decision of our profiles.
func TestParseAVC(t *testing.T) {
	tests := []struct {
		name, raw string
		ok        bool
		want      avc
	}{
		{"open denied (6.12)", `audit(1795721908.971:3): apparmor="DENIED" operation="open" class="file" profile="kubearmor-host" name="/tmp/x/secret" pid=178 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`,
			true, avc{Denied: true, Profile: HostProfile, Op: match.OpOpenRead, Path: "/tmp/x/secret", PID: 178, Comm: "cat"}},
		{"append denied (6.1)", `audit(1795721898.656:4): apparmor="DENIED" operation="open" profile="kubearmor-host" name="/tmp/x/config" pid=130 comm="sh" requested_mask="ac" denied_mask="ac" fsuid=0 ouid=1000`,
			true, avc{Denied: true, Profile: HostProfile, Op: match.OpOpenWrite, Path: "/tmp/x/config", PID: 130, Comm: "sh", OUID: 1000}},
		{"exec denied in a source profile", `audit(1795721858.824:5): apparmor="DENIED" operation="exec" profile="kubearmor-source-2" name="/tmp/a b/bin/true" pid=130 comm="sh" requested_mask="x" denied_mask="x" fsuid=1000 ouid=0`,
			true, avc{Denied: true, Profile: "kubearmor-source-2", Op: match.OpExec, Path: "/tmp/a b/bin/true", PID: 130, Comm: "sh", FSUID: 1000}},
		{"capability", `audit(1795721909.027:6): apparmor="DENIED" operation="capable" class="cap" profile="kubearmor-host" pid=183 comm="chown" capability=0  capname="chown"`,
			true, avc{Denied: true, Profile: HostProfile, Op: match.OpCapable, Cap: 0, PID: 183, Comm: "chown"}},
		{"audited socket", `audit(1795721909.100:7): apparmor="AUDIT" operation="create" class="net" profile="kubearmor-host" pid=190 comm="nc" family="inet" sock_type="stream" protocol=6 requested="create" denied="create"`,
			true, avc{Profile: HostProfile, Op: match.OpSocketCreate, Socket: policy.Socket{Family: 2, Type: 1, Protocol: 6}, PID: 190, Comm: "nc"}},
		{"executable mapping denied", `audit(1795721909.150:11): apparmor="DENIED" operation="file_mmap" class="file" profile="kubearmor-host" name="/opt/dyn/head" pid=201 comm="ld-linux-x86-64" requested_mask="m" denied_mask="m" fsuid=0 ouid=0`,
			true, avc{Denied: true, Profile: HostProfile, Op: match.OpExecMap, Path: "/opt/dyn/head", PID: 201, Comm: "ld-linux-x86-64"}},
		{"mprotect that is not about execution", `audit(1795721909.160:12): apparmor="DENIED" operation="file_mprotect" class="file" profile="kubearmor-host" name="/x" pid=201 comm="a" requested_mask="w" denied_mask="w" fsuid=0 ouid=0`,
			false, avc{}},
		{"a distribution's profile", `audit(1795721909.200:8): apparmor="DENIED" operation="open" profile="/usr/sbin/cupsd" name="/etc/shadow" pid=1 comm="cupsd" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`,
			false, avc{}},
		{"complain mode", `audit(1795721909.300:9): apparmor="ALLOWED" operation="open" profile="kubearmor-host" name="/x" pid=1 comm="a" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`,
			false, avc{}},
		{"profile load", `audit(1795721909.400:10): apparmor="STATUS" operation="profile_replace" profile="unconfined" name="kubearmor-host" pid=99 comm="apparmor_parser"`,
			false, avc{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := auparse.Parse(auparse.AUDIT_AVC, tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := parseAVC(m)
			if ok != tt.ok || ok && got != tt.want {
				t.Errorf("parseAVC = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
