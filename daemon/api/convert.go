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
	}
}
