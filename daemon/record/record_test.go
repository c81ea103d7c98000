package record

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/journal"
	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

func testContext() Context {
	rule := &policy.Rule{ID: 2, Policy: "block-sleep", Severity: 8, Tags: []string{"NIST", "CIS"}, Message: "no sleeping"}
	return Context{
		HostName: "h1",
		Enforcer: "BPFLSM",
		Rule: func(v uint64, id uint32) (*policy.Rule, bool) {
			if v == 4 && id == 2 {
				return rule, true
			}
			return nil, false
		},
		ParentExe: func(pid uint32) string { return "/usr/bin/bash" },
	}
}

func TestFromEvent(t *testing.T) {
	at := time.Date(2026, 11, 26, 6, 0, 0, 123456000, time.UTC)
	base := enforcer.Event{Time: at, Version: 4, RuleID: 2, Verdict: match.Block, Op: match.OpExec,
		PID: 42, TID: 42, PPID: 7, UID: 1000, Path: "/usr/bin/sleep", Exe: "/usr/bin/bash"}
	tests := []struct {
		name   string
		change func(*enforcer.Event)
		want   Alert
	}{
		{"enforced block", func(*enforcer.Event) {}, Alert{
			Timestamp: at.Unix(), UpdatedTime: "2026-11-26T06:00:00.123456Z", HostName: "h1", HostPPID: 7, HostPID: 42,
			PPID: 7, PID: 42, UID: 1000, ProcessName: "/usr/bin/sleep", ParentProcessName: "/usr/bin/bash",
			PolicyName: "block-sleep", Severity: "8", Tags: "NIST,CIS", ATags: []string{"NIST", "CIS"}, Message: "no sleeping",
			Type: "MatchedHostPolicy", Source: "/usr/bin/bash", Operation: "Process", Resource: "/usr/bin/sleep",
			Data: "lsm=SECURITY_BPRM_CHECK", Enforcer: "BPFLSM", Action: "Block", Result: "Permission denied"}},
		{"observed block is an audit", func(e *enforcer.Event) { e.Observed = true }, Alert{
			Timestamp: at.Unix(), UpdatedTime: "2026-11-26T06:00:00.123456Z", HostName: "h1", HostPPID: 7, HostPID: 42,
			PPID: 7, PID: 42, UID: 1000, ProcessName: "/usr/bin/sleep", ParentProcessName: "/usr/bin/bash",
			PolicyName: "block-sleep", Severity: "8", Tags: "NIST,CIS", ATags: []string{"NIST", "CIS"}, Message: "no sleeping",
			Type: "MatchedHostPolicy", Source: "/usr/bin/bash", Operation: "Process", Resource: "/usr/bin/sleep",
			Data: "syscall=SYS_EXECVE", Enforcer: "BPFLSM", Action: "Audit (Block)", Result: "Passed"}},
		{"posture block names DefaultPosture", func(e *enforcer.Event) { e.Verdict, e.RuleID = match.PostureBlock, 0 }, Alert{
			Timestamp: at.Unix(), UpdatedTime: "2026-11-26T06:00:00.123456Z", HostName: "h1", HostPPID: 7, HostPID: 42,
			PPID: 7, PID: 42, UID: 1000, ProcessName: "/usr/bin/sleep", ParentProcessName: "/usr/bin/bash",
			PolicyName: "DefaultPosture", Type: "MatchedHostPolicy", Source: "/usr/bin/bash", Operation: "Process",
			Resource: "/usr/bin/sleep", Data: "lsm=SECURITY_BPRM_CHECK", Enforcer: "BPFLSM", Action: "Block", Result: "Permission denied"}},
		{"a set no longer loaded is said so, not guessed", func(e *enforcer.Event) { e.Version, e.Verdict = 1, match.Audit }, Alert{
			Timestamp: at.Unix(), UpdatedTime: "2026-11-26T06:00:00.123456Z", HostName: "h1", HostPPID: 7, HostPID: 42,
			PPID: 7, PID: 42, UID: 1000, ProcessName: "/usr/bin/sleep", ParentProcessName: "/usr/bin/bash",
			PolicyName: "unknown (rule 2 of policy set 1, no longer loaded)", Type: "MatchedHostPolicy", Source: "/usr/bin/bash",
			Operation: "Process", Resource: "/usr/bin/sleep", Data: "lsm=SECURITY_BPRM_CHECK", Enforcer: "BPFLSM", Action: "Audit", Result: "Passed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := base
			tt.change(&ev)
			got, _ := json.Marshal(FromEvent(ev, testContext()))
			want, _ := json.Marshal(tt.want)
			if !bytes.Equal(got, want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		sev, result string
		want        int
	}{
		{"10", ResultDenied, 2}, {"9", ResultPassed, 2}, {"8", ResultPassed, 3}, {"7", ResultPassed, 3},
		{"6", ResultPassed, 4}, {"5", ResultPassed, 4}, {"4", ResultPassed, 5}, {"3", ResultPassed, 5},
		{"2", ResultPassed, 6}, {"1", ResultPassed, 6}, {"", ResultDenied, 4}, {"", ResultPassed, 5},
	}
	for _, tt := range tests {
		if got := (Alert{Severity: tt.sev, Result: tt.result}).Priority(); got != tt.want {
			t.Errorf("severity %q %s: priority %d, want %d", tt.sev, tt.result, got, tt.want)
		}
	}
}

type capture struct {
	msg    string
	prio   journal.Priority
	fields map[string]string
}

func (c *capture) Send(msg string, p journal.Priority, f map[string]string) error {
	c.msg, c.prio, c.fields = msg, p, f
	return nil
}

func TestJournalWriter(t *testing.T) {
	var c capture
	a := FromEvent(enforcer.Event{Time: time.Unix(1, 0), Version: 4, RuleID: 2, Verdict: match.Block, Op: match.OpExec,
		PID: 42, Path: "/usr/bin/sleep", Exe: "/usr/bin/bash"}, testContext())
	if err := (JournalWriter{Sender: &c}).Write(a); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"KUBEARMOR_POLICYNAME": "block-sleep", "KUBEARMOR_SEVERITY": "8", "KUBEARMOR_ACTION": "Block",
		"KUBEARMOR_RESULT": "Permission denied", "KUBEARMOR_HOSTPID": "42", "KUBEARMOR_RESOURCE": "/usr/bin/sleep",
		"KUBEARMOR_ATAGS": "NIST,CIS", "KUBEARMOR_TYPE": "MatchedHostPolicy", "KUBEARMOR_ENFORCER": "BPFLSM",
	}
	for k, v := range want {
		if c.fields[k] != v {
			t.Errorf("%s = %q, want %q", k, c.fields[k], v)
		}
	}
	for k := range c.fields {
		if err := journal.ValidFieldName(k); err != nil || !strings.HasPrefix(k, "KUBEARMOR_") {
			t.Errorf("field %q: %v", k, err)
		}
	}
	if c.prio != 3 {
		t.Errorf("priority %d, want 3 (severity 8)", c.prio)
	}
	wantMsg := "Block process /usr/bin/sleep by /usr/bin/bash (pid 42, uid 0): Permission denied, policy block-sleep, severity 8: no sleeping"
	if c.msg != wantMsg {
		t.Errorf("MESSAGE %q\nwant     %q", c.msg, wantMsg)
	}
}

func TestJSONWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewJSONWriter(&buf)
	a := Alert{PolicyName: "p", Action: "Block"}
	if err := w.Write(a); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(a); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"PolicyName":"p"`) || !strings.Contains(lines[0], `"Action":"Block"`) {
		t.Errorf("output %q", buf.String())
	}
}

func TestUpdatedTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC),
		time.Date(1999, 1, 2, 3, 4, 5, 6000, time.FixedZone("east", 5*3600)),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := UpdatedTime(tm), tm.UTC().Format(TimeLayout); got != want {
			t.Errorf("UpdatedTime(%v) = %q, want %q", tm, got, want)
		}
	}
}
