package daemon

import (
	"fmt"
	"strings"
	"sync"

	"github.com/kubearmor/kubearmor-host/daemon/api"
	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/daemon/monitor"
	"github.com/kubearmor/kubearmor-host/daemon/record"
	"github.com/kubearmor/kubearmor-host/daemon/summary"
	"github.com/kubearmor/kubearmor-host/enforcer"
	"github.com/kubearmor/kubearmor-host/enforcer/detect"
	"github.com/kubearmor/kubearmor-host/policy/loader"
)

var _ api.State = (*daemon)(nil)

// summaryRows bounds each summary table.
const summaryRows = 4096

// lockedSummary is the summary the telemetry consumer adds to and the API
// reads.
type lockedSummary struct {
	mu sync.Mutex
	s  *summary.Summary
}

func (l *lockedSummary) add(ev monitor.Event, lg record.Log) {
	l.mu.Lock()
	l.s.Add(ev, lg)
	l.mu.Unlock()
}

// userNamespaces says what the unprivilegedUserNamespaces setting does under
// the enforcer in force: only BPF-LSM has the hook's decision.
func userNamespaces(setting string, e detect.Enforcer) string {
	if e == detect.BPFLSM {
		return setting + " (unprivileged creation, decided at userns_create)"
	}
	return "allow (" + setting + " is set; only the BPF-LSM enforcer applies it)"
}

// Probe implements api.State: what the daemon runs with and what it has
// counted.
func (d *daemon) Probe() *hostpb.ProbeReply {
	cfg := d.opts.Config
	r := &hostpb.ProbeReply{
		Version:        d.opts.Version,
		StartedUnix:    d.started.Unix(),
		KernelRelease:  d.report.KernelRelease,
		Btf:            d.report.BTF,
		Lsms:           d.report.LSMs,
		BpfLsm:         &hostpb.Feature{Status: d.report.BPFLSM.Status.String(), Reason: d.report.BPFLSM.Reason},
		Apparmor:       &hostpb.Feature{Status: d.report.AppArmor.Status.String(), Reason: d.report.AppArmor.Reason},
		Enforcer:       d.enf.Name(),
		EnforcerReason: d.choice.Reason,
		Postures: &hostpb.Postures{
			File:         string(cfg.HostDefaultFilePosture),
			Network:      string(cfg.HostDefaultNetworkPosture),
			Capabilities: string(cfg.HostDefaultCapabilitiesPosture),
		},
		PolicyDir:      cfg.PolicyDir,
		Counters:       d.counters(),
		UserNamespaces: userNamespaces(cfg.UnprivilegedUserNamespaces, d.choice.Enforcer),
	}
	if d.monitor != nil {
		r.Visibility = strings.Split(cfg.HostVisibility.String(), ",")
	}
	if set := d.sets.current(); set != nil {
		r.PolicyVersion, r.Rules = set.Version(), uint32(set.Len())
	}
	d.filesMu.Lock()
	files := d.files
	d.filesMu.Unlock()
	for _, f := range files {
		pf := &hostpb.PolicyFile{Path: f.Path, State: string(f.State), Rules: uint32(f.Rules)}
		if f.Err != nil {
			pf.Error = f.Err.Error()
		}
		if !f.Since.IsZero() {
			pf.SinceUnix = f.Since.Unix()
		}
		for _, p := range f.Policies {
			pf.Policies = append(pf.Policies, &hostpb.Policy{Name: p.Name, Line: int32(p.Line), Applied: p.Applied, Reason: p.Reason})
		}
		r.PolicyFiles = append(r.PolicyFiles, pf)
	}
	return r
}

// setFiles records the policy files' statuses from the load in force.
func (d *daemon) setFiles(files []loader.FileStatus) {
	d.filesMu.Lock()
	d.files = files
	d.filesMu.Unlock()
}

// counters lists every count of every stage, for the probe.
func (d *daemon) counters() []*hostpb.Counter {
	var out []*hostpb.Counter
	add := func(stage string, kv ...any) {
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, &hostpb.Counter{Stage: stage, Name: kv[i].(string), Value: kv[i+1].(uint64)})
		}
	}
	gauge := func(stage, name string, v int) {
		out = append(out, &hostpb.Counter{Stage: stage, Name: name, Value: uint64(v), Gauge: true})
	}
	st := d.enf.Stats()
	add("enforcer", "decisions", st.Decisions, "denied", st.Denied, "audited", st.Audited, "cached", st.Cached,
		"alerts_lost", st.AlertsLost, "events_lost", st.EventsLost, "paths_truncated", st.PathsTruncated,
		"scratch_busy", st.ScratchBusy, "torn", st.Torn, "undelivered", st.Undelivered, "malformed", st.Malformed,
		"unknown_caller", st.UnknownCaller, "table_full", st.TableFull, "unattributed", st.Unattributed,
		"linked", st.Linked, "mounts_cut", st.MountsCut)
	// The AppArmor enforcer's alert paths, each on its own terms.
	for _, src := range []enforcer.AlertSource{enforcer.AlertEBPF, enforcer.AlertAudit} {
		if p, ok := st.Paths[src]; ok {
			add("alerts_"+string(src), "delivered", p.Delivered, "lost", p.Lost)
		}
	}
	add("alerts", "write_errors", d.writeErrors.Load())
	add("policy", "reloads", d.reloads.Load(), "reload_failures", d.reloadFailures.Load())
	if d.monitor != nil {
		t := d.monitor.Stats()
		add("telemetry", "seen", t.Seen, "delivered", t.Delivered, "lost", t.Lost(), "throttled", t.Throttled,
			"ring_full", t.RingFull, "scratch_busy", t.Busy, "queue_full", t.QueueFull, "malformed", t.Malformed,
			"untracked", t.Untracked)
		add("logs", "write_errors", d.logErrors.Load())
		d.summary.mu.Lock()
		add("summary", "evicted", d.summary.s.Evicted())
		d.summary.mu.Unlock()
	}
	if d.opts.API != nil {
		a := d.opts.API.Stats()
		gauge("api", "alert_subscribers", a.Alerts.Subscribers)
		gauge("api", "log_subscribers", a.Logs.Subscribers)
		gauge("api", "message_subscribers", a.Messages.Subscribers)
		add("api", "alerts_delivered", a.Alerts.Delivered, "alerts_dropped", a.Alerts.Dropped,
			"logs_delivered", a.Logs.Delivered, "logs_dropped", a.Logs.Dropped,
			"messages_delivered", a.Messages.Delivered, "messages_dropped", a.Messages.Dropped)
	}
	return out
}

// Summary implements api.State.
func (d *daemon) Summary(kind string) (*hostpb.SummaryReply, error) {
	if kind != "" && kind != "process" && kind != "file" && kind != "network" {
		return nil, fmt.Errorf("unknown summary type %q (process, file, network, or empty for all)", kind)
	}
	r := &hostpb.SummaryReply{Observing: d.monitor != nil}
	if d.monitor == nil {
		return r, nil
	}
	d.summary.mu.Lock()
	defer d.summary.mu.Unlock()
	s := d.summary.s
	net := func(dir summary.Direction) []*hostpb.NetRow {
		var rows []*hostpb.NetRow
		for _, n := range s.Network(dir) {
			rows = append(rows, &hostpb.NetRow{Protocol: n.Protocol, Command: n.Command, Address: n.Address.String(),
				Port: uint32(n.Port), Count: n.Count, LastSeenUnixNano: n.LastSeen.UnixNano()})
		}
		return rows
	}
	act := func(op string) []*hostpb.ActivityRow {
		var rows []*hostpb.ActivityRow
		for _, a := range s.Activity(op) {
			rows = append(rows, &hostpb.ActivityRow{Source: a.Source, Resource: a.Resource, Count: a.Count,
				LastResult: a.LastResult, LastSeenUnixNano: a.LastSeen.UnixNano()})
		}
		return rows
	}
	if kind == "" || kind == "network" {
		r.Ingress, r.Egress, r.Bind = net(summary.Ingress), net(summary.Egress), net(summary.Bind)
	}
	if kind == "" || kind == "process" {
		r.Process = act("Process")
	}
	if kind == "" || kind == "file" {
		r.File = act("File")
	}
	r.Evicted = s.Evicted()
	return r, nil
}
