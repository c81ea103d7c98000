package api

import (
	"github.com/kubearmor/kubearmor-host/daemon/api/feeder"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// alertMessage is a in KubeArmor's wire format.
func alertMessage(a record.Alert) *feeder.Alert {
	return &feeder.Alert{
		Timestamp:         a.Timestamp,
		UpdatedTime:       a.UpdatedTime,
		HostName:          a.HostName,
		HostPPID:          a.HostPPID,
		HostPID:           a.HostPID,
		PPID:              a.PPID,
		PID:               a.PID,
		UID:               a.UID,
		ProcessName:       a.ProcessName,
		ParentProcessName: a.ParentProcessName,
		PolicyName:        a.PolicyName,
		Severity:          a.Severity,
		Tags:              a.Tags,
		ATags:             a.ATags,
		Message:           a.Message,
		Type:              a.Type,
		Source:            a.Source,
		Operation:         a.Operation,
		Resource:          a.Resource,
		Data:              a.Data,
		Enforcer:          a.Enforcer,
		Action:            a.Action,
		Result:            a.Result,
		AlertSource:       a.AlertSource,
		IncidentID:        a.IncidentID,
		Linked:            a.Linked,
	}
}

// logMessage is l in KubeArmor's wire format.
func logMessage(l record.Log) *feeder.Log {
	return &feeder.Log{
		Timestamp:         l.Timestamp,
		UpdatedTime:       l.UpdatedTime,
		HostName:          l.HostName,
		HostPPID:          l.HostPPID,
		HostPID:           l.HostPID,
		PPID:              l.PPID,
		PID:               l.PID,
		UID:               l.UID,
		ProcessName:       l.ProcessName,
		ParentProcessName: l.ParentProcessName,
		Type:              l.Type,
		Source:            l.Source,
		Operation:         l.Operation,
		Resource:          l.Resource,
		Data:              l.Data,
		Result:            l.Result,
		Cwd:               l.Cwd,
		TTY:               l.TTY,
	}
}

// AlertRecord is the record a streamed alert was made from.
func AlertRecord(a *feeder.Alert) record.Alert {
	return record.Alert{
		Timestamp:         a.GetTimestamp(),
		UpdatedTime:       a.GetUpdatedTime(),
		HostName:          a.GetHostName(),
		HostPPID:          a.GetHostPPID(),
		HostPID:           a.GetHostPID(),
		PPID:              a.GetPPID(),
		PID:               a.GetPID(),
		UID:               a.GetUID(),
		ProcessName:       a.GetProcessName(),
		ParentProcessName: a.GetParentProcessName(),
		PolicyName:        a.GetPolicyName(),
		Severity:          a.GetSeverity(),
		Tags:              a.GetTags(),
		ATags:             a.GetATags(),
		Message:           a.GetMessage(),
		Type:              a.GetType(),
		Source:            a.GetSource(),
		Operation:         a.GetOperation(),
		Resource:          a.GetResource(),
		Data:              a.GetData(),
		Enforcer:          a.GetEnforcer(),
		Action:            a.GetAction(),
		Result:            a.GetResult(),
		AlertSource:       a.GetAlertSource(),
		IncidentID:        a.GetIncidentID(),
		Linked:            a.GetLinked(),
	}
}

// LogRecord is the record a streamed log was made from.
func LogRecord(l *feeder.Log) record.Log {
	return record.Log{
		Timestamp:         l.GetTimestamp(),
		UpdatedTime:       l.GetUpdatedTime(),
		HostName:          l.GetHostName(),
		HostPPID:          l.GetHostPPID(),
		HostPID:           l.GetHostPID(),
		PPID:              l.GetPPID(),
		PID:               l.GetPID(),
		UID:               l.GetUID(),
		ProcessName:       l.GetProcessName(),
		ParentProcessName: l.GetParentProcessName(),
		Type:              l.GetType(),
		Source:            l.GetSource(),
		Operation:         l.GetOperation(),
		Resource:          l.GetResource(),
		Data:              l.GetData(),
		Result:            l.GetResult(),
		Cwd:               l.GetCwd(),
		TTY:               l.GetTTY(),
	}
}
