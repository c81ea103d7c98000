// Package render prints what the daemon sends for a person at a terminal:
// alerts and logs in KubeArmor's text form or as JSON lines, the summary
// tables, the probe, and policy file status.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kubearmor/kubearmor-host/daemon/api/hostpb"
	"github.com/kubearmor/kubearmor-host/daemon/record"
)

// alertOrder and logOrder are the order of the Key: value lines, as
// KubeArmor's client prints them; empty values are left out.
var (
	alertOrder = []string{"HostName", "Type", "PolicyName", "Severity", "Message", "Tags", "ATags", "Source", "Resource",
		"Operation", "Action", "Data", "Enforcer", "Result", "HostPID", "HostPPID", "PID", "PPID", "ParentProcessName",
		"ProcessName", "UID", "UserName"}
	logOrder = []string{"HostName", "Type", "Source", "Resource", "Operation", "Data", "Result", "HostPID", "HostPPID",
		"PID", "PPID", "ParentProcessName", "ProcessName", "UID", "UserName", "Cwd", "TTY"}
)

// Text writes r as KubeArmor's client does: a "== Alert / <time> ==" or
// "== Log / <time> ==" line, then Key: value lines.
func Text(w io.Writer, r record.Record) error {
	kind, order, when := "Log", logOrder, ""
	switch r := r.(type) {
	case record.Alert:
		kind, order, when = "Alert", alertOrder, r.UpdatedTime
	case record.Log:
		when = r.UpdatedTime
	}
	fields := r.Fields()
	var b strings.Builder
	fmt.Fprintf(&b, "== %s / %s ==\n", kind, displayTime(when))
	for _, k := range order {
		if v, ok := fields[k]; ok && v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// displayTime shows KubeArmor's UpdatedTime as its client does.
func displayTime(updated string) string {
	t, err := time.Parse(record.TimeLayout, updated)
	if err != nil {
		return updated
	}
	return t.Format("2006-01-02 15:04:05.000000")
}

// JSON writes r as one line with KubeArmor's field names.
func JSON(w io.Writer, r record.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func when(unixNano int64) string {
	if unixNano == 0 {
		return "-"
	}
	return time.Unix(0, unixNano).UTC().Format(time.DateTime + " UTC")
}

// Summary writes the tables of s that kind asks for ("" for all).
func Summary(w io.Writer, s *hostpb.SummaryReply, kind string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	section := func(title string) {
		fmt.Fprintf(tw, "\n%s\n\n", title)
	}
	if !s.Observing {
		fmt.Fprintln(tw, "Visibility is off (hostVisibility: none): the daemon keeps no summary.")
		return tw.Flush()
	}
	if kind == "" || kind == "process" {
		section("Process data")
		fmt.Fprintln(tw, "SRC PROCESS\tDESTINATION PROCESS PATH\tCOUNT\tLAST UPDATED TIME\tSTATUS")
		for _, r := range s.Process {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Source, r.Resource, r.Count, when(r.LastSeenUnixNano), r.LastResult)
		}
	}
	if kind == "" || kind == "file" {
		section("File data")
		fmt.Fprintln(tw, "SRC PROCESS\tDESTINATION FILE PATH\tCOUNT\tLAST UPDATED TIME\tSTATUS")
		for _, r := range s.File {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Source, r.Resource, r.Count, when(r.LastSeenUnixNano), r.LastResult)
		}
	}
	if kind == "" || kind == "network" {
		net := func(title, addr string, rows []*hostpb.NetRow) {
			section(title)
			fmt.Fprintf(tw, "PROTOCOL\tCOMMAND\t%s\tPORT\tCOUNT\tLAST UPDATED TIME\n", addr)
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", r.Protocol, r.Command, r.Address, r.Port, r.Count, when(r.LastSeenUnixNano))
			}
		}
		net("Ingress connections", "POD/SVC/IP", s.Ingress)
		net("Egress connections", "POD/SVC/IP", s.Egress)
		net("Bind Points", "BIND ADDRESS", s.Bind)
	}
	if s.Evicted > 0 {
		fmt.Fprintf(tw, "\n(%d rows were evicted to keep the tables bounded; the least recently seen go first.)\n", s.Evicted)
	}
	return tw.Flush()
}

// Probe writes what the running daemon reports.
func Probe(w io.Writer, p *hostpb.ProbeReply) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("Daemon", fmt.Sprintf("kubearmor %s, running since %s", p.Version, time.Unix(p.StartedUnix, 0).UTC().Format(time.DateTime+" UTC")))
	row("Kernel", p.KernelRelease)
	row("BTF", strconv.FormatBool(p.Btf))
	row("Active LSMs", strings.Join(p.Lsms, ","))
	row("BPF-LSM", p.BpfLsm.GetStatus()+": "+p.BpfLsm.GetReason())
	row("AppArmor", p.Apparmor.GetStatus()+": "+p.Apparmor.GetReason())
	row("Enforcer", p.Enforcer)
	row("Why", p.EnforcerReason)
	row("Postures", fmt.Sprintf("file %s, network %s, capabilities %s", p.Postures.GetFile(), p.Postures.GetNetwork(), p.Postures.GetCapabilities()))
	vis := strings.Join(p.Visibility, ",")
	if vis == "" {
		vis = "none"
	}
	row("Visibility", vis)
	if p.UserNamespaces != "" {
		row("User namespaces", p.UserNamespaces)
	}
	row("Policies", fmt.Sprintf("set %d, %d rules, from %s", p.PolicyVersion, p.Rules, p.PolicyDir))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if err := PolicyFiles(w, p.PolicyFiles); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return Counters(w, p.Counters)
}

// PolicyFiles writes each policy file's status and its policies.
func PolicyFiles(w io.Writer, files []*hostpb.PolicyFile) error {
	if len(files) == 0 {
		_, err := fmt.Fprintln(w, "No policy files.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSTATE\tRULES\tPOLICIES\tSINCE")
	for _, f := range files {
		var names []string
		for _, p := range f.Policies {
			n := p.Name
			if !p.Applied {
				n += " (not for this host)"
			}
			names = append(names, n)
		}
		since := "-"
		if f.SinceUnix != 0 {
			since = time.Unix(f.SinceUnix, 0).UTC().Format(time.DateTime + " UTC")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", f.Path, f.State, f.Rules, strings.Join(names, ", "), since)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range files {
		if f.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", f.State, f.Error)
		}
	}
	return nil
}

// Policies writes one line per policy: its name, where it is, and whether
// it selects this host.
func Policies(w io.Writer, files []*hostpb.PolicyFile) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tFILE\tTHIS HOST")
	for _, f := range files {
		for _, p := range f.Policies {
			where := "applies"
			if !p.Applied {
				where = "not selected: " + p.Reason
			}
			fmt.Fprintf(tw, "%s\t%s:%d\t%s\n", p.Name, f.Path, p.Line, where)
		}
	}
	return tw.Flush()
}

// Counters writes the counters by stage, one line each.
func Counters(w io.Writer, cs []*hostpb.Counter) error {
	stages, byStage := hostpb.ByStage(cs)
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintln(tw, "Counters:")
	for _, s := range stages {
		var parts []string
		for _, c := range byStage[s] {
			parts = append(parts, fmt.Sprintf("%s %d", c.Name, c.Value))
		}
		fmt.Fprintf(tw, "  %s:\t%s\n", s, strings.Join(parts, ", "))
	}
	return tw.Flush()
}
