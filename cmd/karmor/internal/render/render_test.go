package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	alert = record.Alert{Timestamp: 1795687200, UpdatedTime: "2026-11-26T10:00:00.123456Z", HostName: "h1", HostPPID: 7, HostPID: 42,
		PPID: 7, PID: 42, UID: 1000, ProcessName: "/usr/bin/sleep", ParentProcessName: "/usr/bin/bash", PolicyName: "block-sleep",
		Severity: "8", Tags: "NIST,CIS", ATags: []string{"NIST", "CIS"}, Message: "no sleeping", Type: record.TypeMatchedHostPolicy,
		Source: "/usr/bin/bash", Operation: "Process", Resource: "/usr/bin/sleep", Data: "lsm=SECURITY_BPRM_CHECK",
		Enforcer: "BPFLSM", Action: "Block", Result: "Permission denied"}
	hostLog = record.Log{Timestamp: 1795687201, UpdatedTime: "2026-11-26T10:00:01.000001Z", HostName: "h1", HostPPID: 1, HostPID: 99,
		PPID: 1, PID: 99, ProcessName: "/usr/sbin/sshd", ParentProcessName: "/usr/lib/systemd/systemd", Type: record.TypeHostLog,
		Source: "/usr/sbin/sshd", Operation: "Network", Resource: "localip=0.0.0.0 port=22 protocol=TCP", Data: "syscall=SYS_BIND",
		Result: "Passed", Cwd: "/", UserName: "root"}
	at      = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC).UnixNano()
	summary = &hostpb.SummaryReply{
		Observing: true,
		Ingress:   []*hostpb.NetRow{{Protocol: "TCP", Command: "/usr/sbin/sshd", Address: "10.0.0.5", Port: 22, Count: 3, LastSeenUnixNano: at}},
		Egress:    []*hostpb.NetRow{{Protocol: "UDP", Command: "/usr/bin/curl", Address: "1.1.1.1", Port: 53, Count: 12, LastSeenUnixNano: at}},
		Bind:      []*hostpb.NetRow{{Protocol: "TCP", Command: "/usr/sbin/sshd", Address: "0.0.0.0", Port: 22, Count: 1, LastSeenUnixNano: at}},
		Process:   []*hostpb.ActivityRow{{Source: "/usr/bin/bash", Resource: "/usr/bin/ls", Count: 5, LastResult: "Passed", LastSeenUnixNano: at}},
		File:      []*hostpb.ActivityRow{{Source: "/usr/bin/cat", Resource: "/etc/shadow", Count: 1, LastResult: "Permission denied", LastSeenUnixNano: at}},
		Evicted:   2,
	}
	probe = &hostpb.ProbeReply{Version: "0.1.0", StartedUnix: 1795687200, KernelRelease: "6.1.0-56-cloud-amd64", Btf: true,
		Lsms: []string{"lockdown", "capability", "bpf"}, BpfLsm: &hostpb.Feature{Status: "supported", Reason: "a probe program attached"},
		Apparmor: &hostpb.Feature{Status: "unsupported", Reason: "not in the LSM list"}, Enforcer: "BPFLSM",
		EnforcerReason: "BPF-LSM: a probe program attached", Postures: &hostpb.Postures{File: "audit", Network: "audit", Capabilities: "block"},
		Visibility: []string{"process", "file"}, PolicyDir: "/etc/kubearmor/policies", PolicyVersion: 3, Rules: 2,
		PolicyFiles: []*hostpb.PolicyFile{
			{Path: "/etc/kubearmor/policies/a.yaml", State: "active", Rules: 2, SinceUnix: 1795687200,
				Policies: []*hostpb.Policy{{Name: "block-sleep", Line: 1, Applied: true}, {Name: "other-host", Line: 9, Reason: "nodeSelector"}}},
			{Path: "/etc/kubearmor/policies/b.yaml", State: "rejected", Error: "/etc/kubearmor/policies/b.yaml:3: spec: required"},
		},
		Counters: []*hostpb.Counter{{Stage: "enforcer", Name: "decisions", Value: 10}, {Stage: "enforcer", Name: "denied", Value: 1},
			{Stage: "api", Name: "log_subscribers", Value: 1, Gauge: true}},
	}
)

func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
	}{
		{"alert.txt", func(b *bytes.Buffer) error { return Text(b, alert) }},
		{"log.txt", func(b *bytes.Buffer) error { return Text(b, hostLog) }},
		{"records.json", func(b *bytes.Buffer) error {
			if err := JSON(b, alert); err != nil {
				return err
			}
			return JSON(b, hostLog)
		}},
		{"summary-all.txt", func(b *bytes.Buffer) error { return Summary(b, summary, "") }},
		{"summary-network.txt", func(b *bytes.Buffer) error { return Summary(b, summary, "network") }},
		{"summary-off.txt", func(b *bytes.Buffer) error { return Summary(b, &hostpb.SummaryReply{}, "") }},
		{"probe.txt", func(b *bytes.Buffer) error { return Probe(b, probe) }},
		{"policies-none.txt", func(b *bytes.Buffer) error { return PolicyFiles(b, nil) }},
		{"policy-list.txt", func(b *bytes.Buffer) error { return Policies(b, probe.PolicyFiles) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("%s differs (go test -update to rewrite):\n got:\n%s\nwant:\n%s", tt.name, b.String(), want)
			}
		})
	}
}

// TestJSONRoundTrip: karmor's JSON lines decode back into the records,
// under KubeArmor's field names.
func TestJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, alert); err != nil {
		t.Fatal(err)
	}
	var got record.Alert
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, alert) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, alert)
	}
	var names map[string]any
	if err := json.Unmarshal(b.Bytes(), &names); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Timestamp", "UpdatedTime", "HostName", "HostPID", "PolicyName", "Operation", "Resource", "Action", "Result", "Enforcer"} {
		if _, ok := names[k]; !ok {
			t.Errorf("JSON lacks KubeArmor field %s: %s", k, b.String())
		}
	}
}
