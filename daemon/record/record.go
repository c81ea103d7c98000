// Package record defines the Alert records the daemon emits, with
// KubeArmor's field names and values so existing consumers and karmor habits
// carry over, and renders them for journald and as JSON lines.
package record

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/policy"
	"github.com/kubearmor/kubearmor-host/policy/match"
)

// Values of the Type, Result and PolicyName fields.
const (
	TypeMatchedHostPolicy = "MatchedHostPolicy"
	ResultPassed          = "Passed"
	ResultDenied          = "Permission denied"
	PolicyDefaultPosture  = "DefaultPosture"
	// PolicyUserNamespaces names the setting that decides user namespaces
	// created by unprivileged processes.
	PolicyUserNamespaces = "unprivilegedUserNamespaces"
)

// Alert is one policy decision, as KubeArmor's Alert message. JSON uses the
// PascalCase names KubeArmor clients expect.
type Alert struct {
	Timestamp         int64    `json:"Timestamp"`
	UpdatedTime       string   `json:"UpdatedTime"`
	HostName          string   `json:"HostName"`
	HostPPID          int32    `json:"HostPPID"`
	HostPID           int32    `json:"HostPID"`
	PPID              int32    `json:"PPID"`
	PID               int32    `json:"PID"`
	UID               int32    `json:"UID"`
	ProcessName       string   `json:"ProcessName"`
	ParentProcessName string   `json:"ParentProcessName"`
	PolicyName        string   `json:"PolicyName"`
	Severity          string   `json:"Severity,omitempty"`
	Tags              string   `json:"Tags,omitempty"`
	ATags             []string `json:"ATags,omitempty"`
	Message           string   `json:"Message,omitempty"`
	Type              string   `json:"Type"`
	Source            string   `json:"Source"`
	Operation         string   `json:"Operation"`
	Resource          string   `json:"Resource"`
	Data              string   `json:"Data,omitempty"`
	Enforcer          string   `json:"Enforcer"`
	Action            string   `json:"Action"`
	Result            string   `json:"Result"`
	UserName          string   `json:"UserName,omitempty"` // UID's name in the passwd file (not a KubeArmor field)
	// Not KubeArmor fields either: the alert path that reported the
	// decision where an enforcer has two (AppArmor: "ebpf" or "audit"),
	// the incident it reports, and whether an alert of the other path
	// already reported that incident (alertSource both).
	AlertSource string `json:"AlertSource,omitempty"`
	IncidentID  uint64 `json:"IncidentID,omitempty"`
	Linked      bool   `json:"Linked,omitempty"`
}

// TimeLayout is KubeArmor's UpdatedTime format; UpdatedTime formats it.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// UpdatedTime formats t in UTC as TimeLayout, several times faster than
// Format: the daemon does it for every log, a hundred thousand a second
// under a flood.
func UpdatedTime(t time.Time) string {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	var b [len(TimeLayout)]byte
	put := func(at, width, v int) {
		for i := at + width - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	if year < 0 || year > 9999 {
		return t.Format(TimeLayout)
	}
	put(0, 4, year)
	b[4] = '-'
	put(5, 2, int(month))
	b[7] = '-'
	put(8, 2, day)
	b[10] = 'T'
	put(11, 2, hour)
	b[13] = ':'
	put(14, 2, minute)
	b[16] = ':'
	put(17, 2, sec)
	b[19] = '.'
	put(20, 6, t.Nanosecond()/1000)
	b[26] = 'Z'
	return string(b[:])
}

// Context is what an event needs beyond itself to become an alert.
type Context struct {
	HostName string
	Enforcer string
	// Rule finds a rule by policy set version and ID; ok is false when that
	// set is no longer known.
	Rule func(version uint64, id uint32) (r *policy.Rule, ok bool)
	// ParentExe names the executable of a process, best effort.
	ParentExe func(pid uint32) string
	// UserName names a uid, best effort ("" when unknown); nil: none.
	UserName func(uid uint32) string
}

// FromEvent builds the alert for a decision. The policy is the one the
// kernel named, never one guessed after the fact.
func FromEvent(ev enforcer.Event, c Context) Alert {
	a := Alert{
		Timestamp:   ev.Time.Unix(),
		UpdatedTime: UpdatedTime(ev.Time),
		HostName:    c.HostName,
		HostPPID:    int32(ev.PPID),
		HostPID:     int32(ev.PID),
		PPID:        int32(ev.PPID),
		PID:         int32(ev.PID),
		UID:         int32(ev.UID),
		Type:        TypeMatchedHostPolicy,
		Source:      ev.Exe,
		Resource:    ev.Path,
		Enforcer:    c.Enforcer,
		Operation:   operation(ev.Op),
		ProcessName: ev.Exe,
		AlertSource: string(ev.Source),
		IncidentID:  ev.Incident,
		Linked:      ev.Linked,
	}
	switch ev.Op.Kind() {
	case policy.KindProcess:
		// An exec alert speaks for the new program, as in KubeArmor: the
		// caller is its Source. A mapping is the process's own doing.
		a.ProcessName = ev.Path
		if ev.Op == match.OpExecMap {
			a.ProcessName = ev.Exe
		}
	case policy.KindNetwork:
		a.Resource = socketResource(ev.Res0, ev.Res1)
	case policy.KindCapabilities:
		a.Resource = "CAP_" + strings.ToUpper(policy.Capability(ev.Res0).String())
	}
	a.Data = "lsm=" + lsmHook(ev.Op)
	switch ev.Op {
	case match.OpExecAnon:
		a.ProcessName = ev.Exe
		a.Resource = "anonymous memory"
		a.Data += " " + protDescription(ev.Res0, ev.Res1)
	case match.OpUserNS:
		a.Operation = "Process"
		a.ProcessName = ev.Exe
		a.Resource = "user namespace"
	}
	if ev.Loaded {
		a.Data += " loaded-by=" + ev.Exe // the loader mapped the program: no execve of it
	}
	if ev.NoHostPath {
		a.Data += " path=no-host-path"
	}
	if ev.ExeNoHostPath {
		a.Data += " exe=no-host-path"
	}
	if ev.Op == match.OpSyscall {
		name, ok := policy.SyscallName(int(ev.Res0))
		if !ok {
			name = strconv.FormatUint(uint64(ev.Res0), 10)
		}
		a.Data = "syscall=SYS_" + strings.ToUpper(name)
	}
	if ev.Observed && ev.Op == match.OpExec {
		a.Data = "syscall=SYS_EXECVE"
	}
	if c.ParentExe != nil {
		a.ParentProcessName = c.ParentExe(ev.PPID)
	}
	if c.UserName != nil {
		a.UserName = c.UserName(ev.UID)
	}
	if ev.Truncated {
		a.Data = strings.TrimSpace(a.Data + " path=unresolvable")
	}
	if ev.ExeTruncated {
		a.Data = strings.TrimSpace(a.Data + " exe=unresolvable")
	}
	switch {
	case ev.Op == match.OpUserNS:
		a.PolicyName = PolicyUserNamespaces
	case ev.Verdict == match.PostureAudit || ev.Verdict == match.PostureBlock:
		a.PolicyName = PolicyDefaultPosture
	default:
		if r, ok := c.Rule(ev.Version, ev.RuleID); ok {
			a.PolicyName = r.Policy
			a.Severity = strconv.Itoa(r.Severity)
			a.Tags = strings.Join(r.Tags, ",")
			a.ATags = r.Tags
			a.Message = r.Message
		} else {
			a.PolicyName = fmt.Sprintf("unknown (rule %d of policy set %d, no longer loaded)", ev.RuleID, ev.Version)
		}
	}
	a.Action, a.Result = actionResult(ev)
	return a
}

// actionResult renders the verdict. Observe-only cannot block: what would
// have been blocked is "Audit (Block)" and passes.
func actionResult(ev enforcer.Event) (string, string) {
	blocking := ev.Verdict == match.Block || ev.Verdict == match.PostureBlock
	switch {
	case ev.Observed && blocking:
		return "Audit (Block)", ResultPassed
	case blocking:
		return "Block", ResultDenied
	default:
		return "Audit", ResultPassed
	}
}

// lsmHook names the LSM hook that decided an operation, as KubeArmor's
// Data field does.
func lsmHook(op match.Op) string {
	switch op {
	case match.OpExec:
		return "SECURITY_BPRM_CHECK"
	case match.OpOpenRead, match.OpOpenWrite:
		return "SECURITY_FILE_OPEN"
	case match.OpCreate:
		return "SECURITY_PATH_MKNOD"
	case match.OpSocketCreate:
		return "SECURITY_SOCKET_CREATE"
	case match.OpConnect:
		return "SECURITY_SOCKET_CONNECT"
	case match.OpAccept:
		return "SECURITY_SOCKET_ACCEPT"
	case match.OpBind:
		return "SECURITY_SOCKET_BIND"
	case match.OpCapable:
		return "SECURITY_CAPABLE"
	case match.OpExecMap:
		return "SECURITY_MMAP_FILE"
	case match.OpExecAnon:
		return "SECURITY_MMAP_ANON"
	case match.OpUserNS:
		return "SECURITY_USERNS_CREATE"
	}
	return "SECURITY_PATH_" + strings.ToUpper(op.String())
}

// howMprotect marks, in Event.Res1 of OpExecAnon, memory made executable by
// mprotect rather than mmap (KA_HOW_MPROTECT).
const howMprotect = 1 << 31

// protDescription says how anonymous memory was made executable: the
// protection asked for and the mmap flags (for mprotect, the mapping's).
func protDescription(prot, how uint32) string {
	var p []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{unix.PROT_READ, "PROT_READ"}, {unix.PROT_WRITE, "PROT_WRITE"}, {unix.PROT_EXEC, "PROT_EXEC"}} {
		if prot&f.bit != 0 {
			p = append(p, f.name)
		}
	}
	var m []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{unix.MAP_SHARED, "MAP_SHARED"}, {unix.MAP_PRIVATE, "MAP_PRIVATE"}, {unix.MAP_ANONYMOUS, "MAP_ANONYMOUS"}} {
		if how&f.bit != 0 {
			m = append(m, f.name)
		}
	}
	call := "mmap"
	if how&howMprotect != 0 {
		call = "mprotect"
	}
	return "call=" + call + " prot=" + strings.Join(p, "|") + " flags=" + strings.Join(m, "|")
}

// socketResource describes a socket as KubeArmor does:
// "domain=AF_INET type=SOCK_STREAM protocol=6".
func socketResource(family, typeProto uint32) string {
	domains := map[uint32]string{2: "AF_INET", 10: "AF_INET6", 17: "AF_PACKET"}
	types := map[uint32]string{1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM", 5: "SOCK_SEQPACKET", 6: "SOCK_DCCP", 10: "SOCK_PACKET"}
	d, ok := domains[family]
	if !ok {
		d = strconv.FormatUint(uint64(family), 10)
	}
	t, ok := types[typeProto>>16]
	if !ok {
		t = strconv.FormatUint(uint64(typeProto>>16), 10)
	}
	return fmt.Sprintf("domain=%s type=%s protocol=%d", d, t, typeProto&0xffff)
}

func operation(op match.Op) string {
	if k := op.Kind(); k != 0 {
		return k.String()
	}
	return op.String()
}

// Priority maps severity (1..10) to a syslog priority for journald: the
// higher the severity, the more urgent. Posture alerts carry no severity.
func (a Alert) Priority() int {
	sev, err := strconv.Atoi(a.Severity)
	if err != nil {
		if a.Result == ResultDenied {
			return 4 // warning
		}
		return 5 // notice
	}
	switch {
	case sev >= 9:
		return 2 // crit
	case sev >= 7:
		return 3 // err
	case sev >= 5:
		return 4 // warning
	case sev >= 3:
		return 5 // notice
	default:
		return 6 // info
	}
}

// Summary is the one-line MESSAGE for journald.
func (a Alert) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", a.Action, strings.ToLower(a.Operation), a.Resource)
	if a.Source != "" {
		fmt.Fprintf(&b, " by %s", a.Source)
	}
	fmt.Fprintf(&b, " (pid %d, uid %s): %s, policy %s", a.HostPID, uidName(a.UID, a.UserName), a.Result, a.PolicyName)
	if a.Severity != "" {
		fmt.Fprintf(&b, ", severity %s", a.Severity)
	}
	if a.Message != "" {
		fmt.Fprintf(&b, ": %s", a.Message)
	}
	return b.String()
}

// Fields returns every field under its KubeArmor name, for journald, which
// stores them as KUBEARMOR_<NAME>. Empty fields are left out.
func (a Alert) Fields() map[string]string {
	return nonEmpty(map[string]string{
		"Timestamp":         strconv.FormatInt(a.Timestamp, 10),
		"UpdatedTime":       a.UpdatedTime,
		"HostName":          a.HostName,
		"HostPPID":          strconv.Itoa(int(a.HostPPID)),
		"HostPID":           strconv.Itoa(int(a.HostPID)),
		"PPID":              strconv.Itoa(int(a.PPID)),
		"PID":               strconv.Itoa(int(a.PID)),
		"UID":               strconv.Itoa(int(a.UID)),
		"ProcessName":       a.ProcessName,
		"ParentProcessName": a.ParentProcessName,
		"PolicyName":        a.PolicyName,
		"Severity":          a.Severity,
		"Tags":              a.Tags,
		"ATags":             strings.Join(a.ATags, ","),
		"Message":           a.Message,
		"Type":              a.Type,
		"Source":            a.Source,
		"Operation":         a.Operation,
		"Resource":          a.Resource,
		"Data":              a.Data,
		"Enforcer":          a.Enforcer,
		"Action":            a.Action,
		"Result":            a.Result,
		"UserName":          a.UserName,
		"AlertSource":       a.AlertSource,
		"IncidentID":        nonZero(a.IncidentID),
		"Linked":            map[bool]string{true: "true"}[a.Linked],
	})
}

// nonZero formats n, or "" for 0.
func nonZero(n uint64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatUint(n, 10)
}

// nonEmpty drops the empty fields: journald need not store them.
func nonEmpty(f map[string]string) map[string]string {
	maps.DeleteFunc(f, func(_, v string) bool { return v == "" })
	return f
}

// uidName is "1000" or, when the name is known, "1000 alice".
func uidName(uid int32, name string) string {
	if name == "" {
		return strconv.Itoa(int(uid))
	}
	return strconv.Itoa(int(uid)) + " " + name
}
