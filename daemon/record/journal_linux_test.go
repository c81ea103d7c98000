package record

import (
	"testing"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/journal"
	"github.com/kubearmor/kubearmor-host/daemon/journal/journaltest"
	"github.com/kubearmor/kubearmor-host/daemon/monitor"
	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// TestJournalDatagrams sends an alert and a log through the journald
// client to a socket the test owns, and checks every field of each
// datagram as journald would decode it: MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER and one KUBEARMOR_ field per non-empty record field,
// nothing else.
func TestJournalDatagrams(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 123456000, time.UTC)
	users := func(uid uint32) string { return map[uint32]string{1000: "alice"}[uid] }
	ac := testContext()
	ac.UserName = users
	alert := FromEvent(enforcer.Event{Time: at, Version: 4, RuleID: 2, Verdict: match.Block, Op: match.OpExec,
		PID: 42, PPID: 7, UID: 1000, Path: "/usr/bin/sleep", Exe: "/usr/bin/bash"}, ac)
	log, ok := FromMonitor(monitor.Event{Type: monitor.Open, Time: at, PID: 42, PPID: 7, UID: 1000, Path: "/etc/shadow",
		OpenFlags: 0, Ret: -13, Comm: "cat"}, LogContext{HostName: "h1", UserName: users, Process: func(pid uint32) Process {
		return map[uint32]Process{42: {Exe: "/usr/bin/cat", Cwd: "/home/alice", TTY: "pts0"}, 7: {Exe: "/usr/bin/bash"}}[pid]
	}})
	if !ok {
		t.Fatal("open event made no log")
	}
	tests := []struct {
		name string
		rec  Record
		want map[string]string
	}{
		{"alert", alert, map[string]string{
			"MESSAGE":                     "Block process /usr/bin/sleep by /usr/bin/bash (pid 42, uid 1000 alice): Permission denied, policy block-sleep, severity 8: no sleeping",
			"KUBEARMOR_USERNAME":          "alice",
			"PRIORITY":                    "3",
			"SYSLOG_IDENTIFIER":           "kubearmor",
			"KUBEARMOR_TIMESTAMP":         "1795687200",
			"KUBEARMOR_UPDATEDTIME":       "2026-11-26T10:00:00.123456Z",
			"KUBEARMOR_HOSTNAME":          "h1",
			"KUBEARMOR_HOSTPPID":          "7",
			"KUBEARMOR_HOSTPID":           "42",
			"KUBEARMOR_PPID":              "7",
			"KUBEARMOR_PID":               "42",
			"KUBEARMOR_UID":               "1000",
			"KUBEARMOR_PROCESSNAME":       "/usr/bin/sleep",
			"KUBEARMOR_PARENTPROCESSNAME": "/usr/bin/bash",
			"KUBEARMOR_POLICYNAME":        "block-sleep",
			"KUBEARMOR_SEVERITY":          "8",
			"KUBEARMOR_TAGS":              "NIST,CIS",
			"KUBEARMOR_ATAGS":             "NIST,CIS",
			"KUBEARMOR_MESSAGE":           "no sleeping",
			"KUBEARMOR_TYPE":              "MatchedHostPolicy",
			"KUBEARMOR_SOURCE":            "/usr/bin/bash",
			"KUBEARMOR_OPERATION":         "Process",
			"KUBEARMOR_RESOURCE":          "/usr/bin/sleep",
			"KUBEARMOR_DATA":              "lsm=SECURITY_BPRM_CHECK",
			"KUBEARMOR_ENFORCER":          "BPFLSM",
			"KUBEARMOR_ACTION":            "Block",
			"KUBEARMOR_RESULT":            "Permission denied",
		}},
		{"log", log, map[string]string{
			"MESSAGE":                     "file /etc/shadow by /usr/bin/cat (pid 42, uid 1000 alice): Permission denied",
			"KUBEARMOR_CWD":               "/home/alice",
			"KUBEARMOR_TTY":               "pts0",
			"KUBEARMOR_USERNAME":          "alice",
			"PRIORITY":                    "6",
			"SYSLOG_IDENTIFIER":           "kubearmor",
			"KUBEARMOR_TIMESTAMP":         "1795687200",
			"KUBEARMOR_UPDATEDTIME":       "2026-11-26T10:00:00.123456Z",
			"KUBEARMOR_HOSTNAME":          "h1",
			"KUBEARMOR_HOSTPPID":          "7",
			"KUBEARMOR_HOSTPID":           "42",
			"KUBEARMOR_PPID":              "7",
			"KUBEARMOR_PID":               "42",
			"KUBEARMOR_UID":               "1000",
			"KUBEARMOR_PROCESSNAME":       "/usr/bin/cat",
			"KUBEARMOR_PARENTPROCESSNAME": "/usr/bin/bash",
			"KUBEARMOR_TYPE":              "HostLog",
			"KUBEARMOR_SOURCE":            "/usr/bin/cat",
			"KUBEARMOR_OPERATION":         "File",
			"KUBEARMOR_RESOURCE":          "/etc/shadow",
			"KUBEARMOR_DATA":              "syscall=SYS_OPEN flags=O_RDONLY",
			"KUBEARMOR_RESULT":            "Permission denied",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := journaltest.New(t)
			c, err := journal.NewClient(j.Path, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := (JournalWriter{Sender: c}).Write(tt.rec); err != nil {
				t.Fatal(err)
			}
			e, ok := j.Recv(5 * time.Second)
			if !ok {
				t.Fatal("no datagram")
			}
			for name, vals := range e.Fields {
				want, ok := tt.want[name]
				switch {
				case !ok:
					t.Errorf("unexpected field %s=%q", name, vals)
				case len(vals) != 1 || vals[0] != want:
					t.Errorf("%s = %q, want %q", name, vals, want)
				}
			}
			for name, want := range tt.want {
				if _, ok := e.Fields[name]; !ok {
					t.Errorf("missing field %s (want %q)", name, want)
				}
			}
		})
	}
}
